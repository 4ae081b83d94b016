//! Supervisors listening in on agents (monitor, whisper, barge) from their
//! browser: `POST /api/agents/{id}/listen` (a WebRTC offer, answered),
//! `GET /api/listen-ins`, `PATCH /api/listen-ins/{session}` (the mode) and
//! `DELETE /api/listen-ins/{session}`. Supervisor tokens only.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::ApiState;
use super::auth::require_supervisor;
use super::body::{ApiJson, ApiPath};
use super::error::ApiError;
use crate::driver::shell::{ListenInRefused, ListenInView};
use crate::media::listen_in::ListenMode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenOfferBody {
    pub sdp: String,
    /// `monitor` (the default), `whisper` or `barge`.
    #[serde(default = "monitor")]
    pub mode: ListenMode,
}

fn monitor() -> ListenMode {
    ListenMode::Monitor
}

#[derive(Debug, serde::Serialize)]
pub struct ListenAnswer {
    pub sdp: String,
    pub session: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenModeBody {
    pub mode: ListenMode,
}

/// The supervisor's browser offers to listen in on agent `id`: the answer
/// comes back; the supervisor hears the agent once ICE and DTLS are up.
pub async fn listen(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ListenOfferBody>,
) -> Result<Json<ListenAnswer>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    match state.engine().listen_in(id, body.sdp, body.mode).await? {
        Ok(answer) => Ok(Json(ListenAnswer {
            sdp: answer.sdp,
            session: answer.session,
        })),
        Err(refused @ ListenInRefused::UnknownAgent(_)) => {
            Err(ApiError::NotFound(refused.to_string()))
        }
        Err(refused @ (ListenInRefused::NoCall(_) | ListenInRefused::AlreadyListened(..))) => {
            Err(ApiError::Conflict(refused.to_string()))
        }
        Err(refused) => Err(ApiError::BadRequest(refused.to_string())),
    }
}

pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<ListenInView>>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    Ok(Json(state.engine().listen_ins().await?))
}

/// Who hears the supervisor from now on.
pub async fn set_mode(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(session): ApiPath<u64>,
    ApiJson(body): ApiJson<ListenModeBody>,
) -> Result<StatusCode, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    if state.engine().set_listen_mode(session, body.mode).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such(session))
    }
}

pub async fn end(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(session): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    if state.engine().end_listen_in(session).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such(session))
    }
}

fn no_such(session: u64) -> ApiError {
    ApiError::NotFound(format!(
        "no supervisor listens in as session {session} (it ended: the agent's phone call ended, or the supervisor's browser went away)"
    ))
}
