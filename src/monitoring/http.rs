//! The HTTP side of the metrics: timing every request, serving the scrape.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Middleware (inside routing, so the matched route is known): counts and times
/// every request when metrics are on.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.metrics.is_none() {
        return next.run(req).await;
    }
    let operation = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("tofulab_http_request_duration_seconds",
        "operation" => operation.clone(), "method" => method.clone())
    .record(started.elapsed().as_secs_f64());
    metrics::counter!("tofulab_http_requests_total",
        "operation" => operation, "method" => method, "status" => status)
    .increment(1);
    response
}

/// `GET /metrics`: the text exposition format (no API key: scrapers have none).
pub async fn scrape(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return crate::error::ApiError::not_found("Metrics are off (--metrics)").into_response();
    };
    let (in_use, idle) = state.db.pool_stats();
    metrics::gauge!("tofulab_db_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("tofulab_db_connections", "state" => "idle").set(idle as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
