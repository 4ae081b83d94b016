//! The browser phone over real UDP against `outdial run`, with a str0m peer
//! in this process standing in for the browser (the desktop in a real
//! Chromium is `web_desktop::an_agent_uses_the_browser_as_phone`). These
//! are the shell's paths a browser test reaches only slowly: the leg on
//! the browser phone ending (logout) while the browser keeps talking, a
//! second browser, a reconnect that must give way, Stop — and a
//! supervisor's browser listening in on an agent's (monitor, whisper).

mod sip_support;
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use outdial::media::g711::Law;
use outdial::media::tones::goertzel_power;
use serde_json::{Value, json};
use sip_support::{Sipp, free_port};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use support::{Running, ephemeral_config, http, write_config};

const AGENT_TOKEN: &str = "demo-agent-1001-token";

/// What the stand-in browser saw.
#[derive(Default)]
struct Seen {
    connected: bool,
    disconnected: bool,
}

/// A str0m peer on its own thread and UDP socket, talking like a browser:
/// it offers audio, and once connected sends a 20 ms PCMU frame of a tone
/// every 20 ms.
struct TestBrowser {
    /// The dialer's answer: `session`, `softphone_has_the_call`, `sdp`.
    answer: Value,
    seen: Arc<Mutex<Seen>>,
    heard: Arc<AtomicU64>,
    /// The payload of every audio frame heard.
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The tone the stand-in agent's browser talks.
const AGENT_HZ: f64 = 600.0;

impl TestBrowser {
    /// Offers to be agent 1001's phone; the API's status and body when
    /// the dialer refuses.
    fn connect(addr: SocketAddr, reconnect: bool) -> Result<TestBrowser, (u16, String)> {
        TestBrowser::offer(
            addr,
            "/api/agents/1001/phone",
            AGENT_TOKEN,
            json!({ "reconnect": reconnect }),
            AGENT_HZ,
        )
    }

    /// Posts an offer to `path` with `fields` added to its body; talks
    /// `tone_hz` once connected.
    fn offer(
        addr: SocketAddr,
        path: &str,
        token: &str,
        fields: Value,
        tone_hz: f64,
    ) -> Result<TestBrowser, (u16, String)> {
        TestBrowser::offer_later(addr, path, token, fields, tone_hz, Duration::ZERO)
    }

    /// [`TestBrowser::offer`] whose browser starts connecting only after
    /// `delay` (a slow ICE and DTLS).
    fn offer_later(
        addr: SocketAddr,
        path: &str,
        token: &str,
        fields: Value,
        tone_hz: f64,
        delay: Duration,
    ) -> Result<TestBrowser, (u16, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .enable_opus(true)
            .enable_pcmu(true)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let mut body = fields;
        body["sdp"] = json!(offer.to_sdp_string());
        let body = body.to_string();
        let (status, answer) = http(addr, "POST", path, Some(token), Some(&body));
        if status != 200 {
            return Err((status, answer));
        }
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let sdp = SdpAnswer::from_sdp_string(answer["sdp"].as_str().unwrap()).unwrap();
        rtc.sdp_api().accept_answer(pending, sdp).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let heard = Arc::new(AtomicU64::new(0));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, heard, frames, stop) =
                (seen.clone(), heard.clone(), frames.clone(), stop.clone());
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let ears = Ears {
                    seen: &seen,
                    heard: &heard,
                    frames: &frames,
                };
                run_browser(rtc, socket, audio, tone_hz, ears, &stop);
            })
        };
        Ok(TestBrowser {
            answer,
            seen,
            heard,
            frames,
            stop,
            thread: Some(thread),
        })
    }

    /// How many frames heard so far.
    fn frame_count(&self) -> usize {
        self.frames.lock().unwrap().len()
    }

    /// How many of the frames heard since `mark` carry `hz`.
    fn frames_carrying(&self, mark: usize, hz: f64) -> usize {
        let frames = self.frames.lock().unwrap();
        frames[mark.min(frames.len())..]
            .iter()
            .filter(|payload| carries(payload, hz))
            .count()
    }

    fn connected(&self) -> bool {
        self.seen.lock().unwrap().connected
    }

    fn disconnected(&self) -> bool {
        self.seen.lock().unwrap().disconnected
    }

    fn heard(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// Where the dialer's side of this browser phone listens (the answer's
    /// one candidate).
    fn phone_address(&self) -> SocketAddr {
        let sdp = self.answer["sdp"].as_str().unwrap();
        let candidate = sdp
            .lines()
            .find(|line| line.starts_with("a=candidate:"))
            .unwrap();
        let fields: Vec<&str> = candidate.split(' ').collect();
        format!("{}:{}", fields[4], fields[5]).parse().unwrap()
    }
}

