//! `[trunk] shared_by_nodes` end to end: two `outdial run` nodes on one
//! PostgreSQL store dial one campaign through one SIPp carrier that rings
//! every call until the dialer gives up (15 s). Each node's agents want
//! far more lines than the trunk's four; the attempts the two nodes wrote
//! must never overlap more than four at once, and both nodes must dial.
//! The nodes are stopped one after the other: a stopping node keeps its
//! part until its calls are hung up (it once gave it back at the signal,
//! and the other node's next two calls made six at once). `TRUNK_DBG=1`
//! prints the attempts and the nodes' logs. A carrier's 503 Retry-After
//! given to one node pauses the other too.

mod sip_support;
mod store_common;
mod support;

use std::time::Duration;

use sip_support::{Sipp, free_port};
use support::{Running, http, import_numbered_contacts, simulated_agents, trunk_share, wait_until};

const SUPERVISOR: &str = "trunk-supervisor-token";
const TRUNK_LINES: i64 = 4;

fn config(node: &str, store_url: &str, carrier_port: u16) -> String {
    let rtp_base = 26000 + (free_port() % 1000) * 16;
    let agents = simulated_agents(node, "shared", 3);
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
max_concurrent_calls = {TRUNK_LINES}
max_calls_per_second = 20
shared_by_nodes = true
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "{SUPERVISOR}"
role = "supervisor"
[store]
url = "{store_url}"
node = "{node}"
[[campaign]]
name = "shared"
mode = "progressive"
lines_per_agent = 2.0
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
{agents}"#,
        rtp_max = rtp_base + 15,
    )
}

