//! Attachments and signed file transfer (BEHAVIOR.md §10).
//!
//! Upload and download URLs are absolute, self-authorising and expiring:
//! `{base}/files/{id}?expires={unix seconds}&signature={hex hmac}`, signed for one method.

use axum::http::{header, HeaderMap};
use axum::Router;

use crate::db::Id;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// The unauthenticated, signed upload/download endpoints.
pub fn file_routes() -> Router<AppState> {
    Router::new()
}

/// The base URL clients reach this server at: `--public-url` when configured, else the
/// request's `Host` (and `X-Forwarded-Proto`, default `http`).
pub fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.settings.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// A signed URL for `method` (`PUT` to upload, `GET` to download) on attachment `id`.
pub fn signed_url(state: &AppState, base: &str, id: Id, method: &str) -> String {
    let expires = chrono::Utc::now().timestamp() + state.settings.signed_url_ttl.as_secs() as i64;
    let signature = state.signer.sign(id, method, expires);
    format!("{base}/files/{id}?expires={expires}&signature={signature}")
}

/// The download URL of an attachment.
pub fn download_url(state: &AppState, base: &str, id: Id) -> String {
    signed_url(state, base, id, "GET")
}
