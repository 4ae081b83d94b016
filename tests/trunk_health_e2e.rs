//! A carrier in overload, end to end: one `outdial run` node dials a
//! progressive campaign (three simulated agents at two lines each) through
//! a SIPp carrier that answers every INVITE with 503 and `Retry-After: 4`.
//! The node must send no new INVITE for 4 s after each 503 (RFC 3261
//! §21.5.4) — before, it redialed at once and burnt through the list in
//! a second — and agents must see why calls are held back. And a trunk
//! refusing every call with 403 backs dialing off the same way; a busy
//! callee's Retry-After holds its record; the carrier's pause outlives a
//! restart of the node.

mod sip_support;
mod support;

use std::time::Duration;

use sip_support::{Sipp, free_port};
use support::{Running, export_csv, http, import_numbered_contacts, simulated_agents, wait_until};

const SUPERVISOR: &str = "trunk-supervisor-token";
const RETRY_AFTER_MS: i64 = 4000;

fn config(dir: &std::path::Path, carrier_port: u16) -> String {
    let rtp_base = 27000 + (free_port() % 1000) * 32;
    let agents = simulated_agents("agent", "overload", 3);
    format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[trunk]
uri = "sip:127.0.0.1:{carrier_port}"
caller_id = "+15551230000"
max_concurrent_calls = 6
max_calls_per_second = 50
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "{SUPERVISOR}"
role = "supervisor"
[store]
url = "sqlite://{db}/outdial.db"
[[campaign]]
name = "overload"
mode = "progressive"
lines_per_agent = 2.0
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
{agents}"#,
        rtp_max = rtp_base + 31,
        db = dir.display(),
    )
}

