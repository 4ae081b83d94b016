//! Do-not-call lists over the API (supervisor): `POST /api/dnc` adds,
//! `POST /api/dnc/remove` removes, `GET /api/dnc/{number}` checks — the
//! internal list, or a campaign's with `campaign`. Numbers without a country
//! code are read as `region`'s (default: the campaign's `default_region`, or
//! US); each bad number is reported, the good ones applied.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::auth::require_supervisor;
use super::body::{ApiJson, ApiPath, ApiQuery};
use super::error::ApiError;
use super::{ApiState, Lists, blocking};
use crate::campaign::import::{e164, region_id};
use crate::store::CampaignId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersBody {
    pub numbers: Vec<String>,
    #[serde(default)]
    pub campaign: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Rejected {
    pub number: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Changed {
    /// Numbers newly added (or removed).
    pub changed: u64,
    /// Valid numbers that were already so.
    pub unchanged: u64,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    #[serde(default)]
    pub campaign: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// Longest list of numbers in one request.
const MAX_NUMBERS: usize = 100_000;

fn lists(state: &ApiState, headers: &HeaderMap) -> Result<Lists, ApiError> {
    require_supervisor(&state.tokens().authenticate(headers)?)?;
    state
        .lists()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("DNC lists need the store".into()))
}

/// The campaign's id (None: the internal list) and the region to read
/// national numbers with.
fn target(
    lists: &Lists,
    campaign: Option<&str>,
    region: Option<String>,
) -> Result<(Option<CampaignId>, String), ApiError> {
    match campaign {
        None => Ok((None, region.unwrap_or_else(|| "US".into()))),
        Some(name) => {
            let (id, default_region) = lists
                .campaigns
                .get(name)
                .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
            Ok((Some(id), region.unwrap_or(default_region)))
        }
    }
}

fn normalise(numbers: &[String], region: &str) -> Result<(Vec<String>, Vec<Rejected>), ApiError> {
    if numbers.is_empty() || numbers.len() > MAX_NUMBERS {
        return Err(ApiError::BadRequest(format!(
            "give between 1 and {MAX_NUMBERS} numbers"
        )));
    }
    // A bad region is the request's fault, not each number's.
    region_id(region).map_err(ApiError::BadRequest)?;
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    for number in numbers {
        match e164(number, region) {
            Ok(e164) => valid.push(e164),
            Err(reason) => rejected.push(Rejected {
                number: number.clone(),
                reason,
            }),
        }
    }
    valid.sort();
    valid.dedup();
    Ok((valid, rejected))
}

pub async fn add(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NumbersBody>,
) -> Result<Json<Changed>, ApiError> {
    let lists = lists(&state, &headers)?;
    let (campaign, region) = target(&lists, body.campaign.as_deref(), body.region)?;
    let (valid, rejected) = normalise(&body.numbers, &region)?;
    let total = valid.len() as u64;
    let store = lists.store.clone();
    let added =
        blocking(move || store.add_dnc_many(campaign, &valid, jiff::Timestamp::now())).await?;
    Ok(Json(Changed {
        changed: added,
        unchanged: total - added,
        rejected,
    }))
}

pub async fn remove(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NumbersBody>,
) -> Result<Json<Changed>, ApiError> {
    let lists = lists(&state, &headers)?;
    let (campaign, region) = target(&lists, body.campaign.as_deref(), body.region)?;
    let (valid, rejected) = normalise(&body.numbers, &region)?;
    let store = lists.store.clone();
    let total = valid.len() as u64;
    let removed = blocking(move || {
        let mut removed = 0u64;
        for number in &valid {
            removed += u64::from(store.remove_dnc(campaign, number)?);
        }
        Ok(removed)
    })
    .await?;
    Ok(Json(Changed {
        changed: removed,
        unchanged: total - removed,
        rejected,
    }))
}

#[derive(Debug, Serialize)]
pub struct Listed {
    pub number: String,
    pub listed: bool,
}

pub async fn check(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(number): ApiPath<String>,
    ApiQuery(query): ApiQuery<CheckQuery>,
) -> Result<Json<Listed>, ApiError> {
    let lists = lists(&state, &headers)?;
    let (campaign, region) = target(&lists, query.campaign.as_deref(), query.region)?;
    let number = e164(&number, &region).map_err(ApiError::BadRequest)?;
    let store = lists.store.clone();
    let lookup = number.clone();
    let listed = blocking(move || store.is_dnc(campaign.unwrap_or(0), &lookup)).await?;
    Ok(Json(Listed { number, listed }))
}
