//! API errors as JSON bodies with the right status codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::driver::EngineGone;
use crate::engine::dialer::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is valid but not in the current state (e.g. ready while on a call).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    /// The path exists, not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A definition with problems: each one's key and message (400).
    #[error("{}", problems_summary(.0))]
    Problems(Vec<crate::config::definition::DefinitionProblem>),
}

fn problems_summary(problems: &[crate::config::definition::DefinitionProblem]) -> String {
    let first = problems
        .first()
        .map(|p| {
            if p.key.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.key, p.message)
            }
        })
        .unwrap_or_default();
    match problems.len() {
        0 | 1 => first,
        n => format!("{first} (and {} more problems)", n - 1),
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::UnknownAgent(_) | CommandError::UnknownCampaign(_) => {
                ApiError::NotFound(error.to_string())
            }
            CommandError::Invalid(_) => ApiError::BadRequest(error.to_string()),
            CommandError::Agent(_) | CommandError::Campaign(_) | CommandError::Unavailable(_) => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

impl From<EngineGone> for ApiError {
    fn from(error: EngineGone) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) | ApiError::Problems(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Problems(problems) => {
                json!({ "error": self.to_string(), "problems": problems })
            }
            _ => json!({ "error": self.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}
