//! Supervisor campaign routes: `GET /api/campaigns`,
//! `POST /api/campaigns/{name}/start|pause|stop`, `GET /api/campaigns/{name}/stats`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::ApiState;
use super::auth::require_supervisor;
use super::error::ApiError;
use crate::engine::campaign_run::RunCommand;
use crate::engine::dialer::{CampaignView, Command};

pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<CampaignView>>, ApiError> {
    // Agents see the campaigns too ("my campaigns"); only supervisors act.
    state.tokens().authenticate(&headers)?;
    Ok(Json(state.engine().campaigns().await?))
}

async fn run(
    state: ApiState,
    headers: HeaderMap,
    name: String,
    command: RunCommand,
) -> Result<Json<CampaignView>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    state
        .engine()
        .command(Command::Campaign {
            name: name.clone(),
            command,
        })
        .await??;
    state
        .engine()
        .campaigns()
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))
}

pub async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    run(state, headers, name, RunCommand::Start).await
}

pub async fn pause(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    run(state, headers, name, RunCommand::Pause).await
}

pub async fn stop(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    run(state, headers, name, RunCommand::Stop).await
}

/// `GET /api/campaigns/{name}/stats`: live figures — dials, answers by
/// outcome, abandonment (US and UK rates), lines in use, occupancy, the
/// pacer's reasoning, and the agents by state.
pub async fn stats(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.tokens().authenticate(&headers)?;
    let view = state
        .engine()
        .campaigns()
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
    let stats = state.engine().stats(name).await?.unwrap_or_default();
    let mut body = serde_json::to_value(&stats).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("campaign".into(), serde_json::json!(view.name));
        object.insert("state".into(), serde_json::json!(view.state));
        object.insert("mode".into(), serde_json::json!(view.mode));
        object.insert(
            "agents_by_state".into(),
            serde_json::json!(view.agents_by_state),
        );
    }
    Ok(Json(body))
}
