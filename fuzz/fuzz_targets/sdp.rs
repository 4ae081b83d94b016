//! Any bytes as SDP: parsed or refused, never a panic. Round-trip oracle:
//! what parses, serialised and parsed again, is the same document; and
//! answering it either succeeds with one answer m= line per offer m= line
//! or names why not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::sdp::{Codec, SessionDescription, answer_offer};

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
});
