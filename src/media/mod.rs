//! Media-plane building blocks that are plain functions over samples and
//! bytes: G.711 companding and WAV files. The RTP legs, the bridge and the
//! tone generators build on these.

pub mod g711;
pub mod wav;
