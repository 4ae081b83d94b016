//! Agent routes: state changes and the agent's own view.
//!
//! `POST /api/agents/{id}/login|ready|not-ready|logout|disposition`,
//! `POST /api/agents/{id}/preview[/{action}]` (the preview modes),
//! `GET /api/agents` (supervisor) and `GET /api/agents/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;

use super::ApiState;
use super::auth::{require_agent, require_supervisor};
use super::body::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use super::error::ApiError;
use crate::driver::shell::BrowserPhoneRefused;
use crate::engine::dialer::{AgentView, CallbackAt, Command};
use crate::engine::preview::PreviewAction;
use crate::media::listen_in::ListenMode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotReadyBody {
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    pub code: String,
    #[serde(default)]
    pub notes: String,
    /// Call the contact back at this time (RFC 3339, e.g.
    /// `2026-12-02T15:00:00-05:00`).
    #[serde(default)]
    pub callback_at: Option<String>,
    /// Only this agent takes the callback.
    #[serde(default)]
    pub callback_personal: bool,
    /// Call back on this number instead of the record's (national numbers
    /// are read as the campaign's `default_region`).
    #[serde(default)]
    pub callback_phone: Option<String>,
    /// The call guide's answers, in the order given.
    #[serde(default)]
    pub guide: Vec<crate::campaign::guide::GivenAnswer>,
    /// The "do not call" box: the number goes on the campaign's DNC list
    /// and the record is removed, whatever `code` says.
    #[serde(default)]
    pub do_not_call: bool,
}

pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    require_supervisor(&state.tokens().authenticate(&headers)?)?;
    Ok(Json(state.engine().agents().await?))
}

pub async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    require_agent(&state.tokens().authenticate(&headers)?, &id)?;
    view_of(&state, &id).await
}

/// An agent's view as the agent's desktop gets it.
#[derive(Debug, serde::Serialize)]
pub struct AgentDesk {
    #[serde(flatten)]
    pub view: AgentView,
    /// A supervisor the agent hears now: `whisper` or `barge` (a silent
    /// monitor is not shown: quality assurance listens unannounced).
    pub supervisor: Option<ListenMode>,
}

