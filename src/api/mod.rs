//! The HTTP API. This module owns routing and shared state; each resource
//! lives in its own submodule.

mod health;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;

/// State shared by every handler.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
}

impl ApiState {
    pub fn new(started: Instant) -> Self {
        Self {
            inner: Arc::new(Inner { started }),
        }
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .with_state(state)
}
