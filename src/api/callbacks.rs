//! Scheduled callbacks over the API (SPEC §6: "callbacks can be changed and
//! cancelled"): `GET /api/callbacks` lists the pending ones, soonest first;
//! `POST /api/callbacks/{id}` changes one (time, number, agent);
//! `DELETE /api/callbacks/{id}` cancels it (the record goes back to the
//! list); `POST /api/callbacks` schedules one for a record directly. A supervisor sees and changes every callback; an agent token only
//! its agent's personal callbacks, and may hand one to the campaign but not
//! to another agent. A callback being delivered right now (leased to a
//! dialer) is no longer pending and cannot be changed.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::auth::Principal;
use super::body::{ApiJson, ApiPath, ApiQuery};
use super::error::ApiError;
use super::{ApiState, Lists};
use crate::campaign::import::e164;
use crate::store::{CallbackFilter, CallbackId, CallbackRequest, CallbackView, StoreError};

/// Most callbacks one list returns.
const MAX_LISTED: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub campaign: Option<String>,
    /// Supervisors only: one agent's personal callbacks.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A pending callback as the API shows it.
#[derive(Debug, Serialize)]
pub struct CallbackJson {
    pub id: CallbackId,
    pub campaign: String,
    pub record: i64,
    pub external_id: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// The number to dial; null: the record's numbers in their usual order.
    pub phone: Option<String>,
    /// The agent of a personal callback; null: any agent of the campaign.
    pub agent: Option<String>,
}

impl From<CallbackView> for CallbackJson {
    fn from(view: CallbackView) -> Self {
        CallbackJson {
            id: view.id,
            campaign: view.campaign,
            record: view.record,
            external_id: view.external_id,
            name: view.name,
            at: view.at.to_string(),
            phone: view.phone,
            agent: view.agent,
        }
    }
}

/// The whole callback as it should be from now on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// RFC 3339, in the future.
    pub at: String,
    /// A number to dial (national numbers are read as the campaign's
    /// `default_region`); null or absent: the record's numbers.
    #[serde(default)]
    pub phone: Option<String>,
    /// A personal callback's agent; null or absent: any agent.
    #[serde(default)]
    pub agent: Option<String>,
}

fn lists(state: &ApiState, headers: &HeaderMap) -> Result<(Principal, Lists), ApiError> {
    let principal = state.tokens().authenticate(headers)?;
    let lists = state
        .lists()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("callbacks need the store".into()))?;
    Ok((principal, lists))
}

/// Runs a store call on the blocking pool, its errors as the API's.
async fn store_call<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let result = tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store task failed: {e}")))?;
    result.map_err(|error| match error {
        StoreError::UnknownCallback(id) => ApiError::NotFound(format!(
            "no pending callback {id} (unknown, cancelled, or already being delivered)"
        )),
        StoreError::CallbackInPast { .. } | StoreError::BadNumber(_) => {
            ApiError::BadRequest(error.to_string())
        }
        StoreError::RecordRemoved(_) => ApiError::Conflict(format!(
            "{error}: a removed (do-not-call) record is never called back"
        )),
        other => ApiError::Unavailable(other.to_string()),
    })
}

pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<CallbackJson>>, ApiError> {
    let (principal, lists) = lists(&state, &headers)?;
    let agent = match &principal {
        Principal::Supervisor => query.agent,
        Principal::Agent(own) => match query.agent {
            Some(other) if &other != own => {
                return Err(ApiError::Forbidden(format!(
                    "an agent token lists only its own callbacks, not `{other}`'s"
                )));
            }
            _ => Some(own.clone()),
        },
    };
    let campaign = match &query.campaign {
        None => None,
        Some(name) => Some(
            lists
                .campaigns
                .get(name)
                .map(|(id, _)| id)
                .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?,
        ),
    };
    let filter = CallbackFilter {
        id: None,
        campaign,
        agent,
        limit: query.limit.unwrap_or(MAX_LISTED).clamp(1, MAX_LISTED),
    };
    let store = lists.store.clone();
    let found = store_call(move || store.callbacks(&filter)).await?;
    Ok(Json(found.into_iter().map(CallbackJson::from).collect()))
}

