//! Issue #4, acceptance point 2: a customer bridged into an agent's SIP
//! reservation leg, with real SIPp peers. The agent (tests/sipp/agent_echo.xml)
//! echoes what it hears; two customers (tests/sipp/carrier_human.xml, their
//! "Hello?" replaced by a 600 Hz and a 1400 Hz tone) are bridged in turn.
//! A UDP tap between the agent leg and SIPp sees every packet outdial sent
//! the agent: zip tone, customer A, zip tone, customer B, on one SSRC with
//! unbroken sequence numbers. The stereo bridge recordings show the same on
//! the agent channel (the agent's echo).

mod sip_support;
#[path = "sip_support/softphone.rs"]
mod softphone;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use outdial::media::g711;
use outdial::media::tones::{ZipTone, goertzel_power};
use outdial::media::wav::Wav;
use outdial::net::rtp::{bridge, unbridge};
use sip_support::{
    Sipp, free_port, rfc_t1, scenario_with_audio, write_config, write_ulaw, write_ulaw_tone,
};
use softphone::Softphone;

const LIMIT: Duration = Duration::from_secs(20);
const ZIP_HZ: f64 = 440.0;
const CUSTOMER_A_HZ: f64 = 600.0;
const CUSTOMER_B_HZ: f64 = 1400.0;
/// carrier_human.xml plays its greeting file for this long (then silence).
const GREETING_MS: usize = 2540;

/// One RTP packet outdial sent the agent.
struct Sent {
    ssrc: u32,
    sequence: u16,
    payload_type: u8,
    payload: Vec<u8>,
}

/// A UDP relay between the agent leg and SIPp's echo port that keeps a copy
/// of every packet going to SIPp.
struct Tap {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sent>>,
}

impl Tap {
    fn start(peer: SocketAddr) -> Tap {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut sent = Vec::new();
            let mut leg: Option<SocketAddr> = None;
            let mut buf = [0u8; 2048];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if from == peer {
                    if let Some(leg) = leg {
                        let _ = socket.send_to(&buf[..len], leg);
                    }
                    continue;
                }
                leg = Some(from);
                if let Some(packet) = parse_rtp(&buf[..len]) {
                    sent.push(packet);
                }
                let _ = socket.send_to(&buf[..len], peer);
            }
            sent
        });
        Tap { addr, stop, thread }
    }

    fn finish(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the tap thread")
    }
}

fn parse_rtp(packet: &[u8]) -> Option<Sent> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if packet[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*packet.get(start + 2)?, *packet.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    Some(Sent {
        ssrc: u32::from_be_bytes(packet[8..12].try_into().ok()?),
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        payload_type: packet[1] & 0x7f,
        payload: packet.get(start..)?.to_vec(),
    })
}

/// A customer: carrier_human.xml whose "Hello?" is a tone, hanging up
/// 500 ms after it.
fn customer(dir: &Path, frequency_hz: f64) -> Sipp {
    let audio = dir.join("audio");
    std::fs::create_dir_all(&audio).unwrap();
    write_ulaw_tone(&audio.join("human_hello.wav"), frequency_hz, GREETING_MS);
    write_ulaw(&audio.join("silence.wav"), &[0xff; 8000]);
    let scenario = scenario_with_audio("carrier_human.xml", &audio, dir);
    Sipp::uas(scenario.to_str().unwrap(), 1, &["-set", "talk_ms", "500"])
}

/// Which of the test's tones a 20 ms frame holds, if any.
fn tone_of(frame: &[i16]) -> Option<f64> {
    let mean_square = frame
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / frame.len() as f64;
    // Below about −40 dBov: comfort noise or silence.
    if mean_square < 100_000.0 {
        return None;
    }
    // A pure tone has Goertzel power ≈ mean square / 2 at its frequency.
    [ZIP_HZ, CUSTOMER_A_HZ, CUSTOMER_B_HZ]
        .into_iter()
        .find(|&f| goertzel_power(frame, f, 8000) > 0.3 * mean_square)
}

/// The tones heard, in order, as (frequency, 20 ms frames); runs shorter
/// than 60 ms (a frame straddling two sounds) are left out.
fn tone_runs(samples: &[i16]) -> Vec<(f64, usize)> {
    let mut runs: Vec<(Option<f64>, usize)> = Vec::new();
    for frame in samples.chunks_exact(160) {
        let tone = tone_of(frame);
        match runs.last_mut() {
            Some((last, n)) if *last == tone => *n += 1,
            _ => runs.push((tone, 1)),
        }
    }
    let mut heard: Vec<(f64, usize)> = Vec::new();
    for (tone, n) in runs {
        let Some(tone) = tone else { continue };
        if n < 3 {
            continue;
        }
        match heard.last_mut() {
            Some((last, m)) if *last == tone => *m += n,
            _ => heard.push((tone, n)),
        }
    }
    heard
}

fn frequencies(runs: &[(f64, usize)]) -> Vec<f64> {
    runs.iter().map(|&(f, _)| f).collect()
}

/// One channel of a stereo recording.
fn channel(path: &Path, index: usize) -> Vec<i16> {
    let wav = Wav::read(path).expect("the bridge recording is a WAV");
    assert_eq!(wav.channels, 2, "{}", path.display());
    wav.samples.iter().skip(index).step_by(2).copied().collect()
}

