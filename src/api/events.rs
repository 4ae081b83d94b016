//! Server-sent event streams: `GET /api/events` (supervisor: everything) and
//! `GET /api/agents/{id}/events` (that agent's state, campaign notices, and
//! later its screen pops).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::ApiState;
use super::auth::{require_agent, require_supervisor};
use super::body::ApiPath;
use super::error::ApiError;
use crate::engine::dialer::Event;

fn stream(
    state: &ApiState,
    agent: Option<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let mut shutdown = state.shutdown();
    BroadcastStream::new(state.engine().subscribe())
        .filter_map(move |received| {
            // A lagging client skips what it missed rather than ending the stream.
            let selected = received
                .ok()
                .filter(|event: &Event| agent.as_deref().is_none_or(|agent| event.concerns(agent)));
            let item = selected
                .and_then(|event| serde_json::to_string(&event).ok())
                .map(|data| Ok(SseEvent::default().data(data)));
            std::future::ready(item)
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
}

pub async fn all(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    Ok(Sse::new(stream(&state, None))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

pub async fn agent(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    require_agent(&state.tokens().authenticate(&headers)?, &id)?;
    Ok(Sse::new(stream(&state, Some(id)))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
