//! The device login of `tofupilot login --url …` (RFC 8628, CLI.md §3.1–3.2).
//!
//! Errors of the token endpoint follow RFC 8628: `400 {"error": "authorization_pending"
//! | "slow_down" | "access_denied" | "expired_token" | "invalid_grant" | …}`, plus the
//! usual `message`/`code` so that every error of the API keeps one shape.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{limit_failures, ClientIp};
use crate::db::cli::ts_in;
use crate::db::device::{DevicePoll, DEVICE_CODE_TTL_SECS};
use crate::routes::attachments::public_base;
use crate::AppState;

/// The grant type RFC 8628 polls with.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, Default, Deserialize)]
struct DeviceRequest {
    client_id: Option<String>,
    grant_type: Option<String>,
    device_code: Option<String>,
}

/// The body as JSON (what the CLI sends) or as a form (what RFC 8628 describes).
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<DeviceRequest, String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let parsed = if is_form {
        serde_html_form::from_bytes(body).map_err(|e| e.to_string())
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Ok(DeviceRequest::default())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("The request body is not a JSON object with string fields: {e}"))
}

/// `400 {"error", "error_description"}` (RFC 6749 §5.2) with the envelope's
/// `message` and `code`.
fn oauth_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": description,
        "message": description,
        "code": "BAD_REQUEST",
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

#[derive(Debug, Serialize)]
pub struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

/// `POST /api/auth/device/code` — starts a device login. The user code is approved with
/// `tofulab keys approve-device CODE --user EMAIL` (or automatically with
/// `--auto-approve-devices`); `verification_uri` is where the dashboard's approval page
/// will live.
pub async fn code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    // Unauthenticated and writes a row: counted against the client address.
    if let Err(e) = limit_failures(&state, ip) {
        return e.into_response();
    }
    let req = match parse_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return oauth_error("invalid_request", &e),
    };
    if req.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return oauth_error("invalid_request", "client_id is required");
    }
    let new = match state
        .db
        .create_device_code(ts_in(DEVICE_CODE_TTL_SECS))
        .await
    {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let verification_uri = format!("{}/device", public_base(&state, &headers));
    axum::Json(DeviceCodeResponse {
        verification_uri_complete: format!("{verification_uri}?user_code={}", new.user_code),
        device_code: new.device_code,
        user_code: new.user_code,
        verification_uri,
        expires_in: new.expires_in,
        interval: new.interval,
    })
    .into_response()
}

#[derive(Debug, Serialize)]
pub struct DeviceTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

/// `POST /api/auth/device/token` — one poll. Polling faster than the interval gets
/// `slow_down` (and the interval grows by 5 s); an approved code gets its access token
/// once, whatever the pace.
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let req = match parse_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return oauth_error("invalid_request", &e),
    };
    if req.grant_type.as_deref() != Some(DEVICE_GRANT) {
        return oauth_error(
            "unsupported_grant_type",
            &format!("grant_type must be {DEVICE_GRANT}"),
        );
    }
    let Some(device_code) = req.device_code.filter(|c| !c.trim().is_empty()) else {
        return oauth_error("invalid_request", "device_code is required");
    };
    let poll = match state
        .db
        .poll_device_code(device_code.trim(), state.settings.auto_approve_devices)
        .await
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match poll {
        DevicePoll::Token(access_token) => axum::Json(DeviceTokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: crate::db::device::ACCESS_TOKEN_TTL_SECS,
        })
        .into_response(),
        DevicePoll::Pending => oauth_error(
            "authorization_pending",
            "Waiting for an administrator to approve this login",
        ),
        DevicePoll::SlowDown => oauth_error(
            "slow_down",
            "Polling too fast: wait five seconds more between polls",
        ),
        DevicePoll::Expired => oauth_error(
            "expired_token",
            "This login request has expired: run `tofupilot login` again",
        ),
        DevicePoll::Denied => oauth_error("access_denied", "This login request was denied"),
        DevicePoll::Invalid => match limit_failures(&state, ip) {
            Err(e) => e.into_response(),
            Ok(()) => oauth_error(
                "invalid_grant",
                "Unknown device code, or its access token was already issued",
            ),
        },
    }
}
