//! The routes of the official TofuPilot CLI (spec/CLI.md), beside `/api/v2`, and
//! tofulab's own administration of them under `/api/lab/v1`.
//!
//! | Route | Caller | Module |
//! |---|---|---|
//! | `POST /api/cli/login/redeem` | none (setup token in the body) | `login` |
//! | `GET`/`POST /api/cli/login` | device-login access token | `login` |
//! | `POST /api/cli/logout` | any key | `login` |
//! | `POST /api/auth/device/code`, `POST /api/auth/device/token` | none | `device` |
//! | `GET /api/cli/whoami` | any key | `identity` |
//! | `GET /api/cli/config` | station key | `identity` |
//! | `GET /api/cli/pull`, `GET /api/cli/pull/{id}` | station key | `pull` |
//! | `GET /api/cli/stream` | any key: 503, no realtime server | `pull` |
//! | `/api/cli/deployments*` | user key: 404, tofulab builds nothing | `pull` |
//! | `GET /api/lab/v1/stations/{id}/installations` | user key | `lab` |
//! | `GET`/`PATCH /api/lab/v1/cli/config` | user key | `lab` |
//!
//! Errors are the usual envelope. Where the CLI reads an RFC 8628 / deploy-style
//! `error` string, the envelope carries one too (`with_error`).

mod device;
mod identity;
mod lab;
mod login;
mod pull;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::AppState;

/// Routes authenticated by an API key (put behind the auth middleware).
pub fn keyed_routes() -> Router<AppState> {
    Router::new()
        .route("/cli/whoami", get(identity::whoami))
        .route("/cli/config", get(identity::config))
        .route("/cli/logout", post(login::logout))
        .route("/cli/pull", get(pull::list))
        .route("/cli/pull/{procedure_id}", get(pull::descriptor))
        .route("/cli/stream", get(pull::stream))
        .route("/cli/deployments", post(pull::deployments))
        .route("/cli/deployments/upload", post(pull::deployments))
        .route("/cli/deployments/{id}/logs", get(pull::deployments))
        .route(
            "/lab/v1/stations/{id}/installations",
            get(lab::installations),
        )
        .route(
            "/lab/v1/cli/config",
            get(lab::get_config).patch(lab::patch_config),
        )
}

/// Routes that carry no API key: the setup token, the device flow, and the routes that
/// take the device login's access token.
pub fn open_routes() -> Router<AppState> {
    Router::new()
        .route("/cli/login/redeem", post(login::redeem))
        .route(
            "/cli/login",
            get(login::organizations).post(login::create_key),
        )
        .route("/auth/device/code", post(device::code))
        .route("/auth/device/token", post(device::token))
}

/// A caller that must be a station: user keys get 403 (CLI.md §3.8–3.9: `config` and
/// `pull` are station-only).
pub struct StationCaller(pub Caller);

impl StationCaller {
    pub fn station_id(&self) -> crate::db::Id {
        self.0.station_id().unwrap_or(crate::db::Id::NIL)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for StationCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_station() {
            return Err(ApiError::forbidden(
                "Forbidden: only station keys can use this endpoint; log the station in \
                 with `tofupilot login --token <setup token>`",
            ));
        }
        Ok(StationCaller(caller))
    }
}

/// The client address, for rate limiting failed attempts on unauthenticated routes.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        ))
    }
}

/// Counts a failed attempt against the client address: 429 once over the limit.
fn limit_failures(state: &AppState, ip: IpAddr) -> Result<(), ApiError> {
    state
        .limiter
        .check(&crate::middleware::rate_limit::LimitKey::Ip(ip))
        .map(drop)
}

/// The envelope of `e` plus an `error` string, for the CLI calls that read one.
pub fn with_error(e: ApiError, error: &str) -> Response {
    let mut body = e.body();
    body["error"] = serde_json::Value::String(error.to_string());
    let mut resp = (e.status, axum::Json(body)).into_response();
    if let Some(secs) = e.retry_after_secs {
        if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
    }
    resp
}
