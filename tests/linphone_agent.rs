//! A second real softphone as the agent's phone: Linphone's command-line
//! client (`linphonec`, Debian package `linphone-cli`; liblinphone 5,
//! belle-sip — a SIP stack unrelated to baresip's). It registers with
//! outdial's registrar (digest), auto-answers the reservation call, speaks a
//! 700 Hz "voice" from a file and records what it hears (its "files instead
//! of a sound card" mode). A live person from the SIPp carrier is bridged
//! into the reservation call: Linphone must hear the zip tone then the
//! customer, and the customer the agent. The agent then puts the call on
//! hold from the phone and takes it back — Linphone's re-INVITEs offer
//! opus, speex, G.711, G.729 and telephone-event at three clock rates,
//! which outdial must answer with PCMU and the 8 kHz telephone-event,
//! `recvonly` then `sendrecv` — and finally hangs up from the phone.

mod sip_support;
mod softphone_support;
mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use sip_support::free_port;
use softphone_support::*;

/// `linphonec` with its own home, configuration and logs; killed when
/// dropped.
struct Linphone {
    child: Child,
    stdin: ChildStdin,
    debug_log: PathBuf,
    heard: PathBuf,
}

impl Linphone {
    /// Registers as agent `a1` at `registrar` (UDP) from a free port,
    /// answers every call at once, sends `voice` and records what it hears.
    fn start(dir: &Path, registrar: SocketAddr, voice: &Path) -> Linphone {
        // liblinphone keeps a database under $HOME and does not start its
        // core when it cannot open it: no SIP listening point, and every
        // INVITE answered 503 ("global state is not on").
        let home = dir.join("linphone-home");
        std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
        let config = dir.join("linphonerc");
        let sip_port = free_port();
        let rtp_port = free_port();
        std::fs::write(
            &config,
            format!(
                "[sip]\n\
                 sip_port={sip_port}\n\
                 sip_tcp_port=0\n\
                 sip_tls_port=0\n\
                 register_only_when_network_is_up=0\n\
                 [rtp]\n\
                 audio_rtp_port={rtp_port}\n\
                 [sound]\n\
                 echocancellation=0\n\
                 [net]\n\
                 firewall_policy=0\n"
            ),
        )
        .unwrap();
        let debug_log = dir.join("linphone-debug.log");
        let heard = dir.join("linphone-heard.wav");
        let mut child = Command::new("linphonec")
            .arg("-c")
            .arg(&config)
            .args(["-d", "4", "-l"])
            .arg(&debug_log)
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(dir.join("linphone.out")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("run linphonec (Debian package linphone-cli)");
        let stdin = child.stdin.take().unwrap();
        let mut phone = Linphone {
            child,
            stdin,
            debug_log,
            heard,
        };
        // No sound card here: files instead.
        phone.command("soundcard use files");
        phone.command("autoanswer enable");
        phone.command(&format!("play {}", voice.display()));
        let record = format!("record {}", phone.heard.display());
        phone.command(&record);
        phone.register(registrar);
        phone
    }

    fn register(&mut self, registrar: SocketAddr) {
        self.command(&format!(
            "register sip:a1@{registrar} sip:{registrar} {AGENT_PASSWORD}"
        ));
    }

    /// One line on linphonec's command prompt; it reads them in order.
    fn command(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("linphonec's stdin");
        self.stdin.flush().expect("linphonec's stdin");
        // Commands that change the core take effect on its next iteration.
        std::thread::sleep(Duration::from_millis(300));
    }

    fn debug_log(&self) -> String {
        std::fs::read_to_string(&self.debug_log).unwrap_or_default()
    }

    /// Quits and returns what the phone heard (the record file is complete
    /// once linphonec has exited).
    fn quit(mut self) -> (PathBuf, String) {
        self.command("quit");
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "linphonec did not quit:\n{}",
                self.debug_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (self.heard.clone(), self.debug_log())
    }
}

/// outdial's SDP answers to Linphone's offers (the re-INVITEs), in the
/// order Linphone received them: the bodies of outdial's origin after its
/// first (outdial's own offer in the reservation INVITE).
fn outdial_answers(log: &str) -> Vec<String> {
    // SIP bodies end their lines in CRLF, the log's own lines in LF.
    let log = log.replace("\r\n", "\n");
    let bodies: Vec<String> = log
        .split("\nv=0\n")
        .skip(1)
        .filter(|body| body.starts_with("o=outdial "))
        .map(|body| body.split("\n\n").next().unwrap_or(body).to_string())
        .collect();
    let mut versions_seen = Vec::new();
    bodies
        .into_iter()
        .filter(|body| {
            // The same body is logged again when liblinphone parses it.
            let version = body.split_whitespace().nth(2).unwrap_or("").to_string();
            let new = !versions_seen.contains(&version);
            versions_seen.push(version);
            new
        })
        .skip(1)
        .collect()
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_linphone_softphone_registers_takes_a_customer_holds_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    // A number ending in 1: the carrier answers with a live person.
    let Dialer {
        mut carrier,
        config_path,
        mut running,
        addr,
        registrar,
        voice,
    } = start_dialer(
        dir.path(),
        1,
        |text| text,
        "id,phone\ncustomer-1,+12025551001\n",
    );
    let (status, body) = agent_post(addr, "login", None);
    assert_eq!(status, 200, "{body}");

    let mut phone = Linphone::start(dir.path(), registrar, &voice);
    // One CI run in many, no REGISTER reached outdial within 15 s (the
    // command given while linphonec's core was still starting?): ask
    // once more before failing, and show linphonec's own log then.
    if running
        .try_wait_for_message("agent phone registered", Duration::from_secs(15))
        .is_none()
    {
        phone.register(registrar);
        if running
            .try_wait_for_message("agent phone registered", Duration::from_secs(15))
            .is_none()
        {
            let log = phone.debug_log();
            let tail: String = log
                .lines()
                .rev()
                .take(80)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("linphonec did not register; the end of its log:\n{tail}");
        }
    }
    wait_for(Duration::from_secs(15), "the reservation call up", || {
        (agent(addr)["phone_connected"] == true).then_some(())
    });
    let (status, body) = agent_post(addr, "ready", None);
    assert_eq!(status, 200, "{body}");
    start_campaign(addr);
    wait_for(Duration::from_secs(40), "the customer on the line", || {
        (agent(addr)["state"] == "on_call").then_some(())
    });
    wait_for(Duration::from_secs(30), "the customer hung up", || {
        (agent(addr)["state"] == "wrap_up").then_some(())
    });
    let (status, body) = agent_post(
        addr,
        "disposition",
        Some(r#"{"code":"SALE","notes":"via linphone"}"#),
    );
    assert_eq!(status, 200, "{body}");

    // Hold and resume from the phone: Linphone's own offers.
    phone.command("pause");
    wait_for(Duration::from_secs(10), "Linphone's hold answered", || {
        phone
            .debug_log()
            .contains("to LinphoneCallPaused")
            .then_some(())
    });
    // A phone on hold takes no customer: Not ready until it resumes.
    let view = agent(addr);
    assert_eq!(
        (&view["state"], &view["reason"], &view["phone_connected"]),
        (&"not_ready".into(), &"phone on hold".into(), &true.into()),
        "{view}"
    );
    phone.command("resume");
    wait_for(
        Duration::from_secs(10),
        "Linphone's resume answered",
        || {
            let log = phone.debug_log();
            let paused = log.rfind("to LinphoneCallPaused")?;
            log[paused..]
                .contains("to LinphoneCallStreamsRunning")
                .then_some(())
        },
    );
    wait_for(
        Duration::from_secs(5),
        "Ready again after the resume",
        || (agent(addr)["state"] == "ready").then_some(()),
    );
    assert_eq!(agent(addr)["phone_connected"], true);

    // The agent hangs up on the phone: the dialer sees it gone.
    phone.command("terminate");
    wait_for(Duration::from_secs(10), "the phone seen hung up", || {
        (agent(addr)["phone_connected"] == false).then_some(())
    });
    let (heard, log) = phone.quit();
    running.signal("TERM");
    let status = running.child.wait().unwrap();
    assert!(status.success(), "outdial exit status {status}");
    carrier.assert_passed(Duration::from_secs(10));

    // Linphone's re-INVITEs offered its whole codec list (opus first, and
    // telephone-event at three clock rates); outdial's answers, as
    // Linphone received them, kept PCMU and the 8 kHz telephone-event,
    // went recvonly for the hold and sendrecv again for the resume.
    assert!(
        log.contains("a=sendonly") && log.contains("opus/48000"),
        "Linphone did not offer a hold with its codecs:\n{log}"
    );
    let answers = outdial_answers(&log);
    let directions: Vec<&str> = answers
        .iter()
        .map(|sdp| {
            assert!(
                sdp.contains("RTP/AVP 0 101\n")
                    && sdp.contains("a=rtpmap:101 telephone-event/8000"),
                "an answer to Linphone's offer that is not PCMU + telephone-event/8000:\n{sdp}"
            );
            ["a=recvonly", "a=sendrecv", "a=sendonly", "a=inactive"]
                .into_iter()
                .find(|d| sdp.contains(d))
                .unwrap_or("none")
        })
        .collect();
    assert_eq!(directions, ["a=recvonly", "a=sendrecv"], "{answers:#?}");
    let out = dir.path().join("attempts.csv");
    let (headers, rows) = support::export_csv(&config_path, "soft", true, &out);
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(&rows[0][column("outcome")], "human", "{rows:?}");
    assert_eq!(&rows[0][column("agent")], "a1", "{rows:?}");
    assert_eq!(&rows[0][column("disposition")], "SALE", "{rows:?}");
    assert_eq!(&rows[0][column("abandoned")], "0", "{rows:?}");
    assert_each_customer_heard_after_a_zip(&windows(&heard, 0), 1);
    assert_the_agent_was_heard_in_the_recordings(dir.path(), 1);
}
