//! `outdial nodes`: the dialer nodes sharing the store (the same rows as
//! `GET /api/nodes`), for an operator without the API: name, host, PID,
//! last heartbeat, seconds since, alive or down — tab-separated.
//!
//! Exit codes: 0 listed; 2 bad configuration; 1 a store failure.

use std::process::ExitCode;

use super::Cli;
use super::import::Failure;
use crate::driver::node_presence::{Instance, is_alive};

pub fn nodes(cli: &Cli) -> ExitCode {
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let (_, store) = super::import::open_config_and_store(&cli.config)?;
    let nodes = store
        .nodes()
        .map_err(|error| Failure::runtime(error.to_string()))?;
    let now = jiff::Timestamp::now();
    for node in &nodes {
        let instance = Instance::parse(&node.instance);
        let ago = now.duration_since(node.seen_at).as_secs().max(0);
        println!(
            "{}\t{}\t{}\t{}\t{}s\t{}",
            node.node,
            if instance.host.is_empty() {
                "-"
            } else {
                &instance.host
            },
            instance.pid,
            node.seen_at,
            ago,
            if is_alive(node.seen_at, now) {
                "alive"
            } else {
                "down"
            },
        );
    }
    eprintln!("{} node(s) on the store", nodes.len());
    Ok(())
}
