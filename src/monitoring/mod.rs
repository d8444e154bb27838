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
//! This module records and knows no HTTP (storage counts what it commits through it);
//! `http` times requests and serves the scrape.

pub mod http;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::OnceLock;

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
