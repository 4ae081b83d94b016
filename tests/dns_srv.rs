//! A trunk named by its domain, found through its DNS SRV records (RFC 3263)
//! and served by several SBCs: a real DNS server (dnsmasq, Debian package
//! `dnsmasq-base`) on a loopback port publishes `_sip._udp.carrier.test`
//! with two targets, each a SIPp on its own port, and `outdial call` is
//! pointed at that server (`[sip] dns_servers`). The first target refuses
//! (503) or stays silent; the call must go on to the second, in the same
//! call, with the domain (no port) in the Request-URI. And `outdial run`
//! with a dead first SBC: the keepalive finds the trunk up through the
//! second, and the campaign's calls go there.

mod sip_support;
mod support;

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
        Self::start_at(dir, free_port(), srv)
    }

    /// As [`Dnsmasq::start`], on `port`.
    fn start_at(dir: &Path, port: u16, srv: &[(u16, u16, &str, u16)]) -> Dnsmasq {
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

/// A node whose first SBC is dead: its OPTIONS keepalive passes on to the
/// second SBC, which answers, so the trunk is up (not held down, as it was
/// when the keepalive asked only the first address) and a progressive
/// campaign's calls reach the second SBC.
#[test]
fn a_running_node_keeps_dialing_through_the_second_sbc_when_the_first_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let second = Sipp::uas("sbc_busy_or_options.xml", 10_000, &["-timeout", "90s"]);
    let dns = Dnsmasq::start(
        dir.path(),
        &[
            (10, 100, "sbc-a.carrier.test", silent_port),
            (20, 100, "sbc-b.carrier.test", second.port),
        ],
    );
    let config_path = srv_node(dir.path(), dns.port, 30, 20);
    let mut running = support::Running::start(&config_path);
    let addr = running.wait_until_listening();
    // The first keepalive to sbc a times out after 64·T1 = 6.4 s and goes
    // on to sbc b: the trunk's first state is up.
    let line = running.wait_for_message("trunk state changed", Duration::from_secs(20));
    assert_eq!(line["state"], "Up", "{line}");
    start_campaign(addr);
    // The keepalive's passes from sbc a to sbc b are counted.
    let (_, metrics) = support::http(addr, "GET", "/metrics", None, None);
    let failovers = metrics
        .lines()
        .find_map(|l| l.strip_prefix("outdial_sip_failovers_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(failovers.is_some_and(|n| n >= 1.0), "{metrics}");
    // The silent SBC is shown resting.
    let resting = format!("outdial_sip_next_hop_resting{{address=\"127.0.0.1:{silent_port}\"}} 1");
    assert!(metrics.lines().any(|l| l == resting), "{metrics}");
    support::wait_until(Duration::from_secs(30), "ten calls dialed", &|| {
        dials(addr) >= 10
    });
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    let (headers, rows) =
        support::export_csv(&config_path, "srv", true, &dir.path().join("attempts.csv"));
    let outcome = headers.iter().position(|h| h == "outcome").unwrap();
    let finished: Vec<&str> = rows
        .iter()
        .map(|r| &r[outcome])
        .filter(|o| !o.is_empty())
        .collect();
    assert!(finished.len() >= 10, "{finished:?}");
    assert!(
        finished.iter().all(|o| *o == "busy"),
        "every call reached the second SBC: {finished:?}"
    );
    // No state change after the first: the trunk never went down.
    assert!(
        running
            .try_wait_for_message("trunk state changed", Duration::from_millis(100))
            .is_none(),
        "{}",
        running.seen.join("\n")
    );
}

/// A node started while its DNS server does not answer: its first lookup
/// runs in the background from the start, and the next ones every 10 s;
/// the dials meanwhile fail at once (each used to wait for a lookup of its
/// own in the engine task), and once DNS answers the calls reach the SBC.
#[test]
fn a_node_started_during_a_dns_outage_dials_once_dns_answers() {
    let dir = tempfile::tempdir().unwrap();
    let silent_dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_port = silent_dns.local_addr().unwrap().port();
    let sbc = Sipp::uas("sbc_busy_or_options.xml", 100_000, &["-timeout", "400s"]);
    let config_path = srv_node(dir.path(), dns_port, 100, 2);
    let mut running = support::Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_campaign(addr);
    // While the first lookup runs (some 18 s against a silent server: SRV,
    // then A and AAAA, each timing out) and after it failed, no call is
    // dialed: the trunk has no address, and the agents are told why.
    let held = "outdial_trunk_held{reason=\"unresolved\"} 1";
    support::wait_until(Duration::from_secs(10), "dialing held", &|| {
        metrics(addr).lines().any(|line| line == held)
    });
    running.wait_for_message(
        "cannot look the trunk up; keeping its last route, if any, and trying again in 10 s",
        Duration::from_secs(60),
    );
    let (_, campaigns) = support::http(addr, "GET", "/api/campaigns", Some("srv-supervisor"), None);
    assert!(campaigns.contains("trunk address unknown"), "{campaigns}");
    assert_eq!(outcomes(addr), serde_json::json!({}), "nothing dialed");
    drop(silent_dns);
    let _dns = Dnsmasq::start_at(
        dir.path(),
        dns_port,
        &[(10, 100, "sbc.carrier.test", sbc.port)],
    );
    // The lookups go on every 10 s by themselves: calls reach the SBC once
    // one succeeds, and not one was lost to the outage.
    support::wait_until(Duration::from_secs(90), "a call reaching the SBC", &|| {
        outcomes(addr)["busy"].as_u64().is_some_and(|n| n >= 1)
    });
    let seen = outcomes(addr);
    assert_eq!(
        seen.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        Some(vec![&"busy".to_string()]),
        "only the SBC's busy, no network failure: {seen}"
    );
    assert!(
        !running
            .seen
            .iter()
            .any(|line| line.contains("call could not be placed"))
    );
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
}

/// A node (progressive campaign `srv`, two simulated agents, `contacts`
/// records, at most `calls_per_second`) whose trunk is `sip:carrier.test`
/// looked up at `dns_port`, T1 = 100 ms, OPTIONS every second; returns its
/// configuration file.
fn srv_node(dir: &Path, dns_port: u16, contacts: u32, calls_per_second: u32) -> std::path::PathBuf {
    let rtp_base = 28000 + (free_port() % 1000) * 16;
    let config = format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
t1_ms = 100
dns_servers = ["127.0.0.1:{dns_port}"]
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[trunk]
uri = "sip:carrier.test"
caller_id = "+15551230000"
max_concurrent_calls = 4
max_calls_per_second = {calls_per_second}
options_interval_s = 1
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "srv-supervisor"
role = "supervisor"
[store]
url = "sqlite://{db}/outdial.db"
[[campaign]]
name = "srv"
mode = "progressive"
lines_per_agent = 1.0
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
{agents}"#,
        dns_port = dns_port,
        rtp_max = rtp_base + 15,
        db = dir.display(),
        agents = support::simulated_agents("agent", "srv", 2),
    );
    let config_path = dir.join("outdial.toml");
    std::fs::write(&config_path, config).unwrap();
    support::import_numbered_contacts(&config_path, "srv", contacts, dir);
    config_path
}

/// The DNS server goes away mid-shift: the node keeps dialing the address it
/// last looked up (a lookup that fails keeps the route in hand, and runs
/// in the background, never in the engine's way). It used to fail every
/// dial as a network failure once the route was a minute old.
#[test]
fn a_dns_outage_mid_shift_keeps_the_last_route() {
    let dir = tempfile::tempdir().unwrap();
    let sbc = Sipp::uas("sbc_busy_or_options.xml", 100_000, &["-timeout", "170s"]);
    let dns = Dnsmasq::start(dir.path(), &[(10, 100, "sbc.carrier.test", sbc.port)]);
    let config_path = srv_node(dir.path(), dns.port, 600, 2);
    let mut running = support::Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_campaign(addr);
    // A call that reached the SBC (busy): the route is in hand. (Not just
    // a dial: the first dial's lookup may still be under way, and without a
    // route in hand the outage would fail every dial.)
    support::wait_until(Duration::from_secs(20), "a first busy call", &|| {
        outcomes(addr)["busy"].as_u64().is_some_and(|n| n >= 1)
    });
    drop(dns);
    let outage = jiff::Timestamp::now();
    // The route is due again 60 s after the first lookup, and that lookup
    // fails some 10 s later (SRV, then the name's address, each timing
    // out): run well past both.
    std::thread::sleep(Duration::from_secs(95));
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    let (headers, rows) =
        support::export_csv(&config_path, "srv", true, &dir.path().join("attempts.csv"));
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (outcome, started) = (column("outcome"), column("started_at"));
    let after_due: Vec<&str> = rows
        .iter()
        .filter(|r| {
            r[started]
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t > outage + jiff::SignedDuration::from_secs(62))
        })
        .map(|r| &r[outcome][..])
        .collect();
    assert!(
        after_due.len() >= 5,
        "calls went on after the route was due: {after_due:?}"
    );
    assert!(
        after_due.iter().all(|o| *o == "busy" || o.is_empty()),
        "every call after the outage reached the SBC: {after_due:?}"
    );
}

/// Starts the `srv` node's campaign.
fn start_campaign(addr: std::net::SocketAddr) {
    let (status, body) = support::http(
        addr,
        "POST",
        "/api/campaigns/srv/start",
        Some("srv-supervisor"),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

/// The `srv` campaign's figures (`/stats`).
fn stats(addr: std::net::SocketAddr) -> serde_json::Value {
    let (_, stats) = support::http(
        addr,
        "GET",
        "/api/campaigns/srv/stats",
        Some("srv-supervisor"),
        None,
    );
    serde_json::from_str(&stats).unwrap_or_default()
}

/// The node's Prometheus metrics, as text.
fn metrics(addr: std::net::SocketAddr) -> String {
    support::http(addr, "GET", "/metrics", None, None).1
}

/// The `srv` campaign's dials so far.
fn dials(addr: std::net::SocketAddr) -> u64 {
    stats(addr)["dials"].as_u64().unwrap_or(0)
}

/// The `srv` campaign's finished attempts by outcome.
fn outcomes(addr: std::net::SocketAddr) -> serde_json::Value {
    stats(addr)["outcomes"].clone()
}