/// Milliseconds since the epoch of an exported RFC 3339 time.
fn ms(time: &str) -> Option<i64> {
    time.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// What one node did against a carrier: attempt start and end times (ms,
/// sorted) and outcomes, from the export, and the attempts each record has
/// spent.
struct Attempts {
    starts: Vec<i64>,
    ends: Vec<i64>,
    outcomes: Vec<String>,
    spent_by_records: Vec<String>,
    /// For each record dialed: next eligible time − its last attempt (ms).
    held_after_last_attempt: Vec<i64>,
}

impl Attempts {
    fn summary(&self) -> String {
        format!("starts {:?}, ends {:?}", self.starts, self.ends)
    }
}

/// Runs a progressive campaign of 80 records against a SIPp carrier
/// playing `scenario`, waits until the campaign list (its `held_back`) or
/// the campaign's figures (`/stats`) show `wait_for`, lets it
/// run `then` more, stops the node and reads its attempts.
fn run_against(scenario: &str, wait_for: &str, then: Duration) -> Attempts {
    let carrier = Sipp::uas(scenario, 500, &["-timeout", "90s"]);
    let (dir, config_path) = node_with_a_list(carrier.port);
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_and_wait_for(addr, wait_for);
    std::thread::sleep(then);
    running.signal("TERM");
    let status = running.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let attempts = read_attempts(dir.path(), &config_path);
    drop(carrier);
    attempts
}

/// A node's configuration (its trunk at `carrier_port`) and its store with
/// an 80-contact list imported.
fn node_with_a_list(carrier_port: u16) -> (tempfile::TempDir, std::path::PathBuf) {
    node_with_contacts(carrier_port, 80)
}

/// [`node_with_a_list`] with a list of `contacts`.
fn node_with_contacts(carrier_port: u16, contacts: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(&config_path, config(dir.path(), carrier_port)).unwrap();
    import_numbered_contacts(&config_path, "overload", contacts, dir.path());
    (dir, config_path)
}

/// Starts the campaign and waits until the campaign list (its
/// `held_back`) or the campaign's figures (`/stats`) show `wait_for`.
fn start_and_wait_for(addr: std::net::SocketAddr, wait_for: &str) {
    start(addr);
    wait_until(Duration::from_secs(10), wait_for, &|| {
        let (_, list) = http(addr, "GET", "/api/campaigns", Some(SUPERVISOR), None);
        let stats_path = "/api/campaigns/overload/stats";
        let (_, stats) = http(addr, "GET", stats_path, Some(SUPERVISOR), None);
        list.contains(wait_for) || stats.contains(wait_for)
    });
}

/// Starts the campaign.
fn start(addr: std::net::SocketAddr) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/overload/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

/// The node's attempts and records, from its CSV exports.
fn read_attempts(dir: &std::path::Path, config_path: &std::path::Path) -> Attempts {
    let (headers, rows) = export_csv(config_path, "overload", true, &dir.join("attempts.csv"));
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (started, ended, outcome) = (column("started_at"), column("ended_at"), column("outcome"));
    let mut starts: Vec<i64> = rows.iter().filter_map(|r| ms(&r[started])).collect();
    starts.sort();
    let mut ends: Vec<i64> = rows.iter().filter_map(|r| ms(&r[ended])).collect();
    ends.sort();
    let (headers, records) = export_csv(config_path, "overload", false, &dir.join("records.csv"));
    let spent = headers
        .iter()
        .position(|h| h == "attempts")
        .expect("attempts");
    let next_at = headers
        .iter()
        .position(|h| h == "next_at")
        .expect("next_at");
    let last = headers
        .iter()
        .position(|h| h == "last_attempt_at")
        .expect("last_attempt_at");
    let held_after_last_attempt = records
        .iter()
        .filter_map(|r| Some(ms(&r[next_at])? - ms(&r[last])?))
        .collect();
    Attempts {
        starts,
        ends,
        outcomes: rows.iter().map(|r| r[outcome].to_string()).collect(),
        spent_by_records: records.iter().map(|r| r[spent].to_string()).collect(),
        held_after_last_attempt,
    }
}

/// The carrier's pause outlives a restart: the node is stopped and started
/// again 3 s into a 20 s Retry-After and dials nothing until it is over
/// (it used to forget the pause and dial at once).
#[test]
fn a_restart_during_the_carriers_pause_does_not_dial_into_it() {
    let carrier = Sipp::uas("carrier_congested_20s.xml", 500, &["-timeout", "90s"]);
    let (dir, config_path) = node_with_a_list(carrier.port);
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_and_wait_for(addr, "503 Retry-After");
    // The hold reaches the store within a second.
    std::thread::sleep(Duration::from_secs(2));
    running.signal("TERM");
    assert!(running.child.wait().expect("wait").success());
    let restarted_at = jiff::Timestamp::now().as_millisecond();
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    // Running again (a start the node already followed is refused; fine).
    let _ = http(
        addr,
        "POST",
        "/api/campaigns/overload/start",
        Some(SUPERVISOR),
        None,
    );
    std::thread::sleep(Duration::from_secs(6));
    running.signal("TERM");
    assert!(running.child.wait().expect("wait").success());
    let attempts = read_attempts(dir.path(), &config_path);
    let summary = attempts.summary();
    let first_503 = attempts.ends.first().copied().expect("a 503");
    assert!(
        restarted_at < first_503 + 20_000 - 6_000,
        "the restart came within the pause: {summary}"
    );
    let after_restart = attempts
        .starts
        .iter()
        .filter(|s| **s >= restarted_at && **s < first_503 + 20_000 - 50)
        .count();
    assert_eq!(
        after_restart, 0,
        "calls after the restart, inside the 20 s pause from {first_503}: {summary}"
    );
    drop(carrier);
}

/// A person picks up just as the ring timeout gives up: the carrier's 200
/// crosses outdial's CANCEL. The call is kept, classified and given to an
/// agent (it used to be ACKed and BYEd at once and written as no answer:
/// a silent call to a live person, not counted as abandoned).
#[test]
fn an_answer_crossing_the_ring_timeouts_cancel_reaches_an_agent() {
    let scenario_dir = tempfile::tempdir().unwrap();
    let audio = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    let scenario = sip_support::scenario_with_audio(
        "carrier_answers_the_cancel.xml",
        &audio,
        scenario_dir.path(),
    );
    let carrier = Sipp::uas(
        scenario.to_str().unwrap(),
        3,
        &["-timeout", "60s", "-set", "talk_ms", "1000"],
    );
    // The campaign rings 15 s (the shortest the regulators allow).
    let (dir, config_path) = node_with_contacts(carrier.port, 3);
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    start(addr);
    wait_until(Duration::from_secs(45), "three connected calls", &|| {
        let (_, stats) = http(
            addr,
            "GET",
            "/api/campaigns/overload/stats",
            Some(SUPERVISOR),
            None,
        );
        stats.contains("\"connected\":3")
    });
    let (_, metrics) = http(addr, "GET", "/metrics", None, None);
    assert!(
        metrics.contains("outdial_ring_timeout_answers_total{campaign=\"overload\"} 3"),
        "{metrics}"
    );
    running.signal("TERM");
    assert!(running.child.wait().expect("wait").success());
    let attempts = read_attempts(dir.path(), &config_path);
    // The rows: answered by a person (the store's word for a connected
    // call), not no_answer.
    assert_eq!(
        attempts.outcomes,
        vec!["human"; 3],
        "{}",
        attempts.summary()
    );
    drop(carrier);
}

#[test]
fn a_503_with_retry_after_pauses_new_calls_for_the_time_given() {
    let attempts = run_against(
        "carrier_congested.xml",
        "503 Retry-After",
        Duration::from_secs(8),
    );
    let Attempts { starts, ends, .. } = &attempts;
    let summary = attempts.summary();
    assert!(
        attempts.outcomes.iter().all(|o| o == "congestion"),
        "every attempt met the 503: {summary}"
    );
    assert!(
        attempts.spent_by_records.iter().all(|n| n == "0"),
        "a 503 spends no record's attempt: {:?}",
        attempts.spent_by_records
    );
    // After each 503, no INVITE before its Retry-After. The calls of one
    // pacing decision are stamped as the shell places them, a few ms
    // apart, so the last of a round may read a little after the first 503
    // of it: a start counts as after a 503 from 200 ms on (without the
    // hold the dialer redials within milliseconds, for the whole second).
    for end in ends {
        let too_soon = starts
            .iter()
            .filter(|s| **s > *end + 200 && **s < *end + RETRY_AFTER_MS - 50)
            .count();
        assert_eq!(
            too_soon, 0,
            "a call within 4 s of a 503 at {end}: {summary}"
        );
    }
    // Dialing resumed after the pause, and about 10 s held at most three
    // rounds of six calls (without the pause: the whole list at once).
    let first_end = ends.first().copied().expect("a 503");
    assert!(
        starts.iter().any(|s| *s >= first_end + RETRY_AFTER_MS),
        "dialing resumed: {summary}"
    );
    assert!(starts.len() <= 18, "{} attempts: {summary}", starts.len());
}

/// A trunk that refuses every call (403: wrong credentials, a suspended
/// account) used to count as a trunk that answers: the node redialed at
/// once and spent an attempt of every record of the list in a second or
/// two. Now five refusals in a row open the breaker and one call probes
/// the trunk after 2 s, then 4 s, 8 s…
#[test]
fn a_trunk_refusing_every_call_is_probed_not_run_through() {
    let attempts = run_against(
        "carrier_forbidden.xml",
        "trunk refuses our calls",
        Duration::from_secs(7),
    );
    let summary = attempts.summary();
    assert!(
        attempts.outcomes.iter().all(|o| o == "trunk_refused"),
        "every attempt met the 403: {summary}"
    );
    // The refused calls never rang anyone: the list is as it was.
    assert!(
        attempts.spent_by_records.iter().all(|n| n == "0"),
        "a refused call spends no record's attempt: {:?}",
        attempts.spent_by_records
    );
    // Until five refusals in a row open the breaker each freed line is
    // taken again (six calls, then up to four more: a 403 comes back in a
    // few ms); then one probe 2 s later and one 4 s after that — about 12
    // in the 7 s. Without the breaker: the whole list of 80 in two seconds.
    let count = attempts.starts.len();
    assert!((6..=13).contains(&count), "{count} attempts: {summary}");
    let first_end = attempts.ends.first().copied().expect("a 403");
    let probes: Vec<i64> = attempts
        .starts
        .iter()
        .copied()
        .filter(|s| *s >= first_end + 1500)
        .collect();
    assert!(
        (1..=2).contains(&probes.len()),
        "one probe after 2 s, the next 4 s later: {summary}"
    );
    assert!(
        probes.windows(2).all(|w| w[1] - w[0] >= 3500),
        "the wait between probes grows: {summary}"
    );
}

/// A busy callee's "call me again in an hour" (486 with `Retry-After:
/// 3600`) holds the record an hour, not the campaign's 5-minute busy delay.
#[test]
fn a_busy_callees_retry_after_holds_the_record() {
    let attempts = run_against(
        "carrier_busy_later.xml",
        "\"busy\":",
        // The whole list: 80 calls at 50 a second.
        Duration::from_secs(3),
    );
    assert!(
        attempts.outcomes.iter().all(|o| o == "busy"),
        "every call met the 486: {:?}",
        attempts.outcomes
    );
    let held = &attempts.held_after_last_attempt;
    assert!(!held.is_empty(), "no record was dialed");
    assert!(
        held.iter().all(|ms| (3_599_000..=3_601_000).contains(ms)),
        "each busy record waits the callee's hour: {held:?}"
    );
}
