//! Fault injection: rules that make `/api` misbehave on purpose so a client's retry
//! paths can be tested. A rule matches a method and a path (exactly, or with `*` standing
//! for one segment) and optionally one organization; it applies `before` the handler
//! (answering instead of it: nothing changes) or `after` it (the handler commits, then
//! its response is replaced or the connection dropped — what `client_run_ref` is for).
//! A rule may delay, answer a status (with `Retry-After`), or drop the connection; it
//! applies `times` times (default: always) with a `probability` (default 1).

use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::db::Id;
use crate::error::ApiError;
use crate::AppState;

/// When a rule applies relative to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    Before,
    After,
}

/// A rule as posted to `POST /_tofulab/faults`.
#[derive(Debug, Clone, Deserialize, validator::Validate)]
#[serde(deny_unknown_fields)]
pub struct NewFault {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub organization_id: Option<Id>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub drop_connection: bool,
    pub when: When,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(default)]
    pub probability: Option<f64>,
}

impl NewFault {
    /// The first thing wrong with the rule, as `(field, message)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.method.trim().is_empty() {
            return Some(("method", "method must be an HTTP method or *".into()));
        }
        if !self.path.starts_with('/') {
            return Some(("path", "path must start with /".into()));
        }
        if let Some(s) = self.status {
            if !(100..=599).contains(&s) {
                return Some(("status", format!("status must be 100..599, got {s}")));
            }
        }
        if self.status.is_none() && !self.drop_connection && self.delay_ms.is_none() {
            return Some((
                "status",
                "a fault needs a status, drop_connection or delay_ms".into(),
            ));
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Some(("probability", format!("probability must be 0..1, got {p}")));
            }
        }
        if self.delay_ms.is_some_and(|d| d > 600_000) {
            return Some(("delay_ms", "delay_ms must be at most 600000".into()));
        }
        None
    }
}

/// A rule with its id and how often it applied.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: Id,
    pub method: String,
    pub path: String,
    pub organization_id: Option<Id>,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub delay_ms: Option<u64>,
    pub drop_connection: bool,
    pub when: When,
    pub times: Option<u64>,
    pub probability: Option<f64>,
    pub hits: u64,
}

impl Fault {
    fn matches(&self, method: &str, path: &str, org: Option<Id>, when: When) -> bool {
        self.when == when
            && self.times.is_none_or(|t| self.hits < t)
            && (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && self.organization_id.is_none_or(|o| Some(o) == org)
            && path_matches(&self.path, path)
    }
}

/// `pattern` matches `path` segment by segment; `*` matches any one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.trim_end_matches('/').split('/');
    let mut q = path.trim_end_matches('/').split('/');
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The rules of one server.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn add(&self, new: NewFault) -> Id {
        let id = Id::new();
        self.lock().push(Fault {
            id,
            method: new.method.trim().to_ascii_uppercase(),
            path: new.path,
            organization_id: new.organization_id,
            status: new.status,
            retry_after: new.retry_after,
            delay_ms: new.delay_ms,
            drop_connection: new.drop_connection,
            when: new.when,
            times: new.times,
            probability: new.probability,
            hits: 0,
        });
        id
    }

    pub fn list(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    pub fn remove(&self, id: Id) -> bool {
        let mut rules = self.lock();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The first rule that applies to this request now, counted as a hit.
    fn take(&self, method: &str, path: &str, org: Option<Id>, when: When) -> Option<Fault> {
        let mut rules = self.lock();
        let rule = rules
            .iter_mut()
            .find(|r| r.matches(method, path, org, when))?;
        if let Some(p) = rule.probability {
            if !rand::thread_rng().gen_bool(p) {
                return None;
            }
        }
        rule.hits += 1;
        Some(rule.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a response a fault rule made, for the journal.
#[derive(Debug, Clone, Copy)]
pub struct AppliedFault {
    pub rule: Id,
    /// The connection is dropped: the client gets no status at all.
    pub dropped: bool,
}

/// Middleware for authenticated `/api` requests (after auth, so the caller's
/// organization is known).
pub async fn inject(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.settings.control.is_none() {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let path = super::original_uri(&req).path().to_string();
    let org = req.extensions().get::<Caller>().map(|c| c.org_id);
    if let Some(rule) = state.faults.take(&method, &path, org, When::Before) {
        if let Some(response) = apply(&rule).await {
            return response;
        }
    }
    let response = next.run(req).await;
    match state.faults.take(&method, &path, org, When::After) {
        Some(rule) => apply(&rule).await.unwrap_or(response),
        None => response,
    }
}

/// Applies a rule: waits, then answers its status or drops the connection; `None` for a
/// delay alone (the request goes on as usual).
async fn apply(rule: &Fault) -> Option<Response> {
    if let Some(ms) = rule.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut response = if rule.drop_connection {
        dropped_connection()
    } else if let Some(status) = rule.status {
        injected(rule, status)
    } else {
        return None;
    };
    response.extensions_mut().insert(AppliedFault {
        rule: rule.id,
        dropped: rule.drop_connection,
    });
    Some(response)
}

fn injected(rule: &Fault, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = ApiError::new(status, format!("Injected fault {}", rule.id)).into_response();
    if let Some(secs) = rule.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

/// A response whose body fails at once: the server closes the connection without a
/// complete answer, as a crashed server or a cut network would.
fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<bytes::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected fault: connection dropped",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn paths_match_exactly_or_by_segment() {
        assert!(path_matches("/api/v2/runs", "/api/v2/runs"));
        assert!(path_matches("/api/v2/runs/*", "/api/v2/runs/abc"));
        assert!(!path_matches("/api/v2/runs/*", "/api/v2/runs"));
        assert!(!path_matches("/api/v2/runs", "/api/v2/runs/abc"));
        assert!(path_matches("/api/*/runs", "/api/v1/runs"));
        assert!(!path_matches("/api/v2/run", "/api/v2/runs"));
    }
}