pub(super) async fn view_of(state: &ApiState, id: &str) -> Result<Json<AgentDesk>, ApiError> {
    let view = state
        .engine()
        .agents()
        .await?
        .into_iter()
        .find(|agent| agent.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no agent `{id}`")))?;
    let supervisor = state
        .engine()
        .listen_ins()
        .await?
        .into_iter()
        .find(|listen_in| listen_in.agent == id && listen_in.hearing)
        .map(|listen_in| listen_in.mode)
        .filter(|mode| mode.agent_hears_supervisor());
    Ok(Json(AgentDesk { view, supervisor }))
}

async fn act(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    command: Command,
) -> Result<Json<AgentDesk>, ApiError> {
    require_agent(&state.tokens().authenticate(headers)?, id)?;
    state.engine().command(command).await??;
    view_of(state, id).await
}

pub async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::AgentLogin { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

pub async fn ready(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::AgentReady { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

pub async fn not_ready(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NotReadyBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let reason = body.map(|b| b.reason).unwrap_or_default();
    let command = Command::AgentNotReady {
        agent: id.clone(),
        reason,
    };
    act(&state, &headers, &id, command).await
}

pub async fn logout(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::AgentLogout { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

/// The agent ends the customer call (the reservation call stays up).
pub async fn hangup(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::AgentHangup { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

/// The agent puts the customer on hold: neither hears the other, the
/// customer hears the campaign's hold audio.
pub async fn hold(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::Hold {
        agent: id.clone(),
        on: true,
    };
    act(&state, &headers, &id, command).await
}

/// The agent takes the customer off hold.
pub async fn resume(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::Hold {
        agent: id.clone(),
        on: false,
    };
    act(&state, &headers, &id, command).await
}

/// The agent drops the campaign's recorded voicemail message into the
/// answering machine on the line, and moves on.
pub async fn drop_voicemail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::DropVoicemail { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

/// `POST /api/agents/{id}/phone`: the web desktop's WebRTC offer, to make
/// the browser the agent's phone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneOfferBody {
    pub sdp: String,
    /// The desktop connects again by itself after a lost connection:
    /// refused (409) while another browser is the agent's phone.
    #[serde(default)]
    pub reconnect: bool,
    /// The session this desktop had before (a reload): a reconnect may
    /// replace it.
    #[serde(default)]
    pub replaces: Option<u64>,
}

#[derive(Debug, serde::Serialize)]
pub struct PhoneAnswer {
    pub sdp: String,
    pub session: u64,
    /// A softphone holds the reservation call now: the browser takes the
    /// next one (after a logout and login, or when that call ends).
    pub softphone_has_the_call: bool,
}

/// `DELETE /api/agents/{id}/phone?session=N`: only that browser phone.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneCloseQuery {
    #[serde(default)]
    pub session: Option<u64>,
}

/// The desktop makes the browser the agent's phone: the answer's SDP comes
/// back; the phone is the agent's once ICE and DTLS are up (the reservation
/// call then comes up on it, at once).
pub async fn browser_phone(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PhoneOfferBody>,
) -> Result<Json<PhoneAnswer>, ApiError> {
    // The agent's own desktop only: a supervisor's browser is nobody's
    // phone (it could take an agent's calls without the agent knowing).
    match state.tokens().authenticate(&headers)? {
        super::auth::Principal::Agent(own) if own == id => {}
        _ => {
            return Err(ApiError::Forbidden(format!(
                "only agent `{id}`'s own token makes a browser its phone"
            )));
        }
    }
    match state
        .engine()
        .browser_phone(id, body.sdp, body.reconnect, body.replaces)
        .await?
    {
        Ok(answer) => Ok(Json(PhoneAnswer {
            sdp: answer.sdp,
            session: answer.session,
            softphone_has_the_call: answer.softphone_has_the_call,
        })),
        Err(refused @ BrowserPhoneRefused::UnknownAgent(_)) => {
            Err(ApiError::NotFound(refused.to_string()))
        }
        Err(refused @ BrowserPhoneRefused::TakenOver(_)) => {
            Err(ApiError::Conflict(refused.to_string()))
        }
        Err(refused) => Err(ApiError::BadRequest(refused.to_string())),
    }
}

/// The agent stops using the browser as its phone (the desktop's button);
/// a leg on it ends as when a softphone hangs up.
pub async fn close_browser_phone(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PhoneCloseQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    require_agent(&state.tokens().authenticate(&headers)?, &id)?;
    if state
        .engine()
        .close_browser_phone(id.clone(), query.session)
        .await?
    {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(match query.session {
            Some(session) => {
                format!("agent `{id}` has no browser phone {session} (another took over)")
            }
            None => format!("agent `{id}` has no browser phone"),
        }))
    }
}

/// `POST /api/agents/{id}/transfer`: who takes the customer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The agent (Ready, on a reservation call); none: the Ready agent of
    /// the call's campaign idle the longest.
    #[serde(default)]
    pub to: Option<String>,
    /// Instead: the name of one of the call's campaign's outside numbers
    /// (`[[campaign.outside_transfer]]`), dialed through the trunk.
    #[serde(default)]
    pub outside: Option<String>,
}

/// The agent hands the customer to another agent (a blind transfer), or
/// to one of the campaign's outside numbers; the body may be left out.
pub async fn transfer(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<TransferBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let body = body.unwrap_or_default();
    let command = transfer_command(&id, body.to, body.outside)?;
    act(&state, &headers, &id, command).await
}

/// A transfer (REST body or WebSocket action) to an agent (`to`, or none:
/// the campaign's next) or to an outside number, by name — not both.
pub fn transfer_command(
    agent: &str,
    to: Option<String>,
    outside: Option<String>,
) -> Result<Command, ApiError> {
    let agent = agent.to_string();
    match (to, outside) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "a transfer goes to an agent (`to`) or to an outside number (`outside`), not both"
                .into(),
        )),
        (to, None) => Ok(Command::Transfer { agent, to }),
        (None, Some(destination)) => Ok(Command::TransferOutside { agent, destination }),
    }
}

/// `POST /api/agents/{id}/dtmf`: the keys pressed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtmfBody {
    /// `0-9 * # A-D` (spaces and dashes ignored), at most 32.
    pub digits: String,
}

/// The agent sends DTMF digits to the customer on the line (an IVR menu
/// on a business line, an extension).
pub async fn dtmf(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DtmfBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::SendDtmf {
        agent: id.clone(),
        digits: body.digits,
    };
    act(&state, &headers, &id, command).await
}

/// The agent talks with another agent before handing the customer on (a
/// consultation; the customer waits on hold; `POST .../resume` makes it a
/// conference, `POST .../transfer` completes it). Body as for a transfer,
/// and may be left out.
pub async fn consult(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<TransferBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::Consult {
        agent: id.clone(),
        to: body.unwrap_or_default().to,
    };
    act(&state, &headers, &id, command).await
}

/// The agent calls off its transfer to an outside number while the
/// number rings: the line is cancelled, the customer stays, on hold.
pub async fn cancel_transfer(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::CancelTransfer { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

/// Either agent of a consultation ends it: the consulted agent is free,
/// the customer stays with the consulting one.
pub async fn end_consultation(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::EndConsultation { agent: id.clone() };
    act(&state, &headers, &id, command).await
}

/// The agent pauses the call's recording (a card number is read out).
pub async fn pause_recording(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::PauseRecording {
        agent: id.clone(),
        paused: true,
    };
    act(&state, &headers, &id, command).await
}

/// The agent lets the call's recording go on.
pub async fn resume_recording(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::PauseRecording {
        agent: id.clone(),
        paused: false,
    };
    act(&state, &headers, &id, command).await
}

pub async fn disposition(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DispositionBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = disposition_command(&id, body)?;
    act(&state, &headers, &id, command).await
}

/// A callback asked for with `callback_at` (RFC 3339, in the future),
/// `callback_personal` and `callback_phone`; none without a time.
fn callback_at(
    at: Option<&str>,
    personal: bool,
    phone: Option<String>,
) -> Result<Option<CallbackAt>, ApiError> {
    let Some(text) = at else {
        return Ok(None);
    };
    let at: jiff::Timestamp = text.parse().map_err(|e| {
        ApiError::BadRequest(format!(
            "callback_at {text:?} is not an RFC 3339 time like 2026-12-02T15:00:00-05:00: {e}"
        ))
    })?;
    if at <= jiff::Timestamp::now() {
        return Err(ApiError::BadRequest(format!(
            "callback_at {text} is in the past; choose a later time"
        )));
    }
    Ok(Some(CallbackAt {
        at,
        personal,
        phone,
    }))
}

/// The disposition command for `agent`, its callback time checked.
pub fn disposition_command(agent: &str, body: DispositionBody) -> Result<Command, ApiError> {
    let callback = callback_at(
        body.callback_at.as_deref(),
        body.callback_personal,
        body.callback_phone,
    )?;
    Ok(Command::Disposition {
        agent: agent.to_string(),
        code: body.code,
        notes: body.notes,
        callback,
        do_not_call: body.do_not_call,
        guide: body.guide,
    })
}

/// `PATCH /api/agents/{id}/contact`: the agent corrects the contact it
/// handles (preview screen, call, wrap-up).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// The contact's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The list's extra columns to set (string, number, boolean) or remove
    /// (null): a merge patch of the record's custom fields.
    #[serde(default)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

pub async fn change_contact(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ContactBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = contact_command(&id, body);
    act(&state, &headers, &id, command).await
}

/// The agent's contact correction as an engine command (REST and WebSocket).
pub fn contact_command(agent: &str, body: ContactBody) -> Command {
    Command::ChangeContact {
        agent: agent.to_string(),
        change: crate::engine::contact_edit::ContactChange {
            name: body.name,
            fields: body.custom,
        },
    }
}

/// Preview mode's "get record": the agent's view, with the record on screen.
pub async fn preview_next(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::Preview {
        agent: id.clone(),
        action: PreviewAction::Next,
        caller_id: None,
    };
    act(&state, &headers, &id, command).await
}

/// Acts on the record on screen: `call` (or `accept`), `skip`, `decline`
/// (or `reject`), `dnc`, `remove`, `stop`, `leave`, `callback` (call it
/// later: a callback at `callback_at`, and the record leaves the screen).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// With `call`: a caller ID from the campaign's `caller_ids`.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// With `callback`: when (RFC 3339, in the future).
    #[serde(default)]
    pub callback_at: Option<String>,
    /// With `callback`: only this agent takes it.
    #[serde(default)]
    pub callback_personal: bool,
    /// With `callback`: on this number instead of the record's.
    #[serde(default)]
    pub callback_phone: Option<String>,
}

pub async fn preview_action(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath((id, action)): ApiPath<(String, String)>,
    OptionalJson(body): OptionalJson<PreviewBody>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = preview_command(&id, &action, body.unwrap_or_default())?;
    act(&state, &headers, &id, command).await
}

/// The preview command named `action` for `agent`.
pub fn preview_command(agent: &str, action: &str, body: PreviewBody) -> Result<Command, ApiError> {
    let wants_callback =
        body.callback_at.is_some() || body.callback_personal || body.callback_phone.is_some();
    if action == "callback" {
        let callback = callback_at(
            body.callback_at.as_deref(),
            body.callback_personal,
            body.callback_phone,
        )?
        .ok_or_else(|| ApiError::BadRequest("`callback` needs a `callback_at` time".into()))?;
        if body.caller_id.is_some() {
            return Err(ApiError::BadRequest(
                "caller_id goes only with the call (accept) action".into(),
            ));
        }
        return Ok(Command::PostponePreview {
            agent: agent.to_string(),
            callback,
        });
    }
    let Some(action) = PreviewAction::parse(action) else {
        return Err(ApiError::BadRequest(format!(
            "unknown preview action `{action}`: use next, call, accept, skip, decline, reject, dnc, remove, stop, leave or callback"
        )));
    };
    if wants_callback {
        return Err(ApiError::BadRequest(
            "callback_at, callback_personal and callback_phone go only with the callback action"
                .into(),
        ));
    }
    let caller_id = body.caller_id;
    if caller_id.is_some() && action != PreviewAction::Call {
        return Err(ApiError::BadRequest(
            "caller_id goes only with the call (accept) action".into(),
        ));
    }
    Ok(Command::Preview {
        agent: agent.to_string(),
        action,
        caller_id,
    })
}

/// The agent confirms joining a campaign (`agents_confirm_join`).
pub async fn join_campaign(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath((id, campaign)): ApiPath<(String, String)>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::JoinCampaign {
        agent: id.clone(),
        campaign,
    };
    act(&state, &headers, &id, command).await
}

/// The agent leaves a campaign until joining it again ("Cancel and leave
/// the campaign"); a record of it on screen goes back to the list.
pub async fn leave_campaign(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath((id, campaign)): ApiPath<(String, String)>,
) -> Result<Json<AgentDesk>, ApiError> {
    let command = Command::LeaveCampaign {
        agent: id.clone(),
        campaign,
    };
    act(&state, &headers, &id, command).await
}
