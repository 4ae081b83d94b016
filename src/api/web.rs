//! The web desktops served by the engine (SPEC §9): the agent desktop at
//! `/agent`, the supervisor dashboard at `/supervisor`, an index at `/`.
//! Static pages compiled into the binary; they hold no data and need no
//! token — every figure comes from the token-protected API, called by the
//! page with the token the user types (kept in the tab's sessionStorage).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Scripts and styles from this origin only: the pages run no inline code.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

pub async fn index() -> Response {
    page(HTML, include_str!("web/index.html"))
}

pub async fn agent() -> Response {
    page(HTML, include_str!("web/agent.html"))
}

pub async fn supervisor() -> Response {
    page(HTML, include_str!("web/supervisor.html"))
}

pub async fn common_js() -> Response {
    page(JS, include_str!("web/common.js"))
}

pub async fn agent_js() -> Response {
    page(JS, include_str!("web/agent.js"))
}

pub async fn supervisor_js() -> Response {
    page(JS, include_str!("web/supervisor.js"))
}

pub async fn css() -> Response {
    page(CSS, include_str!("web/app.css"))
}
