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
        let Ok(demand) = engine.trunk_demand().await else {
            break;
        };
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

/// Gives this node's part of the shared trunk back: after a clean stop, once
/// its calls are hung up and `share_the_trunk` has returned.
pub async fn release(store: Arc<dyn Store>, node: String) {
    let released = tokio::task::spawn_blocking(move || store.release_trunk_share(&node)).await;
    if let Ok(Err(error)) = released {
        tracing::warn!(%error, "cannot give back this node's part of the shared trunk");
    }
}
