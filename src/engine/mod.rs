//! The dialer engine's sans-IO core: the [`dialer::Dialer`] holding every
//! agent session and campaign run state, one [`attempt::Attempt`] per
//! customer call (where the 2-second abandon clock lives) and the
//! [`dispatch::Dispatcher`] that hands live answers to free agents; `calls`
//! wires pacing, attempts and agents together, and [`io`] names what
//! crosses to the tokio shell (`driver`).

pub mod attempt;
pub mod calls;
pub mod campaign_run;
pub mod dialer;
pub mod dispatch;
pub mod io;

#[cfg(test)]
mod calls_tests;
#[cfg(test)]
mod tests;
