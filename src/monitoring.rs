//! Prometheus metrics (`--metrics on|ADDR`), recorded with the `metrics` facade and
//! rendered by `metrics-exporter-prometheus` in the text exposition format:
//!
//! - `tofulab_http_requests_total{operation, method, status}` and
//!   `tofulab_http_request_duration_seconds{operation, method}` (a histogram), where
//!   `operation` is the matched route (`/api/v2/runs/{id}`), `unmatched` otherwise;
//! - `tofulab_runs_ingested_total`, `tofulab_measurements_ingested_total`;
//! - `tofulab_imports_total{importer, result}`;
//! - `tofulab_upload_bytes_total`;
//! - `tofulab_rate_limited_total`;
//! - `tofulab_db_connections{state="in_use"|"idle"}`, read at each scrape.
//!
//! The recorder is global to the process (the facade's design): it is installed the
//! first time a server with metrics on starts, and shared by every server of the process.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Where metrics are served (`--metrics off|on|ADDR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsMode {
    Off,
    /// `GET /metrics` on the API's own listener.
    On,
    /// `GET /metrics` on a listener of its own (e.g. a port only the scraper reaches).
    Listen(SocketAddr),
}

impl FromStr for MetricsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            v if v.eq_ignore_ascii_case("off") => Ok(MetricsMode::Off),
            v if v.eq_ignore_ascii_case("on") => Ok(MetricsMode::On),
            v => v.parse().map(MetricsMode::Listen).map_err(|_| {
                format!("`{v}` is not off, on, or an address to listen on (127.0.0.1:9090)")
            }),
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics stays empty");
            }
            handle
        })
        .clone()
}

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

/// Runs (and their measurements) committed.
pub fn runs_ingested(runs: usize, measurements: usize) {
    metrics::counter!("tofulab_runs_ingested_total").increment(runs as u64);
    metrics::counter!("tofulab_measurements_ingested_total").increment(measurements as u64);
}

/// One structured import item finished.
pub fn import_done(importer: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!("tofulab_imports_total", "importer" => importer, "result" => result)
        .increment(1);
}

/// Upload bytes stored.
pub fn upload_bytes(n: u64) {
    metrics::counter!("tofulab_upload_bytes_total").increment(n);
}

/// A request refused by the rate limiter.
pub fn rate_limited() {
    metrics::counter!("tofulab_rate_limited_total").increment(1);
}
