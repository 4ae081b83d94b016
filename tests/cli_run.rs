//! `outdial run`: health, clean shutdown on signals, and a taken port.

mod support;

use std::time::{Duration, Instant};

use support::{Running, ephemeral_config, http_get, outdial, write_config};

#[test]
fn serves_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let http = running.wait_until_listening();

    let (status, body) = http_get(http, "/health");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_s"].is_u64());

    running.signal("TERM");
    let asked = Instant::now();
    running.wait_for_message("outdial stopped", Duration::from_secs(5));
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    // The last line the process logs says it stopped.
    while let Ok(line) = running.lines.recv_timeout(Duration::from_millis(200)) {
        running.seen.push(line);
    }
    let last = running.seen.last().expect("log lines");
    assert!(last.contains("outdial stopped"), "{last}");
}

#[test]
fn sigint_also_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    running.wait_until_listening();
    running.signal("INT");
    running.wait_for_message("outdial stopped", Duration::from_secs(5));
    let status = running.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sip_port_in_use_is_a_clear_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = ephemeral_config(dir.path()).replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{addr}\""),
        1,
    );
    let config = write_config(dir.path(), &text);
    let output = outdial()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("SIP UDP"), "{stderr}");
    drop(taken);
}

#[test]
fn http_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = ephemeral_config(dir.path()).replace(
        "listen = \"127.0.0.1:0\"        # HTTP",
        &format!("listen = \"{addr}\"        # HTTP"),
    );
    assert!(text.contains(&addr.to_string()), "config edit failed");
    let config = write_config(dir.path(), &text);
    let output = outdial()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("HTTP"), "{stderr}");
}

/// A second process started on the same node (here: the same SQLite file,
/// whose row spool sits beside it) is refused before it touches the
/// store: it would have closed the first one's calls as interrupted and
/// emptied its spool.
#[test]
fn a_second_process_on_the_same_node_is_refused_and_the_first_runs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let http = running.wait_until_listening();
    let mut second = outdial()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second process on the same node is still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("outdial.db.spool")
            && stderr.contains(&format!("pid {}", running.child.id()))
            && stderr.contains("already running"),
        "{stderr}"
    );
    let (status, body) = http_get(http, "/health");
    assert_eq!(status, 200, "{body}");
    running.signal("TERM");
    assert_eq!(running.child.wait().expect("wait").code(), Some(0));
}

/// `outdial nodes` lists the running node from the store, alive, with its
/// process; after a clean stop the store holds no node.
#[test]
fn the_nodes_command_lists_the_running_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    running.wait_until_listening();
    running.wait_for_message("store open", Duration::from_secs(20));
    let nodes = || {
        let listed = outdial()
            .arg("--config")
            .arg(&config)
            .arg("nodes")
            .output()
            .expect("run outdial nodes");
        assert!(listed.status.success(), "{listed:?}");
        String::from_utf8(listed.stdout).expect("UTF-8")
    };
    let table = nodes();
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert_eq!(rows[0][2], running.child.id().to_string(), "{table}");
    assert_eq!(rows[0][5], "alive", "{table}");
    running.signal("TERM");
    assert_eq!(running.child.wait().expect("wait").code(), Some(0));
    assert_eq!(nodes(), "", "a clean stop frees the node");
}
