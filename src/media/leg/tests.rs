//! LegCore driven by a virtual clock.

use super::*;
use crate::media::rtp::write_header;
use crate::sdp::Direction;

fn negotiated(remote: &str) -> Negotiated {
    Negotiated {
        remote: Some(remote.parse().unwrap()),
        law: Law::Ulaw,
        payload_type: 0,
        telephone_event: Some(101),
        ptime_ms: 20,
        direction: Direction::SendRecv,
    }
}

fn leg(now: Instant) -> LegCore {
    LegCore::new(
        LegSettings {
            ssrc: 0x1234,
            inactivity_timeout: Duration::from_secs(10),
            keepalive: false,
            cname: "test".into(),
        },
        negotiated("192.0.2.1:4000"),
        now,
    )
}

fn rtp(pt: u8, seq: u16, ts: u32, fill: u8) -> Vec<u8> {
    let mut buf = vec![fill; 172];
    write_header(&mut buf, false, pt, seq, ts, 77);
    buf
}

#[test]
fn latches_to_the_real_source_and_resists_hijack() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let nat: SocketAddr = "198.51.100.9:61000".parse().unwrap();
    let attacker: SocketAddr = "203.0.113.66:5000".parse().unwrap();
    // Garbage and foreign payload types do not latch.
    assert_eq!(
        leg.on_rtp(b"junk", attacker, t0),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        leg.on_rtp(&rtp(96, 1, 0, 0), attacker, t0),
        Err(DropReason::UnexpectedPayloadType(96))
    );
    assert_eq!(leg.remote(), Some("192.0.2.1:4000".parse().unwrap()));
    // The first valid packet latches, even from a NATed address.
    assert!(leg.on_rtp(&rtp(0, 1, 0, 0xFF), nat, t0).is_ok());
    assert_eq!(leg.poll_event(t0), Some(LegEvent::Latched(nat)));
    assert_eq!(leg.remote(), Some(nat));
    let t1 = t0 + Duration::from_millis(20);
    assert_eq!(
        leg.on_rtp(&rtp(0, 2, 160, 0xFF), attacker, t1),
        Err(DropReason::NotLatchedSource)
    );
    // After a second of silence from the latched source, a new one may take over.
    let t2 = t1 + Duration::from_millis(1100);
    assert!(leg.on_rtp(&rtp(0, 3, 320, 0xFF), attacker, t2).is_ok());
    assert_eq!(leg.remote(), Some(attacker));
    assert_eq!(leg.counters.dropped, 3);
}

#[test]
fn inactivity_is_reported_once() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    assert_eq!(leg.deadline(), t0 + Duration::from_secs(5)); // RTCP first
    assert_eq!(leg.poll_event(t0 + Duration::from_secs(9)), None);
    assert_eq!(
        leg.poll_event(t0 + Duration::from_secs(10)),
        Some(LegEvent::Inactive)
    );
    assert_eq!(leg.poll_event(t0 + Duration::from_secs(11)), None);
}

#[test]
fn on_hold_the_line_is_not_dead_and_after_unhold_the_clock_starts_again() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let s = Duration::from_secs;
    let mut hold = negotiated("192.0.2.1:4000");
    hold.direction = Direction::Inactive;
    leg.renegotiate(hold, t0 + s(2));
    assert_eq!(leg.remote(), None, "inactive: we send nothing");
    assert_eq!(
        leg.poll_event(t0 + s(30)),
        None,
        "no RTP on hold is no dead line"
    );
    // The RTCP report due is sent; then nothing is due before the next
    // one — an inactivity deadline in the past would wake the task in a loop.
    let mut buf = [0u8; 512];
    let _ = leg.poll_rtcp(t0 + s(30), &mut buf);
    assert!(
        leg.deadline() > t0 + s(30),
        "no inactivity deadline in the past while on hold"
    );
    leg.renegotiate(negotiated("192.0.2.1:4000"), t0 + s(30));
    assert_eq!(leg.poll_event(t0 + s(39)), None);
    assert_eq!(leg.poll_event(t0 + s(40)), Some(LegEvent::Inactive));
}

