//! SIP signalling core (sans-IO): the message codec, RFC 3261 transactions,
//! UAC dialogs and calls, digest authentication, the agent registrar and trunk
//! call outcomes. Nothing here opens a socket or reads a clock: the tokio
//! driver in `net::sip_driver` feeds datagrams and `Instant`s in and takes
//! datagrams, events and the next deadline out.

pub mod auth;
pub mod codec;
pub mod endpoint;
pub mod offer;
pub mod outcome;
pub mod registrar;
pub mod transaction;
pub mod trunk;
