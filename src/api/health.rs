//! `GET /health`: liveness for load balancers and the test suite.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::ApiState;

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
}

pub async fn health(State(state): State<ApiState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.inner.started.elapsed().as_secs(),
    })
}