#[test]
fn decodes_reordered_packets_into_20ms_frames() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.set_decode(true);
    let from: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let mut frames = Vec::new();
    for (i, seq) in [1u16, 2, 3, 5, 4, 6].into_iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        // Payload byte encodes the sequence so order can be checked.
        let code = crate::media::g711::ulaw_encode(i16::try_from(seq).unwrap() * 1000);
        leg.on_rtp(&rtp(0, seq, u32::from(seq) * 160, code), from, now)
            .unwrap();
        while let Some(frame) = leg.poll_frame(now) {
            frames.push((frame.samples[0] + 500) / 1000);
        }
    }
    // Seq 1 is the probation packet (relayed, not decoded); the rest in order.
    assert_eq!(frames, vec![2, 3, 4, 5, 6]);
}

#[test]
fn plays_a_prompt_at_ptime_then_reports() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.play(Prompt::from_samples(vec![1000; 400]), t0);
    let mut out = [0u8; 1500];
    let mut sent = Vec::new();
    let mut now = t0;
    for _ in 0..10 {
        while let Some((len, to)) = leg.poll_transmit(now, &mut out) {
            assert_eq!(to, "192.0.2.1:4000".parse().unwrap());
            let p = RtpPacket::parse(&out[..len]).unwrap();
            sent.push((p.sequence, p.timestamp, p.ssrc));
        }
        now += Duration::from_millis(20);
    }
    assert_eq!(sent.len(), 3); // 400 samples = 2.5 frames
    assert_eq!(sent[1].0, sent[0].0.wrapping_add(1));
    assert_eq!(sent[1].1, sent[0].1.wrapping_add(160));
    assert!(sent.iter().all(|s| s.2 == 0x1234));
    assert_eq!(leg.poll_event(now), Some(LegEvent::PlaybackFinished));
    assert!(!leg.is_playing());
}

#[test]
fn plays_live_audio_in_order_silence_when_starved_and_bounded() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let law = Law::Ulaw;
    let mut out = [0u8; 1500];
    // Decoded payload of every packet sent at `now`.
    let mut sent_at = |leg: &mut LegCore, now: Instant| -> Vec<Vec<i16>> {
        let mut frames = Vec::new();
        while let Some((len, _)) = leg.poll_transmit(now, &mut out) {
            let p = RtpPacket::parse(&out[..len]).unwrap();
            let mut samples = vec![0i16; p.payload.len()];
            law.decode_into(p.payload, &mut samples);
            frames.push(samples);
        }
        frames
    };
    // Ignored unless playing live.
    leg.push_live(&[5000; 160]);
    assert!(sent_at(&mut leg, t0).is_empty());
    leg.play_live(t0);
    leg.push_live(&[4000; 160]);
    leg.push_live(&[-4000; 160]);
    let first = sent_at(&mut leg, t0);
    assert_eq!(first.len(), 1);
    assert!(
        first[0].iter().all(|&s| (3800..4200).contains(&s)),
        "{:?}",
        &first[0][..4]
    );
    let second = sent_at(&mut leg, t0 + Duration::from_millis(20));
    assert!(second[0].iter().all(|&s| (-4200..-3800).contains(&s)));
    // Starved: silence, and the stream goes on (no end, no event).
    let third = sent_at(&mut leg, t0 + Duration::from_millis(40));
    assert_eq!(third.len(), 1);
    assert!(third[0].iter().all(|&s| s.abs() < 10));
    assert_eq!(leg.poll_event(t0 + Duration::from_millis(40)), None);
    // A source far ahead: only the newest 120 ms are kept.
    for i in 0..20i16 {
        leg.push_live(&[i * 100; 160]);
    }
    let next = sent_at(&mut leg, t0 + Duration::from_millis(60));
    let oldest_kept = 20 - (LIVE_BUFFER_SAMPLES / 160) as i16;
    let expected = f64::from(oldest_kept * 100);
    assert!(
        next[0]
            .iter()
            .all(|&s| (f64::from(s) - expected).abs() < expected * 0.05 + 10.0),
        "{:?}",
        &next[0][..4]
    );
    // A prompt replaces it.
    leg.play(
        Prompt::from_samples(vec![1000; 160]),
        t0 + Duration::from_millis(80),
    );
    leg.push_live(&[-9000; 160]);
    let prompt = sent_at(&mut leg, t0 + Duration::from_millis(80));
    assert!(prompt[0].iter().all(|&s| (900..1100).contains(&s)));
}

