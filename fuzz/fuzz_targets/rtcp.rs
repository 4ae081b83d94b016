//! Any bytes as an RTCP compound: packets or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::media::rtcp::{self, RtcpPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(compound) = rtcp::parse(data) {
        for packet in compound.take(64) {
            match packet {
                Ok(
                    RtcpPacket::SenderReport { blocks, .. }
                    | RtcpPacket::ReceiverReport { blocks, .. },
                ) => {
                    for block in blocks {
                        let _ = block.cumulative_lost;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
});
