//! Bearer-key authentication for everything under `/api`. A valid key puts a `Caller`
//! in the request extensions; a missing, unknown or revoked key is `401` (in the v2
//! envelope; the backstop rewrites it for `/api/v1`). Keys are never logged.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::apikey;
use crate::error::ApiError;
use crate::middleware::rate_limit::LimitKey;
use crate::AppState;

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));

    let Some(key) = bearer_key(&req) else {
        return reject_unauthenticated(
            &state,
            ip,
            "Missing API key: send `Authorization: Bearer <key>`",
        );
    };
    let digest = apikey::digest(&key);
    let caller = match state.db.find_caller_by_key_digest(&digest).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return reject_unauthenticated(&state, ip, "Invalid API key"),
        // BEHAVIOR: a database that cannot answer is a 503, never a 401: a 401 makes the
        // CLI's station daemon wipe its credentials.
        Err(e) => return ApiError::from(e).into_response(),
    };
    let budget = match state.limiter.check(&LimitKey::ApiKey(caller.key_id)) {
        Ok(budget) => budget,
        Err(e) => return state.limiter.refusal(e),
    };
    req.extensions_mut().insert(caller.clone());
    let mut response = next.run(req).await;
    if let Some(budget) = budget {
        budget.write(response.headers_mut());
    }
    // For the request journal, which sits outside this layer.
    response.extensions_mut().insert(caller);
    response
}

fn reject_unauthenticated(state: &AppState, ip: std::net::IpAddr, message: &str) -> Response {
    if let Err(e) = state.limiter.check(&LimitKey::Ip(ip)) {
        return state.limiter.refusal(e);
    }
    ApiError::unauthorized(message).into_response()
}

/// The key from `Authorization: Bearer <key>` (scheme case-insensitive). Several
/// `Authorization` headers are refused rather than one of them picked: which one counts
/// would differ between this server and any proxy in front of it.
pub fn bearer_key(req: &Request) -> Option<String> {
    let mut values = req.headers().get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, key) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_string())
}