#[test]
fn two_live_sources_are_summed_each_from_its_own_queue() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut out = [0u8; 1500];
    let mut sent_at = |leg: &mut LegCore, now: Instant| -> Vec<i16> {
        let (len, _) = leg.poll_transmit(now, &mut out).expect("a packet due");
        let p = RtpPacket::parse(&out[..len]).unwrap();
        p.payload.iter().map(|&c| Law::Ulaw.decode(c)).collect()
    };
    leg.play_live(t0);
    // The first source is a frame ahead of the second: each keeps its own
    // order, and a frame of one is never summed with a later one of itself.
    leg.push_live_from(LiveSource::First, &[3000; 160]);
    leg.push_live_from(LiveSource::First, &[1000; 160]);
    leg.push_live_from(LiveSource::Second, &[-1000; 160]);
    let first = sent_at(&mut leg, t0);
    assert!(
        first.iter().all(|&s| (1900..2100).contains(&s)),
        "{:?}",
        &first[..4]
    );
    // The second runs dry: the first alone.
    let second = sent_at(&mut leg, t0 + Duration::from_millis(20));
    assert!(
        second.iter().all(|&s| (950..1050).contains(&s)),
        "{:?}",
        &second[..4]
    );
    // Loud sources saturate rather than wrap.
    leg.push_live_from(LiveSource::First, &[30_000; 160]);
    leg.push_live_from(LiveSource::Second, &[30_000; 160]);
    let loud = sent_at(&mut leg, t0 + Duration::from_millis(40));
    assert!(loud.iter().all(|&s| s > 30_000), "{:?}", &loud[..4]);
}

#[test]
fn rtcp_bye_and_receiver_reports() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let from: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    for seq in 0..10u16 {
        leg.on_rtp(&rtp(0, seq, u32::from(seq) * 160, 0xFF), from, t0)
            .unwrap();
    }
    let mut out = [0u8; 256];
    let (len, to) = leg
        .poll_rtcp(t0 + Duration::from_secs(5), &mut out)
        .unwrap();
    assert_eq!(to.port(), 4001);
    let first = rtcp::parse(&out[..len]).unwrap().next().unwrap().unwrap();
    match first {
        RtcpPacket::ReceiverReport { ssrc, mut blocks } => {
            assert_eq!(ssrc, 0x1234);
            assert_eq!(blocks.next().unwrap().extended_highest_sequence, 9);
        }
        other => panic!("{other:?}"),
    }
    leg.on_rtcp(
        &[0x80, 201, 0, 1, 0, 0, 0, 9, 0x81, 203, 0, 1, 0, 0, 0, 9],
        t0,
    );
    assert_eq!(leg.poll_event(t0).unwrap(), LegEvent::Latched(from));
    assert_eq!(leg.poll_event(t0).unwrap(), LegEvent::RemoteBye);
}

#[test]
fn a_pinned_leg_takes_rtp_from_its_negotiated_address_only() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.pin_to_remote();
    let own: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let stranger: SocketAddr = "203.0.113.66:5000".parse().unwrap();
    // Not even first, nor after any silence.
    assert_eq!(
        leg.on_rtp(&rtp(0, 1, 0, 0xFF), stranger, t0),
        Err(DropReason::NotLatchedSource)
    );
    assert!(leg.on_rtp(&rtp(0, 2, 160, 0xFF), own, t0).is_ok());
    let later = t0 + Duration::from_secs(5);
    assert_eq!(
        leg.on_rtp(&rtp(0, 3, 320, 0xFF), stranger, later),
        Err(DropReason::NotLatchedSource)
    );
    assert_eq!(leg.remote(), Some(own));
}