/// The most attempts in progress at once, over both nodes, from the
/// attempt rows (an attempt not ended counts as going on for ever), and
/// the attempts per node.
fn most_at_once(store_url: &str) -> (i64, Vec<(String, i64)>) {
    let mut db = postgres::Client::connect(store_url, postgres::NoTls).expect("connect");
    let rows = db
        .query(
            "SELECT node, started_at, ended_at, outcome FROM attempts ORDER BY started_at",
            &[],
        )
        .expect("attempts");
    if std::env::var_os("TRUNK_DBG").is_some() {
        for row in &rows {
            let (n, s, e, o): (String, i64, Option<i64>, Option<String>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            eprintln!("{n} {s} {e:?} {o:?}");
        }
    }
    let mut edges: Vec<(i64, i64)> = Vec::new();
    let mut per_node = std::collections::BTreeMap::<String, i64>::new();
    for row in &rows {
        let node: String = row.get(0);
        let started: i64 = row.get(1);
        let ended: Option<i64> = row.get(2);
        *per_node.entry(node).or_default() += 1;
        edges.push((started, 1));
        edges.push((ended.unwrap_or(i64::MAX), -1));
    }
    // An end and a start at the same millisecond: the line was freed first.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    (most, per_node.into_iter().collect())
}

/// The attempts of the store: node, started, ended, outcome.
fn attempts(store_url: &str) -> Vec<(String, i64, Option<i64>, Option<String>)> {
    let mut db = postgres::Client::connect(store_url, postgres::NoTls).expect("connect");
    db.query(
        "SELECT node, started_at, ended_at, outcome FROM attempts ORDER BY started_at",
        &[],
    )
    .expect("attempts")
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
    .collect()
}

/// Writes both nodes' configurations (node A's trunk at `carriers[0]`,
/// B's at `carriers[1]`) and imports forty contacts into the shared store.
fn two_nodes(
    database: &store_common::PgDatabase,
    dirs: &[tempfile::TempDir; 2],
    carriers: [u16; 2],
) -> Vec<std::path::PathBuf> {
    let configs: Vec<_> = ["node-a", "node-b"]
        .iter()
        .zip(dirs)
        .zip(carriers)
        .map(|((node, dir), carrier)| {
            let path = dir.path().join("outdial.toml");
            // The node's row spool in its own directory, not the
            // working directory every test shares.
            let text = config(node, &database.url, carrier).replace(
                &format!("node = \"{node}\"\n"),
                &format!(
                    "node = \"{node}\"\nspool = \"{}/node.spool\"\n",
                    dir.path().display()
                ),
            );
            assert!(text.contains("node.spool"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    import_numbered_contacts(&configs[0], "shared", 40, dirs[0].path());
    configs
}

/// Starts both nodes, waits until they share the trunk, starts the campaign
/// on node `start_on` (the other follows within `RUN_COMMANDS_POLL`).
fn start_both(
    configs: &[std::path::PathBuf],
    start_on: usize,
) -> Vec<(Running, std::net::SocketAddr)> {
    let nodes: Vec<(Running, std::net::SocketAddr)> = configs
        .iter()
        .map(|config| {
            let mut running = Running::start(config);
            let addr = running.wait_until_listening();
            (running, addr)
        })
        .collect();
    let (a, b) = (nodes[0].1, nodes[1].1);
    wait_until(
        Duration::from_secs(30),
        "each node holds half the trunk",
        &|| trunk_share(a) == Some((2, 2)) && trunk_share(b) == Some((2, 2)),
    );
    let (status, body) = http(
        nodes[start_on].1,
        "POST",
        "/api/campaigns/shared/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
    nodes
}

/// A carrier that answers node A 503 with `Retry-After: 20` is overloaded
/// for node B too: B, which never got a 503 (its calls ring until its 15 s
/// timeout), starts no new call until A's pause is over. Without the shared
/// hold B dialed again as its first calls timed out, 15 s in.
#[test]
fn a_retry_after_given_to_one_node_holds_every_node_of_the_trunk() {
    let database = store_common::PgDatabase::create();
    let congested = Sipp::uas("carrier_congested_20s.xml", 200, &["-timeout", "90s"]);
    let ringing = Sipp::uas("uas_ring_forever.xml", 200, &["-timeout", "90s"]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let configs = two_nodes(&database, &dirs, [congested.port, ringing.port]);
    // Started on B: B dials at once, A follows within 2 s.
    let mut nodes = start_both(&configs, 1);
    // A's first call gets the 503.
    let mut first_503 = None;
    wait_until(Duration::from_secs(30), "node A's call gets 503", &|| {
        attempts(&database.url)
            .iter()
            .any(|(node, _, ended, _)| node == "node-a" && ended.is_some())
    });
    for (node, _, ended, outcome) in attempts(&database.url) {
        if node == "node-a"
            && let Some(ended) = ended
        {
            assert_eq!(outcome.as_deref(), Some("congestion"));
            first_503 = Some(first_503.map_or(ended, |t: i64| t.min(ended)));
        }
    }
    let first_503 = first_503.expect("node A's 503");
    // Past B's ring timeout (15 s) and almost to the end of A's pause.
    std::thread::sleep(Duration::from_secs(18));
    let rows = attempts(&database.url);
    for (mut running, _) in nodes.drain(..) {
        running.signal("TERM");
        let _ = running.child.wait();
    }
    let summary = rows
        .iter()
        .map(|(node, started, ended, outcome)| {
            format!(
                "{node} {:+} {:?} {outcome:?}",
                started - first_503,
                ended.map(|e| e - first_503)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        rows.iter()
            .any(|(node, started, _, _)| node == "node-b" && *started < first_503 + 3_000),
        "node B dialed its part before the pause:\n{summary}"
    );
    // Node B learns of the pause within a claim or two (1 s apart).
    let during: Vec<_> = rows
        .iter()
        .filter(|(node, started, _, _)| {
            node == "node-b" && *started >= first_503 + 3_000 && *started < first_503 + 19_000
        })
        .collect();
    assert!(
        during.is_empty(),
        "node B started calls during node A's Retry-After (ms after the 503):\n{summary}"
    );
    let a_during = rows
        .iter()
        .filter(|(node, started, _, _)| {
            node == "node-a" && *started > first_503 && *started < first_503 + 19_000
        })
        .count();
    assert_eq!(a_during, 0, "node A honours its own 503:\n{summary}");
    drop((congested, ringing));
}

#[test]
fn two_nodes_never_hold_more_calls_than_the_shared_trunk_carries() {
    let database = store_common::PgDatabase::create();
    let carrier = Sipp::uas("uas_ring_forever.xml", 200, &["-timeout", "90s"]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let configs = two_nodes(&database, &dirs, [carrier.port, carrier.port]);
    let mut nodes = start_both(&configs, 0);
    // Three ready agents at two lines each want six calls per node: both
    // nodes dial their part, and the calls ring until the 15 s timeout.
    wait_until(Duration::from_secs(30), "both nodes dial", &|| {
        let (_, per_node) = most_at_once(&database.url);
        per_node.len() == 2
    });
    std::thread::sleep(Duration::from_secs(3));
    for (mut running, _) in nodes.drain(..) {
        running.signal("TERM");
        let status = running.child.wait().expect("wait");
        assert!(status.success(), "{status:?}");
        if std::env::var_os("TRUNK_DBG").is_some() {
            while let Ok(line) = running.lines.try_recv() {
                if !line.contains("\"DEBUG\"") {
                    eprintln!("{line}");
                }
            }
        }
    }
    let (most, per_node) = most_at_once(&database.url);
    assert!(
        most <= TRUNK_LINES,
        "{most} calls at once on a trunk of {TRUNK_LINES}: {per_node:?}"
    );
    assert_eq!(
        most, TRUNK_LINES,
        "the nodes together used the whole trunk: {per_node:?}"
    );
    assert!(
        per_node.iter().all(|(_, n)| *n >= 2),
        "each node dialed its part: {per_node:?}"
    );
    drop(carrier);
}
