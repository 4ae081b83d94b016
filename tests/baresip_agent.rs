//! A real softphone as the agent's phone: baresip (Debian package
//! `baresip-core`) registers with outdial's registrar (digest), auto-answers
//! the reservation call and speaks a 700 Hz "voice" from a file; SIPp plays
//! the carrier. The agent logs in on the API *before* the softphone starts,
//! so the registration is what gets the phone called. Two live persons are
//! then bridged in turn into the one reservation call: baresip must hear the
//! zip tone then each customer (its own decoded-audio dump, module
//! `sndfile`), the customers must hear the agent (the bridge recordings'
//! agent channel carries the 700 Hz); the agent then holds and resumes the
//! reservation call from the softphone (re-INVITEs outdial must answer, and
//! stop then restart its RTP: baresip's own packet counts tell), and when
//! the agent hangs up the softphone (baresip's `ctrl_tcp` command `hangup`)
//! the dialer must see the phone gone.

mod sip_support;
mod softphone_support;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sip_support::{Sipp, free_port};
use softphone_support::*;
use support::{Running, http};

/// baresip with its own configuration directory; killed when dropped.
struct Baresip {
    child: Child,
    log: PathBuf,
    dumps: PathBuf,
    control: SocketAddr,
}

impl Baresip {
    /// Registers as agent `a1` at `registrar` over `transport` (`udp` or
    /// `tcp`) from a free port, answers every call at once, sends `voice`
    /// and dumps what it hears.
    fn start(dir: &Path, registrar: SocketAddr, transport: &str, voice: &Path) -> Baresip {
        let config_dir = dir.join("baresip");
        let dumps = dir.join("baresip-dumps");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(&dumps).unwrap();
        let sip_port = free_port();
        let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
        // aubridge is a player that plays nowhere (no sound card here);
        // sndfile dumps each stream's decoded and encoded audio to WAV.
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             audio_player aubridge,nowhere\n\
             audio_alert aubridge,nowhere\n\
             audio_source aufile,{voice}\n\
             rtp_stats yes\n\
             ausrc_srate 8000\n\
             auplay_srate 8000\n\
             ausrc_channels 1\n\
             auplay_channels 1\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module aubridge.so\n\
             module sndfile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen {control}\n\
             snd_path {dumps}\n",
            voice = voice.display(),
            dumps = dumps.display(),
        );
        std::fs::write(config_dir.join("config"), config).unwrap();
        std::fs::write(
            config_dir.join("accounts"),
            format!(
                "<sip:a1@{registrar};transport={transport}>;auth_pass={AGENT_PASSWORD};\
                 regint=60;answermode=auto;audio_codecs=PCMU,PCMA\n"
            ),
        )
        .unwrap();
        let log = dir.join("baresip.log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&config_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("run baresip (Debian package baresip-core)");
        Baresip {
            child,
            log,
            dumps,
            control,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends one command to baresip's TCP control interface (JSON in a
    /// netstring) and returns its response.
    fn command(&self, command: &str) -> Value {
        let mut stream = TcpStream::connect_timeout(&self.control, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("baresip ctrl_tcp at {}: {e}", self.control));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let body = serde_json::json!({"command": command, "token": "t1"}).to_string();
        stream
            .write_all(format!("{}:{body},", body.len()).as_bytes())
            .unwrap();
        // Responses and events arrive as netstrings; take the response.
        let mut received = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut buffer = [0u8; 4096];
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(_) => break,
            }
            for message in netstrings(&received) {
                if let Ok(value) = serde_json::from_slice::<Value>(message)
                    && value["response"] == true
                {
                    return value;
                }
            }
        }
        panic!(
            "no response from baresip to {command}: {}",
            String::from_utf8_lossy(&received)
        );
    }

