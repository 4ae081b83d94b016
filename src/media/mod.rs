//! The media plane's sans-IO parts: G.711 companding, WAV files, RTP and
//! RTCP packets, RFC 3550 receive statistics, the reorder window, the
//! bridge's header rewriting, tones and prompts, the recorder and the
//! per-leg core ([`leg::LegCore`]) that the tokio shell in `net/` drives.

pub mod bridge;
pub mod browser_phone;
pub mod config;
pub mod dtmf;
pub mod g711;
pub mod leg;
pub mod listen_in;
pub mod prompt;
pub mod recorder;
pub mod reorder;
pub mod rtcp;
pub mod rtp;
pub mod stats;
pub mod tones;
pub mod wav;
