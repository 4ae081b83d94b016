//! Any bytes as SDP: parsed or refused, never a panic. Round-trip oracle:
//! what parses, serialised and parsed again, is the same document; and
//! answering it either succeeds with one answer m= line per offer m= line
//! or names why not. The same bytes as a re-offer inside a dialog, and as
//! the first offer a dialog's answers are drawn from: answered (an answer
//! that parses) or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::sdp::{Codec, DialogSdp, Direction, SessionDescription, answer_offer, build_offer};

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let text = sdp.to_string();
    if let Ok(again) = SessionDescription::parse(text.as_bytes()) {
        assert_eq!(again.to_string(), text, "serialisation is stable");
    }
    let local = "192.0.2.1:20000".parse().unwrap();
    if let Ok((answer, _)) = answer_offer(&sdp, local, 1, 1, &Codec::default()) {
        assert_eq!(answer.media.len(), sdp.media.len());
    }
    let ours = build_offer(local, 7, 1, &Codec::default(), Direction::SendRecv).to_string();
    let mut dialog = DialogSdp::from_offer(ours.as_bytes()).expect("our own offer parses");
    if let Ok((answer, _)) = dialog.answer(data) {
        assert!(SessionDescription::parse(answer.as_bytes()).is_ok());
    }
    if let Ok(mut odd) = DialogSdp::from_offer(data) {
        let _ = odd.answer(ours.as_bytes());
        let _ = odd.on_answer(ours.as_bytes());
    }
});
