//! outdial — an open-source SIP predictive dialer.
//!
//! The telephony cores are sans-IO state machines (input, `Instant` → output,
//! next deadline); the tokio shell ([`server`], [`net`], [`api`]) owns
//! sockets and timers. See `ARCHITECTURE.md` for the module map and the path
//! of one call.

pub mod agent;
pub mod api;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod cpa;
pub mod driver;
pub mod engine;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod net;
pub mod pacing;
pub mod sdp;
pub mod server;
pub mod sim;
pub mod sip;
pub mod store;
