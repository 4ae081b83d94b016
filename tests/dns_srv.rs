//! A trunk named by its domain, found through its DNS SRV records (RFC 3263)
//! and served by several SBCs: a real DNS server (dnsmasq, Debian package
//! `dnsmasq-base`) on a loopback port publishes `_sip._udp.carrier.test`
//! with two targets, each a SIPp on its own port, and `outdial call` is
//! pointed at that server (`[sip] dns_servers`). The first target refuses
//! (503) or stays silent; the call must go on to the second, in the same
//! call, with the domain (no port) in the Request-URI.

mod sip_support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_support::{Sipp, config_text, free_port, json_lines, outdial_call};

const LIMIT: Duration = Duration::from_secs(30);

/// dnsmasq answering on a free loopback port with the given records, and
/// nothing else (no upstream, no hosts file); stopped when dropped.
struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Dnsmasq {
    /// `srv`: (priority, weight, target host, port) for
    /// `_sip._udp.carrier.test`; every target host resolves to 127.0.0.1.
    fn start(dir: &Path, srv: &[(u16, u16, &str, u16)]) -> Dnsmasq {
        let port = free_port();
        let mut command = Command::new("dnsmasq");
        command
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=",
                "--log-queries",
                "--log-facility=-",
            ])
            .arg(format!("--port={port}"));
        for (priority, weight, host, target_port) in srv {
            command.arg(format!(
                "--srv-host=_sip._udp.carrier.test,{host},{target_port},{priority},{weight}"
            ));
            command.arg(format!("--host-record={host},127.0.0.1"));
        }
        let log = std::fs::File::create(dir.join("dnsmasq.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("run dnsmasq (Debian package dnsmasq-base)");
        let mut dnsmasq = Dnsmasq { child, port };
        // Ready once its port is taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            if let Some(status) = dnsmasq.child.try_wait().unwrap() {
                panic!(
                    "dnsmasq exited ({status}):\n{}",
                    std::fs::read_to_string(dir.join("dnsmasq.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "dnsmasq did not bind its port");
            std::thread::sleep(Duration::from_millis(20));
        }
        dnsmasq
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test config with the trunk at `sip:carrier.test` (no port: SRV)
/// and DNS from `dns_port`.
fn write_srv_config(dir: &Path, dns_port: u16) -> std::path::PathBuf {
    let text = config_text(dir, 9)
        .replace("uri = \"sip:127.0.0.1:9\"", "uri = \"sip:carrier.test\"")
        .replace(
            "# dns_servers = [\"192.0.2.53\"]",
            &format!("dns_servers = [\"127.0.0.1:{dns_port}\"]"),
        );
    assert!(
        text.contains("uri = \"sip:carrier.test\"") && text.contains("dns_servers = [\"127.0.0.1:"),
        "config edit failed"
    );
    let path = dir.join("outdial.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn one_call(config: &Path) -> serde_json::Value {
    let output = outdial_call(config, &["+15551234567", "--json", "--hold", "0.3"], LIMIT);
    let mut lines = json_lines(&output);
    assert_eq!(
        lines.len(),
        1,
        "one JSON object per call; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    lines.remove(0)
}

#[test]
fn a_trunk_named_by_its_domain_is_found_by_srv_and_a_503_goes_on_to_the_next_sbc() {
    let dir = tempfile::tempdir().unwrap();
    // SBC a (priority 10) is congested; SBC b (priority 20) answers.
    let mut congested = Sipp::uas("uas_congested.xml", 1, &[]);
    let mut answering = Sipp::uas("uas_answer.xml", 1, &[]);
    let dns = Dnsmasq::start(
        dir.path(),
        &[
            (10, 100, "sbc-a.carrier.test", congested.port),
            (20, 100, "sbc-b.carrier.test", answering.port),
        ],
    );
    let config = write_srv_config(dir.path(), dns.port);
    let call = one_call(&config);
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["sip_code"], 200, "{call}");
    // The domain as written: no port, which would have ruled SRV out.
    assert_eq!(call["uri"], "sip:+15551234567@carrier.test", "{call}");
    congested.assert_passed(LIMIT);
    answering.assert_passed(LIMIT);
}

#[test]
fn a_silent_sbc_is_passed_over_after_timer_b() {
    let dir = tempfile::tempdir().unwrap();
    // SBC a: a port nobody answers on (bound, so no ICMP either).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut answering = Sipp::uas("uas_answer.xml", 1, &[]);
    let dns = Dnsmasq::start(
        dir.path(),
        &[
            (10, 100, "sbc-a.carrier.test", silent_port),
            (20, 100, "sbc-b.carrier.test", answering.port),
        ],
    );
    let config = write_srv_config(dir.path(), dns.port);
    let call = one_call(&config);
    assert_eq!(call["outcome"], "answered", "{call}");
    // The silent SBC got the INVITE and its retransmissions first.
    let mut buffer = [0u8; 4096];
    silent.set_nonblocking(true).unwrap();
    let mut invites = 0;
    while let Ok((n, _)) = silent.recv_from(&mut buffer) {
        if buffer[..n].starts_with(b"INVITE ") {
            invites += 1;
        }
    }
    assert!(invites >= 2, "the first SBC was tried: {invites} INVITEs");
    // Answered after Timer B (64·T1, T1 = 100 ms in the test config).
    let answer_ms = call["answer_ms"].as_f64().unwrap();
    assert!(answer_ms >= 6400.0, "{call}");
    answering.assert_passed(LIMIT);
}
