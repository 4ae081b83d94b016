//! Supervisor campaign routes: `GET /api/campaigns`,
//! `POST /api/campaigns/{name}/start|pause|stop`.

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
