//! tofulab: a self-hostable server that speaks the TofuPilot REST API v2.
//!
//! `app(state)` builds the router; `serve(listener, state, shutdown)` runs it until the
//! shutdown future resolves, then finishes in-flight requests.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod apikey;
pub mod bootstrap;
pub mod caller;
pub mod commands;
pub mod config;
pub mod control;
pub mod db;
pub mod error;
pub mod extract;
pub mod fields;
pub mod import;
pub mod metadata;
pub mod middleware;
pub mod monitoring;
pub mod openapi;
pub mod routes;
pub mod rules;
pub mod signing;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod types;
pub mod values;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::db::Db;
use crate::middleware::rate_limit::RateLimiter;
use crate::signing::Signer;

/// Server settings that handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL for upload/download URLs; `None` = derive from each request's Host.
    pub public_url: Option<String>,
    pub max_body_size: u64,
    pub max_upload_size: u64,
    pub signed_url_ttl: Duration,
    pub unlinked_upload_ttl: Duration,
    /// Approve every device login of the TofuPilot CLI for the only user
    /// (`--auto-approve-devices`, single-user installs).
    pub auto_approve_devices: bool,
    /// The control API (`/_tofulab`): off when `None` (no admin token).
    pub control: Option<Arc<control::ControlConfig>>,
    /// Prometheus metrics (`--metrics`).
    pub metrics: monitoring::MetricsMode,
    /// The longest a request body may stall (no bytes) before the request ends with 408.
    pub request_timeout: Duration,
    /// Served over TLS: URLs derived from a request's `Host` use `https`, and the
    /// dashboard's session cookie is `Secure`.
    pub tls: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: None,
            max_body_size: 64 << 20,
            max_upload_size: 1 << 30,
            signed_url_ttl: Duration::from_secs(3600),
            unlinked_upload_ttl: Duration::from_secs(86400),
            auto_approve_devices: false,
            control: None,
            metrics: monitoring::MetricsMode::Off,
            request_timeout: Duration::from_secs(60),
            tls: false,
        }
    }
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub limiter: Arc<RateLimiter>,
    pub signer: Signer,
    /// Fault injection rules (control API).
    pub faults: Arc<control::faults::Faults>,
    /// The request journal (control API).
    pub journal: Arc<control::journal::Journal>,
    /// The metrics recorder's handle, when metrics are on.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl AppState {
    /// Builds the state, loading (or creating) the URL signing secret from the database.
    pub async fn new(db: Db, settings: Settings, limiter: RateLimiter) -> error::ApiResult<Self> {
        let signer = Signer::new(db::settings::signing_secret(&db).await?);
        let limiter = Arc::new(limiter);
        let journal_size = settings.control.as_ref().map_or(0, |c| c.journal_size);
        let settings_metrics = settings.metrics;
        limiter.spawn_pruner(Duration::from_secs(60));
        let state = AppState {
            db,
            settings: Arc::new(settings),
            limiter,
            signer,
            faults: Arc::default(),
            journal: Arc::new(control::journal::Journal::new(journal_size)),
            metrics: (settings_metrics != monitoring::MetricsMode::Off).then(monitoring::handle),
        };
        state.spawn_upload_sweeper();
        Ok(state)
    }

    /// Deletes abandoned uploads in the background — partial blobs left by a crash at
    /// once, then periodically, with uploads never linked nor finalized within
    /// `unlinked_upload_ttl` — until the last clone of this state is dropped.
    fn spawn_upload_sweeper(&self) {
        let db = self.db.clone();
        let ttl = self.settings.unlinked_upload_ttl;
        let alive = Arc::downgrade(&self.settings);
        let every = (ttl / 4).clamp(Duration::from_secs(10), Duration::from_secs(600));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if alive.strong_count() == 0 {
                    return;
                }
                if let Err(e) = db.sweep_uploads(ttl).await {
                    tracing::warn!(error = %e, "upload sweep failed; will retry");
                }
            }
        });
        if self.db.objects().is_some() {
            let db = self.db.clone();
            let alive = Arc::downgrade(&self.settings);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(OBJECT_SWEEP_EVERY);
                loop {
                    tick.tick().await;
                    if alive.strong_count() == 0 {
                        return;
                    }
                    match db.sweep_object_deletions().await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(objects = n, "deleted objects of deleted blobs"),
                        Err(e) => tracing::warn!(error = %e, "object sweep failed; will retry"),
                    }
                }
            });
        }
    }
}

