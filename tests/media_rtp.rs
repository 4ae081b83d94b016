//! The media plane over real UDP sockets on loopback: a leg playing to and
//! recording from SIPp's RTP echo, the bridge splicing two customers into
//! one agent leg, PCMU↔PCMA transcoding, and CPA frames from early media.
//! Peers are real sockets (a small RTP phone written here, and SIPp).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outdial::media::g711::{self, Law};
use outdial::media::leg::{LegEvent, LegSettings};
use outdial::media::prompt::Prompt;
use outdial::media::rtp::{RtpPacket, write_header};
use outdial::media::tones::{ZipTone, goertzel_power};
use outdial::media::wav::Wav;
use outdial::net::rtp::{
    OnEnd, PortPool, RtpLeg, bridge, hold_bridged, resume_bridged, take_back, unbridge,
};
use outdial::sdp::{Direction, Negotiated};
use tokio::net::UdpSocket;

fn settings(ssrc: u32, keepalive: bool) -> LegSettings {
    LegSettings {
        ssrc,
        inactivity_timeout: Duration::from_secs(30),
        keepalive,
        cname: "test".into(),
    }
}

fn negotiated(remote: SocketAddr, law: Law) -> Negotiated {
    Negotiated {
        remote: Some(remote),
        law,
        payload_type: law.payload_type(),
        telephone_event: Some(101),
        ptime_ms: 20,
        direction: Direction::SendRecv,
    }
}

/// Each test takes its own port range so tests may run in parallel.
fn pool(base: u16) -> Arc<PortPool> {
    PortPool::new("127.0.0.1".parse().unwrap(), base, base + 40)
}

fn tone_frame(hz: f64, law: Law, phase: &mut f64) -> [u8; 160] {
    let mut out = [0u8; 160];
    for code in &mut out {
        *code = law.encode((8000.0 * phase.sin()) as i16);
        *phase += 2.0 * std::f64::consts::PI * hz / 8000.0;
    }
    out
}