    /// The one decoded-audio dump (what the softphone heard), once
    /// baresip has closed it: its `sndfile` module writes the WAV sizes
    /// only then, after it has processed the BYE of the call, which can
    /// come a while after outdial has exited.
    fn heard(&self) -> PathBuf {
        let decoded: Vec<PathBuf> = std::fs::read_dir(&self.dumps)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        assert_eq!(
            decoded.len(),
            1,
            "one reservation call, one decoded stream: {decoded:?}"
        );
        let dump = decoded[0].clone();
        wait_for(Duration::from_secs(10), "baresip to close its dump", || {
            let bytes = std::fs::read(&dump).ok()?;
            let at = bytes.windows(4).position(|w| w == b"data")?;
            let declared = u32::from_le_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?);
            (declared > 0).then_some(())
        });
        dump
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// baresip's end-of-call RTP counts (`packets: SENT RECEIVED`).
fn rtp_summary(log: &str) -> (u64, u64) {
    let line = log
        .lines()
        .find(|l| l.trim_start().starts_with("packets:"))
        .unwrap_or_else(|| panic!("no RTP summary in baresip's log:\n{log}"));
    let counts: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{line}");
    (counts[0], counts[1])
}

/// The complete netstrings at the start of `bytes`.
fn netstrings(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(colon) = bytes.iter().position(|&b| b == b':') {
        let Some(length) = std::str::from_utf8(&bytes[..colon])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        let end = colon + 1 + length;
        if bytes.len() <= end {
            break;
        }
        out.push(&bytes[colon + 1..end]);
        bytes = &bytes[end + 1..];
    }
    out
}

#[test]
fn a_baresip_softphone_registers_takes_two_customers_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    // Numbers ending in 1: the carrier answers with a live person.
    let Dialer {
        mut carrier,
        config_path,
        mut running,
        addr,
        registrar,
        voice,
    } = start_dialer(
        dir.path(),
        2,
        |text| text,
        "id,phone\ncustomer-1,+12025551001\ncustomer-2,+12025551011\n",
    );