/// A packet from the other party relayed onto `leg` at `now` (as the
/// bridge does), with the supervisor's voice mixed in: the payload decoded.
fn relay_onto(leg: &mut LegCore, packet: &mut [u8], now: Instant) -> Vec<i16> {
    use crate::media::bridge::{Translation, relay_in_place};
    let translation = Translation {
        from_law: Law::Ulaw,
        from_audio_pt: 0,
        from_event_pt: Some(101),
        to_law: Law::Ulaw,
        to_audio_pt: 0,
        to_event_pt: Some(101),
    };
    let len = relay_in_place(packet, &translation, leg.out_stream(), now).unwrap();
    leg.mix_overlay_into(&mut packet[..len]);
    packet[12..len]
        .iter()
        .map(|&c| Law::Ulaw.decode(c))
        .collect()
}

#[test]
fn a_supervisors_voice_rides_on_what_the_leg_sends_or_goes_alone() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut leg = leg(t0);
    let mut out = [0u8; 1500];
    let decoded = |out: &[u8], len: usize| -> (bool, u32, Vec<i16>) {
        let p = RtpPacket::parse(&out[..len]).unwrap();
        let samples = p.payload.iter().map(|&c| Law::Ulaw.decode(c)).collect();
        (p.marker, p.timestamp, samples)
    };
    // Generated audio (live here) carries it, summed.
    leg.play_live(t0);
    leg.push_live(&[1000; 160]);
    leg.push_overlay(&[2000; 160]);
    let (len, _) = leg.poll_transmit(t0, &mut out).unwrap();
    let (_, _, heard) = decoded(&out, len);
    assert!(
        heard.iter().all(|&s| (2900..3100).contains(&s)),
        "{:?}",
        &heard[..4]
    );

    // Relayed packets carry it, in place, 20 ms at a time. A burst (eight
    // frames at once after a stall) is never sent alone between relayed
    // packets, and never builds up delay: the packet that takes the first
    // of it leaves three packet times waiting, no more.
    leg.stop_generating();
    let mut at = t0;
    for n in 0..10u16 {
        at += ms(20);
        if n == 2 {
            leg.push_overlay(&[-3000; 1280]);
        }
        let mut packet = rtp(
            0,
            100 + n,
            16_000 + u32::from(n) * 160,
            Law::Ulaw.encode(500),
        );
        let heard = relay_onto(&mut leg, &mut packet, at);
        if (2..6).contains(&n) {
            assert!(
                heard.iter().all(|&s| (-2600..-2400).contains(&s)),
                "{n}: {:?}",
                &heard[..4]
            );
        }
        if n >= 6 {
            assert!(
                heard.iter().all(|&s| (480..520).contains(&s)),
                "{n}: {:?}",
                &heard[..4]
            );
        }
        assert!(
            leg.poll_transmit(at, &mut out).is_none(),
            "alone between relayed packets"
        );
    }
    // An RFC 4733 event (a key pressed) carries no voice but is relayed
    // every 20 ms: the voice waits (a digit split by it would be heard twice).
    leg.push_overlay(&[-3000; 480]);
    for n in 0..5u16 {
        at += ms(20);
        let mut event = vec![0u8; 16];
        write_header(&mut event, n == 0, 101, 110 + n, 17_600, 77);
        let duration = (160 * (n + 1)).to_be_bytes();
        event[12..].copy_from_slice(&[1, 0x0a, duration[0], duration[1]]);
        let _ = relay_onto(&mut leg, &mut event, at);
        assert!(
            leg.poll_transmit(at, &mut out).is_none(),
            "alone during an event"
        );
    }

    // Nothing relayed for three packet times: it goes alone, at our pace,
    // a new source on the stream (marked, its timestamp placed by the
    // wall clock).
    let last_relayed = at;
    let gap_due = last_relayed + ms(60);
    assert_eq!(leg.deadline().min(gap_due), gap_due);
    assert!(leg.poll_transmit(last_relayed + ms(40), &mut out).is_none());
    leg.push_overlay(&[-3000; 320]);
    let (len, _) = leg.poll_transmit(gap_due, &mut out).expect("alone");
    let (marker, first_ts, heard) = decoded(&out, len);
    assert!(marker);
    assert!(
        heard.iter().all(|&s| (-3100..-2900).contains(&s)),
        "{:?}",
        &heard[..4]
    );
    assert!(
        leg.poll_transmit(gap_due + ms(10), &mut out).is_none(),
        "paced"
    );
    let (len, _) = leg
        .poll_transmit(gap_due + ms(20), &mut out)
        .expect("the next");
    let (marker, ts, _) = decoded(&out, len);
    assert!(!marker);
    assert_eq!(ts, first_ts.wrapping_add(160));

    // A second of quiet (monitor, then whisper again): the timestamp moves
    // with the wall clock, not one packet on.
    let later = gap_due + ms(1020);
    leg.push_overlay(&[-3000; 160]);
    let (len, _) = leg.poll_transmit(later, &mut out).expect("alone again");
    let (marker, later_ts, _) = decoded(&out, len);
    assert!(marker);
    let advance = later_ts.wrapping_sub(first_ts);
    assert!((7900..8300).contains(&advance), "{advance}");

    // Cleared: nothing rides any more.
    leg.clear_overlay();
    assert!(leg.poll_transmit(later + ms(100), &mut out).is_none());
    let mut relayed = rtp(0, 200, 40_000, Law::Ulaw.encode(500));
    assert!(!leg.mix_overlay_into(&mut relayed));
}

