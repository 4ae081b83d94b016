//! Bearer-token authentication. Tokens come from `[[api.token]]`: a
//! supervisor token acts on everything; an agent token acts only as its agent.

use std::collections::HashMap;

use axum::http::HeaderMap;

use super::error::ApiError;
use crate::config::{ApiConfig, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Supervisor,
    Agent(String),
}

impl Principal {
    /// May this principal act as / see agent `id`?
    pub fn may_act_as(&self, id: &str) -> bool {
        match self {
            Principal::Supervisor => true,
            Principal::Agent(own) => own == id,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Tokens {
    by_secret: HashMap<String, Principal>,
}

impl Tokens {
    pub fn from_config(api: &ApiConfig) -> Self {
        let by_secret = api
            .tokens
            .iter()
            .filter_map(|token| {
                let principal = match (&token.role, &token.agent) {
                    (Role::Supervisor, _) => Principal::Supervisor,
                    (Role::Agent, Some(agent)) => Principal::Agent(agent.clone()),
                    (Role::Agent, None) => return None,
                };
                Some((token.secret.clone()?, principal))
            })
            .collect();
        Self { by_secret }
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let value =
            headers
                .get(axum::http::header::AUTHORIZATION)
                .ok_or(ApiError::Unauthorized(
                    "missing Authorization: Bearer <token>",
                ))?;
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
        let token = value.strip_prefix("Bearer ").ok_or(ApiError::Unauthorized(
            "expected Authorization: Bearer <token>",
        ))?;
        self.by_token(token)
    }

    /// The principal of a bare token (a WebSocket's first message).
    pub fn by_token(&self, token: &str) -> Result<Principal, ApiError> {
        self.by_secret
            .get(token.trim())
            .cloned()
            .ok_or(ApiError::Unauthorized("unknown token"))
    }
}

pub fn require_supervisor(principal: &Principal) -> Result<(), ApiError> {
    match principal {
        Principal::Supervisor => Ok(()),
        Principal::Agent(_) => Err(ApiError::Forbidden(
            "this needs a supervisor token".to_string(),
        )),
    }
}

pub fn require_agent(principal: &Principal, id: &str) -> Result<(), ApiError> {
    if principal.may_act_as(id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "an agent token acts only as its own agent, not as `{id}`"
        )))
    }
}
