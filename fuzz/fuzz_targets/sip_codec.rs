//! Any bytes as a SIP datagram or stream: a message or an error, never a
//! panic; a parsed message serialises and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::sip::codec::{Message, frame_stream};

fuzz_target!(|data: &[u8]| {
    let _ = frame_stream(data);
    if let Ok(message) = Message::parse(data) {
        let _ = message.top_via().map(|v| v.branch());
        let _ = message.from().map(|f| f.tag());
        let _ = message.cseq();
        let _ = message.header_values("Contact").count();
        if let Some(uri) = message.request_uri() {
            let _ = outdial::sip::codec::SipUri::parse(uri);
        }
        let bytes = message.serialise();
        let _ = Message::parse(&bytes);
    }
});
