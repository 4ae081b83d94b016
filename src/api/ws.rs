//! The WebSocket API (SPEC §9: "REST + WebSocket"): one connection that
//! carries an agent's events to the client and its commands to the
//! engine. `GET /api/agents/{id}/ws` (an agent or a supervisor acting for
//! that agent) and `GET /api/ws` (supervisor: every event, commands for any
//! agent and campaign).
//!
//! Authentication: `Authorization: Bearer <token>` on the upgrade request,
//! or — browsers cannot set headers on a WebSocket — a first text message
//! `{"token": "..."}` within [`AUTH_WITHIN`]. Then the server sends
//! `{"type":"ready","agent":…}` and, from then on, every event as the
//! event streams carry it. A client message is one JSON object:
//! `{"id": 7, "action": "ready"}` (`login`, `ready`, `not_ready` with
//! `reason`, `logout`, `hangup`, `disposition` with the REST body's fields,
//! `preview` with `"do": "next|call|skip|…"` and an optional `caller_id`;
//! on `/api/ws` also `agent` for those, and `campaign` with `name` and
//! `command`: `start|pause|stop`). Each gets one reply:
//! `{"reply_to": 7, "ok": true, "agent": {…view…}}` or
//! `{"reply_to": 7, "error": "…", "status": 409}`; malformed messages get
//! an error reply too, never a dropped connection.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::agents::{
    ContactBody, DispositionBody, PreviewBody, contact_command, disposition_command,
    preview_command,
};
use super::auth::{Principal, require_agent, require_supervisor};
use super::body::ApiPath;
use super::error::ApiError;
use crate::engine::campaign_run::RunCommand;
use crate::engine::dialer::Command;

/// How long an unauthenticated connection may stay open.
pub const AUTH_WITHIN: Duration = Duration::from_secs(10);

/// What a connection is about.
#[derive(Debug, Clone)]
enum Scope {
    Agent(String),
    All,
}

/// A WebSocket handshake, or the API's JSON error for a request that is
/// not one (a plain GET, a wrong version).
type Handshake = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

pub async fn agent(
    ws: Handshake,
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    upgrade(ws, state, &headers, Scope::Agent(id))
}

pub async fn all(ws: Handshake, State(state): State<ApiState>, headers: HeaderMap) -> Response {
    upgrade(ws, state, &headers, Scope::All)
}

fn upgrade(ws: Handshake, state: ApiState, headers: &HeaderMap, scope: Scope) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::BadRequest(format!(
                "a WebSocket handshake is expected here: {}",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    // A header that is present must be right; absent, the first message
    // authenticates.
    let principal = if headers.contains_key(axum::http::header::AUTHORIZATION) {
        match state.tokens().authenticate(headers) {
            Ok(principal) => Some(principal),
            Err(error) => return error.into_response(),
        }
    } else {
        None
    };
    ws.on_upgrade(move |socket| session(socket, state, scope, principal))
}

async fn send(socket: &mut WebSocket, value: Value) -> bool {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .is_ok()
}

fn error_reply(reply_to: &Value, error: &ApiError) -> Value {
    let status = error.status().as_u16();
    json!({ "reply_to": reply_to, "error": error.to_string(), "status": status })
}

/// Waits for `{"token": "..."}`.
async fn authenticate(socket: &mut WebSocket, state: &ApiState) -> Result<Principal, ApiError> {
    let first = tokio::time::timeout(AUTH_WITHIN, socket.recv()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(_) => {
            return Err(ApiError::Unauthorized(
                "expected {\"token\": \"...\"} first",
            ));
        }
        Err(_) => return Err(ApiError::Unauthorized("no token within 10 s")),
    };
    let token = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
        .ok_or(ApiError::Unauthorized(
            "expected {\"token\": \"...\"} first",
        ))?;
    state.tokens().by_token(&token)
}

async fn session(
    mut socket: WebSocket,
    state: ApiState,
    scope: Scope,
    principal: Option<Principal>,
) {
    let principal = match principal {
        Some(principal) => Ok(principal),
        None => authenticate(&mut socket, &state).await,
    };
    let allowed = principal.and_then(|principal| {
        match &scope {
            Scope::Agent(id) => require_agent(&principal, id)?,
            Scope::All => require_supervisor(&principal)?,
        }
        Ok(principal)
    });
    if let Err(error) = allowed {
        send(&mut socket, error_reply(&Value::Null, &error)).await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let agent = match &scope {
        Scope::Agent(id) => Some(id.clone()),
        Scope::All => None,
    };
    if !send(&mut socket, json!({ "type": "ready", "agent": agent })).await {
        return;
    }
    let mut events = state.engine().subscribe();
    let mut shutdown = state.shutdown();
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    let wanted = agent.as_deref().is_none_or(|id| event.concerns(id));
                    if wanted
                        && let Ok(value) = serde_json::to_value(&event)
                        && !send(&mut socket, value).await
                    {
                        return;
                    }
                }
                // A slow client skips what it missed rather than closing.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(&state, &scope, &text).await;
                    if !send(&mut socket, reply).await {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Pings are answered by axum; binary frames mean nothing here.
                Some(Ok(_)) => {}
            },
            () = &mut stopping => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Runs one client message; the reply.
async fn handle(state: &ApiState, scope: &Scope, text: &str) -> Value {
    let message: Value = match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return error_reply(
                &Value::Null,
                &ApiError::BadRequest("a message is one JSON object".into()),
            );
        }
    };
    let reply_to = message.get("id").cloned().unwrap_or(Value::Null);
    match run(state, scope, message).await {
        Ok(view) => json!({ "reply_to": reply_to, "ok": true, "agent": view }),
        Err(error) => error_reply(&reply_to, &error),
    }
}

