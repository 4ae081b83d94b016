//! The dialer engine's sans-IO core: one [`attempt::Attempt`] per customer
//! call (where the 2-second abandon clock lives) and the
//! [`dispatch::Dispatcher`] that hands live answers to free agents.

pub mod attempt;
pub mod dispatch;

#[cfg(test)]
mod tests;
