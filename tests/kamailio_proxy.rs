//! outdial behind a real SIP proxy: Kamailio (Debian package `kamailio`)
//! as the trunk's `outbound_proxy`, record-routing every call, in front of
//! a SIPp callee (`tests/sipp/uas_behind_proxy.xml`). Contact centers put
//! an SBC or a proxy between the dialer and their carriers; a dialer that
//! ignored the route set would send its ACK and BYE straight to the
//! callee's Contact, past the proxy — which a real SBC would never let
//! through, and SIPp alone would not notice. Kamailio logs every request it
//! relays, so the test reads there which requests went through it.

mod sip_support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_support::{Sipp, free_port, json_lines, outdial_call};

const LIMIT: Duration = Duration::from_secs(30);

/// Kamailio on free loopback ports, in its own process group (it forks
/// its workers); the whole group is stopped when dropped.
struct Kamailio {
    child: Child,
    /// Where outdial reaches it.
    port: u16,
    log: PathBuf,
}

/// One request as Kamailio received it (before relaying it).
#[derive(Debug)]
struct Relayed {
    method: String,
    request_uri: String,
    /// `udp` or `tcp`.
    protocol: String,
}

impl Kamailio {
    /// `towards_outdial`: `udp` (one UDP port for both sides) or `tcp`
    /// (outdial's side on TCP, the callee's on a UDP port of its own:
    /// Kamailio then record-routes twice, one entry per side).
    fn start(dir: &Path, towards_outdial: &str) -> Kamailio {
        let port = free_port();
        let listen = match towards_outdial {
            "udp" => format!("listen=udp:127.0.0.1:{port}\ndisable_tcp=yes"),
            "tcp" => format!(
                "listen=tcp:127.0.0.1:{port}\nlisten=udp:127.0.0.1:{}\ntcp_children=1",
                free_port()
            ),
            other => panic!("no transport {other}"),
        };
        let runtime = dir.join("kamailio-run");
        std::fs::create_dir_all(&runtime).unwrap();
        let config = dir.join("kamailio.cfg");
        // A stateful proxy: record-routes the dialog-creating requests and
        // relays them to their Request-URI; loose-routes the in-dialog
        // ones; logs each request as it comes in.
        std::fs::write(
            &config,
            format!(
                r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
auto_aliases=no
{listen}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
request_route {{
    xlog("L_NOTICE", "relaying $rm $ru over $pr\n");
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    record_route();
    t_relay();
}}
"#,
                modules = modules_dir().display(),
            ),
        )
        .unwrap();
        let log = dir.join("kamailio.log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&config)
            .args(["-DD", "-E", "-n", "1", "-Y"])
            .arg(&runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("run kamailio (Debian package kamailio)");
        let mut kamailio = Kamailio { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !kamailio.log().contains("SO_RCVBUF is finally") {
            if let Some(status) = kamailio.child.try_wait().unwrap() {
                panic!("kamailio exited ({status}):\n{}", kamailio.log());
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not open its socket:\n{}",
                kamailio.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The TCP listener too, before outdial's first INVITE needs it.
        while towards_outdial == "tcp"
            && std::net::TcpStream::connect(("127.0.0.1", kamailio.port)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "kamailio does not accept TCP:\n{}",
                kamailio.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        kamailio
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests Kamailio relayed, in order.
    fn relayed(&self) -> Vec<Relayed> {
        self.log()
            .lines()
            .filter_map(|line| {
                let rest = line.split("relaying ").nth(1)?;
                let mut words = rest.split_whitespace();
                let method = words.next()?.to_string();
                let request_uri = words.next()?.to_string();
                let protocol = words.nth(1)?.to_string();
                Some(Relayed {
                    method,
                    request_uri,
                    protocol,
                })
            })
            .collect()
    }
}

/// Debian puts Kamailio's modules under the architecture's library folder.
fn modules_dir() -> PathBuf {
    let candidates = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("kamailio/modules"))
        .chain([PathBuf::from("/usr/lib/kamailio/modules")]);
    candidates
        .into_iter()
        .find(|dir| dir.join("tm.so").exists())
        .expect("Kamailio's modules (Debian package kamailio)")
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // The main process stops its workers on SIGTERM; the group kill is
        // for a worker left behind.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// One `outdial call` over `transport` to the SIPp callee behind Kamailio
/// (the callee ends the call as `ending` says); returns the call's JSON and
/// what Kamailio relayed.
fn call_through_the_proxy(
    transport: &str,
    ending: &str,
    options: &[&str],
) -> (serde_json::Value, Vec<Relayed>) {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path(), transport);
    let mut callee = Sipp::uas("uas_behind_proxy.xml", 1, &["-set", "ending", ending]);
    let config = dir.path().join("outdial.toml");
    let text = sip_support::config_text(dir.path(), callee.port)
        .replace(
            "# outbound_proxy = \"sip:sbc.example.net:5060\"",
            &format!(
                "outbound_proxy = \"sip:127.0.0.1:{};transport={transport}\"",
                kamailio.port
            ),
        )
        .replace(
            "transport = \"udp\"                # udp | tcp",
            &format!("transport = \"{transport}\""),
        );
    assert!(
        text.contains("outbound_proxy = \"sip:127.0.0.1:")
            && text.contains(&format!("transport = \"{transport}\"\n")),
        "config edit failed"
    );
    std::fs::write(&config, text).unwrap();
    let args: Vec<&str> = ["+15551234567", "--json"]
        .into_iter()
        .chain(options.iter().copied())
        .collect();
    let output = outdial_call(&config, &args, LIMIT);
    let mut lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "one JSON object per call");
    callee.assert_passed(LIMIT);
    (lines.remove(0), kamailio.relayed())
}

/// What Kamailio relayed, in short: each request's method, the user part of
/// its Request-URI (`callee`, `outdial`, or the number dialed) and the
/// protocol it came over.
fn summary(relayed: &[Relayed]) -> Vec<(String, String, String)> {
    relayed
        .iter()
        .map(|r| {
            let user = r
                .request_uri
                .trim_start_matches("sip:")
                .split('@')
                .next()
                .unwrap_or("")
                .to_string();
            (r.method.clone(), user, r.protocol.clone())
        })
        .collect()
}

fn expected(requests: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    requests
        .iter()
        .map(|&(method, user, protocol)| (method.into(), user.into(), protocol.into()))
        .collect()
}

#[test]
fn a_call_through_a_record_routing_proxy_is_acked_and_hung_up_through_it() {
    let (call, relayed) = call_through_the_proxy("udp", "caller", &["--hold", "0.5"]);
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["sip_code"], 200, "{call}");
    // The INVITE went to the proxy (the outbound proxy); the ACK and the
    // BYE too, by the route set Kamailio recorded, towards the callee's
    // Contact.
    assert_eq!(
        summary(&relayed),
        expected(&[
            ("INVITE", "+15551234567", "udp"),
            ("ACK", "callee", "udp"),
            ("BYE", "callee", "udp"),
        ]),
        "{relayed:#?}"
    );
}

#[test]
fn the_callees_bye_through_the_proxy_ends_the_call() {
    let (call, relayed) = call_through_the_proxy("udp", "callee", &["--hold", "10"]);
    assert_eq!(call["outcome"], "answered", "{call}");
    // The callee hung up after a second, well inside the 10 s hold.
    let duration = call["duration_ms"].as_f64().unwrap();
    assert!(duration < 5000.0, "{call}");
    // The callee's BYE reached outdial's Contact through the proxy.
    assert_eq!(
        summary(&relayed),
        expected(&[
            ("INVITE", "+15551234567", "udp"),
            ("ACK", "callee", "udp"),
            ("BYE", "outdial", "udp"),
        ]),
        "{relayed:#?}"
    );
}

/// A callee that never answers: the ring timeout's CANCEL goes to the
/// proxy (hop by hop, the branch of outdial's INVITE), Kamailio cancels
/// its own branch, and the 487 comes back and is ACKed — the callee's
/// SIPp gets its CANCEL and its ACK.
#[test]
fn a_ring_timeouts_cancel_through_the_proxy_ends_the_ringing() {
    let (call, relayed) = call_through_the_proxy("udp", "never", &["--ring-timeout", "1"]);
    assert_eq!(call["outcome"], "no_answer", "{call}");
    assert_eq!(call["sip_code"], 487, "{call}");
    assert_eq!(
        summary(&relayed)[..2],
        expected(&[
            ("INVITE", "+15551234567", "udp"),
            ("CANCEL", "+15551234567", "udp")
        ]),
        "{relayed:#?}"
    );
}

/// The trunk over TCP to a proxy that reaches the callee over UDP: Kamailio
/// record-routes twice (`r2=on`, its TCP address for outdial's side, its
/// UDP one for the callee's), so outdial's route set has two entries and
/// its ACK and BYE must go to the first over TCP — Kamailio has no UDP
/// socket on that port (with the route set in Record-Route order, not
/// reversed, it fails: checked). The callee's BYE, sent to Kamailio's UDP
/// side, comes back through it and ends the call.
#[test]
fn a_call_over_tcp_follows_the_proxys_double_record_route() {
    for (ending, last) in [
        ("caller", ("BYE", "callee", "tcp")),
        ("callee", ("BYE", "outdial", "udp")),
    ] {
        let (call, relayed) = call_through_the_proxy("tcp", ending, &["--hold", "3"]);
        assert_eq!(call["outcome"], "answered", "{ending}: {call}");
        assert_eq!(
            summary(&relayed),
            expected(&[
                ("INVITE", "+15551234567", "tcp"),
                ("ACK", "callee", "tcp"),
                last,
            ]),
            "{ending}: {relayed:#?}"
        );
    }
}

/// A ring group behind the proxy: two phones answer the same INVITE, and
/// Kamailio passes both 200s on (a 2xx to an INVITE is always forwarded,
/// RFC 3261 §16.7), each with its own To tag and Contact and the proxy's
/// Record-Route (`tests/sipp/uas_forked_answers.xml` answers twice, the
/// second after the first is ACKed; two SIPp phones answering "at once"
/// would race Kamailio's CANCEL of the slower branch). outdial keeps the
/// first as the call, and must ACK the second and hang it up at once (RFC
/// 3261 §13.2.2.4) — each through the proxy, to its own Contact (without
/// the BYE of the second it fails: checked).
#[test]
fn both_answers_of_a_forked_call_are_acked_and_the_second_is_hung_up_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path(), "udp");
    let mut phones = Sipp::uas("uas_forked_answers.xml", 1, &[]);
    let config = dir.path().join("outdial.toml");
    let text = sip_support::config_text(dir.path(), phones.port).replace(
        "# outbound_proxy = \"sip:sbc.example.net:5060\"",
        &format!("outbound_proxy = \"sip:127.0.0.1:{}\"", kamailio.port),
    );
    std::fs::write(&config, text).unwrap();
    let output = outdial_call(&config, &["+15551234567", "--json", "--hold", "1"], LIMIT);
    let call = json_lines(&output).remove(0);
    assert_eq!(call["outcome"], "answered", "{call}");
    assert!(call["duration_ms"].as_f64().unwrap() >= 1000.0, "{call}");
    phones.assert_passed(LIMIT);
    assert_eq!(
        summary(&kamailio.relayed()),
        expected(&[
            ("INVITE", "+15551234567", "udp"),
            ("ACK", "first", "udp"),
            ("ACK", "second", "udp"),
            ("BYE", "second", "udp"),
            ("BYE", "first", "udp"),
        ]),
    );
}
