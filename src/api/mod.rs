//! The HTTP API. This module owns routing and shared state; each resource
//! lives in its own submodule. Every `/api` route needs a bearer token
//! (`auth`); `/health` does not.

mod agent_activity;
mod agents;
mod auth;
mod body;
mod callbacks;
pub mod campaign_admin;
mod campaigns;
mod dnc;
mod error;
mod events;
mod health;
mod listen_ins;
mod nodes;
mod recordings;
mod run_commands;
mod web;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

pub use auth::{Principal, Tokens};
pub use campaign_admin::follow_the_store;
pub use error::ApiError;

use crate::driver::EngineHandle;

/// State shared by every handler.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
    tokens: Tokens,
    engine: EngineHandle,
    /// Turns true when the process shuts down; long-lived responses (event
    /// streams) end then, so a clean shutdown does not wait for clients.
    shutdown: watch::Receiver<bool>,
    /// Renders `GET /metrics`; None when no recorder is installed.
    metrics: Option<PrometheusHandle>,
    /// For list uploads: the store, each campaign's id there and its
    /// default region for numbers without a country code.
    lists: Option<Lists>,
}

/// What a list upload needs.
#[derive(Clone)]
pub struct Lists {
    pub store: Arc<dyn crate::store::Store>,
    pub campaigns: CampaignIndex,
    /// The configured agents' ids (callbacks may be given only to them).
    pub agents: std::collections::BTreeSet<String>,
    /// Campaigns defined, changed or removed through the API, one at a
    /// time (the store and the engine are updated in turn).
    pub admin: Arc<tokio::sync::Mutex<()>>,
    /// This node's name in the store (`[store] node`): the run commands it
    /// gives are kept under it, and those of the other nodes followed.
    pub node: String,
    /// Where this node writes its bridge recordings (`[media] record_dir`).
    pub record_dir: Option<std::path::PathBuf>,
}

/// Each campaign's id in the store and its default region (numbers
/// without a country code), by name; campaigns defined through the API
/// join it while the dialer runs.
#[derive(Clone, Default)]
pub struct CampaignIndex(
    Arc<std::sync::RwLock<std::collections::HashMap<String, (crate::store::CampaignId, String)>>>,
);

impl CampaignIndex {
    pub fn new(
        campaigns: impl IntoIterator<Item = (String, (crate::store::CampaignId, String))>,
    ) -> Self {
        Self(Arc::new(std::sync::RwLock::new(
            campaigns.into_iter().collect(),
        )))
    }

