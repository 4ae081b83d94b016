//! Any text as a browser's WebRTC offer: answered or refused with a reason,
//! never a panic. Then, on the phone answering a real Chromium offer, any
//! bytes as datagrams from the browser (STUN, DTLS, SRTP or junk) and as
//! RTP from the agent's leg, with the clock moving on: never a panic, and
//! the phone always ends its outputs with a wait.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use outdial::media::browser_phone::{BrowserPhone, PhoneOutput};

const CHROMIUM_OFFER: &str = include_str!("../../tests/fixtures/webrtc/chromium-offer.sdp");

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let local = "192.0.2.1:20000".parse().unwrap();
    let (offer, datagrams) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let _ = BrowserPhone::accept(&String::from_utf8_lossy(offer), local, now);
    let (mut phone, _) =
        BrowserPhone::accept(CHROMIUM_OFFER, local, now).expect("Chromium's offer is answered");
    let browser = "192.0.2.2:40000".parse().unwrap();
    for (i, datagram) in datagrams.split(|&b| b == 0xFE).enumerate() {
        let at = now + Duration::from_millis(10 * i as u64);
        phone.handle_datagram(browser, datagram, at);
        phone.handle_leg_rtp(datagram, at);
        phone.handle_timeout(at);
        for _ in 0..10_000 {
            if matches!(phone.poll(), PhoneOutput::Wait(_)) {
                break;
            }
        }
    }
});
