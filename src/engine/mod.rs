//! The dialer engine's sans-IO core: the [`dialer::Dialer`] holding every
//! agent session and campaign run state, one [`attempt::Attempt`] per
//! customer call (where the 2-second abandon clock lives) and the
//! [`dispatch::Dispatcher`] that hands live answers to free agents.

pub mod attempt;
pub mod campaign_run;
pub mod dialer;
pub mod dispatch;

#[cfg(test)]
mod tests;
