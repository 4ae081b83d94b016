//! The agent and supervisor API through the real binary: authentication,
//! agent state changes, campaign control, and the event streams.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{EventStream, http, start_default};

const SUPERVISOR: &str = "demo-supervisor-token";
const AGENT_1001: &str = "demo-agent-1001-token";
const AGENT_1002: &str = "demo-agent-1002-token";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[test]
fn tokens_are_required_and_scoped() {
    let (_running, addr, _dir) = start_default();
    let (status, body) = http(addr, "POST", "/api/agents/1001/login", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = http(addr, "POST", "/api/agents/1001/login", Some("nope"), None);
    assert_eq!(status, 401);
    // An agent acts only as itself.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/login",
        Some(AGENT_1002),
        None,
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = http(addr, "GET", "/api/agents", Some(AGENT_1001), None);
    assert_eq!(status, 403, "the agent list is the supervisor's");
    let (status, _) = http(
        addr,
        "POST",
        "/api/campaigns/demo/start",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 403);
    // The supervisor may act for anyone.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1002/login",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn agent_states_through_the_api() {
    let (_running, addr, _dir) = start_default();
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/login",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let view = json(&body);
    assert_eq!(view["state"], "not_ready");
    assert_eq!(view["reason"], "logged in");
    assert_eq!(view["phone_connected"], false);

    // Logging in twice is a state conflict, not a crash.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/login",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 409, "{body}");

    // Ready needs the agent's phone on its reservation call.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/ready",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 409, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("phone"));

    // The configured reasons only (`[agent_states]`): a reason not on the
    // list is refused, naming the valid ones.
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/not-ready",
        Some(AGENT_1001),
        Some(r#"{"reason":"gone fishing"}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Coaching"),
        "the valid reasons are named: {body}"
    );
    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/not-ready",
        Some(AGENT_1001),
        Some(r#"{"reason":"Coaching"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["reason"], "Coaching");

    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/not-ready",
        Some(AGENT_1001),
        Some(r#"{"reason":"x","extra":1}"#),
    );
    assert!(status == 400 || status == 422, "{status} {body}");

    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/disposition",
        Some(AGENT_1001),
        Some(r#"{"code":"SALE"}"#),
    );
    assert_eq!(status, 409, "no call to dispose: {body}");

    let (status, body) = http(
        addr,
        "POST",
        "/api/agents/1001/logout",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["state"], "logged_out");

    let (status, _) = http(addr, "GET", "/api/agents/9999", Some(SUPERVISOR), None);
    assert_eq!(status, 404);
    let (status, body) = http(addr, "GET", "/api/agents", Some(SUPERVISOR), None);
    assert_eq!(status, 200);
    assert_eq!(json(&body).as_array().map(Vec::len), Some(2));
}

#[test]
fn supervisors_run_campaigns() {
    let (_running, addr, _dir) = start_default();
    let (status, body) = http(addr, "GET", "/api/campaigns", Some(AGENT_1001), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)[0]["state"], "loaded");
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/pause",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 409, "cannot pause a campaign never started: {body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["state"], "running");
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/pause",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(json(&body)["state"], "paused", "{status}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/demo/stop",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(json(&body)["state"], "stopped", "{status}");
    let (status, _) = http(
        addr,
        "POST",
        "/api/campaigns/nope/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn event_streams_carry_only_what_concerns_the_agent_and_end_on_shutdown() {
    let (mut running, addr, _dir) = start_default();
    let agent_stream = EventStream::open(addr, "/api/agents/1001/events", AGENT_1001);
    let supervisor_stream = EventStream::open(addr, "/api/events", SUPERVISOR);
    // Give both subscriptions a moment to be registered.
    std::thread::sleep(Duration::from_millis(300));

    let (status, _) = http(
        addr,
        "POST",
        "/api/agents/1002/login",
        Some(AGENT_1002),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = http(
        addr,
        "POST",
        "/api/agents/1001/login",
        Some(AGENT_1001),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = http(
        addr,
        "POST",
        "/api/campaigns/demo/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200);

    let first = agent_stream.next(Duration::from_secs(5)).expect("an event");
    assert_eq!(first["type"], "agent_state");
    assert_eq!(
        first["agent"], "1001",
        "1002's login is not 1001's business"
    );
    // Logging in tells the agent of their campaign and its state.
    let notice = agent_stream.next(Duration::from_secs(5)).expect("an event");
    assert_eq!(notice["type"], "campaign_state");
    assert_eq!(notice["state"], "loaded");
    assert_eq!(notice["agents"], serde_json::json!(["1001"]));
    let second = agent_stream.next(Duration::from_secs(5)).expect("an event");
    assert_eq!(second["type"], "campaign_state");
    assert_eq!(second["state"], "running");

    let mut supervisor_saw = Vec::new();
    while let Some(event) = supervisor_stream.next(Duration::from_millis(500)) {
        supervisor_saw.push(event);
    }
    // Two logins (a state change and a campaign notice each), the start.
    assert_eq!(supervisor_saw.len(), 5, "{supervisor_saw:?}");

    // Open streams do not hold up a clean shutdown: the process never has
    // to wait out its grace period for them.
    running.signal("TERM");
    running.wait_for_message("outdial stopped", Duration::from_secs(10));
    let status = running.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(
        !running
            .seen
            .iter()
            .any(|line| line.contains("grace period")),
        "shutdown waited for open event streams:\n{}",
        running.seen.join("\n")
    );
}

#[test]
fn metrics_follow_agent_and_campaign_states() {
    let (_running, addr, _dir) = start_default();
    let (status, body) = http(addr, "GET", "/metrics", None, None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("outdial_agents{state=\"logged_out\"} 2"),
        "{body}"
    );
    http(
        addr,
        "POST",
        "/api/agents/1001/login",
        Some(AGENT_1001),
        None,
    );
    http(
        addr,
        "POST",
        "/api/campaigns/demo/start",
        Some(SUPERVISOR),
        None,
    );
    http(
        addr,
        "POST",
        "/api/agents/1002/ready",
        Some(AGENT_1002),
        None,
    );
    let (_, body) = http(addr, "GET", "/metrics", None, None);
    assert!(
        body.contains("outdial_agents{state=\"logged_out\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("outdial_agents{state=\"not_ready\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("outdial_campaign_running{campaign=\"demo\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("outdial_engine_commands_total{result=\"rejected\"} 1"),
        "{body}"
    );
}

/// `GET /api/agent-activity` as `token` (`query` after `?`): the report.
fn activity(addr: std::net::SocketAddr, token: &str, query: &str) -> (u16, String) {
    http(
        addr,
        "GET",
        &format!("/api/agent-activity?{query}"),
        Some(token),
        None,
    )
}

/// Agent 1001's intervals, once `count` are reported (the log is written
/// in the background).
fn intervals_of_1001(addr: std::net::SocketAddr, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = activity(addr, SUPERVISOR, "agent=1001");
        assert_eq!(status, 200, "{body}");
        let intervals = json(&body)["intervals"].as_array().cloned().unwrap();
        if intervals.len() >= count {
            return intervals;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} intervals wanted: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn agent_activity_is_reported_across_a_clean_stop_and_a_crash() {
    let (mut running, addr, dir) = start_default();
    let post = |addr, path: &str, body: Option<&str>| {
        let (status, text) = http(addr, "POST", path, Some(AGENT_1001), body);
        assert_eq!(status, 200, "{path}: {text}");
    };
    post(addr, "/api/agents/1001/login", None);
    std::thread::sleep(Duration::from_millis(1100));
    post(
        addr,
        "/api/agents/1001/not-ready",
        Some(r#"{"reason":"Break"}"#),
    );
    std::thread::sleep(Duration::from_millis(1100));
    post(addr, "/api/agents/1001/logout", None);
    post(addr, "/api/agents/1001/login", None);
    let intervals = intervals_of_1001(addr, 3);
    let seen: Vec<(&str, &str)> = intervals
        .iter()
        .map(|i| (i["state"].as_str().unwrap(), i["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("not_ready", "logged in"),
            ("not_ready", "Break"),
            ("not_ready", "logged in")
        ]
    );
    let seconds = intervals[1]["seconds"].as_f64().unwrap();
    assert!((1.0..5.0).contains(&seconds), "the break: {seconds} s");
    // An agent reads only its own activity; the CSV has one row per interval.
    let (status, body) = activity(addr, AGENT_1002, "agent=1001");
    assert_eq!(status, 403, "{body}");
    let (status, body) = activity(addr, SUPERVISOR, "agent=1001&format=csv");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(
            "agent,state,reason,started_at,ended_at,seconds,node\n1001,not_ready,logged in,"
        ),
        "{body}"
    );
    assert_eq!(body.lines().count(), 4, "{body}");
    let (status, body) = activity(addr, SUPERVISOR, "from=2026-13-01");
    assert_eq!(status, 400, "{body}");

    // A clean stop ends the agent's state then: after a restart the last
    // interval is closed, not running on.
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    let config = dir.path().join("outdial.toml");
    let stopped = jiff::Timestamp::now();
    let mut running = support::Running::start(&config);
    let addr = running.wait_until_listening();
    running.wait_for_message("store open", Duration::from_secs(10));
    let intervals = intervals_of_1001(addr, 3);
    assert_eq!(intervals.len(), 3, "{intervals:?}");
    let ended: jiff::Timestamp = intervals[2]["ended_at"].as_str().unwrap().parse().unwrap();
    assert!(ended <= stopped, "ended {ended}, stopped {stopped}");

    // A crash (kill -9): the next start ends it at the node's last
    // heartbeat.
    post(addr, "/api/agents/1001/login", None);
    intervals_of_1001(addr, 4);
    // A heartbeat after the login (every 5 s): the node was seen alive
    // with the agent logged in.
    let logged_in = jiff::Timestamp::now();
    let store =
        outdial::store::open(&format!("sqlite://{}/outdial.db", dir.path().display())).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !store
        .nodes()
        .unwrap()
        .iter()
        .any(|node| node.seen_at > logged_in)
    {
        assert!(std::time::Instant::now() < deadline, "no heartbeat");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(store);
    running.signal("KILL");
    let _ = running.child.wait();
    let killed = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(1500));
    let mut running = support::Running::start(&config);
    let addr = running.wait_until_listening();
    // The node's recovery (after the crash) runs as the store opens.
    let opened = running.wait_for_message("store open", Duration::from_secs(10));
    assert_eq!(opened["agents_closed"], 1, "{opened}");
    let intervals = intervals_of_1001(addr, 4);
    assert_eq!(intervals.len(), 4, "{intervals:?}");
    let ended: jiff::Timestamp = intervals[3]["ended_at"].as_str().unwrap().parse().unwrap();
    assert!(ended <= killed, "ended {ended}, killed {killed}: {opened}");
    let started: jiff::Timestamp = intervals[3]["started_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ended > started, "until the last heartbeat after the login");
}
