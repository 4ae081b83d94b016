//! The running process: binds every socket, serves until SIGINT/SIGTERM, then
//! shuts down within a bounded time. This is the tokio shell's top; the
//! protocol logic lives in the sans-IO cores it drives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use crate::campaign::rules::CampaignRules;
use crate::config::Config;
use crate::driver::node_presence;
use crate::driver::shell::Shell;
use crate::engine::dialer::Dialer;
use crate::net::SipSockets;
use crate::store::spool::{RowSpool, SpooledRow, replay as replay_spool};
use crate::store::{CampaignId, Store};
use crate::{api, driver};

/// Longest a clean shutdown may take before the process exits anyway
/// (connected calls get `driver::CALLS_DRAIN` of it to finish).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);

/// Runs the engine until a termination signal arrives.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    // Watch signals before anything is announced: a SIGTERM that arrives
    // right after "listening" must still stop the process cleanly.
    let signal = wait_for_signal()?;
    // The row spool's lock is this node's first claim, taken before any
    // socket or the store is touched: a second process on the same node
    // is refused here, and one that started a moment earlier cannot lose
    // the race to it while it opens the store.
    let spool_path = config.store.spool_path();
    let opened_spool =
        RowSpool::open(&spool_path).context("cannot open the row spool (`[store] spool`)")?;
    let metrics = crate::metrics::install()?;
    let sip = SipSockets::bind(&config.sip).await?;
    let http = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("cannot bind the HTTP API on {}", config.api.listen))?;
    let http_addr = http.local_addr()?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        sip_udp = %display_opt(sip.udp_addr()),
        sip_tcp = %display_opt(sip.tcp_addr()),
        http = %http_addr,
        agent_desktop = %format!("http://{http_addr}/agent"),
        supervisor = %format!("http://{http_addr}/supervisor"),
        "outdial listening"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // SIP stops last: the engine hangs up its calls through it.
    let (sip_shutdown_tx, sip_shutdown_rx) = watch::channel(false);
    let (sip_handle, sip_events, sip_task) = sip.start(&config, sip_shutdown_rx);
    let (config, store, campaign_ids, node, instance, spool) =
        open_store(config, opened_spool).await?;
    let (taken_over_tx, taken_over) = tokio::sync::oneshot::channel();
    let presence_task = tokio::spawn(node_presence::keep_the_node(
        store.clone(),
        node.clone(),
        instance.clone(),
        shutdown_rx.clone(),
        taken_over_tx,
    ));
    let presence = (store.clone(), node.clone(), instance);
    // The run commands other nodes gave before this one started are
    // history: only later ones are followed (a restart never starts dialing).
    let run_commands_seen = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.last_run_command())
            .await
            .context("reading the run commands")?
            .context("cannot read the run commands other nodes gave")?
    };
    let lists = api::Lists {
        store: store.clone(),
        campaigns: api::CampaignIndex::new(config.campaigns.iter().filter_map(|c| {
            let id = campaign_ids.get(&c.name)?;
            Some((c.name.clone(), (*id, c.default_region.clone())))
        })),
        agents: config.agents.iter().map(|a| a.id.clone()).collect(),
        admin: Default::default(),
        node: node.clone(),
        record_dir: config.media.record_dir.clone(),
    };
    let config = Arc::new(config);
    let (mut shell, channels) =
        Shell::new(config.clone(), sip_handle, store, spool, node, campaign_ids).await?;
    shell.open_sink().await?;
    let mut dialer = Dialer::new(&config, Instant::now());
    // A carrier's Retry-After recorded before this start (by this node
    // before a restart, or by another node of a shared trunk) holds new
    // calls from the first instant: applied before the engine runs, so no
    // start can race it (the once-a-second loops below keep it current).
    if let Some(remaining) = driver::trunk_share::recorded_trunk_hold(
        lists.store.clone(),
        lists.node.clone(),
        config.trunk.shared_by_nodes,
    )
    .await
    {
        tracing::warn!(
            seconds = remaining.as_secs_f64(),
            "new calls held: the carrier asked for a pause that is not over"
        );
        dialer.hold_trunk_for(remaining, Instant::now());
    }
    let (engine, engine_task) =
        driver::spawn(dialer, shell, channels, sip_events, shutdown_rx.clone());
    // Campaigns defined, started, paused and stopped through another node
    // sharing the store reach this one within a poll.
    let follow_task = tokio::spawn(api::follow_the_store(
        lists.clone(),
        engine.clone(),
        run_commands_seen,
        shutdown_rx.clone(),
    ));
    // A trunk shared by the nodes of the store: this node's part of it.
    // (The store's last handle must not be dropped on the runtime: the
    // PostgreSQL client blocks. `release` drops this one on the blocking pool.)
    // Alone on its trunk: the carrier's Retry-After outlives a restart.
    let hold_task = (!config.trunk.shared_by_nodes).then(|| {
        tokio::spawn(driver::trunk_share::keep_the_trunk_hold(
            lists.store.clone(),
            engine.clone(),
            lists.node.clone(),
            shutdown_rx.clone(),
        ))
    });
    let trunk_task = config.trunk.shared_by_nodes.then(|| {
        let task = tokio::spawn(driver::trunk_share::share_the_trunk(
            lists.store.clone(),
            engine.clone(),
            lists.node.clone(),
            config.trunk.max_concurrent_calls,
            shutdown_rx.clone(),
        ));
        (task, lists.store.clone(), lists.node.clone())
    });
    let api_state = api::ApiState::new(
        started,
        api::Tokens::from_config(&config.api),
        engine,
        shutdown_rx.clone(),
        Some(metrics),
        Some(lists),
    );
    let mut http_shutdown = shutdown_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http, api::router(api_state))
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    // Stopped by a signal, or by another process that took this node's
    // name while the store was out of reach (it has closed this node's
    // calls as interrupted already: dialing on would go on blind).
    let taken_over = tokio::select! {
        signal = signal => {
            tracing::info!(signal, "shutting down");
            None
        }
        Ok(node) = taken_over => {
            tracing::error!(
                %node,
                "another process runs as this node now (this one's heartbeat was out of reach \
                 of the store for too long): shutting down"
            );
            Some(node)
        }
    };
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = engine_task.await;
        // The calls are hung up: this node's part of a shared trunk is free.
        if let Some((trunk_task, store, node)) = trunk_task {
            let _ = trunk_task.await;
            driver::trunk_share::release(store, node).await;
        }
        let _ = sip_shutdown_tx.send(true);
        let _ = sip_task.await;
        let _ = http_task.await;
        let _ = follow_task.await;
        if let Some(hold_task) = hold_task {
            let _ = hold_task.await;
        }
    })
    .await;
    // A heartbeat may be waiting on a store out of reach: not awaited.
    presence_task.abort();
    if drained.is_err() {
        tracing::warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "tasks still busy at the end of the grace period"
        );
    }
    if let Some(node) = taken_over {
        // The store's last handles must not be dropped on the runtime.
        let _ = tokio::task::spawn_blocking(move || drop(presence)).await;
        tracing::info!(uptime_s = started.elapsed().as_secs(), "outdial stopped");
        anyhow::bail!("node `{node}` was taken over by another process");
    }
    // The node's name is free for its next start at once.
    let (store, node, instance) = presence;
    node_presence::release(store, node, instance).await;
    tracing::info!(uptime_s = started.elapsed().as_secs(), "outdial stopped");
    Ok(())
}

