//! outdial — an open-source SIP predictive dialer.
//!
//! The telephony cores are sans-IO state machines (input, `Instant` → output,
//! next deadline); the tokio shell ([`server`], [`net`], [`api`]) owns
//! sockets and timers. See `ARCHITECTURE.md` for the module map and the path
//! of one call.

pub mod api;
pub mod cli;
pub mod config;
pub mod logging;
pub mod net;
pub mod pacing;
pub mod server;
pub mod sim;
