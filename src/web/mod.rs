//! The lab dashboard: server-rendered HTML pages at `/`, signed in with a user API key.
//!
//! Pages are maud templates compiled into the binary (type-checked, escaping every
//! interpolated value by default); the stylesheet and the one small script are embedded
//! with `include_str!`. Charts are SVG drawn on the server (`svg`): they cost no
//! JavaScript, print, and show in the page the moment it loads. Pages read through the
//! same `db` functions as the API and the analytics module; no SQL here.
//!
//! Every page needs a session (`Session`, else a redirect to `/login`) and shows only
//! the session's organization: another organization's ids answer 404.

mod auth;
mod csv;
mod files;
mod fmt;
mod procedure;
mod run;
mod runs;
mod stations;
mod svg;
mod unit;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::apikey;
use crate::db::sessions::SessionRow;
use crate::error::ApiError;
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tofulab_session";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(runs::page))
        .route("/runs/rows", get(runs::rows))
        .route("/runs/{id}", get(run::page))
        .route("/units/{serial}", get(unit::page))
        .route("/procedures", get(procedure::index))
        .route("/procedures/{id}", get(procedure::page))
        .route("/procedures/{id}/csv/{table}", get(procedure::csv))
        .route("/attachments/{id}", get(files::attachment))
        .route("/stations", get(stations::index))
        .route("/stations/{id}", get(stations::page))
        .route("/stations/{id}/setup-token", post(stations::setup_token))
        .route(
            "/device",
            get(stations::device_form).post(stations::device_decide),
        )
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
}

/// The signed-in user of a page request. Without a live session (none, expired, or its
/// API key revoked), page requests are redirected to `/login`.
#[derive(Clone, Debug)]
pub struct Session(pub SessionRow);

impl std::ops::Deref for Session {
    type Target = SessionRow;
    fn deref(&self) -> &SessionRow {
        &self.0
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = session_token(&parts.headers) else {
            return Err(to_login(parts));
        };
        match state.db.find_session(&apikey::digest(&token)).await {
            Ok(Some(row)) => Ok(Session(row)),
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// `303 /login?next=<this page>` for pages; a bare 401 for the script's refresh calls.
fn to_login(parts: &Parts) -> Response {
    let path = parts.uri.path();
    if path == "/runs/rows" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if target == "/" {
        return Redirect::to("/login").into_response();
    }
    let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// The session token from the `Cookie` header(s).
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// What a page handler fails with: an HTML error page.
#[derive(Debug)]
pub enum PageError {
    NotFound(String),
    Other(ApiError),
}

pub type PageResult<T = Response> = Result<T, PageError>;

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        if e.status == StatusCode::NOT_FOUND {
            PageError::NotFound(e.message)
        } else {
            PageError::Other(e)
        }
    }
}

impl From<crate::db::StoreError> for PageError {
    fn from(e: crate::db::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            PageError::Other(e) => {
                let status = e.status;
                if status.is_server_error() {
                    // The cause goes to the log; the page says no more.
                    tracing::error!(status = status.as_u16(), error = %e, "page failed");
                    (status, "Something went wrong on the server.".to_string())
                } else {
                    (status, e.message)
                }
            }
        };
        let body = bare_page(
            &format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            html! {
                main.narrow {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
                    p { (message) }
                    p { a href="/" { "Back to the runs" } }
                }
            },
        );
        (status, html_response(body)).into_response()
    }
}

/// An HTML response with the security headers every page carries: a strict Content
/// Security Policy (nothing from elsewhere, no inline script), no framing by other
/// sites, no caching of organization data.
pub fn html_response(markup: Markup) -> Response {
    let mut resp = Response::new(axum::body::Body::from(markup.into_string()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A page without the navigation (sign-in, errors).
fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tofulab" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body { (body) }
        }
    }
}

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Runs,
    Procedures,
    Stations,
    None,
}

/// A page of the dashboard: header with the organization, navigation and sign-out.
pub fn layout(session: &Session, nav: Nav, title: &str, body: Markup) -> Response {
    let who = session
        .user_name
        .clone()
        .unwrap_or_else(|| session.user_email.clone());
    html_response(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tofulab" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "tofulab" }
                    nav {
                        a href="/" class=[(nav == Nav::Runs).then_some("current")] { "Runs" }
                        a href="/procedures" class=[(nav == Nav::Procedures).then_some("current")] { "Procedures" }
                        a href="/stations" class=[(nav == Nav::Stations).then_some("current")] { "Stations" }
                    }
                    span.org title="Organization" { (session.org_name) }
                    span.who { (who) }
                    form.logout method="post" action="/logout" {
                        button type="submit" { "Sign out" }
                    }
                }
                main { (body) }
            }
        }
    })
}

/// An outcome as a coloured badge with a symbol and the word, so that it never relies
/// on colour alone.
pub fn outcome_badge(outcome: &str) -> Markup {
    let symbol = match outcome {
        "PASS" => "✓",
        "FAIL" => "✗",
        "ERROR" => "!",
        "TIMEOUT" => "⧗",
        "ABORTED" => "■",
        "SKIP" => "–",
        "RUNNING" => "…",
        _ => "·",
    };
    html! {
        span class={ "badge o-" (outcome.to_ascii_lowercase()) } data-outcome=(outcome) {
            span.sym aria-hidden="true" { (symbol) } " " (outcome)
        }
    }
}

/// Raw markup that is already safe (SVG built by `svg`).
pub fn trusted(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

async fn stylesheet() -> Response {
    asset(include_str!("assets/app.css"), "text/css; charset=utf-8")
}

async fn script() -> Response {
    asset(
        include_str!("assets/app.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = Response::new(axum::body::Body::from(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