    // Logged in before the softphone runs: nothing to call yet.
    let (status, body) = agent_post(addr, "login", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(agent(addr)["phone_connected"], false);

    let phone = Baresip::start(dir.path(), registrar, "udp", &voice);
    running.wait_for_message("agent phone registered", Duration::from_secs(15));
    wait_for(Duration::from_secs(15), "the reservation call up", || {
        (agent(addr)["phone_connected"] == true).then_some(())
    });
    let (status, body) = agent_post(addr, "ready", None);
    assert_eq!(status, 200, "{body}");
    start_campaign(addr);

    // Each customer: on call, then wrap-up when they hang up, then the
    // agent's disposition.
    for customer in 1..=2 {
        wait_for(
            Duration::from_secs(40),
            &format!("customer {customer} on the agent's line"),
            || (agent(addr)["state"] == "on_call").then_some(()),
        );

        wait_for(
            Duration::from_secs(30),
            &format!("customer {customer} hung up"),
            || (agent(addr)["state"] == "wrap_up").then_some(()),
        );
        let (status, body) = agent_post(
            addr,
            "disposition",
            Some(r#"{"code":"SALE","notes":"via baresip"}"#),
        );
        assert_eq!(status, 200, "{body}");
    }

    // The agent puts the reservation call on hold from the softphone and
    // takes it back: re-INVITEs with a=sendonly, then sendrecv, answered by
    // outdial (recvonly, sendrecv), which stops sending meanwhile and then
    // sends again; the agent stays connected, Not ready ("phone on hold":
    // no customer for a phone nobody listens on) while the phone holds and
    // Ready again once it resumes. (After
    // the customers: baresip 1.0 stops writing its `sndfile` dump of what
    // it decodes once a hold restarts its player, though it goes on
    // receiving — tcpdump showed outdial's 50 packets/s before and after.)
    let response = phone.command("hold");
    assert_eq!(response["ok"], true, "{response}");
    wait_for(
        Duration::from_secs(5),
        "not ready while the phone holds",
        || {
            let view = agent(addr);
            (view["state"] == "not_ready" && view["reason"] == "phone on hold").then_some(())
        },
    );
    let view = agent(addr);
    assert_eq!(
        (&view["phone_connected"], &view["phone_on_hold"]),
        (&Value::from(true), &Value::from(true)),
        "{view}"
    );
    let response = phone.command("resume");
    assert_eq!(response["ok"], true, "{response}");
    std::thread::sleep(Duration::from_millis(3000));
    let view = agent(addr);
    assert_eq!(
        (
            &view["state"],
            &view["phone_connected"],
            &view["phone_on_hold"]
        ),
        (
            &Value::from("ready"),
            &Value::from(true),
            &Value::from(false)
        ),
        "{view}"
    );

    // The agent hangs up the softphone: the dialer sees the phone gone and
    // offers the agent no more calls.
    let response = phone.command("hangup");
    assert_eq!(response["ok"], true, "{response}");
    wait_for(Duration::from_secs(10), "the phone seen hung up", || {
        (agent(addr)["phone_connected"] == false).then_some(())
    });
    running.signal("TERM");
    let status = running.child.wait().unwrap();
    assert!(status.success(), "outdial exit status {status}");
    carrier.assert_passed(Duration::from_secs(10));

    let log = phone.log();
    assert!(
        log.contains("200 OK") && log.contains("Call established"),
        "baresip did not register and answer:\n{log}"
    );
    // baresip's RTP summary (`rtp_stats`): it sent nothing while holding
    // and outdial sent nothing to it meanwhile; had outdial not resumed,
    // the 3 s after the resume (150 packets) would be missing.
    let (sent, received) = rtp_summary(&log);
    assert!(
        received + 25 >= sent && sent > 500,
        "baresip sent {sent} RTP packets and received {received}:\n{log}"
    );
    assert!(
        log.contains("call: hold") && log.contains("call: resume"),
        "{log}"
    );
    let out = dir.path().join("attempts.csv");
    let (headers, rows) = support::export_csv(&config_path, "soft", true, &out);
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(&row[column("outcome")], "human", "{row:?}");
        assert_eq!(&row[column("agent")], "a1", "{row:?}");
        assert_eq!(&row[column("disposition")], "SALE", "{row:?}");
        assert_eq!(&row[column("abandoned")], "0", "{row:?}");
    }

    // What the softphone heard, on its one call: the zip tone before each
    // customer, and each customer's speech after it; what the customers
    // heard: the softphone's 700 Hz.
    assert_each_customer_heard_after_a_zip(&windows(&phone.heard(), 0), 2);
    assert_the_agent_was_heard_in_the_recordings(dir.path(), 2);
}

/// The same softphone over SIP/TCP: it registers on outdial's TCP listener,
/// and the reservation call reaches it over TCP at the registered contact;
/// hanging up on the phone ends it.
#[test]
fn a_baresip_softphone_over_tcp_registers_and_takes_the_reservation_call() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("outdial.toml");
    // No customer is dialed here: the trunk address is never used.
    std::fs::write(&config_path, config(dir.path(), free_port())).unwrap();
    let voice = agent_voice(dir.path());
    let mut running = Running::start(&config_path);
    let listening = running.wait_for_message("outdial listening", Duration::from_secs(20));
    let addr: SocketAddr = listening["http"].as_str().unwrap().parse().unwrap();
    let registrar: SocketAddr = listening["sip_tcp"]
        .as_str()
        .unwrap_or_else(|| panic!("no TCP listener: {listening}"))
        .parse()
        .unwrap();
    let phone = Baresip::start(dir.path(), registrar, "tcp", &voice);
    let registered = running.wait_for_message("agent phone registered", Duration::from_secs(15));
    let contact = registered["contact"].as_str().unwrap_or_default();
    assert!(contact.contains("transport=tcp"), "{registered}");
    let (status, body) = agent_post(addr, "login", None);
    assert_eq!(status, 200, "{body}");
    wait_for(Duration::from_secs(15), "the reservation call up", || {
        (agent(addr)["phone_connected"] == true).then_some(())
    });
    let (status, body) = agent_post(addr, "ready", None);
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(2000));
    let response = phone.command("hangup");
    assert_eq!(response["ok"], true, "{response}");
    wait_for(Duration::from_secs(10), "the phone seen hung up", || {
        (agent(addr)["phone_connected"] == false).then_some(())
    });
    running.signal("TERM");
    let status = running.child.wait().unwrap();
    assert!(status.success(), "outdial exit status {status}");
    let log = phone.log();
    assert!(
        log.contains("{0/TCP/v4} 200 OK"),
        "not registered over TCP:\n{log}"
    );
    let (sent, received) = rtp_summary(&log);
    assert!(
        sent > 50 && received + 25 >= sent,
        "baresip sent {sent} RTP packets and received {received}:\n{log}"
    );
}

