//! The error backstop. Handlers and extractors already answer in the envelope, but some
//! errors are produced by layers and the router itself (405 with an empty body, 413 from
//! the body limit, timeouts, panics). This middleware makes sure every error response is
//! `{"message","code"}` JSON, and rewrites errors under `/api/v1` into the legacy shape
//! `{"success": false, "error": {"message"}}` with the exact `Content-Type:
//! application/json` the legacy client requires to read it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Largest error body the backstop will read to rewrite it.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn json_errors(req: Request, next: Next) -> Response {
    let legacy = req.uri().path().starts_with("/api/v1/");
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json && !legacy {
        return resp;
    }
    // Dashboard pages answer errors as HTML pages meant for people.
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if is_html && !legacy {
        return resp;
    }

    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let message = if is_json {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| envelope_message(&v, legacy))
    } else {
        None
    }
    .unwrap_or_else(|| plain_message(status, &bytes));

    if legacy {
        let body = serde_json::json!({"success": false, "error": {"message": message}});
        let mut out = Response::new(Body::from(body.to_string()));
        *out.status_mut() = status;
        for name in [header::RETRY_AFTER, header::ALLOW] {
            if let Some(v) = parts.headers.get(&name) {
                out.headers_mut().insert(name, v.clone());
            }
        }
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return out;
    }

    let mut err = ApiError::new(status, message);
    err.retry_after_secs = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut out = err.into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

/// The `message` of a v2 error body. For the legacy shape, which has no `issues`, each
/// issue is appended (`Input validation failed: unit_under_test.serial_number: Serial
/// number cannot be empty`) so that the one line the legacy client prints says what is
/// wrong.
fn envelope_message(body: &serde_json::Value, legacy: bool) -> Option<String> {
    let message = body.get("message")?.as_str()?.to_string();
    if !legacy {
        return Some(message);
    }
    let issues: Vec<String> = body
        .get("issues")
        .and_then(|i| i.as_array())
        .into_iter()
        .flatten()
        .filter_map(|issue| {
            let text = issue.get("message")?.as_str()?;
            let path: Vec<String> = issue
                .get("path")
                .and_then(|p| p.as_array())
                .into_iter()
                .flatten()
                .map(|seg| match seg {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let path = path.join(".");
            Some(if path.is_empty() || text.contains(&path) {
                text.to_string()
            } else {
                format!("{path}: {text}")
            })
        })
        .collect();
    if issues.is_empty() {
        Some(message)
    } else {
        Some(format!("{message}: {}", issues.join("; ")))
    }
}

/// A message for an error that arrived without one of ours.
fn plain_message(status: StatusCode, body: &[u8]) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "Method not supported for this path".into(),
        StatusCode::NOT_FOUND => "Not found".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".into(),
        StatusCode::REQUEST_TIMEOUT => "Request timed out".into(),
        // Never echo a server-side body: it may carry internals.
        s if s.is_server_error() => "Internal server error".into(),
        s => {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() || text.len() > 500 {
                s.canonical_reason().unwrap_or("Request failed").to_string()
            } else {
                text
            }
        }
    }
}

/// The body of a panicking request: a fixed 500 in the envelope.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response()
}