#[derive(Debug, Clone)]
struct Received {
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

/// A minimal RTP phone: sends a tone every 20 ms and keeps what it hears.
struct Phone {
    socket: Arc<UdpSocket>,
    heard: Arc<Mutex<Vec<Received>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Phone {
    async fn new() -> Phone {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (socket.clone(), heard.clone());
        let listener = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((len, _)) = s.recv_from(&mut buf).await {
                if let Ok(p) = RtpPacket::parse(&buf[..len]) {
                    h.lock().unwrap().push(Received {
                        payload_type: p.payload_type,
                        sequence: p.sequence,
                        timestamp: p.timestamp,
                        ssrc: p.ssrc,
                        payload: p.payload.to_vec(),
                    });
                }
            }
        });
        Phone {
            socket,
            heard,
            tasks: vec![listener],
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Streams `hz` (or a fixed frame) to `to` until dropped.
    fn talk(&mut self, to: SocketAddr, hz: f64, law: Law, ssrc: u32) {
        let socket = self.socket.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(20));
            let mut phase = 0.0;
            let mut packet = [0u8; 172];
            for n in 0u32.. {
                interval.tick().await;
                write_header(
                    &mut packet,
                    n == 0,
                    law.payload_type(),
                    n as u16,
                    n * 160,
                    ssrc,
                );
                packet[12..].copy_from_slice(&tone_frame(hz, law, &mut phase));
                let _ = socket.send_to(&packet, to).await;
            }
        }));
    }

    fn heard(&self) -> Vec<Received> {
        self.heard.lock().unwrap().clone()
    }

    /// Stops talking (silence suppression: nothing is sent), still hearing.
    fn hush(&mut self) {
        for task in self.tasks.drain(1..) {
            task.abort();
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What a received packet sounds like.
fn label(packet: &Received, law: Law) -> &'static str {
    let samples: Vec<i16> = packet.payload.iter().map(|&c| law.decode(c)).collect();
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 160.0;
    if energy < 1e4 {
        return "quiet";
    }
    let candidates = [
        ("zip", 440.0),
        ("A", 1000.0),
        ("B", 1700.0),
        ("agent", 600.0),
        ("hold", 800.0),
    ];
    candidates
        .iter()
        .map(|&(name, hz)| (name, goertzel_power(&samples, hz, 8000)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("?", |(name, _)| name)
}

fn runs(labels: &[&'static str]) -> Vec<&'static str> {
    let mut runs: Vec<&'static str> = Vec::new();
    for &l in labels {
        if runs.last() != Some(&l) {
            runs.push(l);
        }
    }
    runs
}

#[tokio::test]
async fn bridge_keeps_one_stream_across_two_customers() {
    let pool = pool(41000);
    let mut agent_phone = Phone::new().await;
    let agent = RtpLeg::open(&pool, settings(0xA6E1, true)).unwrap();
    agent
        .set_negotiated(negotiated(agent_phone.addr(), Law::Ulaw))
        .unwrap();
    agent_phone.talk(agent.local_addr(), 600.0, Law::Ulaw, 0xA6A6);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let zip = ZipTone::default();
    for (name, hz, ssrc) in [("A", 1000.0, 0xAAAA_0001u32), ("B", 1700.0, 0xBBBB_0002)] {
        let mut customer_phone = Phone::new().await;
        let customer = RtpLeg::open(&pool, settings(ssrc ^ 0xFFFF, false)).unwrap();
        customer
            .set_negotiated(negotiated(customer_phone.addr(), Law::Ulaw))
            .unwrap();
        customer_phone.talk(customer.local_addr(), hz, Law::Ulaw, ssrc);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _bridged = bridge(&agent, customer, zip.clone(), None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let report = unbridge(&agent)
            .await
            .unwrap()
            .expect("a customer was bridged");
        assert!(report.summary.received > 30, "{name}: {report:?}");
        // The customer heard the agent (600 Hz), never the zip tone.
        let heard = customer_phone.heard();
        let labels: Vec<_> = heard.iter().map(|p| label(p, Law::Ulaw)).collect();
        assert!(
            labels.iter().filter(|&&l| l == "agent").count() > 20,
            "{name}: {labels:?}"
        );
        assert!(!labels.contains(&"zip"), "{name} heard the zip tone");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let heard = agent_phone.heard();
    let labels: Vec<_> = heard.iter().map(|p| label(p, Law::Ulaw)).collect();
    let order: Vec<_> = runs(&labels)
        .into_iter()
        .filter(|&l| l != "quiet")
        .collect();
    assert_eq!(order, vec!["zip", "A", "zip", "B"], "{labels:?}");
    // One SSRC, every sequence number exactly one more than the last, and
    // timestamps on the 160-sample grid moving forward.
    assert!(heard.iter().all(|p| p.ssrc == heard[0].ssrc));
    for pair in heard.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "{pair:?}"
        );
        let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        assert!(step > 0 && step % 160 == 0 && step < 8000, "step {step}");
    }
    // The zip tone lasts its configured 200 ms (10 packets) each time.
    let zips = labels.iter().filter(|&&l| l == "zip").count();
    assert!((18..=22).contains(&zips), "{zips} zip packets");
    agent.close().await.unwrap();
}

#[tokio::test]
async fn pcmu_customer_is_transcoded_for_a_pcma_agent() {
    let pool = pool(41100);
    let mut agent_phone = Phone::new().await;
    let agent = RtpLeg::open(&pool, settings(1, false)).unwrap();
    agent
        .set_negotiated(negotiated(agent_phone.addr(), Law::Alaw))
        .unwrap();
    agent_phone.talk(agent.local_addr(), 600.0, Law::Alaw, 0xA);
    let mut customer_phone = Phone::new().await;
    let customer = RtpLeg::open(&pool, settings(2, false)).unwrap();
    customer
        .set_negotiated(negotiated(customer_phone.addr(), Law::Ulaw))
        .unwrap();
    customer_phone.talk(customer.local_addr(), 1000.0, Law::Ulaw, 0xC);
    let zip = ZipTone {
        duration_ms: 60,
        ..ZipTone::default()
    };
    let _bridged = bridge(&agent, customer, zip, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    unbridge(&agent).await.unwrap();

    // 1000 Hz at 8 kHz repeats every 8 samples, so every frame the customer
    // sends is the same; the agent must get exactly its A-law transcoding.
    let sent = tone_frame(1000.0, Law::Ulaw, &mut 0.0);
    let expected: Vec<u8> = sent.iter().map(|&c| g711::ulaw_to_alaw(c)).collect();
    let heard = agent_phone.heard();
    assert!(heard.iter().all(|p| p.payload_type == 8));
    let relayed = heard.iter().filter(|p| label(p, Law::Alaw) == "A").count();
    assert!(relayed > 20, "{relayed}");
    let exact = heard.iter().filter(|p| p.payload == expected).count();
    assert_eq!(exact, relayed);
    // And the customer hears the agent as PCMU.
    let heard = customer_phone.heard();
    let sent = tone_frame(600.0, Law::Alaw, &mut 0.0);
    assert!(heard.iter().all(|p| p.payload_type == 0));
    let agent_audio: Vec<_> = heard
        .iter()
        .filter(|p| label(p, Law::Ulaw) == "agent")
        .collect();
    assert!(agent_audio.len() > 20);
    // 600 Hz repeats every 40 samples: frames are identical too.
    let expected: Vec<u8> = sent.iter().map(|&c| g711::alaw_to_ulaw(c)).collect();
    assert!(agent_audio.iter().all(|p| p.payload == expected));
}

#[tokio::test]
async fn early_media_reaches_cpa_as_20ms_frames() {
    let pool = pool(41200);
    let mut trunk = Phone::new().await;
    let leg = RtpLeg::open(&pool, settings(3, false)).unwrap();
    let mut frames = leg.frames_for_cpa(64).unwrap();
    // No SDP answer yet: early media arrives before set_negotiated.
    trunk.talk(leg.local_addr(), 440.0, Law::Ulaw, 0xEA21);
    let mut got = Vec::new();
    while got.len() < 10 {
        let frame = tokio::time::timeout(Duration::from_secs(2), frames.recv())
            .await
            .unwrap()
            .unwrap();
        got.push(frame);
    }
    for pair in got.windows(2) {
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
    }
    assert!(
        goertzel_power(&got[5].samples, 440.0, 8000)
            > 100.0 * goertzel_power(&got[5].samples, 1000.0, 8000)
    );
    let report = leg.close().await.unwrap();
    assert_eq!(report.summary.lost, 0);
}

struct Sipp(Child);

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIPp's RTP echo on `media_port` (no SIP needed: it echoes RTP received on
/// -mp to its sender).
fn sipp_echo(media_port: u16, sip_port: u16) -> Sipp {
    let child = Command::new("sipp")
        .args(["-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-nostdin"])
        .args(["-mp", &media_port.to_string(), "-p", &sip_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp is installed (scripts/test installs sip-tester)");
    Sipp(child)
}

/// Normalised cross-correlation of `b` against `a` at the best lag.
fn best_correlation(a: &[i16], b: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (0.0, 0);
    for lag in 0..max_lag {
        let n = a.len().min(b.len().saturating_sub(lag));
        if n < 4000 {
            break;
        }
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        let c = ab / (aa.sqrt() * bb.sqrt()).max(1.0);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

#[tokio::test]
async fn what_is_played_comes_back_through_sipp_echo() {
    let pool = pool(41300);
    let _echo = sipp_echo(41390, 41396);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("back.wav");
    // A speech-like test signal: a gliding tone with a slow envelope plus
    // noise, so a wrong alignment cannot correlate.
    let mut seed = 12345u32;
    let signal: Vec<i16> = (0..16000)
        .map(|n| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let t = f64::from(n) / 8000.0;
            let glide = (2.0 * std::f64::consts::PI * (300.0 * t + 400.0 * t * t)).sin();
            let envelope = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            (6000.0 * envelope * glide + f64::from((seed >> 20) as i16 - 2048)) as i16
        })
        .collect();
    let mut leg = RtpLeg::open(&pool, settings(0x5EED, false)).unwrap();
    leg.set_negotiated(negotiated("127.0.0.1:41390".parse().unwrap(), Law::Ulaw))
        .unwrap();
    leg.record(recording.clone()).unwrap();
    leg.play(Prompt::from_samples(signal.clone())).unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), leg.next_event())
            .await
            .unwrap();
        if event == Some(LegEvent::PlaybackFinished) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = leg.close().await.unwrap();
    assert_eq!(report.recording.as_ref().map(|r| &r.0), Some(&recording));
    let back = Wav::read(&recording).unwrap();
    assert_eq!((back.channels, back.sample_rate), (1, 8000));
    let (correlation, lag) = best_correlation(&signal, &back.samples, 4000);
    eprintln!("echo round trip: correlation {correlation:.4} at lag {lag} samples");
    assert!(
        correlation >= 0.9,
        "correlation {correlation:.3} at lag {lag}"
    );
    assert_eq!(report.summary.lost, 0, "{report:?}");
}

#[tokio::test]
async fn ports_return_to_the_pool_and_silence_is_a_dead_call() {
    // Room for two legs: 41400/41401 and 41402/41403.
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41400, 41404);
    let quick = LegSettings {
        inactivity_timeout: Duration::from_millis(300),
        ..settings(9, false)
    };
    let mut first = RtpLeg::open(&pool, quick.clone()).unwrap();
    let second = RtpLeg::open(&pool, quick.clone()).unwrap();
    assert!(matches!(
        RtpLeg::open(&pool, quick.clone()),
        Err(outdial::net::rtp::RtpLegError::PortsExhausted)
    ));
    // Nobody sends to the first leg: it reports a dead call.
    let event = tokio::time::timeout(Duration::from_secs(2), first.next_event())
        .await
        .unwrap();
    assert_eq!(event, Some(LegEvent::Inactive));
    let port = second.local_addr().port();
    second.close().await.unwrap();
    let again = RtpLeg::open(&pool, quick).unwrap();
    assert_eq!(again.local_addr().port(), port);
}

/// An agent's phone goes away right after a customer was spliced into it
/// (before anyone heard anybody): the customer's leg is taken back out of
/// the bridge, served on its own again and spliced into the next agent —
/// who hears the zip tone, then the customer; the customer hears the next
/// agent. (Closing the first agent's leg used to take the customer along.)
#[tokio::test]
async fn a_customer_taken_back_from_one_agents_bridge_reaches_the_next() {
    let pool = pool(41500);
    let zip = ZipTone::default();
    let mut customer_phone = Phone::new().await;
    let customer = RtpLeg::open(&pool, settings(0xC0, false)).unwrap();
    customer
        .set_negotiated(negotiated(customer_phone.addr(), Law::Ulaw))
        .unwrap();
    customer_phone.talk(customer.local_addr(), 1000.0, Law::Ulaw, 0xC0C0);
    let mut phones = Vec::new();
    let mut agents = Vec::new();
    for (ssrc, hz) in [(0xA1u32, 1700.0), (0xA2, 600.0)] {
        let mut phone = Phone::new().await;
        let agent = RtpLeg::open(&pool, settings(ssrc, true)).unwrap();
        agent
            .set_negotiated(negotiated(phone.addr(), Law::Ulaw))
            .unwrap();
        phone.talk(agent.local_addr(), hz, Law::Ulaw, ssrc << 8);
        phones.push(phone);
        agents.push(agent);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let bridged = bridge(&agents[0], customer, zip.clone(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let detached = take_back(&agents[0])
        .await
        .unwrap()
        .expect("the customer was bridged");
    assert!(
        take_back(&agents[0]).await.unwrap().is_none(),
        "taken back once"
    );
    let first = agents.remove(0);
    first.close().await.unwrap();
    let customer = RtpLeg::reattach(detached, bridged);
    tokio::time::sleep(Duration::from_millis(40)).await;
    let heard_before = customer_phone.heard().len();
    let _bridged = bridge(&agents[0], customer, zip, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    unbridge(&agents[0]).await.unwrap();

    let next: Vec<_> = phones[1]
        .heard()
        .iter()
        .map(|p| label(p, Law::Ulaw))
        .collect();
    let order: Vec<_> = runs(&next).into_iter().filter(|&l| l != "quiet").collect();
    assert_eq!(order, vec!["zip", "A"], "{next:?}");
    let customer_heard: Vec<_> = customer_phone.heard()[heard_before..]
        .iter()
        .map(|p| label(p, Law::Ulaw))
        .collect();
    assert!(
        customer_heard.iter().filter(|&&l| l == "agent").count() > 20,
        "the customer hears the next agent: {customer_heard:?}"
    );
    assert!(
        !customer_heard.contains(&"B"),
        "nothing of the first agent after it went: {customer_heard:?}"
    );
    agents.remove(0).close().await.unwrap();
}

/// Samples of a `hz` tone lasting `ms` (hold audio for the test).
fn tone_samples(hz: f64, ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0).sin()) as i16)
        .collect()
}

#[tokio::test]
async fn on_hold_neither_hears_the_other_and_the_customer_hears_the_hold_audio_looped() {
    let pool = pool(41600);
    let mut agent_phone = Phone::new().await;
    let agent = RtpLeg::open(&pool, settings(0xB0, true)).unwrap();
    agent
        .set_negotiated(negotiated(agent_phone.addr(), Law::Ulaw))
        .unwrap();
    agent_phone.talk(agent.local_addr(), 600.0, Law::Ulaw, 0xB0B0);
    let mut customer_phone = Phone::new().await;
    let customer = RtpLeg::open(&pool, settings(0xC1, false)).unwrap();
    customer
        .set_negotiated(negotiated(customer_phone.addr(), Law::Ulaw))
        .unwrap();
    customer_phone.talk(customer.local_addr(), 1000.0, Law::Ulaw, 0xC1C1);
    let zip = ZipTone {
        duration_ms: 60,
        ..ZipTone::default()
    };
    let _bridged = bridge(&agent, customer, zip, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (agent_mark, customer_mark) = (agent_phone.heard().len(), customer_phone.heard().len());

    // 200 ms of hold audio, so 900 ms on hold plays it four times or more.
    hold_bridged(&agent, Prompt::from_samples(tone_samples(800.0, 200))).unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (agent_held, customer_held) = (agent_phone.heard().len(), customer_phone.heard().len());
    resume_bridged(&agent).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    unbridge(&agent).await.unwrap();

    let labels = |heard: &[Received]| -> Vec<&'static str> {
        heard.iter().map(|p| label(p, Law::Ulaw)).collect()
    };
    let customer_heard = customer_phone.heard();
    let agent_heard = agent_phone.heard();
    let before = labels(&customer_heard[..customer_mark]);
    assert!(
        before.iter().filter(|&&l| l == "agent").count() > 15,
        "{before:?}"
    );
    // Packets in flight when a mark was taken (or the command was sent)
    // still carry what came before it: up to 200 ms of them are let be.
    const IN_FLIGHT: usize = 10;
    // On hold: the customer hears the hold audio (more than one 200 ms
    // play: it loops), never the agent; the agent hears nobody.
    let held = labels(&customer_heard[customer_mark..customer_held]);
    let held_customer_side = &held[IN_FLIGHT.min(held.len())..];
    assert!(
        held_customer_side.iter().filter(|&&l| l == "hold").count() > 30,
        "{held:?}"
    );
    assert!(
        held_customer_side.iter().filter(|&&l| l == "agent").count() <= 1,
        "{held:?}"
    );
    let agent_side = labels(&agent_heard[agent_mark..agent_held]);
    assert!(
        agent_side[IN_FLIGHT.min(agent_side.len())..]
            .iter()
            .all(|&l| l == "quiet"),
        "the agent hears nobody on hold: {agent_side:?}"
    );
    // Resumed: they hear each other again, and the hold audio stops.
    let after = labels(&customer_heard[customer_held..]);
    let after_customer_side = &after[IN_FLIGHT.min(after.len())..];
    assert!(
        after_customer_side
            .iter()
            .filter(|&&l| l == "agent")
            .count()
            > 15,
        "{after:?}"
    );
    assert!(
        after_customer_side.iter().filter(|&&l| l == "hold").count() <= 1,
        "{after:?}"
    );
    let agent_after = labels(&agent_heard[agent_held..]);
    assert!(
        agent_after.iter().filter(|&&l| l == "A").count() > 15,
        "{agent_after:?}"
    );
    agent.close().await.unwrap();
}

/// Whether `packet` carries `hz` (a tone of the test phones, amplitude
/// 8000: its Goertzel power is ~1.6e7 alone or mixed; a tone absent leaks
/// far below 2e6, the phones' tones being whole cycles per 20 ms).
fn carries(packet: &Received, hz: f64) -> bool {
    let samples: Vec<i16> = packet
        .payload
        .iter()
        .map(|&c| Law::Ulaw.decode(c))
        .collect();
    goertzel_power(&samples, hz, 8000) > 2e6
}

/// How many of `heard[from..to]` (after the packets in flight when the
/// phase began) carry `hz`.
fn count_carrying(heard: &[Received], (from, to): (usize, usize), hz: f64) -> usize {
    let from = (from + 10).min(to);
    heard[from..to].iter().filter(|p| carries(p, hz)).count()
}

/// A leg of `pool` and the phone at its far end, talking `hz` to it (μ-law).
async fn talking_leg(
    pool: &Arc<PortPool>,
    ssrc: u32,
    keepalive: bool,
    hz: f64,
    phone_ssrc: u32,
) -> (RtpLeg, Phone) {
    let mut phone = Phone::new().await;
    let leg = RtpLeg::open(pool, settings(ssrc, keepalive)).unwrap();
    leg.set_negotiated(negotiated(phone.addr(), Law::Ulaw))
        .unwrap();
    phone.talk(leg.local_addr(), hz, Law::Ulaw, phone_ssrc);
    (leg, phone)
}

#[tokio::test]
async fn a_supervisor_listens_in_then_whispers_then_barges_then_leaves() {
    use outdial::media::listen_in::ListenMode;
    use outdial::net::rtp::{end_listen_in, listen_in, set_listen_mode};
    const AGENT_HZ: f64 = 600.0;
    const CUSTOMER_HZ: f64 = 1000.0;
    const NEXT_CUSTOMER_HZ: f64 = 800.0;
    const SUPERVISOR_HZ: f64 = 1700.0;
    let pool = pool(41700);
    let (agent, agent_phone) = talking_leg(&pool, 0xA7, true, AGENT_HZ, 0xA7A7).await;
    let (customer, customer_phone) = talking_leg(&pool, 0xC7, false, CUSTOMER_HZ, 0xC7C7).await;
    let zip = ZipTone {
        duration_ms: 60,
        ..ZipTone::default()
    };
    let _bridged = bridge(&agent, customer, zip.clone(), None).await.unwrap();

    let (supervisor, supervisor_phone) =
        talking_leg(&pool, 0x57, false, SUPERVISOR_HZ, 0x5757).await;
    listen_in(&agent, supervisor, ListenMode::Monitor, OnEnd::new(|| {}))
        .await
        .unwrap();
    let marks = |phones: [&Phone; 3]| phones.map(|p| p.heard().len());
    let phones = || [&agent_phone, &customer_phone, &supervisor_phone];
    let phase = Duration::from_millis(800);
    let start = marks(phones());
    tokio::time::sleep(phase).await;
    let monitored = marks(phones());
    set_listen_mode(&agent, ListenMode::Whisper).unwrap();
    tokio::time::sleep(phase).await;
    let whispered = marks(phones());
    set_listen_mode(&agent, ListenMode::Barge).unwrap();
    tokio::time::sleep(phase).await;
    let barged = marks(phones());

    // The next customer: the supervisor listening in on the agent hears
    // them too.
    unbridge(&agent).await.unwrap();
    let (next, next_phone) = talking_leg(&pool, 0xC8, false, NEXT_CUSTOMER_HZ, 0xC8C8).await;
    let _next_bridged = bridge(&agent, next, zip, None).await.unwrap();
    let next_start = next_phone.heard().len();
    let before_next = marks(phones());
    tokio::time::sleep(phase).await;
    let during_next = marks(phones());
    let next_end = next_phone.heard().len();
    end_listen_in(&agent).unwrap();
    tokio::time::sleep(phase).await;
    let after = marks(phones());

    let [agent_heard, customer_heard, supervisor_heard] = phones().map(|p| p.heard());
    let span = |from: [usize; 3], to: [usize; 3], who: usize| (from[who], to[who]);
    let (agent_i, customer_i, supervisor_i) = (0, 1, 2);
    let report = |what: &str, heard: &[Received], range: (usize, usize)| {
        let tones: Vec<String> = heard[range.0..range.1]
            .iter()
            .map(|p| {
                [AGENT_HZ, CUSTOMER_HZ, NEXT_CUSTOMER_HZ, SUPERVISOR_HZ]
                    .iter()
                    .filter(|&&hz| carries(p, hz))
                    .map(|hz| hz.to_string())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        format!("{what}: {tones:?}")
    };

    // Monitor: the supervisor hears both; nobody hears the supervisor.
    let range = span(start, monitored, supervisor_i);
    let why = report("supervisor, monitoring", &supervisor_heard, range);
    assert!(
        count_carrying(&supervisor_heard, range, AGENT_HZ) > 20,
        "{why}"
    );
    assert!(
        count_carrying(&supervisor_heard, range, CUSTOMER_HZ) > 20,
        "{why}"
    );
    let range = span(start, monitored, agent_i);
    let why = report("agent, monitored", &agent_heard, range);
    assert!(
        count_carrying(&agent_heard, range, CUSTOMER_HZ) > 20,
        "{why}"
    );
    assert_eq!(
        count_carrying(&agent_heard, range, SUPERVISOR_HZ),
        0,
        "{why}"
    );
    let range = span(start, monitored, customer_i);
    let why = report("customer, monitored", &customer_heard, range);
    assert!(
        count_carrying(&customer_heard, range, AGENT_HZ) > 20,
        "{why}"
    );
    assert_eq!(
        count_carrying(&customer_heard, range, SUPERVISOR_HZ),
        0,
        "{why}"
    );

    // Whisper: the agent hears the supervisor over the customer; the
    // customer still does not.
    let range = span(monitored, whispered, agent_i);
    let why = report("agent, whispered to", &agent_heard, range);
    assert!(
        count_carrying(&agent_heard, range, SUPERVISOR_HZ) > 20,
        "{why}"
    );
    assert!(
        count_carrying(&agent_heard, range, CUSTOMER_HZ) > 20,
        "{why}"
    );
    let range = span(monitored, whispered, customer_i);
    let why = report("customer, during the whisper", &customer_heard, range);
    assert_eq!(
        count_carrying(&customer_heard, range, SUPERVISOR_HZ),
        0,
        "{why}"
    );
    assert!(
        count_carrying(&customer_heard, range, AGENT_HZ) > 20,
        "{why}"
    );

    // Barge: both hear the supervisor.
    let range = span(whispered, barged, customer_i);
    let why = report("customer, barged in on", &customer_heard, range);
    assert!(
        count_carrying(&customer_heard, range, SUPERVISOR_HZ) > 20,
        "{why}"
    );
    assert!(
        count_carrying(&customer_heard, range, AGENT_HZ) > 20,
        "{why}"
    );
    let range = span(whispered, barged, agent_i);
    let why = report("agent, barged in on", &agent_heard, range);
    assert!(
        count_carrying(&agent_heard, range, SUPERVISOR_HZ) > 20,
        "{why}"
    );
    let range = span(whispered, barged, supervisor_i);
    let why = report("supervisor, barging", &supervisor_heard, range);
    assert!(
        count_carrying(&supervisor_heard, range, AGENT_HZ) > 20,
        "{why}"
    );
    assert!(
        count_carrying(&supervisor_heard, range, CUSTOMER_HZ) > 20,
        "{why}"
    );

    // The next customer, still barged in on: heard by the supervisor, and
    // hearing the supervisor.
    let range = span(before_next, during_next, supervisor_i);
    let why = report("supervisor, next customer", &supervisor_heard, range);
    assert!(
        count_carrying(&supervisor_heard, range, NEXT_CUSTOMER_HZ) > 15,
        "{why}"
    );
    let next_heard = next_phone.heard();
    let range = (next_start, next_end);
    let why = report("next customer", &next_heard, range);
    assert!(
        count_carrying(&next_heard, range, SUPERVISOR_HZ) > 15,
        "{why}"
    );

    // Gone: the supervisor hears nothing more, and nobody hears it.
    let range = span(during_next, after, supervisor_i);
    assert!(
        range.1 - range.0 <= 10,
        "{} packets after the supervisor left",
        range.1 - range.0
    );
    let range = span(during_next, after, agent_i);
    let why = report("agent, after", &agent_heard, range);
    assert_eq!(
        count_carrying(&agent_heard, range, SUPERVISOR_HZ),
        0,
        "{why}"
    );
    assert!(
        count_carrying(&agent_heard, range, NEXT_CUSTOMER_HZ) > 20,
        "{why}"
    );
    agent.close().await.unwrap();
    drop(next_phone);
}

#[tokio::test]
async fn a_barging_supervisor_is_heard_through_silence_and_hold_and_is_in_the_recording() {
    use outdial::media::listen_in::ListenMode;
    use outdial::net::rtp::{end_listen_in, listen_in};
    use std::sync::atomic::{AtomicBool, Ordering};
    const AGENT_HZ: f64 = 600.0;
    const CUSTOMER_HZ: f64 = 1000.0;
    const HOLD_HZ: f64 = 800.0;
    const SUPERVISOR_HZ: f64 = 1700.0;
    const STRANGER_HZ: f64 = 1300.0;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("call.wav");
    let pool = pool(41800);
    // No comfort noise on the agent's leg: when nothing is relayed to the
    // agent, the supervisor's voice must go alone.
    let (agent, agent_phone) = talking_leg(&pool, 0xA8, false, AGENT_HZ, 0xA8A8).await;
    let (customer, mut customer_phone) = talking_leg(&pool, 0xC9, false, CUSTOMER_HZ, 0xC9C9).await;
    let zip = ZipTone {
        duration_ms: 60,
        ..ZipTone::default()
    };
    let _bridged = bridge(&agent, customer, zip, Some(recording.clone()))
        .await
        .unwrap();
    let (supervisor, mut supervisor_phone) =
        talking_leg(&pool, 0x58, false, SUPERVISOR_HZ, 0x5858).await;
    let supervisor_leg = supervisor.local_addr();
    let ended = Arc::new(AtomicBool::new(false));
    let on_end = {
        let ended = ended.clone();
        move || ended.store(true, Ordering::SeqCst)
    };
    listen_in(&agent, supervisor, ListenMode::Barge, OnEnd::new(on_end))
        .await
        .unwrap();
    let phase = Duration::from_millis(800);
    let marks = |agent: &Phone, customer: &Phone| (agent.heard().len(), customer.heard().len());
    tokio::time::sleep(phase).await;

    // The customer goes quiet (sends nothing): nothing is relayed to the
    // agent, who still hears the supervisor.
    customer_phone.hush();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let quiet = marks(&agent_phone, &customer_phone);
    tokio::time::sleep(phase).await;
    let quiet_end = marks(&agent_phone, &customer_phone);
    // On hold: the customer hears the hold audio only; the agent, nothing
    // relayed, still the supervisor.
    hold_bridged(&agent, Prompt::from_samples(tone_samples(HOLD_HZ, 200))).unwrap();
    let held = marks(&agent_phone, &customer_phone);
    tokio::time::sleep(phase).await;
    let held_end = marks(&agent_phone, &customer_phone);
    // The supervisor goes quiet for longer than a leg waits before
    // latching onto another source; a stranger then talks to the
    // supervisor leg's port: never heard (the leg is pinned to its phone).
    supervisor_phone.hush();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stranger_from = agent_phone.heard().len();
    let mut stranger = Phone::new().await;
    stranger.talk(supervisor_leg, STRANGER_HZ, Law::Ulaw, 0x0BAD);
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(stranger);
    let stranger_heard = count_carrying(
        &agent_phone.heard(),
        (stranger_from, agent_phone.heard().len()),
        STRANGER_HZ,
    );
    assert_eq!(stranger_heard, 0, "a stranger stood in for the supervisor");
    resume_bridged(&agent).unwrap();
    unbridge(&agent).await.unwrap();
    end_listen_in(&agent).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !ended.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "on_end never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let agent_heard = agent_phone.heard();
    let customer_heard = customer_phone.heard();
    let range = (quiet.0, quiet_end.0);
    assert!(
        count_carrying(&agent_heard, range, SUPERVISOR_HZ) > 20,
        "the agent, the customer quiet: {} of {}",
        count_carrying(&agent_heard, range, SUPERVISOR_HZ),
        range.1 - range.0
    );
    let range = (held.0, held_end.0);
    assert!(
        count_carrying(&agent_heard, range, SUPERVISOR_HZ) > 20,
        "the agent, the customer on hold: {} of {}",
        count_carrying(&agent_heard, range, SUPERVISOR_HZ),
        range.1 - range.0
    );
    let range = (held.1, held_end.1);
    assert!(count_carrying(&customer_heard, range, HOLD_HZ) > 20);
    assert_eq!(
        count_carrying(&customer_heard, range, SUPERVISOR_HZ),
        0,
        "the customer on hold hears the supervisor"
    );

    // The recording's agent channel has what the customer heard of the
    // supervisor (barge), beside the agent.
    let wav = Wav::read(&recording).unwrap();
    assert_eq!(wav.channels, 2);
    let right: Vec<i16> = wav.samples.iter().skip(1).step_by(2).copied().collect();
    let windows_with = |hz: f64| {
        right
            .chunks(160)
            .filter(|w| w.len() == 160 && goertzel_power(w, hz, 8000) > 2e6)
            .count()
    };
    assert!(
        windows_with(SUPERVISOR_HZ) > 20,
        "{}",
        windows_with(SUPERVISOR_HZ)
    );
    assert!(windows_with(AGENT_HZ) > 20);
    agent.close().await.unwrap();
}

#[tokio::test]
async fn two_agents_consult_privately_then_confer_with_the_customer_then_the_lent_leg_goes_home() {
    use outdial::net::rtp::{consult, end_listen_in, lend};
    const AGENT_HZ: f64 = 600.0;
    const CUSTOMER_HZ: f64 = 1000.0;
    const CONSULTED_HZ: f64 = 1700.0;
    const HOLD_HZ: f64 = 400.0;
    let pool = pool(41900);
    let (agent, agent_phone) = talking_leg(&pool, 0xA9, true, AGENT_HZ, 0xA9A9).await;
    let (consulted, consulted_phone) = talking_leg(&pool, 0xB9, true, CONSULTED_HZ, 0xB9B9).await;
    let (customer, customer_phone) = talking_leg(&pool, 0xC9, false, CUSTOMER_HZ, 0xC9C9).await;
    let zip = ZipTone {
        duration_ms: 60,
        ..ZipTone::default()
    };
    let bridged = bridge(&agent, customer, zip.clone(), None).await.unwrap();
    hold_bridged(&agent, Prompt::from_samples(tone_samples(HOLD_HZ, 200))).unwrap();
    consult(&agent, lend(&consulted).await.unwrap()).unwrap();

    let marks = |phones: [&Phone; 3]| phones.map(|p| p.heard().len());
    let phones = || [&agent_phone, &consulted_phone, &customer_phone];
    let phase = Duration::from_millis(800);
    let start = marks(phones());
    tokio::time::sleep(phase).await;
    let private = marks(phones());
    resume_bridged(&agent).unwrap();
    tokio::time::sleep(phase).await;
    let conference = marks(phones());
    end_listen_in(&agent).unwrap();
    tokio::time::sleep(phase).await;
    let ended = marks(phones());
    // The customer then goes to the consulted agent, whose leg is its own
    // task's again.
    let detached = take_back(&agent).await.unwrap().expect("a customer");
    let customer = RtpLeg::reattach(detached, bridged);
    let _bridged = bridge(&consulted, customer, zip, None).await.unwrap();
    tokio::time::sleep(phase).await;
    let transferred = marks(phones());

    let [agent_heard, consulted_heard, customer_heard] = phones().map(|p| p.heard());
    let span = |from: [usize; 3], to: [usize; 3], who: usize| (from[who], to[who]);
    let (agent_i, consulted_i, customer_i) = (0, 1, 2);
    let count = |heard: &[Received], range, hz| count_carrying(heard, range, hz);
    let tones = |heard: &[Received], range: (usize, usize)| -> Vec<String> {
        heard[range.0..range.1]
            .iter()
            .map(|p| {
                [AGENT_HZ, CUSTOMER_HZ, CONSULTED_HZ, HOLD_HZ]
                    .iter()
                    .filter(|&&hz| carries(p, hz))
                    .map(|hz| hz.to_string())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    };

    // Private: the two agents hear each other; the customer hears the
    // hold audio only, and is heard by neither.
    let range = span(start, private, consulted_i);
    let why = format!("consulted, private: {:?}", tones(&consulted_heard, range));
    assert!(count(&consulted_heard, range, AGENT_HZ) > 20, "{why}");
    assert_eq!(count(&consulted_heard, range, CUSTOMER_HZ), 0, "{why}");
    let range = span(start, private, agent_i);
    let why = format!("agent, private: {:?}", tones(&agent_heard, range));
    assert!(count(&agent_heard, range, CONSULTED_HZ) > 20, "{why}");
    assert_eq!(count(&agent_heard, range, CUSTOMER_HZ), 0, "{why}");
    let range = span(start, private, customer_i);
    let why = format!("customer, private: {:?}", tones(&customer_heard, range));
    assert!(count(&customer_heard, range, HOLD_HZ) > 20, "{why}");
    assert_eq!(count(&customer_heard, range, CONSULTED_HZ), 0, "{why}");
    assert_eq!(count(&customer_heard, range, AGENT_HZ), 0, "{why}");

    // Conference: everybody hears both others.
    let range = span(private, conference, consulted_i);
    let why = format!(
        "consulted, conference: {:?}",
        tones(&consulted_heard, range)
    );
    assert!(count(&consulted_heard, range, AGENT_HZ) > 20, "{why}");
    assert!(count(&consulted_heard, range, CUSTOMER_HZ) > 20, "{why}");
    let range = span(private, conference, agent_i);
    let why = format!("agent, conference: {:?}", tones(&agent_heard, range));
    assert!(count(&agent_heard, range, CONSULTED_HZ) > 20, "{why}");
    assert!(count(&agent_heard, range, CUSTOMER_HZ) > 20, "{why}");
    let range = span(private, conference, customer_i);
    let why = format!("customer, conference: {:?}", tones(&customer_heard, range));
    assert!(count(&customer_heard, range, CONSULTED_HZ) > 20, "{why}");
    assert!(count(&customer_heard, range, AGENT_HZ) > 20, "{why}");

    // Ended: the consulted agent's leg is home, idle (its keepalive only).
    let range = span(conference, ended, consulted_i);
    let why = format!("consulted, after: {:?}", tones(&consulted_heard, range));
    assert_eq!(count(&consulted_heard, range, AGENT_HZ), 0, "{why}");
    assert_eq!(count(&consulted_heard, range, CUSTOMER_HZ), 0, "{why}");
    let range = span(conference, ended, customer_i);
    let why = format!("customer, after: {:?}", tones(&customer_heard, range));
    assert_eq!(count(&customer_heard, range, CONSULTED_HZ), 0, "{why}");
    assert!(count(&customer_heard, range, AGENT_HZ) > 20, "{why}");

    // Transferred: the customer and the consulted agent, through its own
    // task.
    let range = span(ended, transferred, customer_i);
    let why = format!("customer, transferred: {:?}", tones(&customer_heard, range));
    assert!(count(&customer_heard, range, CONSULTED_HZ) > 15, "{why}");
    assert_eq!(count(&customer_heard, range, AGENT_HZ), 0, "{why}");
    let range = span(ended, transferred, consulted_i);
    let why = format!(
        "consulted, transferred: {:?}",
        tones(&consulted_heard, range)
    );
    assert!(count(&consulted_heard, range, CUSTOMER_HZ) > 15, "{why}");
    agent.close().await.unwrap();
    consulted.close().await.unwrap();
}

#[tokio::test]
async fn an_agents_digits_reach_the_customer_as_rfc_4733_events_in_place_of_the_agents_voice() {
    use outdial::net::rtp::send_dtmf;
    const AGENT_HZ: f64 = 600.0;
    let pool = pool(42000);
    let (agent, _agent_phone) = talking_leg(&pool, 0xAA, true, AGENT_HZ, 0xAAAA).await;
    let (customer, customer_phone) = talking_leg(&pool, 0xCA, false, 1000.0, 0xCACA).await;
    let zip = ZipTone {
        duration_ms: 60,
        ..ZipTone::default()
    };
    let _bridged = bridge(&agent, customer, zip, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = customer_phone.heard().len();
    send_dtmf(&agent, vec![1, 11]).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let heard = customer_phone.heard();
    let events: Vec<&Received> = heard[before..]
        .iter()
        .filter(|p| p.payload_type == 101)
        .collect();
    let codes: Vec<u8> = events.iter().map(|p| p.payload[0]).collect();
    assert_eq!(
        codes,
        [1, 1, 1, 1, 1, 1, 1, 1, 11, 11, 11, 11, 11, 11, 11, 11]
    );
    assert!(events.iter().all(|p| p.ssrc == events[0].ssrc));
    // From the first event to the last, the agent's voice is held back.
    let first = heard.iter().position(|p| p.payload_type == 101).unwrap();
    let last = heard.iter().rposition(|p| p.payload_type == 101).unwrap();
    assert_eq!(
        heard[first..last]
            .iter()
            .filter(|p| p.payload_type == 0 && carries(p, AGENT_HZ))
            .count(),
        0
    );
    // …and comes back after the digits, on the same stream.
    let after: Vec<&Received> = heard[last + 1..]
        .iter()
        .filter(|p| carries(p, AGENT_HZ))
        .collect();
    assert!(
        after.len() > 5,
        "{} packets of the agent after",
        after.len()
    );
    assert!(after.iter().all(|p| p.ssrc == events[0].ssrc));
    agent.close().await.unwrap();
}
