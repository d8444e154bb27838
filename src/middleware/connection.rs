//! Connection reuse per client.

use axum::extract::Request;
use axum::http::header::{CONNECTION, USER_AGENT};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Closes the connection after each response to the official Rust client.
// COMPAT: the Rust client is typically one static `TofuPilot` shared by many
// `#[tokio::test]`s, each with its own runtime. Its pooled connections belong to the
// runtime that opened them, and die with it, even while another test has a request in
// flight on one; the client then retries (it retries any transport error) a write the
// server already committed, and gets 409 (or a duplicate run). Without keep-alive every
// request opens its connection in its own caller's runtime. Other clients keep alive.
pub async fn close_for_rust_client(req: Request, next: Next) -> Response {
    let rust_client = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("tofupilot-rust/"));
    let mut resp = next.run(req).await;
    if rust_client {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
