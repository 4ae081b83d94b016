//! Two dialer processes drain 10,000 records from one PostgreSQL database
//! at the same time; no record is ever leased twice.
//!
//! The worker is this test binary re-invoked (`drain_worker`, ignored unless
//! called with `OUTDIAL_DRAIN_URL` set), so the two nodes are real OS
//! processes with their own connections.

mod store_common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use outdial::store::{self, LeaseRequest};
use store_common::*;

const RECORDS: usize = 10_000;

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
#[ignore = "a worker process started by two_processes_never_lease_the_same_record"]
fn drain_worker() {
    let Ok(url) = std::env::var("OUTDIAL_DRAIN_URL") else {
        return;
    };
    let node = std::env::var("OUTDIAL_DRAIN_NODE").unwrap();
    let dir = PathBuf::from(std::env::var("OUTDIAL_DRAIN_DIR").unwrap());
    let store = store::open(&url).unwrap();
    let campaign = store.campaign_id("drain").unwrap().unwrap();
    std::fs::write(dir.join(format!("{node}.ready")), b"").unwrap();
    wait_for(&dir.join("go"));
    let mut leased = Vec::new();
    let mut empty = 0;
    while empty < 3 {
        let leases = store
            .lease(&LeaseRequest {
                campaign,
                node: &node,
                agent: None,
                max: 100,
                now: noon_ny(),
                lease_for: SignedDuration::from_mins(10),
                personal_only: false,
                skip_agent_required: false,
            })
            .unwrap();
        if leases.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        // Leases are held (as while dialing), so a record can only come
        // back if the hopper hands out one already leased.
        leased.extend(leases.iter().map(|l| l.record_id.to_string()));
    }
    std::fs::write(dir.join(format!("{node}.ids")), leased.join("\n")).unwrap();
}

#[test]
fn two_processes_never_lease_the_same_record() {
    let store = postgres_store();
    campaign_with(&*store, &always_open("drain"), &rows(RECORDS));
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<_> = ["node-a", "node-b"]
        .iter()
        .map(|node| {
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "drain_worker", "--ignored", "--nocapture"])
                .env("OUTDIAL_DRAIN_URL", &store.url)
                .env("OUTDIAL_DRAIN_NODE", node)
                .env("OUTDIAL_DRAIN_DIR", dir.path())
                .spawn()
                .unwrap();
            (node.to_string(), child)
        })
        .collect();
    for (node, _) in &workers {
        wait_for(&dir.path().join(format!("{node}.ready")));
    }
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let mut all = HashSet::new();
    let mut total = 0;
    for (node, mut child) in workers {
        assert!(child.wait().unwrap().success(), "worker {node} failed");
        let ids = std::fs::read_to_string(dir.path().join(format!("{node}.ids"))).unwrap();
        let ids: Vec<&str> = ids.lines().collect();
        assert!(
            !ids.is_empty(),
            "{node} leased nothing: the two did not run together"
        );
        total += ids.len();
        for id in ids {
            assert!(all.insert(id.to_string()), "record {id} was leased twice");
        }
    }
    assert_eq!(total, RECORDS);
    assert_eq!(all.len(), RECORDS);
    let campaign = store.campaign_id("drain").unwrap().unwrap();
    assert_eq!(
        store.counts(campaign).unwrap(),
        vec![("leased".to_string(), RECORDS as u64)]
    );
}

/// Dialer nodes starting together on a fresh database: every one opens
/// the store (the migrations run one node at a time).
#[test]
fn nodes_opening_a_fresh_database_together_all_start() {
    for _ in 0..5 {
        let database = PgDatabase::create();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let url = database.url.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store::open(&url).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().expect("the opener thread");
            assert!(
                opened.is_ok(),
                "a node could not open the store: {opened:?}"
            );
        }
    }
}
