//! Supervisor campaign routes: `GET /api/campaigns`,
//! `POST /api/campaigns/{name}/start|pause|stop`, `GET /api/campaigns/{name}/stats`,
//! `POST /api/campaigns/{name}/list` (upload a CSV contact list, with an
//! optional column mapping in the query).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use super::ApiState;
use super::auth::require_supervisor;
use super::body::{ApiPath, ApiQuery};
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

/// One campaign's view, or 404.
pub(super) async fn view(state: &ApiState, name: &str) -> Result<CampaignView, ApiError> {
    state
        .engine()
        .campaigns()
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))
}

async fn run(
    state: ApiState,
    headers: HeaderMap,
    name: String,
    command: RunCommand,
) -> Result<Json<CampaignView>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    // Under the admin lock, so this node never follows an older command of
    // another node read after this one (see `run_commands`).
    let lists = state.lists().cloned();
    let _one_at_a_time = match &lists {
        Some(lists) => Some(lists.admin.clone().lock_owned().await),
        None => None,
    };
    state
        .engine()
        .command(Command::Campaign {
            name: name.clone(),
            command,
        })
        .await??;
    if let Some(lists) = lists {
        // For the other nodes sharing the store to follow. Done here
        // whatever they make of it; a store that cannot keep it leaves them
        // as they were, which the log says.
        let (campaign, node) = (name.clone(), lists.node.clone());
        let store = lists.store.clone();
        let kept = super::blocking(move || {
            store.record_run_command(&campaign, command.name(), &node, jiff::Timestamp::now())
        })
        .await;
        if let Err(error) = kept {
            tracing::warn!(campaign = %name, command = command.name(), ?error,
                "run command not kept in the store: other nodes will not follow it");
        }
    }
    Ok(Json(view(&state, &name).await?))
}

pub async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CampaignView>, ApiError> {
    run(state, headers, name, RunCommand::Start).await
}

pub async fn pause(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CampaignView>, ApiError> {
    run(state, headers, name, RunCommand::Pause).await
}

pub async fn stop(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CampaignView>, ApiError> {
    run(state, headers, name, RunCommand::Stop).await
}

/// `GET /api/campaigns/{name}/stats`: live figures — dials, answers by
/// outcome, abandonment (US and UK rates), lines in use, occupancy, the
/// pacer's reasoning, and the agents by state.
pub async fn stats(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.tokens().authenticate(&headers)?;
    let view = view(&state, &name).await?;
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

/// The store and the campaign's id in it, for a view that reads the store
/// (`unavailable`: the error when the API runs without one).
fn store_campaign(
    state: &ApiState,
    name: &str,
    unavailable: &str,
) -> Result<
    (
        std::sync::Arc<dyn crate::store::Store>,
        crate::store::CampaignId,
    ),
    ApiError,
> {
    let lists = state
        .lists()
        .ok_or_else(|| ApiError::Unavailable(unavailable.to_string()))?;
    let (campaign, _) = lists
        .campaigns
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
    Ok((lists.store.clone(), campaign))
}

/// `GET /api/campaigns/{name}/records`: the campaign's records by state
/// (`new`, `retry`, `callback`, `leased`, `done`, `exhausted`, `removed`) and
/// their total — how far the list has been worked.
pub async fn records(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let (store, campaign) = store_campaign(&state, &name, "record counts need the store")?;
    let counts = super::blocking(move || store.counts(campaign)).await?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let by_state: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(state, n)| (state, serde_json::json!(n)))
        .collect();
    Ok(Json(serde_json::json!({
        "campaign": name,
        "by_state": by_state,
        "total": total,
    })))
}

/// `GET /api/campaigns/{name}/abandonment`: the campaign's abandonment on
/// every node that dialed it, from the store (several nodes sharing a
/// PostgreSQL store each pace their own answers and show their own
/// figures; this is the campaign's, and each node's part of it): live
/// answers, abandons and the rates in the US window (30 days: abandoned ÷
/// live answers) and the UK window (24 hours: with the campaign's expected
/// CPA false positives counted as abandoned).
pub async fn abandonment(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::pacing::ledger::{UK_WINDOW, US_WINDOW, WindowCounts, expected_false_positives};
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let view = view(&state, &name).await?;
    let (store, campaign) = store_campaign(&state, &name, "abandonment needs the store")?;
    let now = jiff::Timestamp::now();
    let since = |window: std::time::Duration| {
        jiff::SignedDuration::try_from(window)
            .ok()
            .and_then(|span| now.checked_sub(span).ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    };
    let (us_since, uk_since) = (since(US_WINDOW), since(UK_WINDOW));
    let nodes =
        super::blocking(move || store.abandonment_by_node(campaign, us_since, uk_since)).await?;
    let estimate = view.amd_fp_estimate;
    let windows = |us: WindowCounts, uk: WindowCounts| {
        let fp = expected_false_positives(uk.live_answers as f64, estimate);
        serde_json::json!({
            "us": { "live_answers": us.live_answers, "abandoned": us.abandoned, "rate": us.us_rate() },
            "uk": {
                "live_answers": uk.live_answers,
                "abandoned": uk.abandoned,
                "amd_false_positives": fp,
                "rate": uk.uk_rate(fp),
            },
        })
    };
    let sum = |pick: fn(&crate::store::NodeAbandonment) -> WindowCounts| {
        nodes
            .iter()
            .map(pick)
            .fold(WindowCounts::default(), |a, b| WindowCounts {
                live_answers: a.live_answers + b.live_answers,
                abandoned: a.abandoned + b.abandoned,
            })
    };
    let mut all = windows(sum(|n| n.us), sum(|n| n.uk));
    let by_node: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| {
            let mut one = windows(n.us, n.uk);
            one["node"] = serde_json::json!(n.node);
            one
        })
        .collect();
    all["nodes"] = serde_json::json!(by_node);
    all["campaign"] = serde_json::json!(name);
    all["abandon_target"] = serde_json::json!(view.abandon_target);
    all["amd_fp_estimate"] = serde_json::json!(estimate);
    Ok(Json(all))
}

/// Largest list accepted by upload (bigger lists: `outdial import`).
pub const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;

/// `POST /api/campaigns/{name}/list`: the body is a CSV contact list (a
/// header line first, the default column names of `outdial import`);
/// imported as `outdial import` does. 200 with `{"imported", "updated",
/// "rejected": [{"line", "reason"}]}` (rejected rows do not stop the
/// others); 400 when the file as a whole is unusable.
/// The column mapping of a list upload, from its query: `id`, `name`,
/// `time_zone`, `priority` (a column each), `phones` (`column[:kind]`,
/// comma-separated, in dialing order; kind `home`, `mobile`, `work` or
/// `other`), `custom` (columns shown to the agent, comma-separated). Absent
/// keys keep the conventional header names, as `outdial import` does.
pub fn upload_mapping(
    query: &HashMap<String, String>,
) -> Result<crate::campaign::import::ImportMapping, ApiError> {
    use crate::campaign::import::{ImportMapping, PhoneColumn};
    use crate::campaign::model::PhoneKind;
    let mut mapping = ImportMapping::default();
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    for (key, value) in query {
        let column = Some(value.trim().to_string()).filter(|c| !c.is_empty());
        match key.as_str() {
            "id" => mapping.external_id = column,
            "name" => mapping.name = column,
            "time_zone" => mapping.time_zone = column,
            "priority" => mapping.priority = column,
            "custom" => mapping.custom = Some(list(value)),
            "phones" => {
                for entry in list(value) {
                    let (column, kind) = match entry.split_once(':') {
                        None => (entry.as_str(), PhoneKind::Other),
                        Some((column, kind)) => {
                            let kind = match kind.trim() {
                                "home" => PhoneKind::Home,
                                "mobile" | "cell" => PhoneKind::Mobile,
                                "work" => PhoneKind::Work,
                                "other" => PhoneKind::Other,
                                other => {
                                    return Err(ApiError::BadRequest(format!(
                                        "phones: kind `{other}` of column `{column}` is not \
                                         home, mobile, work or other"
                                    )));
                                }
                            };
                            (column.trim(), kind)
                        }
                    };
                    mapping.phones.push(PhoneColumn {
                        column: column.to_string(),
                        kind,
                    });
                }
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown mapping key `{other}`; use id, name, time_zone, priority, \
                     phones or custom"
                )));
            }
        }
    }
    Ok(mapping)
}