#[test]
fn customers_bridged_in_turn_into_a_sipp_agent_reservation_leg() {
    let dir = tempfile::tempdir().unwrap();
    let echo_port = free_port();
    let mut agent_sipp = Sipp::uas(
        "agent_echo.xml",
        1,
        &["-rtp_echo", "-mp", &echo_port.to_string()],
    );
    let dir_a = dir.path().join("a");
    let dir_b = dir.path().join("b");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let mut sipp_a = customer(&dir_a, CUSTOMER_A_HZ);
    let mut sipp_b = customer(&dir_b, CUSTOMER_B_HZ);
    let config = write_config(dir.path(), agent_sipp.port);
    rfc_t1(&config);
    let recording_a = dir.path().join("bridge_a.wav");
    let recording_b = dir.path().join("bridge_b.wav");
    let zip = ZipTone::default();
    assert_eq!(zip.frequency_hz, ZIP_HZ);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sent, agent_report, report_a, report_b) = runtime.block_on(async {
        let mut phone = Softphone::start(&config).await;
        let at = |port: u16| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], port)) };

        // The agent's reservation leg, its media through the tap.
        let agent = phone
            .dial(
                &format!("sip:1001@127.0.0.1:{}", agent_sipp.port),
                at(agent_sipp.port),
            )
            .await;
        let answer = phone.answered(agent.handle, LIMIT).await;
        let mut negotiated = agent.negotiate(&answer);
        let echo = negotiated
            .remote
            .expect("the agent's SDP has a media address");
        assert_eq!(echo.port(), echo_port);
        let tap = Tap::start(echo);
        negotiated.remote = Some(tap.addr);
        agent.leg.set_negotiated(negotiated).unwrap();
        // The agent idles a moment on comfort noise before the first customer.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut reports = Vec::new();
        for (sipp, recording) in [(&sipp_a, &recording_a), (&sipp_b, &recording_b)] {
            let customer = phone
                .dial(
                    &format!("sip:5551234@127.0.0.1:{}", sipp.port),
                    at(sipp.port),
                )
                .await;
            let answer = phone.answered(customer.handle, LIMIT).await;
            customer.apply_answer(&answer);
            let handle = customer.handle;
            let _bridged = bridge(
                &agent.leg,
                customer.leg,
                zip.clone(),
                Some(recording.clone()),
            )
            .await
            .unwrap();
            // The customer hangs up after its greeting and a short silence.
            let end = phone.ended(handle, LIMIT).await;
            assert!(end.hung_up_by_remote, "{end:?}");
            let report = unbridge(&agent.leg)
                .await
                .unwrap()
                .expect("a bridged customer");
            reports.push(report);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        phone.hang_up(agent.handle).await;
        let end = phone.ended(agent.handle, LIMIT).await;
        assert_eq!(end.sip_code, Some(200), "{end:?}");
        let agent_report = agent.leg.close().await.unwrap();
        phone.stop().await;
        let report_b = reports.pop().unwrap();
        let report_a = reports.pop().unwrap();
        (tap.finish(), agent_report, report_a, report_b)
    });
    agent_sipp.assert_passed(LIMIT);
    sipp_a.assert_passed(LIMIT);
    sipp_b.assert_passed(LIMIT);

    // What outdial sent the agent: one stream, no gap in its numbering.
    assert!(sent.len() > 200, "only {} packets to the agent", sent.len());
    let ssrc = sent[0].ssrc;
    assert!(sent.iter().all(|p| p.ssrc == ssrc), "more than one SSRC");
    for pair in sent.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "sequence jumps from {} to {}",
            pair[0].sequence,
            pair[1].sequence
        );
    }
    // Zip, A, zip, B in that order, each long enough to be the real thing.
    let audio: Vec<i16> = sent
        .iter()
        .filter(|p| p.payload_type == 0)
        .flat_map(|p| p.payload.iter().map(|&c| g711::ulaw_decode(c)))
        .collect();
    let heard = tone_runs(&audio);
    assert_eq!(
        frequencies(&heard),
        [ZIP_HZ, CUSTOMER_A_HZ, ZIP_HZ, CUSTOMER_B_HZ],
        "{heard:?}"
    );
    for (i, &(tone, frames)) in heard.iter().enumerate() {
        let (min, max) = if tone == ZIP_HZ { (8, 11) } else { (80, 130) };
        assert!(
            (min..=max).contains(&frames),
            "run {i}: {tone} Hz for {frames} frames"
        );
    }

    // The agent leg's own receive statistics: its echoed stream came back whole.
    assert_eq!(agent_report.summary.lost, 0, "{agent_report:?}");
    assert!(agent_report.summary.received > 200, "{agent_report:?}");
    for report in [&report_a, &report_b] {
        assert!(report.counters.received > 80, "{report:?}");
        assert!(report.recording.is_some(), "{report:?}");
    }

    // The stereo recordings: the customer on the left; on the right the
    // agent's echo of the zip tone, then of that customer.
    for (recording, own, other) in [
        (&recording_a, CUSTOMER_A_HZ, CUSTOMER_B_HZ),
        (&recording_b, CUSTOMER_B_HZ, CUSTOMER_A_HZ),
    ] {
        let customer = tone_runs(&channel(recording, 0));
        assert_eq!(frequencies(&customer), [own], "{customer:?}");
        let agent = tone_runs(&channel(recording, 1));
        assert_eq!(frequencies(&agent), [ZIP_HZ, own], "{agent:?}");
        assert!(!frequencies(&agent).contains(&other));
    }
}
