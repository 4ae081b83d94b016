//! Sockets of the tokio shell. Nothing here parses a protocol: bytes go to
//! and come from the sans-IO cores.

pub mod browser_phone;
pub mod locate;
pub mod route;
pub mod rtp;
mod sip_driver;
mod sip_sockets;

pub use sip_driver::{DriverStats, SipCommand, SipDriver, SipHandle};
pub use sip_sockets::SipSockets;