#[test]
fn a_supervisors_voice_alone_keeps_time_when_the_timer_wakes_late() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut leg = leg(t0);
    leg.stop_generating();
    let mut out = [0u8; 1500];
    // 2 s of voice arriving every 20 ms; the task wakes 1.5 ms after each
    // packet is due (a timer's usual lateness).
    let mut sent = Vec::new();
    let mut at = t0;
    for _ in 0..100 {
        leg.push_overlay(&[1500; 160]);
        let wake = leg.deadline().max(at) + Duration::from_micros(1500);
        while let Some((len, _)) = leg.poll_transmit(wake, &mut out) {
            let p = RtpPacket::parse(&out[..len]).unwrap();
            sent.push((wake, p.marker, p.timestamp));
        }
        at += ms(20);
    }
    // One packet per 20 ms of voice, on schedule: no drift, no re-anchoring
    // after the first, timestamps 160 apart.
    assert!((98..=100).contains(&sent.len()), "{}", sent.len());
    assert!(sent[0].1, "the first is marked");
    assert!(sent[1..].iter().all(|s| !s.1), "re-anchored on the way");
    for pair in sent.windows(2) {
        assert_eq!(pair[1].2.wrapping_sub(pair[0].2), 160);
    }
    let span = sent.last().unwrap().0 - sent[0].0;
    let expected = ms(20) * (sent.len() as u32 - 1);
    assert!(span.abs_diff(expected) < ms(5), "{span:?} for {expected:?}");
}

#[test]
fn the_other_partys_longer_packets_are_never_overtaken() {
    // The customer sends 60 ms packets (a little early or late) onto an
    // agent leg of 20 ms: the voice rides on them, never alone between.
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut leg = leg(t0);
    leg.stop_generating();
    let mut out = [0u8; 1500];
    let mut at = t0;
    for n in 0..20u16 {
        at += if n % 2 == 0 { ms(52) } else { ms(68) };
        leg.push_overlay(&[1500; 480]);
        let mut packet = vec![0xFFu8; 12 + 480];
        write_header(&mut packet, false, 0, n, u32::from(n) * 480, 77);
        relay_onto(&mut leg, &mut packet, at);
        for probe in [ms(20), ms(40), ms(60)] {
            leg.push_overlay(&[1500; 160]);
            assert!(
                leg.poll_transmit(at + probe, &mut out).is_none(),
                "alone {probe:?} after relayed packet {n}"
            );
        }
    }
}