fn field(message: &Value, name: &str) -> Option<String> {
    message
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn run(state: &ApiState, scope: &Scope, message: Value) -> Result<Value, ApiError> {
    let action = field(&message, "action")
        .ok_or_else(|| ApiError::BadRequest("the message needs an `action`".into()))?;
    if action == "campaign" {
        if let Scope::Agent(_) = scope {
            return Err(ApiError::Forbidden(
                "campaign commands need the supervisor's connection (/api/ws)".into(),
            ));
        }
        let name = field(&message, "name")
            .ok_or_else(|| ApiError::BadRequest("`campaign` needs a `name`".into()))?;
        let command = match field(&message, "command").as_deref() {
            Some("start") => RunCommand::Start,
            Some("pause") => RunCommand::Pause,
            Some("stop") => RunCommand::Stop,
            _ => {
                return Err(ApiError::BadRequest(
                    "`campaign` needs a `command`: start, pause or stop".into(),
                ));
            }
        };
        state
            .engine()
            .command(Command::Campaign { name, command })
            .await??;
        return Ok(Value::Null);
    }
    let agent = match scope {
        Scope::Agent(id) => id.clone(),
        Scope::All => field(&message, "agent").ok_or_else(|| {
            ApiError::BadRequest("on /api/ws an agent action needs `agent`".into())
        })?,
    };
    let command = match action.as_str() {
        "login" => Command::AgentLogin {
            agent: agent.clone(),
        },
        "ready" => Command::AgentReady {
            agent: agent.clone(),
        },
        "not_ready" => Command::AgentNotReady {
            agent: agent.clone(),
            reason: field(&message, "reason").unwrap_or_default(),
        },
        "logout" => Command::AgentLogout {
            agent: agent.clone(),
        },
        "hangup" => Command::AgentHangup {
            agent: agent.clone(),
        },
        "hold" => Command::Hold {
            agent: agent.clone(),
            on: true,
        },
        "resume" => Command::Hold {
            agent: agent.clone(),
            on: false,
        },
        "pause_recording" => Command::PauseRecording {
            agent: agent.clone(),
            paused: true,
        },
        "drop_voicemail" => Command::DropVoicemail {
            agent: agent.clone(),
        },
        "transfer" => super::agents::transfer_command(
            &agent,
            field(&message, "to"),
            field(&message, "outside"),
        )?,
        "consult" => Command::Consult {
            agent: agent.clone(),
            to: field(&message, "to"),
        },
        "end_consultation" => Command::EndConsultation {
            agent: agent.clone(),
        },
        "cancel_transfer" => Command::CancelTransfer {
            agent: agent.clone(),
        },
        "dtmf" => Command::SendDtmf {
            agent: agent.clone(),
            digits: field(&message, "digits")
                .ok_or_else(|| ApiError::BadRequest("`dtmf` needs `digits`".into()))?,
        },
        "resume_recording" => Command::PauseRecording {
            agent: agent.clone(),
            paused: false,
        },
        "join" => Command::JoinCampaign {
            agent: agent.clone(),
            campaign: field(&message, "campaign")
                .ok_or_else(|| ApiError::BadRequest("`join` needs a `campaign`".into()))?,
        },
        "leave" => Command::LeaveCampaign {
            agent: agent.clone(),
            campaign: field(&message, "campaign")
                .ok_or_else(|| ApiError::BadRequest("`leave` needs a `campaign`".into()))?,
        },
        "preview" => {
            let what = field(&message, "do").unwrap_or_else(|| "next".into());
            let body = PreviewBody {
                caller_id: field(&message, "caller_id"),
                callback_at: field(&message, "callback_at"),
                callback_personal: message
                    .get("callback_personal")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                callback_phone: field(&message, "callback_phone"),
            };
            preview_command(&agent, &what, body)?
        }
        "disposition" => {
            let body: DispositionBody = serde_json::from_value(action_body(&message))
                .map_err(|e| ApiError::BadRequest(format!("disposition: {e}")))?;
            disposition_command(&agent, body)?
        }
        "contact" => {
            let body: ContactBody = serde_json::from_value(action_body(&message))
                .map_err(|e| ApiError::BadRequest(format!("contact: {e}")))?;
            contact_command(&agent, body)
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown action `{other}`: login, ready, not_ready, logout, hangup, hold, resume, transfer, consult, end_consultation, dtmf, drop_voicemail, pause_recording, resume_recording, join, leave, preview, disposition, contact, campaign"
            )));
        }
    };
    state.engine().command(command).await??;
    // The same view as the REST answer (with the supervisor the agent hears).
    let view = super::agents::view_of(state, &agent).await?.0;
    serde_json::to_value(view).map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// A command message's own fields: the REST body of the same action.
fn action_body(message: &Value) -> Value {
    let mut body = message.clone();
    if let Value::Object(map) = &mut body {
        for key in ["id", "action", "agent"] {
            map.remove(key);
        }
    }
    body
}