/// One customer test: the SIPp carrier for one call, outdial on `config`
/// (edited from [`config`] by the caller) with `list` imported, and baresip
/// registered as agent a1.
struct OneCustomer {
    carrier: Sipp,
    config_path: PathBuf,
    running: Running,
    addr: SocketAddr,
    phone: Baresip,
}

fn one_customer(dir: &Path, edit: impl Fn(String) -> String, list: &str) -> OneCustomer {
    let Dialer {
        carrier,
        config_path,
        mut running,
        addr,
        registrar,
        voice,
    } = start_dialer(dir, 1, edit, list);
    let phone = Baresip::start(dir, registrar, "udp", &voice);
    running.wait_for_message("agent phone registered", Duration::from_secs(15));
    OneCustomer {
        carrier,
        config_path,
        running,
        addr,
        phone,
    }
}

/// baresip as a per-call phone (`connection = "per_call"`, auto-answer):
/// no call to it until a live person is connected; then it is rung,
/// answers, hears the zip tone and the customer, and is hung up after.
#[test]
fn a_baresip_softphone_rung_per_call_takes_a_customer() {
    let dir = tempfile::tempdir().unwrap();
    let OneCustomer {
        mut carrier,
        config_path,
        mut running,
        addr,
        phone,
    } = one_customer(
        dir.path(),
        |text| {
            text.replace(
                "campaigns = [\"soft\"]\n",
                "campaigns = [\"soft\"]\nconnection = \"per_call\"\n",
            )
        },
        "id,phone\ncustomer-1,+12025551001\n",
    );
    for action in ["login", "ready"] {
        let (status, body) = agent_post(addr, action, None);
        assert_eq!(status, 200, "{action}: {body}");
    }
    assert_eq!(agent(addr)["phone_connected"], false, "not called yet");
    start_campaign(addr);
    wait_for(Duration::from_secs(40), "the customer on the line", || {
        (agent(addr)["state"] == "on_call").then_some(())
    });
    assert_eq!(agent(addr)["phone_connected"], true);
    wait_for(Duration::from_secs(30), "the customer hung up", || {
        (agent(addr)["state"] == "wrap_up").then_some(())
    });
    wait_for(Duration::from_secs(10), "the phone hung up after", || {
        (agent(addr)["phone_connected"] == false).then_some(())
    });
    let (status, body) = agent_post(addr, "disposition", Some(r#"{"code":"SALE"}"#));
    assert_eq!(status, 200, "{body}");
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    carrier.assert_passed(Duration::from_secs(10));
    let out = dir.path().join("attempts.csv");
    let (headers, rows) = support::export_csv(&config_path, "soft", true, &out);
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(&rows[0][column("outcome")], "human", "{rows:?}");
    assert_eq!(&rows[0][column("abandoned")], "0", "{rows:?}");
    assert_eq!(&rows[0][column("agent")], "a1", "{rows:?}");
    // What the softphone heard on that one call: the zip tone, then speech.
    assert_each_customer_heard_after_a_zip(&windows(&phone.heard(), 0), 1);
}

/// The agent presses Hold on the softphone during a call (baresip's
/// `hold`: a re-INVITE with a=sendonly) and Resume: the customer is held
/// as from the desktop (the agent view shows it, the CDR has the time).
#[test]
fn the_softphones_hold_button_holds_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let OneCustomer {
        mut carrier,
        config_path,
        mut running,
        addr,
        phone,
    } = one_customer(
        dir.path(),
        |text| text,
        "id,phone\ncustomer-1,+12025551001\n",
    );
    let (status, body) = agent_post(addr, "login", None);
    assert_eq!(status, 200, "{body}");
    wait_for(Duration::from_secs(15), "the reservation call up", || {
        (agent(addr)["phone_connected"] == true).then_some(())
    });
    let (status, body) = agent_post(addr, "ready", None);
    assert_eq!(status, 200, "{body}");
    start_campaign(addr);
    wait_for(Duration::from_secs(40), "the customer on the line", || {
        (agent(addr)["state"] == "on_call").then_some(())
    });
    let response = phone.command("hold");
    assert_eq!(response["ok"], true, "{response}");
    wait_for(Duration::from_secs(5), "the customer on hold", || {
        agent(addr)["on_hold_s"].is_u64().then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let response = phone.command("resume");
    assert_eq!(response["ok"], true, "{response}");
    wait_for(Duration::from_secs(5), "the customer off hold", || {
        agent(addr)["on_hold_s"].is_null().then_some(())
    });
    wait_for(Duration::from_secs(30), "the customer hung up", || {
        (agent(addr)["state"] == "wrap_up").then_some(())
    });
    let (status, body) = agent_post(addr, "disposition", Some(r#"{"code":"SALE"}"#));
    assert_eq!(status, 200, "{body}");
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    carrier.assert_passed(Duration::from_secs(10));
    let out = dir.path().join("attempts.csv");
    let (headers, rows) = support::export_csv(&config_path, "soft", true, &out);
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let hold_ms: u64 = rows[0][column("hold_ms")].parse().unwrap();
    assert!((1000..=6000).contains(&hold_ms), "{rows:?}");
    assert!(phone.log().contains("call: hold"), "{}", phone.log());
}

/// SIT segment 1 of the carrier's intercept (IC): 913.8 Hz.
const SIT_1_HZ: f64 = 913.8;

#[test]
fn a_preview_agent_on_baresip_hears_the_carriers_early_media() {
    let dir = tempfile::tempdir().unwrap();
    // A number ending in 6: 183 with early media (SIT and an announcement).
    let OneCustomer {
        mut carrier,
        config_path: _,
        mut running,
        addr,
        phone,
    } = one_customer(
        dir.path(),
        |text| {
            let text = text.replace(
                "mode = \"progressive\"\nlines_per_agent = 1.0\n",
                "mode = \"preview\"\n",
            );
            assert!(text.contains("mode = \"preview\""));
            text
        },
        "id,phone\nvacant,+12025551006\n",
    );
    let (status, body) = agent_post(addr, "login", None);
    assert_eq!(status, 200, "{body}");
    wait_for(Duration::from_secs(10), "the reservation call up", || {
        (agent(addr)["phone_connected"] == true).then_some(())
    });
    let (status, body) = agent_post(addr, "ready", None);
    assert_eq!(status, 200, "{body}");
    start_campaign(addr);
    wait_for(Duration::from_secs(10), "the record on screen", || {
        let (status, _) = agent_post(addr, "preview", None);
        (status == 200).then_some(())
    });
    let (status, body) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{body}");
    // CPA hears the intercept in the early media and cancels; the agent is
    // free again, without a wrap-up.
    wait_for(Duration::from_secs(20), "the intercepted call over", || {
        let (_, body) = http(
            addr,
            "GET",
            "/api/campaigns/soft/stats",
            Some(SUPERVISOR),
            None,
        );
        let stats = json(&body);
        (stats["outcomes"]["sit"] == 1 && agent(addr)["state"] == "ready").then_some(())
    });
    // Let baresip's dump catch up, then stop everything.
    std::thread::sleep(Duration::from_millis(500));
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    carrier.assert_passed(Duration::from_secs(10));
    // The agent heard the carrier's tones, not only our ringback.
    let heard = windows(&phone.heard(), 0);
    let sit: Vec<(usize, usize)> = tone_runs(&heard, SIT_1_HZ)
        .into_iter()
        .filter(|&(_, length)| length >= 8)
        .collect();
    assert!(
        !sit.is_empty(),
        "the agent never heard the carrier's 913.8 Hz SIT segment: runs {:?}",
        tone_runs(&heard, SIT_1_HZ)
    );
    drop(phone);
}
