//! The browser phone's per-packet costs (`src/media/browser_phone.rs`): a
//! 20 ms PCMU packet from the agent's leg to the browser (SRTP protect and
//! str0m's send path) and one from the browser to the leg (SRTP unprotect,
//! depacketize, a plain RTP packet built). The browser is a second str0m
//! peer on the same virtual clock, connected (ICE, DTLS) before measuring.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::media::browser_phone::{BrowserPhone, PhoneOutput};
use outdial::media::rtp::write_header;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Output, Rtc};

const PHONE: &str = "10.0.0.1:6000";
const BROWSER: &str = "10.0.0.2:5000";

struct Pair {
    phone: BrowserPhone,
    browser: Rtc,
    audio: Mid,
    now: Instant,
}

fn deliver_to_browser(browser: &mut Rtc, bytes: &[u8], now: Instant) {
    if let Ok(contents) = bytes.try_into() {
        let _ = browser.handle_input(Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: PHONE.parse().unwrap(),
                destination: BROWSER.parse().unwrap(),
                contents,
            },
        ));
    }
}

/// Both peers connected, on a virtual clock.
fn connected() -> Pair {
    let now = Instant::now();
    let mut browser = Rtc::builder()
        .enable_opus(true)
        .enable_pcmu(true)
        .build(now);
    let addr: SocketAddr = BROWSER.parse().unwrap();
    browser.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let mut change = browser.sdp_api();
    let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let (phone, answer) =
        BrowserPhone::accept(&offer.to_sdp_string(), PHONE.parse().unwrap(), now).unwrap();
    browser
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    let mut pair = Pair {
        phone,
        browser,
        audio,
        now,
    };
    let mut up = false;
    for _ in 0..2000 {
        pair.now += Duration::from_millis(5);
        let now = pair.now;
        pair.phone.handle_timeout(now);
        let _ = pair.browser.handle_input(Input::Timeout(now));
        loop {
            match pair.phone.poll() {
                PhoneOutput::Transmit { bytes, .. } => {
                    deliver_to_browser(&mut pair.browser, &bytes, now)
                }
                PhoneOutput::Connected => up = true,
                PhoneOutput::Wait(_) => break,
                _ => {}
            }
        }
        while let Ok(output) = pair.browser.poll_output() {
            match output {
                Output::Timeout(_) => break,
                Output::Transmit(t) => pair.phone.handle_datagram(t.source, &t.contents, now),
                Output::Event(_) => {}
            }
        }
        if up {
            return pair;
        }
    }
    panic!("the peers did not connect");
}

impl Pair {
    /// The browser's side of 20 ms: its clock moves on, it takes what the
    /// phone sent (`to_browser`), and what it sends back goes to
    /// `to_phone` — outside the measured time.
    fn browser_turn(&mut self, to_browser: &mut Vec<Vec<u8>>, to_phone: &mut Vec<Vec<u8>>) {
        self.now += Duration::from_millis(20);
        for bytes in to_browser.drain(..) {
            deliver_to_browser(&mut self.browser, &bytes, self.now);
        }
        let _ = self.browser.handle_input(Input::Timeout(self.now));
        while let Ok(output) = self.browser.poll_output() {
            match output {
                Output::Timeout(_) => break,
                Output::Transmit(t) => to_phone.push(t.contents.to_vec()),
                Output::Event(_) => {}
            }
        }
    }

    /// The phone's side, measured: the browser's datagrams, one packet of
    /// the agent's leg (if any), the timer, and everything it has to send.
    fn phone_turn(
        &mut self,
        from_browser: &mut Vec<Vec<u8>>,
        leg_packet: Option<&[u8]>,
        to_browser: &mut Vec<Vec<u8>>,
    ) -> Duration {
        let browser: SocketAddr = BROWSER.parse().unwrap();
        let start = Instant::now();
        for bytes in from_browser.drain(..) {
            self.phone.handle_datagram(browser, &bytes, self.now);
        }
        if let Some(packet) = leg_packet {
            self.phone.handle_leg_rtp(packet, self.now);
        }
        self.phone.handle_timeout(self.now);
        loop {
            match self.phone.poll() {
                PhoneOutput::Wait(_) => break,
                PhoneOutput::Transmit { bytes, .. } => to_browser.push(bytes),
                PhoneOutput::Closed(why) => panic!("the phone closed: {why}"),
                other => {
                    black_box(other);
                }
            }
        }
        start.elapsed()
    }
}

fn leg_to_browser(c: &mut Criterion) {
    let mut pair = connected();
    let mut sequence = 0u16;
    let (mut to_browser, mut to_phone) = (Vec::new(), Vec::new());
    c.bench_function("browser_phone_leg_to_browser", |b| {
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                pair.browser_turn(&mut to_browser, &mut to_phone);
                // The browser's own packets (RTCP, consent) are handled
                // unmeasured here; `browser_to_leg` measures that side.
                let browser: SocketAddr = BROWSER.parse().unwrap();
                for bytes in to_phone.drain(..) {
                    pair.phone.handle_datagram(browser, &bytes, pair.now);
                }
                sequence = sequence.wrapping_add(1);
                let mut packet = [0x55u8; 172];
                write_header(
                    &mut packet,
                    false,
                    0,
                    sequence,
                    u32::from(sequence) * 160,
                    7,
                );
                measured += pair.phone_turn(&mut Vec::new(), Some(&packet), &mut to_browser);
            }
            measured
        })
    });
}

fn browser_to_leg(c: &mut Criterion) {
    let mut pair = connected();
    let pcmu = pair
        .browser
        .writer(pair.audio)
        .and_then(|w| {
            w.payload_params()
                .find(|p| p.spec().codec == Codec::PCMU)
                .map(|p| p.pt())
        })
        .unwrap();
    let mut frame = 0u64;
    let (mut to_browser, mut to_phone) = (Vec::new(), Vec::new());
    c.bench_function("browser_phone_browser_to_leg", |b| {
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                frame += 1;
                let time = MediaTime::new(frame * 160, Frequency::EIGHT_KHZ);
                let now = pair.now;
                pair.browser
                    .writer(pair.audio)
                    .unwrap()
                    .write(pcmu, now, time, vec![0x2a; 160])
                    .unwrap();
                pair.browser_turn(&mut to_browser, &mut to_phone);
                measured += pair.phone_turn(&mut to_phone, None, &mut to_browser);
            }
            measured
        })
    });
}

criterion_group!(benches, leg_to_browser, browser_to_leg);
criterion_main!(benches);