impl Drop for TestBrowser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a PCMU payload carries `hz` (the tones here have amplitude
/// 8000: Goertzel power ~1.6e7 whole; one absent stays far below 1e6).
fn carries(payload: &[u8], hz: f64) -> bool {
    let samples: Vec<i16> = payload.iter().map(|&c| Law::Ulaw.decode(c)).collect();
    goertzel_power(&samples, hz, 8000) > 1e6
}

/// Where a stand-in browser keeps what it saw and heard.
struct Ears<'a> {
    seen: &'a Mutex<Seen>,
    heard: &'a AtomicU64,
    frames: &'a Mutex<Vec<Vec<u8>>>,
}

fn run_browser(
    mut rtc: Rtc,
    socket: UdpSocket,
    audio: str0m::media::Mid,
    tone_hz: f64,
    ears: Ears,
    stop: &AtomicBool,
) {
    let Ears {
        seen,
        heard,
        frames,
    } = ears;
    let local = socket.local_addr().unwrap();
    let mut buffer = vec![0u8; 2000];
    let mut next_frame = Instant::now();
    let mut frame = 0u64;
    let mut phase = 0.0f64;
    while !stop.load(Ordering::Relaxed) {
        let deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => break at,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => seen.lock().unwrap().connected = true,
                Ok(Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                ))) => seen.lock().unwrap().disconnected = true,
                Ok(Output::Event(Event::MediaData(data))) => {
                    heard.fetch_add(1, Ordering::Relaxed);
                    frames.lock().unwrap().push(data.data.clone());
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        };
        let now = Instant::now();
        if seen.lock().unwrap().connected && now >= next_frame {
            next_frame = now + Duration::from_millis(20);
            frame += 1;
            let pcmu = rtc.writer(audio).and_then(|w| {
                w.payload_params()
                    .find(|p| p.spec().codec == Codec::PCMU)
                    .map(|p| p.pt())
            });
            if let (Some(pt), Some(writer)) = (pcmu, rtc.writer(audio)) {
                let time = MediaTime::new(frame * 160, Frequency::EIGHT_KHZ);
                let tone: Vec<u8> = (0..160)
                    .map(|_| {
                        phase += 2.0 * std::f64::consts::PI * tone_hz / 8000.0;
                        Law::Ulaw.encode((8000.0 * phase.sin()) as i16)
                    })
                    .collect();
                let _ = writer.write(pt, now, time, tone);
            }
            continue;
        }
        let wait = deadline
            .min(next_frame)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1))
            .min(Duration::from_millis(20));
        socket.set_read_timeout(Some(wait)).unwrap();
        let input = match socket.recv_from(&mut buffer) {
            Ok((len, source)) => match buffer[..len].try_into() {
                Ok(contents) => Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    },
                ),
                Err(_) => continue,
            },
            Err(_) => Input::Timeout(Instant::now()),
        };
        if rtc.handle_input(input).is_err() {
            return;
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn phone_connected(addr: SocketAddr) -> bool {
    let (_, body) = http(addr, "GET", "/api/agents/1001", Some(AGENT_TOKEN), None);
    serde_json::from_str::<Value>(&body).unwrap()["phone_connected"] == json!(true)
}

fn act(addr: SocketAddr, what: &str) {
    let path = format!("/api/agents/1001/{what}");
    let (status, body) = http(addr, "POST", &path, Some(AGENT_TOKEN), None);
    assert_eq!(status, 200, "{what}: {body}");
}

#[test]
fn a_browser_phone_carries_the_reservation_call_and_no_audio_strays_after_it() {
    let dir = tempfile::tempdir().unwrap();
    // A small RTP range of this test's own, so every port of it can be
    // watched once the agent's leg is gone.
    // (It must hold max_concurrent_calls + agents port pairs: 62.)
    let port_min = 40_000 + (std::process::id() % 150) as u16 * 160;
    let port_max = port_min + 159;
    let text = ephemeral_config(dir.path())
        .replace("sip_uri = \"sip:1001@127.0.0.1:9\"", "browser_phone = true")
        .replace("port_min = 20000", &format!("port_min = {port_min}"))
        .replace("port_max = 21999", &format!("port_max = {port_max}"));
    assert!(text.contains("browser_phone = true"), "{text}");
    let config = write_config(dir.path(), &text);
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();

    let browser = TestBrowser::connect(addr, false).expect("the offer is answered");
    wait_for("the browser phone connects", || browser.connected());
    act(addr, "login");
    wait_for("the reservation call up on the browser", || {
        phone_connected(addr)
    });

    // Logging out ends the leg and frees its port. The browser keeps
    // talking: none of it may reach any port of the range (a customer's
    // leg may be given that port next).
    act(addr, "logout");
    wait_for("the reservation call ended", || !phone_connected(addr));
    std::thread::sleep(Duration::from_millis(300));
    let watched: Vec<UdpSocket> = (port_min..=port_max)
        .filter_map(|port| UdpSocket::bind(("127.0.0.1", port)).ok())
        .collect();
    assert!(watched.len() >= 150, "only {} ports free", watched.len());
    for socket in &watched {
        socket.set_nonblocking(true).unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut buffer = [0u8; 2000];
    for socket in &watched {
        if let Ok((len, from)) = socket.recv_from(&mut buffer) {
            panic!(
                "{len} bytes from {from} reached {} after the leg ended",
                socket.local_addr().unwrap()
            );
        }
    }
    drop(watched);
    assert!(!browser.disconnected(), "the browser phone itself stays");

    // Logged in again: the dialer calls the agent on the same browser.
    act(addr, "login");
    wait_for("the reservation call up again", || phone_connected(addr));
    wait_for("the browser hears its leg", || browser.heard() > 0);

    // Another desktop reconnecting by itself gives way to the browser that
    // is the phone; the agent's own click takes the phone over.
    let refused = TestBrowser::connect(addr, true).err().expect("refused");
    assert_eq!(refused.0, 409, "{}", refused.1);
    assert!(refused.1.contains("another browser"), "{}", refused.1);
    let second = TestBrowser::connect(addr, false).expect("taken over");
    wait_for("the second browser connects", || second.connected());
    wait_for("the reservation call on the second browser", || {
        phone_connected(addr) && second.heard() > 0
    });
    // The first browser's leg is gone: it hears nothing more.
    let first_heard = browser.heard();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        browser.heard(),
        first_heard,
        "the first browser still hears"
    );

    // A stranger's datagram — the 20 bytes that panic str0m 0.19 — sent
    // to the browser phone's port changes nothing.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut crash = [0u8; 20];
    crash[0] = 128;
    crash[1] = 64;
    stranger.send_to(&crash, second.phone_address()).unwrap();
    let heard = second.heard();
    std::thread::sleep(Duration::from_millis(500));
    assert!(second.heard() > heard, "the second browser stopped hearing");
    assert!(phone_connected(addr));

    // Stop from the first desktop names its own session: it is gone, so
    // nothing is closed; the second's closes it, and the reservation call
    // ends with it.
    let stop = |session: &Value| {
        let path = format!("/api/agents/1001/phone?session={session}");
        http(addr, "DELETE", &path, Some(AGENT_TOKEN), None)
    };
    let (status, body) = stop(&browser.answer["session"]);
    assert_eq!(status, 404, "{body}");
    assert!(phone_connected(addr));
    let (status, body) = stop(&second.answer["session"]);
    assert_eq!(status, 204, "{body}");
    wait_for("the reservation call ended with the phone", || {
        !phone_connected(addr)
    });
    drop(second);
    drop(browser);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

#[test]
fn a_browser_connected_while_the_softphone_has_the_call_takes_the_next_one() {
    // Agent 1001 has a softphone (SIPp, echoing) and is logged in on it;
    // then the desktop connects the browser as phone. The softphone's
    // reservation call is never cut (a customer may be on it): the answer
    // says so, and the browser hears nothing. At logout that call ends
    // (SIPp's scenario ends with our BYE); at the next login the dialer
    // calls the agent on the browser.
    let dir = tempfile::tempdir().unwrap();
    let rtp = free_port().to_string();
    let mut softphone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &rtp, "-timeout", "60s"],
    );
    let text = ephemeral_config(dir.path()).replace(
        "sip_uri = \"sip:1001@127.0.0.1:9\"",
        &format!("sip_uri = \"sip:1001@127.0.0.1:{}\"", softphone.port),
    );
    let config = write_config(dir.path(), &text);
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    act(addr, "login");
    wait_for("the reservation call up on the softphone", || {
        phone_connected(addr)
    });

    let browser = TestBrowser::connect(addr, false).expect("the offer is answered");
    assert_eq!(browser.answer["softphone_has_the_call"], json!(true));
    wait_for("the browser phone connects", || browser.connected());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(browser.heard(), 0, "the softphone keeps the call");
    assert!(phone_connected(addr));
    act(addr, "logout");
    softphone.assert_passed(Duration::from_secs(10));
    act(addr, "login");
    wait_for("the reservation call up on the browser", || {
        phone_connected(addr) && browser.heard() > 0
    });
    drop(browser);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

const SUPERVISOR_TOKEN: &str = "demo-supervisor-token";
const CUSTOMER_HZ: f64 = 1000.0;
const SUPERVISOR_HZ: f64 = 1700.0;

fn supervisor_offer(
    addr: SocketAddr,
    agent: &str,
    mode: &str,
) -> Result<TestBrowser, (u16, String)> {
    TestBrowser::offer(
        addr,
        &format!("/api/agents/{agent}/listen"),
        SUPERVISOR_TOKEN,
        json!({ "mode": mode }),
        SUPERVISOR_HZ,
    )
}

/// How many ports of `range` something has bound (on loopback).
fn ports_in_use(range: std::ops::RangeInclusive<u16>) -> usize {
    range
        .filter(|&port| UdpSocket::bind(("127.0.0.1", port)).is_err())
        .count()
}

/// Agent 1001's view, as the agent's desktop reads it.
fn agent_view(addr: SocketAddr) -> Value {
    let (status, body) = http(addr, "GET", "/api/agents/1001", Some(AGENT_TOKEN), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn listen_ins(addr: SocketAddr) -> Value {
    let (status, body) = http(addr, "GET", "/api/listen-ins", Some(SUPERVISOR_TOKEN), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_supervisor_listens_in_on_a_call_then_whispers_to_the_agent() {
    // Agent 1001's browser (a str0m peer talking 600 Hz) is her phone; she
    // calls a SIPp customer from a preview, who "talks" 1 kHz. A
    // supervisor's browser (talking 1.7 kHz) listens in: it hears both;
    // the agent hears the supervisor only once the mode is whisper. (What
    // the customer hears in barge is `media_rtp`'s
    // `a_supervisor_listens_in_then_whispers_then_barges_then_leaves`:
    // SIPp cannot tell.) The listening in ends when the supervisor says
    // so, and by itself when the agent's phone goes away.
    let dir = tempfile::tempdir().unwrap();
    let carrier = sip_support::customers_talking_a_tone(dir.path(), 2);
    // Half the span away from the first test's range (same process).
    let port_min = 40_000 + ((std::process::id() % 150 + 75) % 150) as u16 * 160;
    let text = ephemeral_config(dir.path())
        .replace("sip_uri = \"sip:1001@127.0.0.1:9\"", "browser_phone = true")
        .replace("port_min = 20000", &format!("port_min = {port_min}"))
        .replace(
            "port_max = 21999",
            &format!("port_max = {}", port_min + 159),
        )
        .replace(
            "uri = \"sip:127.0.0.1:5070\"",
            &format!("uri = \"sip:127.0.0.1:{}\"", carrier.port),
        )
        // SIPp's customer scenario takes nothing but the call.
        .replace("options_interval_s = 30", "options_interval_s = 0")
        .replace("mode = \"predictive\"", "mode = \"preview\"")
        .replace(
            "call_hours = \"08:00-21:00\"",
            "call_hours = \"00:00-23:59\"",
        )
        .replace(
            "call_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\"]",
            "call_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]",
        );
    for changed in [
        "browser_phone = true",
        "options_interval_s = 0",
        "mode = \"preview\"",
        "00:00-23:59",
        "\"sun\"",
    ] {
        assert!(text.contains(changed), "{changed} not set");
    }
    let config = write_config(dir.path(), &text);
    support::import_list(
        &config,
        "demo",
        "id,name,phone\nr1,Dee Live,+12025550141\nr2,Eve Next,+12025550142\n",
        dir.path(),
    );
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();

    // Nobody to listen in on yet: logged out.
    let refused = supervisor_offer(addr, "1001", "monitor")
        .err()
        .expect("refused");
    assert_eq!(refused.0, 409, "{}", refused.1);
    assert!(refused.1.contains("no phone call"), "{}", refused.1);

    let agent = TestBrowser::connect(addr, false).expect("the offer is answered");
    wait_for("the agent's browser phone connects", || agent.connected());
    act(addr, "login");
    wait_for("the reservation call up on the browser", || {
        phone_connected(addr)
    });
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/start",
        Some(SUPERVISOR_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let call_next = || {
        act(addr, "ready");
        // The list loads in the background: ask until a record shows.
        wait_for("a record to preview", || {
            let path = "/api/agents/1001/preview";
            http(addr, "POST", path, Some(AGENT_TOKEN), None).0 == 200
        });
        act(addr, "preview/call");
        let on_call = agent.frame_count();
        wait_for("the agent hears the customer", || {
            agent.frames_carrying(on_call, CUSTOMER_HZ) > 10
        });
    };
    call_next();

    // Only supervisors listen in; only on agents there are.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/listen",
        Some(AGENT_TOKEN),
        Some(r#"{"sdp": "v=0"}"#),
    );
    assert_eq!(status, 403, "{body}");
    let refused = supervisor_offer(addr, "nobody", "monitor")
        .err()
        .expect("refused");
    assert_eq!(refused.0, 404, "{}", refused.1);

    // Monitor: the supervisor hears the agent and the customer; the agent
    // does not hear the supervisor.
    let range = port_min..=port_min + 159;
    let ports_before = ports_in_use(range.clone());
    let supervisor = supervisor_offer(addr, "1001", "monitor").expect("answered");
    let session = supervisor.answer["session"].clone();
    wait_for("the supervisor's browser connects", || {
        supervisor.connected()
    });
    wait_for("the supervisor hears", || {
        listen_ins(addr)
            == json!([{ "session": session, "agent": "1001", "mode": "monitor", "hearing": true }])
    });
    let refused = supervisor_offer(addr, "1001", "barge")
        .err()
        .expect("refused");
    assert_eq!(refused.0, 409, "{}", refused.1);
    assert!(refused.1.contains("already listens in"), "{}", refused.1);
    let (agent_mark, supervisor_mark) = (agent.frame_count(), supervisor.frame_count());
    wait_for("the supervisor hears both parties", || {
        supervisor.frames_carrying(supervisor_mark, AGENT_HZ) > 25
            && supervisor.frames_carrying(supervisor_mark, CUSTOMER_HZ) > 25
    });
    assert_eq!(agent.frames_carrying(agent_mark, SUPERVISOR_HZ), 0);
    assert!(agent.frames_carrying(agent_mark, CUSTOMER_HZ) > 25);
    // A silent monitor is not shown to the agent.
    assert_eq!(agent_view(addr)["supervisor"], Value::Null);

    // Whisper: the agent hears the supervisor, over the customer.
    let path = format!("/api/listen-ins/{session}");
    let mode = |mode: &str| {
        let body = json!({ "mode": mode }).to_string();
        http(addr, "PATCH", &path, Some(SUPERVISOR_TOKEN), Some(&body))
    };
    let (status, body) = mode("whisper");
    assert_eq!(status, 204, "{body}");
    let agent_mark = agent.frame_count();
    wait_for("the agent hears the supervisor's whisper", || {
        agent.frames_carrying(agent_mark, SUPERVISOR_HZ) > 25
    });
    assert!(agent.frames_carrying(agent_mark, CUSTOMER_HZ) > 25);
    // The agent's desktop says so.
    assert_eq!(agent_view(addr)["supervisor"], json!("whisper"));
    let (status, body) = mode("shout");
    assert_eq!(status, 400, "{body}");

    // Barge is into this call: the next customer connected to the agent
    // finds the supervisor whispering.
    let (status, body) = mode("barge");
    assert_eq!(status, 204, "{body}");
    assert_eq!(listen_ins(addr)[0]["mode"], json!("barge"));
    act(addr, "hangup");
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/disposition",
        Some(AGENT_TOKEN),
        Some(r#"{"code": "NI"}"#),
    );
    assert_eq!(status, 200, "{body}");
    call_next();
    assert_eq!(listen_ins(addr)[0]["mode"], json!("whisper"));
    let agent_mark = agent.frame_count();
    wait_for("the agent hears the supervisor on the next call", || {
        agent.frames_carrying(agent_mark, SUPERVISOR_HZ) > 25
    });

    // The supervisor stops: heard no more, hearing no more.
    let (status, body) = http(addr, "DELETE", &path, Some(SUPERVISOR_TOKEN), None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(listen_ins(addr), json!([]));
    // Frames already on their way may still be decrypted by a slow test
    // thread: wait until none arrive for a moment, then watch a second.
    wait_for("the supervisor hears no more", || {
        let before = supervisor.frame_count();
        std::thread::sleep(Duration::from_millis(300));
        supervisor.frame_count() == before
    });
    let (agent_mark, supervisor_mark) = (agent.frame_count(), supervisor.frame_count());
    std::thread::sleep(Duration::from_secs(1));
    assert!(agent.frames_carrying(agent_mark, CUSTOMER_HZ) > 25);
    assert_eq!(agent.frames_carrying(agent_mark, SUPERVISOR_HZ), 0);
    assert_eq!(supervisor.frame_count(), supervisor_mark);
    // Its browser phone's ports and its leg's are back in the pool. (The
    // range holds the customers' legs too, and the first call's may still
    // have been closing when the count was taken: no more than then.)
    wait_for("the supervisor's ports back in the pool", || {
        ports_in_use(range.clone()) <= ports_before
    });
    let (status, body) = http(addr, "DELETE", &path, Some(SUPERVISOR_TOKEN), None);
    assert_eq!(status, 404, "{body}");
    drop(supervisor);

    // A supervisor asks, but its browser connects only once the agent's
    // phone is another (the agent took it over from a second browser): it
    // does not hear that one — it was not the phone listened in on.
    let late = TestBrowser::offer_later(
        addr,
        "/api/agents/1001/listen",
        SUPERVISOR_TOKEN,
        json!({ "mode": "barge" }),
        SUPERVISOR_HZ,
        Duration::from_secs(3),
    )
    .expect("answered");
    let agent = TestBrowser::connect(addr, false).expect("taken over");
    wait_for("the second browser is the agent's phone", || {
        phone_connected(addr) && agent.heard() > 0
    });
    let mut ever_heard = false;
    let mut watch = |done: &dyn Fn(&Value) -> bool| {
        let now = listen_ins(addr);
        ever_heard |= now[0]["hearing"] == json!(true);
        done(&now)
    };
    wait_for("the late supervisor's browser connects", || {
        watch(&|_| late.connected())
    });
    wait_for("the late supervisor is turned away", || {
        watch(&|now| *now == json!([]))
    });
    assert!(!ever_heard, "the late supervisor joined a phone");
    assert_eq!(agent.frames_carrying(0, SUPERVISOR_HZ), 0);
    drop(late);

    // Listening in again, then the agent's phone goes away: so does the
    // listening in.
    let supervisor = supervisor_offer(addr, "1001", "monitor").expect("answered");
    wait_for("the supervisor hears again", || {
        listen_ins(addr)[0]["hearing"] == json!(true)
    });
    let stop = format!("/api/agents/1001/phone?session={}", agent.answer["session"]);
    let (status, body) = http(addr, "DELETE", &stop, Some(AGENT_TOKEN), None);
    assert_eq!(status, 204, "{body}");
    wait_for("the listening in ends with the agent's phone", || {
        listen_ins(addr) == json!([])
    });
    drop(supervisor);
    drop(agent);
    drop(carrier);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}
