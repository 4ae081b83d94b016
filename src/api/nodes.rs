//! `GET /api/nodes`: the dialer nodes sharing this store, each with the
//! process running it and when it last said so (`node_presence`), for a
//! supervisor running several nodes: which are up, which went silent.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use super::ApiState;
use super::auth::require_supervisor;
use super::error::ApiError;
use crate::driver::node_presence::{Instance, is_alive};

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub node: String,
    /// Where its process runs, and which (empty / 0 when unknown).
    pub host: String,
    pub pid: u32,
    /// Its last heartbeat (RFC 3339) and how long ago, in whole seconds.
    pub seen_at: String,
    pub seen_s_ago: u64,
    /// It said it was alive within the last 20 s (a running node says so
    /// every 5 s); a node that crashed stays listed, not alive, until its
    /// next start takes its name over.
    pub alive: bool,
}

#[derive(Debug, Serialize)]
pub struct Nodes {
    /// The node answering.
    pub this: String,
    pub nodes: Vec<NodeView>,
}

pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Nodes>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let lists = state
        .lists()
        .ok_or_else(|| ApiError::Unavailable("the node list needs the store".into()))?;
    let (store, this) = (lists.store.clone(), lists.node.clone());
    let nodes = super::blocking(move || store.nodes()).await?;
    let now = jiff::Timestamp::now();
    let nodes = nodes
        .into_iter()
        .map(|presence| {
            let instance = Instance::parse(&presence.instance);
            let ago = now.duration_since(presence.seen_at);
            let seen_s_ago = u64::try_from(ago.as_secs()).unwrap_or(0);
            NodeView {
                node: presence.node,
                host: instance.host,
                pid: instance.pid,
                seen_at: presence.seen_at.to_string(),
                seen_s_ago,
                alive: is_alive(presence.seen_at, now),
            }
        })
        .collect();
    Ok(Json(Nodes { this, nodes }))
}
