//! `GET /api/attempts/{id}/recording`: an attempt's bridge recording (the
//! stereo WAV of the customer and the agent; the CDR's `recording` column
//! names it), for quality review. Supervisors only. Served from this
//! node's `[media] record_dir`: a recording another node made is on that
//! node's disk (404 here, saying so). A call spliced more than once (a
//! transfer, a transfer failed back, the late-splice repair) has one file
//! per splice (the column lists them, separated by `;`): `?part=2` is the
//! second; the first by default.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::auth::require_supervisor;
use super::body::{ApiPath, ApiQuery};
use super::error::ApiError;
use crate::store::StoreError;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    /// Which of the call's files, in splice order (1 = the first).
    part: Option<usize>,
}

pub async fn recording(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(attempt): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RecordingQuery>,
) -> Result<Response, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let lists = state
        .lists()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("recordings need the store".into()))?;
    let dir = lists.record_dir.clone().ok_or_else(|| {
        ApiError::NotFound("this node records no calls (`[media] record_dir`)".into())
    })?;
    let store = lists.store.clone();
    let name = tokio::task::spawn_blocking(move || store.attempt_recording(attempt))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store task failed: {e}")))?
        .map_err(|error| match error {
            StoreError::UnknownAttempt(_) => ApiError::NotFound(format!("no attempt {attempt}")),
            other => ApiError::Unavailable(other.to_string()),
        })?
        .ok_or_else(|| ApiError::NotFound(format!("attempt {attempt} has no recording")))?;
    let parts: Vec<&str> = name.split(';').collect();
    let part = query.part.unwrap_or(1);
    let name = part
        .checked_sub(1)
        .and_then(|at| parts.get(at))
        .map(|name| name.to_string())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "attempt {attempt}'s recording has {} part(s); part {part} is not one",
                parts.len()
            ))
        })?;
    // The store names a file in the directory; never a path out of it.
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(ApiError::NotFound(format!(
            "attempt {attempt}'s recording is not a file of this node"
        )));
    }
    let file = tokio::fs::File::open(dir.join(&name)).await.map_err(|_| {
        ApiError::NotFound(format!(
            "{name} is not in this node's record_dir (made by another node, or removed)"
        ))
    })?;
    // Streamed: a two-hour stereo recording is some 230 MB.
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "audio/wav".to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