/// How often objects of deleted blobs are deleted from the object store. The queue is a
/// table read with one indexed query, so a short period costs little and deleted bytes
/// leave the bucket within seconds.
const OBJECT_SWEEP_EVERY: Duration = Duration::from_secs(2);

/// The request id header: taken from the request when a client (or proxy) sent one,
/// generated (a UUID) otherwise, answered on every response and named in every log line.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let body_limit = usize::try_from(state.settings.max_body_size).unwrap_or(usize::MAX);
    routes::router(state.clone())
        // Innermost, inside routing: the matched route names the operation.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            monitoring::http::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        // A body that stalls (no bytes for the request timeout) fails, and its reader
        // answers 408 (`extract::body_error`); one still moving is never cut.
        .layer(
            tower::ServiceBuilder::new()
                .layer(RequestBodyTimeoutLayer::new(state.settings.request_timeout))
                .layer(MapRequestBodyLayer::new(axum::body::Body::new)),
        )
        // So that 413 messages can cite the limit.
        .layer(axum::Extension(extract::BodyLimit(
            state.settings.max_body_size,
        )))
        .layer(axum::middleware::from_fn(
            middleware::json_errors::json_errors,
        ))
        .layer(
            TraceLayer::new_for_http()
                // Method and path only: no headers (they carry API keys), no query strings
                // (signed URLs carry signatures).
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(CatchPanicLayer::custom(
            middleware::json_errors::panic_response,
        ))
        .layer(axum::middleware::from_fn(
            middleware::connection::close_for_rust_client,
        ))
        // Outermost: every answer (panics and rejections included) carries the id, and
        // the trace span above names it in every log line of the request.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting and waits for in-flight
/// requests to finish. HTTP/1.1 and HTTP/2 on every listener: on plain TCP HTTP/2 is h2c
/// with prior knowledge; over TLS (`tls::TlsListener`) the client picks by ALPN.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use axum::serve::ListenerExt;
    // Before routing: a path rewrite inside the router would come too late.
    let app = tower::Layer::layer(
        &tower::util::MapRequestLayer::new(|req| {
            host_from_authority(collapse_leading_slashes(req))
        }),
        app(state),
    );
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(app);
    // `tap_io` (a no-op) gives any listener the connect-info impl axum has for it.
    axum::serve(listener.tap_io(|_| {}), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// HTTP/2 names the host in the `:authority` pseudo-header (the URI), not in `Host`;
/// copying it into `Host` lets every reader of `Host` (signed URLs, the dashboard's
/// same-origin check) treat both protocols alike.
fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    use axum::http::{header::HOST, HeaderValue};
    if req.headers().contains_key(HOST) {
        return req;
    }
    let authority = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = authority {
        req.headers_mut().insert(HOST, host);
    }
    req
}

/// `//api/cli/login/redeem` → `/api/cli/login/redeem`. COMPAT: the TofuPilot CLI joins
/// `--url` and the path verbatim during `login` (CLI.md §1.1), so a URL typed with a
/// trailing slash sends a doubled one. Only the leading slashes are collapsed: empty
/// segments further in stay 404 (BEHAVIOR.md §13.1).
fn collapse_leading_slashes(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if !path.starts_with("//") {
        return req;
    }
    let rest = path.trim_start_matches('/');
    let fixed = match req.uri().query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = fixed.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}
