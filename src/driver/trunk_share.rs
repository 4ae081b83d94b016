//! `[trunk] shared_by_nodes`: about once a second this node tells the store
//! what it asks of the trunk and takes the part the store grants it
//! (`pacing::trunk_share` decides; the store serialises the claims). A node
//! that stops claiming (a crash, a lost database) is left out of the
//! others' division after `NODE_GONE_AFTER`; so that its calls cannot then
//! add to theirs, it stops starting calls itself once it has gone that long
//! without a claim. A node shutting down stops claiming at once but keeps
//! its part until its calls are hung up (well within `NODE_GONE_AFTER`);
//! then the server gives it back ([`release`]), so the others never count
//! its lines as free while it still holds them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::EngineHandle;
use crate::metrics as m;
use crate::pacing::trunk_share::TrunkShare;
use crate::store::Store;
use jiff::Timestamp;

/// How often a node claims its part of the trunk.
pub const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// A node whose last claim is older than this is gone: its part is free.
pub const NODE_GONE_AFTER: Duration = Duration::from_secs(5);

/// Claims this node's part of the shared trunk until shutdown (or until the
/// engine is gone).
pub async fn share_the_trunk(
    store: Arc<dyn Store>,
    engine: EngineHandle,
    node: String,
    max_lines: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(CLAIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_claim = tokio::time::Instant::now();
    let mut share: Option<TrunkShare> = None;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = ticks.tick() => {}
        }
        let Ok((demand, retry_after)) = engine.trunk_demand().await else {
            break;
        };
        share_retry_after(&store, &engine, &node, retry_after, true).await;
        let claim = {
            let store = store.clone();
            let node = node.clone();
            tokio::task::spawn_blocking(move || {
                let now = Timestamp::now();
                let live_since = jiff::SignedDuration::try_from(NODE_GONE_AFTER)
                    .ok()
                    .and_then(|gone| now.checked_sub(gone).ok())
                    .unwrap_or(now);
                store.claim_trunk_share(&node, demand, max_lines, now, live_since)
            })
            .await
        };
        let claimed = match claim {
            Ok(Ok(claimed)) => {
                last_claim = tokio::time::Instant::now();
                Some(claimed)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot claim this node's part of the shared trunk");
                None
            }
            Err(error) => {
                tracing::warn!(%error, "the trunk claim task failed");
                None
            }
        };
        let next = match claimed {
            Some(claimed) => Some(claimed),
            // The others count this node gone and divide its lines: start
            // no calls until a claim succeeds again.
            None if last_claim.elapsed() >= NODE_GONE_AFTER => Some(TrunkShare {
                lines: 0,
                nodes: share.map_or(1, |s| s.nodes),
            }),
            None => share,
        };
        if next != share {
            if let Some(next) = next {
                tracing::info!(
                    lines = next.lines,
                    nodes = next.nodes,
                    in_use = demand.in_use,
                    wanted = demand.wanted,
                    "this node's part of the shared trunk"
                );
                metrics::gauge!(m::TRUNK_SHARE_LINES).set(f64::from(next.lines));
                metrics::gauge!(m::TRUNK_SHARE_NODES).set(f64::from(next.nodes));
            }
            share = next;
            if engine.set_trunk_share(share).await.is_err() {
                break;
            }
        }
    }
}

/// A node on a trunk of its own keeps the carrier's Retry-After in the
/// store too (once a second, while it runs), so that a restart during the
/// carrier's pause does not dial into it.
pub async fn keep_the_trunk_hold(
    store: Arc<dyn Store>,
    engine: EngineHandle,
    node: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(CLAIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = ticks.tick() => {}
        }
        let Ok((_, retry_after)) = engine.trunk_demand().await else {
            break;
        };
        share_retry_after(&store, &engine, &node, retry_after, false).await;
    }
}

/// A carrier that answers one node 503 with a Retry-After is overloaded
/// for every node on the trunk (`all_nodes`): each node records its own
/// hold in the store and holds its new calls until the latest any node
/// recorded; a node restarted during the hold finds it there too (alone on
/// its trunk, its own). A store that cannot be reached changes nothing
/// here: each node still honours its own 503s.
async fn share_retry_after(
    store: &Arc<dyn Store>,
    engine: &EngineHandle,
    node: &str,
    retry_after: Option<Duration>,
    all_nodes: bool,
) {
    let shared = {
        let store = store.clone();
        let node = node.to_string();
        tokio::task::spawn_blocking(move || {
            let now = Timestamp::now();
            let until = retry_after
                .and_then(|wait| jiff::SignedDuration::try_from(wait).ok())
                .and_then(|wait| now.checked_add(wait).ok());
            store
                .share_trunk_hold(&node, until, now, all_nodes)
                .map(|latest| latest.map(|until| now.duration_until(until)))
        })
        .await
    };
    let remaining = match shared {
        Ok(Ok(remaining)) => remaining.and_then(|d| Duration::try_from(d).ok()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot share the carrier's Retry-After");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the Retry-After task failed");
            None
        }
    };
    // Longer than this node's own hold: another node's (or an earlier run's).
    if let Some(remaining) = remaining
        && retry_after.is_none_or(|own| remaining > own + Duration::from_millis(500))
    {
        tracing::warn!(
            seconds = remaining.as_secs_f64(),
            "new calls held: the carrier asked another node of the trunk (or this \
             node before a restart) to pause"
        );
        let _ = engine.hold_trunk_for(remaining).await;
    }
}

/// The carrier's pause recorded in the store and not yet over: this node's
/// own (alone on its trunk) or the latest of any node's (`all_nodes`).
/// Read once at startup; a store that cannot be read holds nothing.
pub async fn recorded_trunk_hold(
    store: Arc<dyn Store>,
    node: String,
    all_nodes: bool,
) -> Option<Duration> {
    let read = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        store
            .share_trunk_hold(&node, None, now, all_nodes)
            .map(|latest| latest.map(|until| now.duration_until(until)))
    })
    .await;
    match read {
        Ok(Ok(remaining)) => remaining
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read the carrier's recorded Retry-After");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the Retry-After task failed");
            None
        }
    }
}

/// Gives this node's part of the shared trunk back: after a clean stop, once
/// its calls are hung up and `share_the_trunk` has returned.
pub async fn release(store: Arc<dyn Store>, node: String) {
    let released = tokio::task::spawn_blocking(move || store.release_trunk_share(&node)).await;
    if let Ok(Err(error)) = released {
        tracing::warn!(%error, "cannot give back this node's part of the shared trunk");
    }
}
