//! JSON request bodies, path parameters and query strings whose problems
//! come back as the API's own JSON errors (`{"error": …}`, 400) rather than
//! axum's plain-text rejections; and the API's answer to a path or method
//! it does not have.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A required JSON body.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(bad_body(rejection)),
        }
    }
}

/// An optional JSON body: none without a JSON content type; a bad one is
/// an error, never silently ignored.
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(OptionalJson(Some(value))),
            Err(JsonRejection::MissingJsonContentType(_)) => Ok(OptionalJson(None)),
            Err(rejection) => Err(bad_body(rejection)),
        }
    }
}

/// A query string (`?campaign=…&limit=…`); an unknown or malformed
/// parameter is an error naming it.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadRequest(format!(
                "the query string: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// The path's parameters (`/api/agents/{id}`); one that is not valid
/// UTF-8 once decoded, or not of the parameter's type, is an error naming it.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::BadRequest(format!(
                "the path: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// No route for this path.
pub async fn no_such_path(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {method} {}", uri.path()))
}

/// The path exists, not with this method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not take {method}", uri.path()))
}

fn bad_body(rejection: JsonRejection) -> ApiError {
    ApiError::BadRequest(format!("the request body: {}", rejection.body_text()))
}
