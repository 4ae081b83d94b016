//! Agent routes: state changes and the agent's own view.
//!
//! `POST /api/agents/{id}/login|ready|not-ready|logout|disposition`,
//! `GET /api/agents` (supervisor) and `GET /api/agents/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::ApiState;
use super::auth::{require_agent, require_supervisor};
use super::error::ApiError;
use crate::engine::dialer::{AgentView, Command};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotReadyBody {
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    pub code: String,
    #[serde(default)]
    pub notes: String,
}

pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    Ok(Json(state.engine().agents().await?))
}

pub async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    require_agent(&state.tokens().authenticate(&headers)?, &id)?;
    view_of(&state, &id).await
}

async fn view_of(state: &ApiState, id: &str) -> Result<Json<AgentView>, ApiError> {
    state
        .engine()
        .agents()
        .await?
        .into_iter()
        .find(|agent| agent.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no agent `{id}`")))
}

async fn act(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    command: Command,
) -> Result<Json<AgentView>, ApiError> {
    require_agent(&state.tokens().authenticate(headers)?, id)?;
    state.engine().command(command).await??;
    view_of(state, id).await
}

pub async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let command = Command::AgentLogin { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

pub async fn ready(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let command = Command::AgentReady { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

pub async fn not_ready(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<NotReadyBody>>,
) -> Result<Json<AgentView>, ApiError> {
    let reason = body.map(|Json(b)| b.reason).unwrap_or_default();
    let command = Command::AgentNotReady {
        agent: id.clone(),
        reason,
    };
    act(&state, &headers, &id, command).await
}

pub async fn logout(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let command = Command::AgentLogout { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

/// The agent ends the customer call (the reservation call stays up).
pub async fn hangup(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let command = Command::AgentHangup { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

pub async fn disposition(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<DispositionBody>,
) -> Result<Json<AgentView>, ApiError> {
    let command = Command::Disposition {
        agent: id.clone(),
        code: body.code,
        notes: body.notes,
    };
    act(&state, &headers, &id, command).await
}