/// Opens the store, adds the campaigns supervisors defined through the API
/// to the file's, writes every campaign's rules, and resolves what this
/// node left in flight when it last stopped: first the finished calls'
/// rows its spool still holds are written, then its attempts still open
/// (a crash) are closed as interrupted and its leases given back.
async fn open_store(
    mut config: Config,
    (mut spool, left): (RowSpool, Vec<SpooledRow>),
) -> anyhow::Result<OpenedStore> {
    tokio::task::spawn_blocking(move || {
        let url = crate::config::redact_url(&config.store.url);
        let store: Arc<dyn Store> = Arc::from(
            crate::store::open(&config.store.url)
                .with_context(|| format!("cannot open the store {url}"))?,
        );
        let stored: Vec<(String, String)> = store
            .campaign_definitions()
            .context("cannot read the campaigns defined through the API")?
            .into_iter()
            .map(|d| (d.name, d.definition))
            .collect();
        for warning in crate::config::definition::add_stored_definitions(&mut config, &stored) {
            tracing::warn!("{warning}");
        }
        if !stored.is_empty() {
            tracing::info!(
                campaigns = stored.len(),
                "campaigns defined through the API read back"
            );
        }
        let mut ids = HashMap::new();
        for campaign in &config.campaigns {
            let rules = CampaignRules::from_config(campaign)
                .with_context(|| format!("campaign `{}`", campaign.name))?;
            let id = store
                .sync_campaign(&rules)
                .with_context(|| format!("cannot store campaign `{}`", campaign.name))?;
            ids.insert(campaign.name.clone(), id);
        }
        let node = config.store.node_name();
        let spool_path = spool.path().to_path_buf();
        // Before anything of this node's is touched: another process
        // running as this node would lose its calls to the recovery below.
        // When this node was last seen alive (its heartbeat), before the
        // claim below writes over it: the end of its agents' states if it
        // crashed (a clean stop ended them itself).
        let last_seen = store
            .nodes()
            .context("cannot read the dialer nodes")?
            .into_iter()
            .find(|presence| presence.node == node)
            .map(|presence| presence.seen_at);
        let instance = node_presence::claim(store.as_ref(), &node)?;
        let agents_closed = store
            .close_agent_states(
                &node,
                last_seen.unwrap_or_else(jiff::Timestamp::now),
                crate::agent::activity::REASON_DIALER_STOPPED,
            )
            .context("cannot close this node's agent states")?;
        let replayed = replay_spool(store.as_ref(), &mut spool, &left, jiff::Timestamp::now())
            .with_context(|| {
                format!(
                    "cannot write the {} finished calls' rows left in {}",
                    left.len(),
                    spool_path.display()
                )
            })?;
        let recovery = store
            .recover_node(&node, jiff::Timestamp::now())
            .context("cannot recover this node's calls in flight")?;
        let expired = store
            .expire_leases(jiff::Timestamp::now())
            .context("cannot resolve lapsed leases")?;
        tracing::info!(
            %node,
            spooled_written = replayed.written,
            spooled_already_written = replayed.already_written,
            spooled_refused = replayed.refused,
            interrupted = recovery.interrupted_attempts,
            released = recovery.released_leases,
            expired_interrupted = expired.interrupted_attempts,
            expired_released = expired.released_leases,
            agents_closed,
            "store open"
        );
        Ok((
            config,
            store,
            ids,
            node,
            instance,
            Arc::new(Mutex::new(spool)),
        ))
    })
    .await
    .context("the store task failed")?
}

/// What [`open_store`] gives the node: its configuration with the
/// campaigns defined through the API, the store, the campaigns' ids, the
/// node's name, the text this process is known by in the store's
/// `node_presence`, and its row spool.
type OpenedStore = (
    Config,
    Arc<dyn Store>,
    HashMap<String, CampaignId>,
    String,
    String,
    Arc<Mutex<RowSpool>>,
);

fn display_opt(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves with
/// the name of the first signal received.
fn wait_for_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}