pub async fn upload_list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Json<crate::store::import_list::ImportSummary>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let mapping = upload_mapping(&query)?;
    let lists = state
        .lists()
        .ok_or_else(|| ApiError::Unavailable("list uploads need the store".into()))?
        .clone();
    let (campaign, region) = lists
        .campaigns
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
    let store = lists.store.clone();
    let summary = tokio::task::spawn_blocking(move || {
        crate::store::import_list::import_csv(
            &*store,
            campaign,
            std::io::Cursor::new(body),
            &mapping,
            &region,
        )
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the import task failed: {e}")))?;
    match summary {
        Ok(summary) => {
            tracing::info!(
                campaign = %name,
                imported = summary.imported,
                updated = summary.updated,
                rejected = summary.rejected.len(),
                "list uploaded"
            );
            Ok(Json(summary))
        }
        Err(crate::store::import_list::ImportError::Layout(message)) => {
            Err(ApiError::BadRequest(format!("the list: {message}")))
        }
        Err(error) => Err(ApiError::Unavailable(error.to_string())),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// One row per dial (the CDR) instead of one per record.
    #[serde(default)]
    pub attempts: bool,
}

/// Bytes written on the blocking pool, sent to the HTTP response in
/// chunks; a client that went away stops the export (the send fails).
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

/// How much CSV is gathered before it is sent as one chunk.
const EXPORT_CHUNK: usize = 64 * 1024;

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::take(&mut self.buffer));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= EXPORT_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `GET /api/campaigns/{name}/export[?attempts=true]`: the records (or the
/// CDR) as CSV, streamed as `outdial export` writes them. A store failure
/// mid-way aborts the response, so a client never takes a cut file for a
/// whole one.
pub async fn export(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let lists = state
        .lists()
        .ok_or_else(|| ApiError::Unavailable("exports need the store".into()))?
        .clone();
    let (campaign, _) = lists
        .campaigns
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let store = lists.store.clone();
    let attempts = query.attempts;
    tokio::task::spawn_blocking(move || {
        let writer = ChunkWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(EXPORT_CHUNK),
        };
        let written = if attempts {
            crate::store::export_csv::write_attempts(&*store, campaign, writer)
        } else {
            crate::store::export_csv::write_records(&*store, campaign, writer)
        };
        if let Err(error) = written {
            tracing::warn!(campaign, %error, "export failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = format!(
        "{safe}-{}.csv",
        if attempts { "attempts" } else { "records" }
    );
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}