    pub fn get(&self, name: &str) -> Option<(crate::store::CampaignId, String)> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn insert(&self, name: String, id: crate::store::CampaignId, default_region: String) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, (id, default_region));
    }

    pub fn remove(&self, name: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

impl ApiState {
    pub fn new(
        started: Instant,
        tokens: Tokens,
        engine: EngineHandle,
        shutdown: watch::Receiver<bool>,
        metrics: Option<PrometheusHandle>,
        lists: Option<Lists>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                started,
                tokens,
                engine,
                shutdown,
                metrics,
                lists,
            }),
        }
    }

    fn lists(&self) -> Option<&Lists> {
        self.inner.lists.as_ref()
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.clone()
    }

    fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    fn engine(&self) -> &EngineHandle {
        &self.inner.engine
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/agent", get(web::agent))
        .route("/supervisor", get(web::supervisor))
        .route("/ui/common.js", get(web::common_js))
        .route("/ui/agent.js", get(web::agent_js))
        .route("/ui/supervisor.js", get(web::supervisor_js))
        .route("/ui/app.css", get(web::css))
        .route("/health", get(health::health))
        .route("/metrics", get(prometheus))
        .route("/api/agents", get(agents::list))
        .route("/api/agent-activity", get(agent_activity::report))
        .route("/api/attempts/{id}/recording", get(recordings::recording))
        .route("/api/agents/{id}", get(agents::show))
        .route("/api/agents/{id}/login", post(agents::login))
        .route("/api/agents/{id}/ready", post(agents::ready))
        .route("/api/agents/{id}/not-ready", post(agents::not_ready))
        .route("/api/agents/{id}/logout", post(agents::logout))
        .route("/api/agents/{id}/hangup", post(agents::hangup))
        .route("/api/agents/{id}/hold", post(agents::hold))
        .route("/api/agents/{id}/resume", post(agents::resume))
        .route(
            "/api/agents/{id}/transfer",
            post(agents::transfer).delete(agents::cancel_transfer),
        )
        .route("/api/agents/{id}/dtmf", post(agents::dtmf))
        .route(
            "/api/agents/{id}/consult",
            post(agents::consult).delete(agents::end_consultation),
        )
        .route(
            "/api/agents/{id}/phone",
            post(agents::browser_phone).delete(agents::close_browser_phone),
        )
        .route("/api/agents/{id}/listen", post(listen_ins::listen))
        .route("/api/listen-ins", get(listen_ins::list))
        .route(
            "/api/listen-ins/{session}",
            axum::routing::patch(listen_ins::set_mode).delete(listen_ins::end),
        )
        .route(
            "/api/agents/{id}/voicemail-drop",
            post(agents::drop_voicemail),
        )
        .route(
            "/api/agents/{id}/recording/pause",
            post(agents::pause_recording),
        )
        .route(
            "/api/agents/{id}/recording/resume",
            post(agents::resume_recording),
        )
        .route("/api/agents/{id}/disposition", post(agents::disposition))
        .route("/api/agents/{id}/preview", post(agents::preview_next))
        .route(
            "/api/agents/{id}/contact",
            axum::routing::patch(agents::change_contact),
        )
        .route(
            "/api/agents/{id}/campaigns/{campaign}/join",
            post(agents::join_campaign),
        )
        .route(
            "/api/agents/{id}/campaigns/{campaign}/leave",
            post(agents::leave_campaign),
        )
        .route(
            "/api/agents/{id}/preview/{action}",
            post(agents::preview_action),
        )
        .route("/api/agents/{id}/events", get(events::agent))
        .route("/api/agents/{id}/ws", get(ws::agent))
        .route("/api/ws", get(ws::all))
        .route("/api/nodes", get(nodes::list))
        .route(
            "/api/campaigns",
            get(campaigns::list).post(campaign_admin::create),
        )
        .route(
            "/api/campaigns/{name}",
            axum::routing::patch(campaign_admin::change).delete(campaign_admin::remove),
        )
        .route(
            "/api/campaigns/{name}/definition",
            get(campaign_admin::definition),
        )
        .route("/api/campaigns/{name}/start", post(campaigns::start))
        .route("/api/campaigns/{name}/pause", post(campaigns::pause))
        .route("/api/campaigns/{name}/stop", post(campaigns::stop))
        .route("/api/campaigns/{name}/stats", get(campaigns::stats))
        .route("/api/campaigns/{name}/export", get(campaigns::export))
        .route("/api/campaigns/{name}/records", get(campaigns::records))
        .route(
            "/api/campaigns/{name}/abandonment",
            get(campaigns::abandonment),
        )
        .route(
            "/api/campaigns/{name}/list",
            post(campaigns::upload_list).layer(axum::extract::DefaultBodyLimit::max(
                campaigns::MAX_LIST_BYTES,
            )),
        )
        .route(
            "/api/callbacks",
            get(callbacks::list).post(callbacks::create),
        )
        .route(
            "/api/callbacks/{id}",
            post(callbacks::change).delete(callbacks::cancel),
        )
        .route("/api/dnc", post(dnc::add))
        .route("/api/dnc/remove", post(dnc::remove))
        .route("/api/dnc/{number}", get(dnc::check))
        .route("/api/events", get(events::all))
        .fallback(body::no_such_path)
        .method_not_allowed_fallback(body::method_not_allowed)
        .with_state(state)
}

/// `GET /metrics` in the Prometheus text format. Unauthenticated, like most
/// scrape targets: it carries counts, never contact data; keep the API on a
/// private address.
async fn prometheus(State(state): State<ApiState>) -> Result<String, StatusCode> {
    state
        .inner
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .ok_or(StatusCode::NOT_FOUND)
}

/// Runs one store call on the blocking pool; a store error is the API's 503.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store task failed: {e}")))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}
