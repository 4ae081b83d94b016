//! Any bytes as an RTP packet: parsed or refused, never a panic; what
//! parses survives the bridge's in-place rewrite and a leg's receive path.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use outdial::media::bridge::{OutStream, Translation, relay_in_place};
use outdial::media::g711::Law;
use outdial::media::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    assert!(packet.payload_offset + packet.payload.len() <= data.len());
    let mut buf = data.to_vec();
    let translation = Translation {
        from_law: Law::Ulaw,
        from_audio_pt: 0,
        from_event_pt: Some(101),
        to_law: Law::Alaw,
        to_audio_pt: 8,
        to_event_pt: Some(96),
    };
    let mut out = OutStream::new(1, 2, 3, 20);
    if let Ok(len) = relay_in_place(&mut buf, &translation, &mut out, Instant::now()) {
        let again = RtpPacket::parse(&buf[..len]).expect("a rewritten packet parses");
        assert_eq!(again.ssrc, 1);
    }
});
