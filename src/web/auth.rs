//! Signing in and out. `POST /login` takes a user API key (`api_key`), checks it like
//! API authentication does, and opens a server-side session: the cookie carries a
//! random token, the database its SHA-256. Failed attempts count against the client
//! address in the same rate limiter as failed API authentication.
//!
//! Cross-site requests: the cookie is `SameSite=Strict`, and every POST whose `Origin`
//! names another site is refused.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;

use super::{bare_page, html_response, session_token, PageError, PageResult, SESSION_COOKIE};
use crate::apikey;
use crate::db::Ts;
use crate::error::ApiError;
use crate::extract::{body_bytes, Principal};
use crate::middleware::rate_limit::LimitKey;
use crate::AppState;

/// How long a session lasts after signing in.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    api_key: String,
    next: Option<String>,
}

/// `GET /login`: the sign-in form (or the runs, when already signed in).
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> PageResult {
    if let Some(token) = session_token(&headers) {
        if state
            .db
            .find_session(&apikey::digest(&token))
            .await?
            .is_some()
        {
            return Ok(Redirect::to("/").into_response());
        }
    }
    let q: LoginQuery =
        serde_html_form::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    Ok(form(StatusCode::OK, None, q.next.as_deref()))
}

/// `POST /login` with `api_key`: `303 /` (or the page asked for) with the session
/// cookie; the form again with a message otherwise.
pub async fn login(State(state): State<AppState>, req: Request) -> PageResult {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    check_origin(&state, req.headers())?;
    let bytes = body_bytes(req, &()).await?;
    let f: LoginForm = serde_html_form::from_bytes(&bytes).unwrap_or_default();
    let next = f.next.as_deref();
    let key = f.api_key.trim();
    if key.is_empty() {
        return Ok(form(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter a user API key."),
            next,
        ));
    }
    let caller = state
        .db
        .find_caller_by_key_digest(&apikey::digest(key))
        .await?;
    let (caller, user_id) = match caller {
        Some(c) => match c.principal {
            Principal::User(u) => (c, u),
            Principal::Station(_) => {
                return Ok(refuse(
                    &state,
                    ip,
                    "This is a station key. Stations upload runs; people sign in with a \
                     user API key.",
                    next,
                ))
            }
        },
        None => {
            return Ok(refuse(
                &state,
                ip,
                "This API key is not valid: it is unknown or was revoked.",
                next,
            ))
        }
    };
    state
        .limiter
        .check(&LimitKey::ApiKey(caller.key_id))
        .map_err(PageError::from)?;
    let token: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    let expires =
        Ts::from_micros(Ts::now().micros() + SESSION_TTL_SECS * 1_000_000).unwrap_or_else(Ts::now);
    state
        .db
        .create_session(
            caller.org_id,
            caller.key_id,
            user_id,
            &apikey::digest(&token),
            expires,
        )
        .await?;
    let target = next.filter(|n| is_local_path(n)).unwrap_or("/");
    let mut resp = Redirect::to(target).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, &token, SESSION_TTL_SECS));
    Ok(resp)
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    check_origin(&state, &headers)?;
    if let Some(token) = session_token(&headers) {
        state.db.delete_session(&apikey::digest(&token)).await?;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0));
    Ok(resp)
}

/// A failed sign-in: counted against the address; past the limit, 429.
fn refuse(state: &AppState, ip: std::net::IpAddr, message: &str, next: Option<&str>) -> Response {
    if let Err(e) = state.limiter.check(&LimitKey::Ip(ip)) {
        let wait = e.retry_after_secs.unwrap_or(1);
        let mut resp = form(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many sign-in attempts from this address. Try again in {wait} s."
            )),
            next,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    form(StatusCode::UNAUTHORIZED, Some(message), next)
}

/// The session cookie: HttpOnly, SameSite=Strict, for the whole site; `Secure` when the
/// server serves TLS or its public URL is https. `max_age` 0 clears it.
fn cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let secure = state.settings.tls
        || state
            .settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
    let mut c =
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie is ASCII")
}

/// Refuses a POST sent from a page of another origin (a browser always sends `Origin`
/// on cross-site form posts).
pub(super) fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, h)| !host.is_empty() && h.eq_ignore_ascii_case(host));
    let public = state
        .settings
        .public_url
        .as_deref()
        .is_some_and(|u| u.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if same_host || public {
        Ok(())
    } else {
        Err(PageError::Other(ApiError::forbidden(
            "This form was sent from another site and was refused.",
        )))
    }
}

/// A path on this site (`/runs/…`), not a URL elsewhere (`//evil`, `https://…`).
fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\")
}

fn form(status: StatusCode, message: Option<&str>, next: Option<&str>) -> Response {
    let next = next.filter(|n| is_local_path(n));
    let body = bare_page(
        "Sign in",
        html! {
            main.login {
                h1 { "tofulab" }
                p.sub { "Sign in with a user API key of your organization." }
                @if let Some(m) = message {
                    p.error role="alert" { (m) }
                }
                form method="post" action="/login" {
                    label for="api_key" { "API key" }
                    input #api_key type="password" name="api_key" autocomplete="off"
                        required autofocus placeholder="tp_user_…";
                    @if let Some(n) = next {
                        input type="hidden" name="next" value=(n);
                    }
                    button type="submit" { "Sign in" }
                }
                p.hint {
                    "The first start of the server printed a key; "
                    code { "tofulab keys create --user <email>" }
                    " makes another."
                }
            }
        },
    );
    (status, html_response(body)).into_response()
}
