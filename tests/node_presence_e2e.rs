//! One process per node name on a shared PostgreSQL store
//! (`driver::node_presence`): a second `outdial run` with the name of a
//! running node is refused (it would close that node's calls as
//! interrupted), a crashed node's name is taken over at once by its
//! restart, and a node whose name another process took stops.

mod store_common;
mod support;

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use support::{Running, ephemeral_config, http, http_get, write_config};

const SUPERVISOR: &str = "demo-supervisor-token";

/// A node named `twin` on `database`, its spool in `dir`.
fn twin_config(dir: &Path, database: &store_common::PgDatabase) -> std::path::PathBuf {
    let text = ephemeral_config(dir).replace(
        &format!("url = \"sqlite://{}/outdial.db\"", dir.display()),
        &format!(
            "url = \"{}\"\nnode = \"twin\"\nspool = \"{}/node.spool\"",
            database.url,
            dir.display()
        ),
    );
    assert!(text.contains(&database.url), "the store URL was replaced");
    write_config(dir, &text)
}

/// Waits for the process to exit; fails the test if it runs on.
fn exit_within(running: &mut Running, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            // What it logged, for the assertions.
            while let Ok(line) = running.lines.recv_timeout(Duration::from_millis(200)) {
                running.seen.push(line);
            }
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after {within:?}; logged:\n{}",
            running.seen.join("\n")
        );
        while let Ok(line) = running.lines.try_recv() {
            running.seen.push(line);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn presence(database: &store_common::PgDatabase) -> Vec<(String, String)> {
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).expect("connect");
    client
        .query(
            "SELECT node, instance FROM node_presence ORDER BY node",
            &[],
        )
        .expect("read node_presence")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn a_second_process_with_a_running_nodes_name_is_refused_and_a_crashed_one_is_taken_over() {
    let database = store_common::PgDatabase::create();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config_a = twin_config(dir_a.path(), &database);
    let config_b = twin_config(dir_b.path(), &database);
    let mut first = Running::start(&config_a);
    let first_http = first.wait_until_listening();
    // It listens before it opens the store: the name is its once open.
    first.wait_for_message("store open", Duration::from_secs(20));
    let first_pid = first.child.id();

    // Its own spool and ports, but the same node name: refused before it
    // touches the store's calls.
    let mut second = Running::start(&config_b);
    let status = exit_within(&mut second, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", second.seen.join("\n"));
    let logged = second.seen.join("\n");
    assert!(
        logged.contains("node `twin` is already running")
            && logged.contains(&format!("pid {first_pid}")),
        "{logged}"
    );
    let (status, body) = http_get(first_http, "/health");
    assert_eq!(status, 200, "{body}");
    // The supervisor sees the node, its process, alive.
    let (status, body) = http_get(first_http, "/api/nodes");
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(first_http, "GET", "/api/nodes", Some(SUPERVISOR), None);
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["this"], "twin", "{listed}");
    let nodes = listed["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{listed}");
    assert_eq!(nodes[0]["node"], "twin", "{listed}");
    assert_eq!(nodes[0]["pid"], first_pid, "{listed}");
    assert_eq!(nodes[0]["alive"], true, "{listed}");

    // The first crashes: its restart (here from the other directory) takes
    // the name over without waiting.
    first.child.kill().expect("kill");
    first.child.wait().expect("wait");
    let mut restarted = Running::start(&config_b);
    let taken = restarted.wait_for_message(
        "this node's previous process is gone; taken over",
        Duration::from_secs(15),
    );
    assert!(
        taken["previous"]
            .as_str()
            .is_some_and(|p| p.contains(&format!("pid {first_pid}"))),
        "{taken}"
    );
    restarted.wait_for_message("store open", Duration::from_secs(20));
    let held = presence(&database);
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0]
            .1
            .contains(&format!("pid={} ", restarted.child.id())),
        "{held:?}"
    );
    // A clean stop frees the name.
    restarted.signal("TERM");
    assert_eq!(
        exit_within(&mut restarted, Duration::from_secs(10)).code(),
        Some(0)
    );
    assert_eq!(presence(&database), Vec::new());
}

#[test]
fn a_node_whose_name_another_process_took_stops() {
    let database = store_common::PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Running::start(&twin_config(dir.path(), &database));
    node.wait_for_message("store open", Duration::from_secs(20));
    // What a process on another machine does once this node has been
    // silent for too long (its store out of reach).
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).expect("connect");
    let changed = client
        .execute(
            "UPDATE node_presence SET instance = 'host=elsewhere pid=4242 start=1 boot=other \
             pidns=pid:[1]' WHERE node = 'twin'",
            &[],
        )
        .expect("take the name over");
    assert_eq!(changed, 1);
    // Within a heartbeat (5 s) it sees it and stops, with an error.
    let status = exit_within(&mut node, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{}", node.seen.join("\n"));
    let logged = node.seen.join("\n");
    assert!(
        logged.contains("another process runs as this node now")
            && logged.contains("node `twin` was taken over by another process"),
        "{logged}"
    );
    // The other process keeps the name.
    let held = presence(&database);
    assert!(held[0].1.contains("host=elsewhere"), "{held:?}");
}