#[test]
fn a_supervisors_voice_with_nowhere_to_go_is_dropped_not_kept() {
    let t0 = Instant::now();
    let mut leg = LegCore::new(
        LegSettings {
            ssrc: 9,
            inactivity_timeout: Duration::from_secs(10),
            keepalive: false,
            cname: "test".into(),
        },
        Negotiated {
            remote: None,
            ..negotiated("192.0.2.1:4000")
        },
        t0,
    );
    let mut out = [0u8; 1500];
    leg.push_overlay(&[1500; 480]);
    assert!(
        leg.poll_transmit(t0 + Duration::from_millis(100), &mut out)
            .is_none()
    );
    // Nothing waits: no deadline from it (no wake-up loop).
    assert!(leg.deadline() > t0 + Duration::from_secs(1));
}

/// Every packet the leg sends from `t0` on, one ptime apart, until it has
/// nothing more to send (at most `slots`).
fn sent_packets(leg: &mut LegCore, t0: Instant, slots: u32) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for n in 0..slots {
        let now = t0 + Duration::from_millis(20 * u64::from(n));
        let mut out = [0u8; 1500];
        while let Some((len, _)) = leg.poll_transmit(now, &mut out) {
            packets.push(out[..len].to_vec());
        }
    }
    packets
}

#[test]
fn digits_go_as_rfc_4733_events_on_one_timestamp_each_then_the_leg_is_quiet() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.stop_generating();
    leg.send_dtmf(&[1, 11], t0);
    assert!(leg.is_sending_dtmf());
    let packets = sent_packets(&mut leg, t0, 40);
    assert!(!leg.is_sending_dtmf(), "done after the digits");
    let parsed: Vec<RtpPacket> = packets
        .iter()
        .map(|p| RtpPacket::parse(p).unwrap())
        .collect();
    // Per digit: 5 tone packets, 3 ends, 3 pause packets (silence).
    assert_eq!(parsed.len(), 22);
    for digit in 0..2 {
        let part = &parsed[digit * 11..digit * 11 + 11];
        let code = [1u8, 11][digit];
        let events = &part[..8];
        assert!(events.iter().all(|p| p.payload_type == 101));
        assert!(events[0].marker && events[1..].iter().all(|p| !p.marker));
        assert!(
            events.iter().all(|p| p.timestamp == events[0].timestamp),
            "one event, one timestamp"
        );
        let durations: Vec<u16> = events
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
            .collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800, 800]);
        let ends: Vec<bool> = events.iter().map(|p| p.payload[1] & 0x80 != 0).collect();
        assert_eq!(ends, [false, false, false, false, false, true, true, true]);
        assert!(events.iter().all(|p| p.payload[0] == code));
        assert!(
            part[8..]
                .iter()
                .all(|p| p.payload_type == 0 && p.payload.len() == 160)
        );
    }
    // One stream: consecutive sequence numbers, the second event 11
    // slots (1760 samples) after the first.
    for pair in parsed.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
    }
    assert_eq!(
        parsed[11].timestamp.wrapping_sub(parsed[0].timestamp),
        11 * 160
    );
}

#[test]
fn digits_go_in_band_to_a_far_end_without_telephone_events() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut plain = negotiated("192.0.2.1:4000");
    plain.telephone_event = None;
    leg.renegotiate(plain, t0);
    leg.stop_generating();
    leg.send_dtmf(&[5], t0);
    let packets = sent_packets(&mut leg, t0, 20);
    assert_eq!(packets.len(), 8, "5 tone packets and 3 of pause");
    assert!(packets[..5].iter().all(|p| owned(p).payload_type == 0));
    let samples = decoded(&packets[..5]);
    let power = |hz| crate::media::tones::goertzel_power(&samples, hz, 8000);
    // "5": 770 + 1336 Hz.
    assert!(power(770.0) > 100.0 * power(697.0));
    assert!(power(1336.0) > 100.0 * power(1209.0));
}

#[derive(Debug)]
struct OwnedPacket {
    payload_type: u8,
    timestamp: u32,
    payload: Vec<u8>,
}

