//! `GET /api/agent-activity`: the agents' time in each state over a span
//! (`agent::activity`), from the state changes the store keeps — a report
//! that outlives the shift and a restart (the agent views' `shift` figures
//! start again at each login).
//!
//! Query: `from`, `to` (RFC 3339; default the last 24 hours up to now, `to`
//! no later than now), `agent` (one agent; an agent token sees only its
//! own), `format=csv` (the intervals as a CSV download) or JSON (default):
//! `{"from", "to", "intervals": [...], "totals": [...]}`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::ApiState;
use super::auth::Principal;
use super::body::ApiQuery;
use super::error::ApiError;
use crate::agent::activity::{Interval, intervals, totals};

/// The longest span one report covers.
const MAX_SPAN: SignedDuration = SignedDuration::from_hours(31 * 24);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
}

fn time(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    text.parse().map_err(|e| {
        ApiError::BadRequest(format!(
            "{name} {text:?} is not an RFC 3339 time like 2026-12-05T00:00:00Z: {e}"
        ))
    })
}

pub async fn report(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Response, ApiError> {
    let principal = state.tokens().authenticate(&headers)?;
    let agent = match (&principal, query.agent) {
        (Principal::Supervisor, agent) => agent,
        (Principal::Agent(own), Some(other)) if &other != own => {
            return Err(ApiError::Forbidden(format!(
                "an agent token reads only its own activity, not `{other}`'s"
            )));
        }
        (Principal::Agent(own), _) => Some(own.clone()),
    };
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format `{other}`: json or csv"
            )));
        }
    };
    let now = Timestamp::now();
    let to = match &query.to {
        Some(text) => time("to", text)?.min(now),
        None => now,
    };
    let from = match &query.from {
        Some(text) => time("from", text)?,
        None => to.checked_sub(SignedDuration::from_hours(24)).unwrap_or(to),
    };
    if from >= to {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) must be before to ({to}, at most now)"
        )));
    }
    if to.duration_since(from) > MAX_SPAN {
        return Err(ApiError::BadRequest(
            "a report covers at most 31 days; ask for several".into(),
        ));
    }
    let store = state
        .lists()
        .map(|lists| lists.store.clone())
        .ok_or_else(|| ApiError::Unavailable("agent activity needs the store".into()))?;
    let (changes, nodes) = super::blocking(move || {
        Ok((
            store.agent_state_changes(agent.as_deref(), from, to)?,
            store.nodes()?,
        ))
    })
    .await?;
    // A node silent for a while crashed and has not started again (a
    // running one says it is alive every few seconds; a stopped one ended
    // its agents' states itself): its agents' last states end when it was
    // last seen.
    let silent_after = SignedDuration::try_from(3 * crate::driver::node_presence::HEARTBEAT)
        .unwrap_or(SignedDuration::from_secs(15));
    let silent_nodes: std::collections::BTreeMap<String, Timestamp> = nodes
        .into_iter()
        .filter(|node| now.duration_since(node.seen_at) > silent_after)
        .map(|node| (node.node, node.seen_at))
        .collect();
    let spans = intervals(&changes, from, to, &silent_nodes);
    if csv {
        return csv_response(&spans);
    }
    let sums = totals(&spans);
    Ok(Json(serde_json::json!({
        "from": from,
        "to": to,
        "intervals": spans,
        "totals": sums,
    }))
    .into_response())
}

fn csv_response(spans: &[Interval]) -> Result<Response, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "agent",
        "state",
        "reason",
        "started_at",
        "ended_at",
        "seconds",
        "node",
    ];
    let written = out.write_record(header).and_then(|()| {
        spans.iter().try_for_each(|span| {
            out.write_record([
                span.agent.as_str(),
                span.state.as_str(),
                span.reason.as_deref().unwrap_or(""),
                &span.started_at.to_string(),
                &span.ended_at.to_string(),
                &format!("{:.3}", span.seconds),
                span.node.as_str(),
            ])
        })
    });
    let body = written
        .map_err(|e| ApiError::Unavailable(format!("cannot write the CSV: {e}")))
        .and_then(|()| {
            out.into_inner()
                .map_err(|e| ApiError::Unavailable(format!("cannot write the CSV: {e}")))
        })?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"agent-activity.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}
