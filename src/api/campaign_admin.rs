//! Supervisors define campaigns while the dialer runs (SPEC §1: they
//! "create campaigns, load lists, choose the dialing mode"):
//!
//! - `POST /api/campaigns` — the keys of a `[[campaign]]` table as JSON, plus
//!   `agents` (ids of configured agents); 201 with the campaign, 400 with
//!   every problem (`{"error", "problems": [{"key", "message"}]}`), 409 when
//!   the name is taken.
//! - `GET /api/campaigns/{name}/definition` — its settings (every key, the
//!   defaults written out), `agents` and `source` (`file` or `api`).
//! - `PATCH /api/campaigns/{name}` — a JSON merge patch (RFC 7396) of those
//!   keys: mode, set-point, lines per agent, hours, agents …; only for
//!   campaigns created through the API, and only while nothing of them is in
//!   motion (not running, no call in progress or in wrap-up: 409 otherwise).
//! - `DELETE /api/campaigns/{name}` — the same conditions; the dialer forgets
//!   it, its records and attempts stay in the store (CLI export).
//!
//! The store keeps each definition, so the campaign is back after a
//! restart; the campaigns of the file stay the file's (changed there).
//! Admin requests run one at a time: the store and the engine are updated
//! in turn, and a failure of the second undoes the first.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::auth::require_supervisor;
use super::body::{ApiJson, ApiPath};
use super::campaigns::view;
use super::error::ApiError;
use super::{ApiState, Lists};
use crate::campaign::rules::CampaignRules;
use crate::config::campaign_warnings;
use crate::config::definition::CampaignDefinition;
use crate::engine::dialer::CampaignView;

fn admin(state: &ApiState, headers: &HeaderMap) -> Result<Lists, ApiError> {
    require_supervisor(&state.tokens().authenticate(headers)?)?;
    state
        .lists()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("defining campaigns needs the store".into()))
}

/// Writes the definition to the store; returns the campaign's id there.
async fn store_definition(
    lists: &Lists,
    definition: &CampaignDefinition,
) -> Result<crate::store::CampaignId, ApiError> {
    let rules = CampaignRules::from_config(&definition.campaign)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let json = definition.to_json().to_string();
    let store = lists.store.clone();
    super::blocking(move || store.define_campaign(&rules, &json)).await
}

/// `POST /api/campaigns`
pub async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let lists = admin(&state, &headers)?;
    let definition =
        CampaignDefinition::from_json(&body, &lists.agents).map_err(ApiError::Problems)?;
    let name = definition.campaign.name.clone();
    let _one_at_a_time = lists.admin.lock().await;
    if state.engine().definition(name.clone()).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "a campaign named `{name}` exists already"
        )));
    }
    let region = definition.campaign.default_region.clone();
    let definition_campaign = definition.campaign.clone();
    let id = store_definition(&lists, &definition).await?;
    if let Err(error) = state.engine().define(definition, id, false).await? {
        // Not in the dialer, so not in the store either.
        let store = lists.store.clone();
        let forget = name.clone();
        let _ = super::blocking(move || store.forget_campaign_definition(&forget)).await;
        return Err(error.into());
    }
    let warnings = campaign_warnings(&definition_campaign);
    lists.campaigns.insert(name.clone(), id, region);
    let view = view(&state, &name).await?;
    Ok((StatusCode::CREATED, Json(with_warnings(&view, warnings))))
}

/// The campaign's view with its compliance warnings (valid settings that
/// likely break the rules: no abandon message, hours outside 08:00–21:00,
/// a target over 3 %), logged too.
fn with_warnings(view: &CampaignView, warnings: Vec<String>) -> Value {
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let mut body = serde_json::to_value(view).unwrap_or(Value::Null);
    if let Some(object) = body.as_object_mut() {
        object.insert("warnings".into(), Value::from(warnings));
    }
    body
}

/// `GET /api/campaigns/{name}/definition`
pub async fn definition(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    let definition = state
        .engine()
        .definition(name.clone())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
    let mut body = definition.to_json();
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "source".into(),
            Value::from(definition.campaign.source.name()),
        );
        object.insert(
            "warnings".into(),
            Value::from(campaign_warnings(&definition.campaign)),
        );
    }
    Ok(Json(body))
}