/// The μ-law audio of these packets, decoded and joined.
fn decoded(packets: &[Vec<u8>]) -> Vec<i16> {
    packets
        .iter()
        .flat_map(|p| owned(p).payload)
        .map(|c| Law::Ulaw.decode(c))
        .collect()
}

fn owned(bytes: &[u8]) -> OwnedPacket {
    let packet = RtpPacket::parse(bytes).unwrap();
    OwnedPacket {
        payload_type: packet.payload_type,
        timestamp: packet.timestamp,
        payload: packet.payload.to_vec(),
    }
}

#[test]
fn digits_asked_for_meanwhile_follow_and_a_cut_off_event_is_still_ended() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.stop_generating();
    leg.send_dtmf(&[1], t0);
    // A second request while "1" sounds: "2" follows it.
    let first = sent_packets(&mut leg, t0, 3);
    leg.send_dtmf(&[2], t0 + Duration::from_millis(50));
    let rest = sent_packets(&mut leg, t0 + Duration::from_millis(60), 40);
    let codes: Vec<u8> = first
        .iter()
        .chain(&rest)
        .map(|p| RtpPacket::parse(p).unwrap())
        .filter(|p| p.payload_type == 101)
        .map(|p| p.payload[0])
        .collect();
    assert_eq!(codes, [[1u8; 8], [2u8; 8]].concat());

    // Cut off mid-digit (the customer put on hold): the event still gets
    // its three end packets, on its own timestamp, before the hold audio.
    let t1 = t0 + Duration::from_secs(2);
    leg.send_dtmf(&[7], t1);
    let started: Vec<OwnedPacket> = sent_packets(&mut leg, t1, 2)
        .iter()
        .map(|p| owned(p))
        .collect();
    assert_eq!(started.len(), 2);
    let t2 = t1 + Duration::from_millis(40);
    leg.play(Prompt::from_samples(vec![0; 1600]), t2);
    assert!(leg.deadline() <= t2, "the end is due at once");
    let mut out = [0u8; 1500];
    let mut after = Vec::new();
    while let Some((len, _)) = leg.poll_transmit(t2, &mut out) {
        after.push(owned(&out[..len]));
    }
    let ends: Vec<&OwnedPacket> = after.iter().filter(|p| p.payload_type == 101).collect();
    assert_eq!(ends.len(), 3, "{after:?}");
    for end in &ends {
        assert_eq!(end.timestamp, started[0].timestamp);
        assert_eq!(end.payload[0], 7);
        assert_ne!(end.payload[1] & 0x80, 0, "the E bit");
        assert_eq!(u16::from_be_bytes([end.payload[2], end.payload[3]]), 320);
    }
    assert_eq!(
        after.last().map(|p| p.payload_type),
        Some(0),
        "then the hold audio"
    );
    // The stream's clock went on under the event: the hold audio comes
    // after the slots the event took, not one packet after its start.
    assert!(
        after
            .last()
            .unwrap()
            .timestamp
            .wrapping_sub(started[1].timestamp)
            >= 320
    );
}

#[test]
fn a_re_offer_without_telephone_events_turns_the_rest_of_the_digits_in_band() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.stop_generating();
    leg.send_dtmf(&[3, 4], t0);
    let before = sent_packets(&mut leg, t0, 2);
    let mut plain = negotiated("192.0.2.1:4000");
    plain.telephone_event = None;
    leg.renegotiate(plain, t0 + Duration::from_millis(30));
    let after = sent_packets(&mut leg, t0 + Duration::from_millis(40), 40);
    assert!(before.iter().all(|p| owned(p).payload_type == 101));
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|p| owned(p).payload_type == 0),
        "no digit lost"
    );
    // "4" sounds in band: 770 + 1209 Hz, in the last tone packets.
    let samples = decoded(&after[after.len() - 8..after.len() - 3]);
    let power = |hz| crate::media::tones::goertzel_power(&samples, hz, 8000);
    assert!(power(770.0) > 100.0 * power(852.0));
    assert!(power(1209.0) > 100.0 * power(1336.0));
}
