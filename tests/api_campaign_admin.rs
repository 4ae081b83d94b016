//! Supervisors define, change and remove campaigns through the API while
//! the dialer runs (SPEC §1: they "create campaigns, load lists, choose the
//! dialing mode"); the definitions survive a restart, the file's campaigns
//! stay the file's.

mod store_common;
mod support;

use serde_json::{Value, json};
use support::{Running, ephemeral_config, export_csv, http, trunk_share, wait_until, write_config};

const SUPERVISOR: &str = "demo-supervisor-token";
const AGENT_1001: &str = "demo-agent-1001-token";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// One request with the supervisor's token: (status, body).
fn supervisor(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    http(addr, method, path, Some(SUPERVISOR), body)
}

fn campaign(addr: std::net::SocketAddr, name: &str) -> Option<Value> {
    let (status, body) = supervisor(addr, "GET", "/api/campaigns", None);
    assert_eq!(status, 200, "{body}");
    json(&body)
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

fn stop(mut running: Running) {
    running.signal("TERM");
    let status = running.child.wait().expect("wait");
    let tail: Vec<String> = std::iter::from_fn(|| running.lines.try_recv().ok()).collect();
    let tail = tail[tail.len().saturating_sub(60)..].join("\n");
    assert!(status.success(), "{status:?}\n{tail}");
}

#[test]
fn a_supervisor_defines_changes_and_removes_a_campaign_that_survives_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();

    // Every problem at once, each with its key; agents may not define.
    let (status, body) = supervisor(
        addr,
        "POST",
        "/api/campaigns",
        Some(
            &json!({
                "name": "spring sale",
                "mode": "progressive",
                "lines_per_agent": 0.5,
                "ring_timeout_s": 8,
                "agents": ["1001", "9999"]
            })
            .to_string(),
        ),
    );
    assert_eq!(status, 400, "{body}");
    let problems = json(&body)["problems"].clone();
    let keys: Vec<&str> = problems
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["key"].as_str().unwrap_or_default())
        .collect();
    for key in ["name", "lines_per_agent", "ring_timeout_s", "agents"] {
        assert!(keys.contains(&key), "{key} not in {problems}");
    }
    let (status, body) = supervisor(
        addr,
        "POST",
        "/api/campaigns",
        Some(r#"{"name": "x", "mode": "predictive", "speed": 3}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("speed"),
        "{body}"
    );
    let spring = json!({
        "name": "spring",
        "mode": "progressive",
        "lines_per_agent": 1.5,
        "caller_id": "+15551230077",
        "agents": ["1001"]
    })
    .to_string();
    let (status, _) = http(
        addr,
        "POST",
        "/api/campaigns",
        Some(AGENT_1001),
        Some(&spring),
    );
    assert_eq!(status, 403);

    // Created: listed, loaded, its definition readable, its agent assigned.
    let (status, body) = supervisor(addr, "POST", "/api/campaigns", Some(&spring));
    assert_eq!(status, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["state"], "loaded", "{created}");
    assert_eq!(created["source"], "api", "{created}");
    assert_eq!(created["mode"], "progressive", "{created}");
    // Valid, but likely against the rules: said with the campaign.
    let warned = |body: &Value| {
        body["warnings"].as_array().is_some_and(|w| {
            w.len() == 1
                && w[0]
                    .as_str()
                    .is_some_and(|w| w.contains("no `abandon_prompt`"))
        })
    };
    assert!(warned(&created), "{created}");
    let (status, body) = supervisor(addr, "POST", "/api/campaigns", Some(&spring));
    assert_eq!(status, 409, "{body}");
    let (status, body) = supervisor(addr, "GET", "/api/campaigns/spring/definition", None);
    assert_eq!(status, 200, "{body}");
    let definition = json(&body);
    assert_eq!(definition["lines_per_agent"], 1.5, "{definition}");
    assert_eq!(
        definition["call_hours"], "08:00-21:00",
        "defaults written out"
    );
    assert_eq!(definition["agents"], json!(["1001"]), "{definition}");
    assert!(warned(&definition), "{definition}");
    let (_, body) = http(addr, "GET", "/api/agents/1001", Some(AGENT_1001), None);
    assert!(
        json(&body)["campaigns"]
            .as_array()
            .expect("campaigns")
            .contains(&json!("spring")),
        "{body}"
    );
    assert_eq!(campaign(addr, "demo").expect("demo")["source"], "file");

    // A list goes to it at once.
    let (status, body) = supervisor(
        addr,
        "POST",
        "/api/campaigns/spring/list",
        Some("id,name,phone\ns1,Sam One,+12025550111\ns2,Sue Two,+12025550112\n"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["imported"], 2, "{body}");
    let (status, body) = supervisor(addr, "GET", "/api/campaigns/spring/records", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["by_state"]["new"], 2, "{body}");
    assert_eq!(json(&body)["total"], 2, "{body}");

    // Changed while loaded; the file's campaign is not changed here.
    let (status, body) = supervisor(
        addr,
        "PATCH",
        "/api/campaigns/demo",
        Some(r#"{"mode": "preview"}"#),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("configuration file"), "{body}");
    let (status, body) = supervisor(
        addr,
        "PATCH",
        "/api/campaigns/spring",
        Some(r#"{"mode": "predictive", "abandon_target": 0.02, "agents": ["1001", "1002"]}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["mode"], "predictive", "{body}");
    assert_eq!(json(&body)["abandon_target"], 0.02, "{body}");
    let (status, body) = supervisor(
        addr,
        "PATCH",
        "/api/campaigns/spring",
        Some(r#"{"name": "summer"}"#),
    );
    assert_eq!(status, 400, "{body}");

    // Running: neither changed nor removed; paused: changed again.
    let (status, body) = supervisor(addr, "POST", "/api/campaigns/spring/start", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = supervisor(
        addr,
        "PATCH",
        "/api/campaigns/spring",
        Some(r#"{"mode": "progressive"}"#),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("running"), "{body}");
    let (status, _) = supervisor(addr, "DELETE", "/api/campaigns/spring", None);
    assert_eq!(status, 409);
    let (status, body) = supervisor(addr, "POST", "/api/campaigns/spring/pause", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = supervisor(
        addr,
        "PATCH",
        "/api/campaigns/spring",
        Some(r#"{"cpa": {"connect_first": true}}"#),
    );
    assert_eq!(status, 200, "{body}");
    stop(running);

    // After a restart: the same campaign, settings and agents; its records
    // are the CLI's to export too.
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let spring = campaign(addr, "spring").expect("spring is back after the restart");
    assert_eq!(spring["mode"], "predictive", "{spring}");
    assert_eq!(spring["source"], "api", "{spring}");
    assert_eq!(
        spring["state"], "loaded",
        "a restart never starts dialing: {spring}"
    );
    let (_, body) = supervisor(addr, "GET", "/api/campaigns/spring/definition", None);
    let definition = json(&body);
    assert_eq!(
        definition["agents"],
        json!(["1001", "1002"]),
        "{definition}"
    );
    assert_eq!(definition["cpa"]["connect_first"], true, "{definition}");
    assert_eq!(definition["caller_id"], "+15551230077", "{definition}");
    let (_, rows) = export_csv(&config, "spring", false, &dir.path().join("spring.csv"));
    assert_eq!(rows.len(), 2);

    // Removed: gone from the dialer, and from the next start; the records
    // stay in the store.
    let (status, body) = supervisor(addr, "DELETE", "/api/campaigns/spring", None);
    assert_eq!(status, 204, "{body}");
    assert!(campaign(addr, "spring").is_none());
    let (status, _) = supervisor(
        addr,
        "POST",
        "/api/campaigns/spring/list",
        Some("id,name,phone\ns3,Sid,+12025550113\n"),
    );
    assert_eq!(status, 404);
    let (status, _) = supervisor(addr, "DELETE", "/api/campaigns/demo", None);
    assert_eq!(status, 409);
    stop(running);
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    assert!(campaign(addr, "spring").is_none());
    assert!(campaign(addr, "demo").is_some());
    stop(running);
    // Its records are still the CLI's to export.
    let (_, rows) = export_csv(&config, "spring", false, &dir.path().join("after.csv"));
    assert_eq!(rows.len(), 2);
}

/// Two dialer nodes on one PostgreSQL database (a deployment that outgrew
/// one machine): a campaign defined, changed and removed through one node
/// reaches the other within a poll of the store.
#[test]
fn a_campaign_defined_on_one_node_reaches_the_other_through_postgres() {
    let database = store_common::PgDatabase::create();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let text = ephemeral_config(dir.path()).replace(
            &format!("url = \"sqlite://{}/outdial.db\"", dir.path().display()),
            &format!(
                "url = \"{}\"\nnode = \"node-{i}\"\nspool = \"{}/node.spool\"",
                database.url,
                dir.path().display()
            ),
        );
        assert!(text.contains(&database.url), "the store URL was replaced");
        let config = write_config(dir.path(), &text);
        let mut running = Running::start(&config);
        let addr = running.wait_until_listening();
        nodes.push((running, addr));
    }
    let (a, b) = (nodes[0].1, nodes[1].1);
    let (status, body) = supervisor(
        a,
        "POST",
        "/api/campaigns",
        Some(r#"{"name": "shared", "mode": "progressive", "agents": ["1001"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let poll = |what: &str, check: &dyn Fn() -> bool| {
        wait_until(std::time::Duration::from_secs(40), what, check)
    };
    poll("node B lists the campaign", &|| {
        campaign(b, "shared").is_some_and(|c| c["mode"] == "progressive" && c["source"] == "api")
    });
    // Node B takes a list for it at once (its upload index follows).
    let (status, body) = supervisor(
        b,
        "POST",
        "/api/campaigns/shared/list",
        Some("id,phone\nx1,+12025550191\n"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = supervisor(
        a,
        "PATCH",
        "/api/campaigns/shared",
        Some(r#"{"mode": "predictive", "agents": ["1001", "1002"]}"#),
    );
    assert_eq!(status, 200, "{body}");
    poll("node B sees the change", &|| {
        campaign(b, "shared").is_some_and(|c| c["mode"] == "predictive")
    });
    let (_, body) = supervisor(b, "GET", "/api/campaigns/shared/definition", None);
    assert_eq!(json(&body)["agents"], json!(["1001", "1002"]), "{body}");
    let (status, _) = supervisor(a, "DELETE", "/api/campaigns/shared", None);
    assert_eq!(status, 204);
    poll("node B forgets it", &|| campaign(b, "shared").is_none());
    // Node A, which made every change, never undid one at its own polls.
    assert!(campaign(a, "shared").is_none());
    for (running, _) in nodes {
        stop(running);
    }
}

/// Starts, pauses and stops given on one node are carried out by every node
/// sharing the PostgreSQL store (each with its own agents and lines); a node
/// that starts later does not replay them.
#[test]
fn start_pause_and_stop_on_one_node_reach_the_others_through_postgres() {
    let database = store_common::PgDatabase::create();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let configs: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let text = ephemeral_config(dir.path()).replace(
                &format!("url = \"sqlite://{}/outdial.db\"", dir.path().display()),
                &format!(
                    "url = \"{}\"\nnode = \"node-{i}\"\nspool = \"{}/node.spool\"",
                    database.url,
                    dir.path().display()
                ),
            );
            assert!(text.contains(&database.url), "the store URL was replaced");
            write_config(dir.path(), &text)
        })
        .collect();
    let mut nodes: Vec<_> = configs
        .iter()
        .map(|config| {
            let mut running = Running::start(config);
            let addr = running.wait_until_listening();
            // Serving: the store is open and the node's follower knows
            // which commands came before it ("listening" comes earlier).
            assert!(campaign(addr, "demo").is_some());
            (running, addr)
        })
        .collect();
    let (a, b) = (nodes[0].1, nodes[1].1);
    let state = |addr, name: &str| campaign(addr, name).map(|c| c["state"].clone());
    let poll = |what: &str, check: &dyn Fn() -> bool| {
        wait_until(std::time::Duration::from_secs(30), what, check)
    };
    let (status, body) = supervisor(a, "POST", "/api/campaigns/demo/start", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["state"], "running", "{body}");
    poll("node B starts the campaign too", &|| {
        state(b, "demo") == Some(json!("running"))
    });
    let (status, body) = supervisor(b, "POST", "/api/campaigns/demo/pause", None);
    assert_eq!(status, 200, "{body}");
    poll("node A pauses it too", &|| {
        state(a, "demo") == Some(json!("paused"))
    });
    // A campaign defined on A and started there at once: B, which has not
    // read the definition yet, reads it to follow the start.
    let (status, body) = supervisor(
        a,
        "POST",
        "/api/campaigns",
        Some(r#"{"name": "fresh", "mode": "progressive", "agents": ["1001"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = supervisor(a, "POST", "/api/campaigns/fresh/start", None);
    assert_eq!(status, 200, "{body}");
    poll("node B runs the new campaign", &|| {
        state(b, "fresh") == Some(json!("running"))
    });

    // Node B restarts: loaded, never running by itself (no replay).
    let (running_b, _) = nodes.remove(1);
    stop(running_b);
    let mut running_b = Running::start(&configs[1]);
    let b = running_b.wait_until_listening();
    assert!(campaign(b, "demo").is_some());
    poll("node B lists the campaign defined on A again", &|| {
        state(b, "fresh").is_some()
    });
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(state(b, "fresh"), Some(json!("loaded")), "not replayed");
    assert_eq!(state(b, "demo"), Some(json!("loaded")), "not replayed");
    // What is given after the restart is followed.
    let (status, body) = supervisor(a, "POST", "/api/campaigns/fresh/stop", None);
    assert_eq!(status, 200, "{body}");
    poll("the restarted node B stops it", &|| {
        state(b, "fresh") == Some(json!("stopped"))
    });
    stop(running_b);
    for (running, _) in nodes {
        stop(running);
    }
}

/// `outdial campaigns` writes the store; the running dialer follows
/// within a poll.
/// `[trunk] shared_by_nodes`: two nodes on one PostgreSQL store split the
/// trunk's 60 lines; when one stops, the other has them all; a node
/// started again gets its part back.
#[test]
fn nodes_sharing_a_trunk_divide_its_lines_through_postgres() {
    let database = store_common::PgDatabase::create();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let configs: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let text = ephemeral_config(dir.path())
                .replace(
                    &format!("url = \"sqlite://{}/outdial.db\"", dir.path().display()),
                    &format!(
                        "url = \"{}\"\nnode = \"node-{i}\"\nspool = \"{}/node.spool\"",
                        database.url,
                        dir.path().display()
                    ),
                )
                .replace("# shared_by_nodes = true ", "shared_by_nodes = true   ");
            assert!(text.contains(&database.url), "the store URL was replaced");
            assert!(text.contains("\nshared_by_nodes = true"), "{text}");
            assert!(text.contains("max_concurrent_calls = 60"), "{text}");
            write_config(dir.path(), &text)
        })
        .collect();
    let poll = |what: &str, check: &dyn Fn() -> bool| {
        wait_until(std::time::Duration::from_secs(30), what, check)
    };
    let mut a = Running::start(&configs[0]);
    let a_addr = a.wait_until_listening();
    poll("node A alone has the whole trunk", &|| {
        trunk_share(a_addr) == Some((60, 1))
    });
    let mut b = Running::start(&configs[1]);
    let b_addr = b.wait_until_listening();
    // Idle nodes split the lines evenly; B's first claim finds A holding
    // all 60 and gets its 30 once A's next claim has seen B.
    poll("both nodes hold half the trunk", &|| {
        trunk_share(a_addr) == Some((30, 2)) && trunk_share(b_addr) == Some((30, 2))
    });
    // A clean stop gives B's part back at once.
    stop(b);
    poll("node A has the whole trunk again", &|| {
        trunk_share(a_addr) == Some((60, 1))
    });
    let mut b = Running::start(&configs[1]);
    let b_addr = b.wait_until_listening();
    poll("node B has its part back", &|| {
        trunk_share(a_addr) == Some((30, 2)) && trunk_share(b_addr) == Some((30, 2))
    });
    stop(b);
    stop(a);
}

#[test]
fn the_cli_defines_and_removes_a_campaign_a_running_dialer_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"name": "cli", "mode": "progressive", "ring_timeout_s": 5}"#,
    )
    .unwrap();
    let (code, out) = support::outdial_output(
        &config,
        &["campaigns", "define", "--file", bad.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ring_timeout_s"), "{out}");
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"name": "cli", "mode": "progressive", "agents": ["1002"]}"#,
    )
    .unwrap();
    let (code, out) = support::outdial_output(
        &config,
        &["campaigns", "define", "--file", good.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = support::outdial_output(&config, &["campaigns", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cli\tapi\tprogressive") && out.contains("demo\tfile\t"),
        "{out}"
    );
    let (code, out) = support::outdial_output(&config, &["campaigns", "show", "cli"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out)["agents"], json!(["1002"]), "{out}");
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        wait_until(std::time::Duration::from_secs(30), what, check)
    };
    wait("the dialer takes the campaign", &|| {
        campaign(addr, "cli").is_some()
    });
    let (code, out) = support::outdial_output(&config, &["campaigns", "remove", "demo"]);
    assert_eq!(code, 2, "the file's campaign: {out}");
    let (code, out) = support::outdial_output(&config, &["campaigns", "remove", "cli"]);
    assert_eq!(code, 0, "{out}");
    wait("the dialer drops the campaign", &|| {
        campaign(addr, "cli").is_none()
    });
    stop(running);
}
