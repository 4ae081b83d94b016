//! The media plane's per-packet costs: the bridge's in-place rewrite (same
//! law and PCMU→PCMA), a leg's receive path (validate, latch, RFC 3550
//! stats), decoding a packet into CPA frames, SDP offer/answer, and what a
//! supervisor listening in adds: its voice mixed into a relayed packet, and
//! a 20 ms packet of the agent and the customer mixed for it.
//! Socket-level figures come from `scripts/load/media`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::media::bridge::{OutStream, Translation, relay_in_place};
use outdial::media::g711::Law;
use outdial::media::leg::{LegCore, LegSettings, LiveSource};
use outdial::media::listen_in::VoiceQueue;
use outdial::media::rtp::write_header;
use outdial::sdp::{Codec, Direction, Negotiated, SessionDescription, answer_offer};

fn packet(seq: u16) -> [u8; 172] {
    let mut buf = [0x55u8; 172];
    write_header(&mut buf, false, 0, seq, u32::from(seq) * 160, 0xC0FFEE);
    buf
}

fn relay(c: &mut Criterion) {
    for (name, to_law, to_pt) in [
        ("relay_rewrite_pcmu_to_pcmu", Law::Ulaw, 0),
        ("relay_rewrite_pcmu_to_pcma", Law::Alaw, 8),
    ] {
        let translation = Translation {
            from_law: Law::Ulaw,
            from_audio_pt: 0,
            from_event_pt: Some(101),
            to_law,
            to_audio_pt: to_pt,
            to_event_pt: Some(101),
        };
        let mut out = OutStream::new(1, 0, 0, 20);
        let now = Instant::now();
        let mut seq = 0u16;
        c.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut buf = packet(seq);
                black_box(relay_in_place(&mut buf, &translation, &mut out, now).ok());
            })
        });
    }
}

fn leg_receive(c: &mut Criterion) {
    let negotiated = Negotiated {
        remote: Some("127.0.0.1:4000".parse().unwrap()),
        law: Law::Ulaw,
        payload_type: 0,
        telephone_event: Some(101),
        ptime_ms: 20,
        direction: Direction::SendRecv,
    };
    let settings = LegSettings {
        ssrc: 1,
        inactivity_timeout: Duration::from_secs(30),
        keepalive: false,
        cname: "b".into(),
    };
    let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    for (name, decode) in [
        ("leg_receive", false),
        ("leg_receive_and_decode_frame", true),
    ] {
        let start = Instant::now();
        let mut leg = LegCore::new(settings.clone(), negotiated.clone(), start);
        leg.set_decode(decode);
        let mut seq = 0u16;
        c.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let buf = packet(seq);
                let now = start + Duration::from_millis(20 * u64::from(seq));
                black_box(leg.on_rtp(&buf, from, now).ok());
                while let Some(frame) = leg.poll_frame(now) {
                    black_box(frame.samples[0]);
                }
            })
        });
    }
}

fn sdp(c: &mut Criterion) {
    let offer = "v=0\r\no=Sonus_UAC 245821 1 IN IP4 203.0.113.7\r\ns=SIP Media Capabilities\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 36412 RTP/AVP 18 0 8 101 13\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=maxptime:20\r\n";
    let local = "192.0.2.1:20000".parse().unwrap();
    c.bench_function("sdp_parse_answer_serialise", |b| {
        b.iter(|| {
            let parsed = SessionDescription::parse(black_box(offer.as_bytes())).unwrap();
            let (answer, _) = answer_offer(&parsed, local, 1, 1, &Codec::default()).unwrap();
            black_box(answer.to_string())
        })
    });
}

fn listen_in(c: &mut Criterion) {
    let voice = [1200i16; 160];
    let mut queue = VoiceQueue::default();
    c.bench_function("listen_in_mix_voice_into_packet", |b| {
        b.iter(|| {
            queue.push(&voice);
            let mut buf = packet(7);
            black_box(queue.mix_into_packet(black_box(&mut buf), Law::Ulaw, 0));
        })
    });
    let settings = LegSettings {
        ssrc: 5,
        inactivity_timeout: Duration::from_secs(30),
        keepalive: false,
        cname: "bench".into(),
    };
    let negotiated = Negotiated {
        remote: Some("127.0.0.1:4000".parse::<SocketAddr>().unwrap()),
        law: Law::Ulaw,
        payload_type: 0,
        telephone_event: None,
        ptime_ms: 20,
        direction: Direction::SendRecv,
    };
    let start = Instant::now();
    let mut leg = LegCore::new(settings, negotiated, start);
    leg.play_live(start);
    let mut at = start;
    let mut out = [0u8; 1500];
    c.bench_function("listen_in_supervisor_packet_of_two_sources", |b| {
        b.iter(|| {
            leg.push_live_from(LiveSource::First, &voice);
            leg.push_live_from(LiveSource::Second, &voice);
            at += Duration::from_millis(20);
            black_box(leg.poll_transmit(at, &mut out));
        })
    });
}

criterion_group!(benches, relay, leg_receive, sdp, listen_in);
criterion_main!(benches);