fn callback_id(text: &str) -> Result<CallbackId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{text}` is not a callback id (a number)")))
}

/// The pending callback `id`, if `principal` may act on it.
async fn callback_for(
    principal: &Principal,
    lists: &Lists,
    id: CallbackId,
) -> Result<CallbackView, ApiError> {
    let store = lists.store.clone();
    let found = store_call(move || {
        store.callbacks(&CallbackFilter {
            id: Some(id),
            ..Default::default()
        })
    })
    .await?;
    let callback = found.into_iter().next().ok_or(ApiError::NotFound(format!(
        "no pending callback {id} (unknown, cancelled, or already being delivered)"
    )))?;
    if let Principal::Agent(own) = principal
        && callback.agent.as_deref() != Some(own.as_str())
    {
        return Err(ApiError::Forbidden(format!(
            "callback {id} is not a personal callback of agent `{own}`"
        )));
    }
    Ok(callback)
}

pub async fn change(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<Json<CallbackJson>, ApiError> {
    let id = callback_id(&id)?;
    let (principal, lists) = lists(&state, &headers)?;
    let callback = callback_for(&principal, &lists, id).await?;
    let at = parse_at(&body.at)?;
    let region = lists
        .campaigns
        .get(&callback.campaign)
        .map(|(_, region)| region)
        .unwrap_or_else(|| "US".into());
    let phone = normalise_phone(body.phone.as_deref(), &region)?;
    let agent = check_agent(&principal, &lists, body.agent.as_deref())?;
    let request = CallbackRequest {
        record: callback.record,
        at,
        phone,
        agent,
    };
    let store = lists.store.clone();
    let changed = store_call(move || {
        store.change_callback(id, &request, jiff::Timestamp::now())?;
        store.callbacks(&CallbackFilter {
            id: Some(id),
            ..Default::default()
        })
    })
    .await?;
    changed
        .into_iter()
        .next()
        .map(|view| Json(view.into()))
        .ok_or_else(|| ApiError::NotFound(format!("callback {id} was delivered meanwhile")))
}

/// A callback scheduled directly (a CRM's "call me back at 3 pm"), not
/// from a disposition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub campaign: String,
    /// The record's external id (the list's `id` column).
    pub record: String,
    /// RFC 3339, in the future.
    pub at: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
}

/// `POST /api/callbacks`: schedules a callback for a record (replacing one
/// it had). An agent token may schedule one for itself or the campaign.
pub async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Json<CallbackJson>, ApiError> {
    let (principal, lists) = lists(&state, &headers)?;
    let (campaign, region) = lists
        .campaigns
        .get(&body.campaign)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{}`", body.campaign)))?;
    let at = parse_at(&body.at)?;
    let phone = normalise_phone(body.phone.as_deref(), &region)?;
    let agent = check_agent(&principal, &lists, body.agent.as_deref())?;
    let store = lists.store.clone();
    let external_id = body.record.clone();
    let created = store_call(move || {
        let Some(record) = store.record(campaign, &external_id)? else {
            return Ok(None);
        };
        let id = store.schedule_callback(
            &CallbackRequest {
                record: record.id,
                at,
                phone,
                agent,
            },
            jiff::Timestamp::now(),
        )?;
        store
            .callbacks(&CallbackFilter {
                id: Some(id),
                ..Default::default()
            })
            .map(Some)
    })
    .await?;
    created
        .and_then(|found| found.into_iter().next())
        .map(|view| Json(view.into()))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no record `{}` in campaign `{}`",
                body.record, body.campaign
            ))
        })
}

fn parse_at(text: &str) -> Result<jiff::Timestamp, ApiError> {
    text.parse().map_err(|e| {
        ApiError::BadRequest(format!(
            "at {text:?} is not an RFC 3339 time like 2026-12-02T15:00:00-05:00: {e}"
        ))
    })
}

/// A callback's number in E.164 (national numbers read as `region`'s);
/// none for null or blank.
fn normalise_phone(phone: Option<&str>, region: &str) -> Result<Option<String>, ApiError> {
    match phone.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => e164(text, region)
            .map(Some)
            .map_err(|reason| ApiError::BadRequest(format!("phone {text:?}: {reason}"))),
    }
}

/// The agent a callback may be given to: any configured agent for a
/// supervisor, only itself for an agent; none for null or blank.
fn check_agent(
    principal: &Principal,
    lists: &Lists,
    agent: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match agent.map(str::trim) {
        None | Some("") => Ok(None),
        Some(agent) => {
            if let Principal::Agent(own) = principal
                && agent != own
            {
                return Err(ApiError::Forbidden(format!(
                    "an agent may keep a callback or give it to the campaign, not to `{agent}`"
                )));
            }
            if !lists.agents.contains(agent) {
                return Err(ApiError::BadRequest(format!("no agent `{agent}`")));
            }
            Ok(Some(agent.to_string()))
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Cancelled {
    pub id: CallbackId,
    pub cancelled: bool,
}

pub async fn cancel(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let id = callback_id(&id)?;
    let (principal, lists) = lists(&state, &headers)?;
    callback_for(&principal, &lists, id).await?;
    let store = lists.store.clone();
    store_call(move || store.cancel_callback(id, jiff::Timestamp::now())).await?;
    Ok(Json(Cancelled {
        id,
        cancelled: true,
    }))
}