/// `PATCH /api/campaigns/{name}`
pub async fn change(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let lists = admin(&state, &headers)?;
    let _one_at_a_time = lists.admin.lock().await;
    let current = state
        .engine()
        .definition(name.clone())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}`")))?;
    let changed = current
        .patched(&patch, &lists.agents)
        .map_err(ApiError::Problems)?;
    let region = changed.campaign.default_region.clone();
    let warnings = campaign_warnings(&changed.campaign);
    // The dialer says first whether it can take the change now (a campaign
    // of the file, or one in motion, is refused before anything is written).
    let (id, _) = lists
        .campaigns
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign `{name}` in the store")))?;
    check(&state, &changed).await?;
    store_definition(&lists, &changed).await?;
    if let Err(error) = state.engine().define(changed, id, true).await? {
        // Started in between: the store goes back to what the dialer runs.
        let _ = store_definition(&lists, &current).await;
        return Err(error.into());
    }
    lists.campaigns.insert(name.clone(), id, region);
    let view = view(&state, &name).await?;
    Ok(Json(with_warnings(&view, warnings)))
}

/// `DELETE /api/campaigns/{name}`
pub async fn remove(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let lists = admin(&state, &headers)?;
    let _one_at_a_time = lists.admin.lock().await;
    state.engine().remove(name.clone()).await??;
    lists.campaigns.remove(&name);
    let store = lists.store.clone();
    let forget = name.clone();
    super::blocking(move || store.forget_campaign_definition(&forget))
        .await
        .map_err(|error| {
            ApiError::Unavailable(format!(
                "campaign `{name}` is removed from the dialer, but the store could not \
                 forget it ({error}): it will be back at the next start"
            ))
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the dialer can take `definition` in place of its campaign now.
async fn check(state: &ApiState, definition: &CampaignDefinition) -> Result<(), ApiError> {
    state
        .engine()
        .check_definition(definition.clone())
        .await?
        .map_err(ApiError::from)
}

/// How often a node reads the campaigns defined through the API back from
/// the store (another node sharing the database may have defined, changed
/// or removed one).
pub const DEFINITIONS_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps this node in step with the others sharing the store until
/// `shutdown`; `run_commands_seen`: the highest run command id when the node
/// started (older ones are history, not followed). Every 2 s
/// (`run_commands::RUN_COMMANDS_POLL`) it carries out the starts, pauses and stops given on other nodes (see
/// `run_commands`); every [`DEFINITIONS_POLL`], and at once when such a
/// command names a campaign this node does not know yet, the stored
/// definitions go to the engine, which takes what it can now, and the list
/// uploads' index follows. All under the admin lock, so it never sees a
/// request of this node half done.
pub async fn follow_the_store(
    lists: Lists,
    engine: crate::driver::EngineHandle,
    run_commands_seen: i64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use super::run_commands::{RUN_COMMANDS_POLL, RunFollower};
    let mut ticks = tokio::time::interval(RUN_COMMANDS_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let definitions_every = (DEFINITIONS_POLL.as_millis() / RUN_COMMANDS_POLL.as_millis()).max(1);
    let mut follower = RunFollower::new(run_commands_seen);
    for tick in 1u128.. {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        let _one_at_a_time = lists.admin.lock().await;
        let followed = read_run_commands(&lists, &mut follower).await;
        let unknown = followed
            .iter()
            .any(|f| lists.campaigns.get(&f.campaign).is_none());
        if (tick % definitions_every == 0 || unknown)
            && sync_definitions(&lists, &engine).await.is_err()
        {
            return;
        }
        for f in followed {
            let command = crate::engine::dialer::Command::Campaign {
                name: f.campaign.clone(),
                command: f.command,
            };
            match engine.command(command).await {
                Ok(Ok(())) => tracing::info!(
                    campaign = %f.campaign,
                    command = f.command.name(),
                    from = %f.node,
                    "campaign run command followed from another node"
                ),
                Ok(Err(error)) => tracing::info!(
                    campaign = %f.campaign,
                    command = f.command.name(),
                    from = %f.node,
                    %error,
                    "another node's run command does not apply here"
                ),
                Err(_) => return,
            }
        }
    }
}

/// The other nodes' run commands this node has yet to carry out.
async fn read_run_commands(
    lists: &Lists,
    follower: &mut super::run_commands::RunFollower,
) -> Vec<super::run_commands::Followed> {
    let store = lists.store.clone();
    let after = follower.read_after();
    match super::blocking(move || store.run_commands_after(after)).await {
        Ok(commands) => follower.take(&commands, &lists.node),
        Err(error) => {
            tracing::warn!(%error, "cannot read the run commands");
            Vec::new()
        }
    }
}

/// The stored definitions to the engine; Err: the engine is gone.
async fn sync_definitions(
    lists: &Lists,
    engine: &crate::driver::EngineHandle,
) -> Result<(), crate::driver::EngineGone> {
    let store = lists.store.clone();
    let stored = match super::blocking(move || store.campaign_definitions()).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(%error, "cannot read the campaigns defined through the API");
            return Ok(());
        }
    };
    for change in engine.sync_definitions(stored).await? {
        match change {
            crate::driver::DefinitionChange::Defined {
                name,
                id,
                default_region,
            } => {
                tracing::info!(campaign = %name, "campaign definition taken from the store");
                lists.campaigns.insert(name, id, default_region);
            }
            crate::driver::DefinitionChange::Removed { name } => {
                lists.campaigns.remove(&name);
            }
        }
    }
    Ok(())
}
