//! The request journal: the last N requests to `/api`, so a test can check afterwards
//! what a client actually sent. Bounded: at most `journal_size` entries, each keeping a
//! JSON request body of at most 64 KiB, with secrets redacted.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::faults::AppliedFault;
use crate::caller::{Caller, Principal};
use crate::db::{Id, Ts};
use crate::error::ApiError;
use crate::AppState;

/// Largest request body the journal keeps.
pub const MAX_KEPT_BODY: usize = 64 * 1024;

/// Body fields whose values are never kept, wherever they are.
const SECRET_FIELDS: [&str; 4] = ["api_key", "token", "password", "access_token"];

/// Who sent a request.
#[derive(Debug, Clone, Serialize)]
pub struct JournalCaller {
    pub kind: &'static str,
    pub id: Id,
}

/// One request as the journal keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub at: Ts,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `None` when the connection was dropped (a fault) before any status was sent.
    pub status: Option<u16>,
    pub duration_ms: f64,
    pub organization_id: Option<Id>,
    pub caller: Option<JournalCaller>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Value>,
    /// The fault rule that answered instead of the handler or replaced its answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_id: Option<Id>,
}

/// What `GET /_tofulab/requests` filters on.
#[derive(Debug, Default)]
pub struct JournalFilter {
    pub organization_id: Option<Id>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub limit: Option<usize>,
}

/// The journal of one server.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    entries: Mutex<VecDeque<JournalEntry>>,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Journal {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
        }
    }

    fn push(&self, entry: JournalEntry) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        while entries.len() >= self.capacity {
            entries.pop_back();
        }
        entries.push_front(entry);
    }

    /// Matching entries, newest first.
    pub fn list(&self, f: &JournalFilter) -> Vec<JournalEntry> {
        self.lock()
            .iter()
            .filter(|e| {
                f.organization_id
                    .is_none_or(|o| e.organization_id == Some(o))
            })
            .filter(|e| {
                f.method
                    .as_deref()
                    .is_none_or(|m| e.method.eq_ignore_ascii_case(m))
            })
            .filter(|e| f.path.as_deref().is_none_or(|p| e.path == p))
            .filter(|e| f.status.is_none_or(|s| e.status == Some(s)))
            .take(f.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<JournalEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Middleware around everything under `/api`: records each request once answered.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.settings.control.is_none() {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at = Ts::now();
    let method = req.method().to_string();
    let uri = super::original_uri(&req);
    let path = uri.path().to_string();
    let query = uri.query().map(redact_query);
    let (req, request_body) = match kept_body(req).await {
        Ok(kept) => kept,
        Err(response) => return response,
    };
    let response = next.run(req).await;
    let caller = response.extensions().get::<Caller>();
    let fault = response.extensions().get::<AppliedFault>();
    state.journal.push(JournalEntry {
        at,
        method,
        path,
        query,
        status: (!fault.is_some_and(|f| f.dropped)).then(|| response.status().as_u16()),
        duration_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1000.0,
        organization_id: caller.map(|c| c.org_id),
        caller: caller.map(|c| match c.principal {
            Principal::User(id) => JournalCaller { kind: "user", id },
            Principal::Station(id) => JournalCaller {
                kind: "station",
                id,
            },
        }),
        request_body,
        fault_id: fault.map(|f| f.rule),
    });
    response
}

/// Reads a JSON body of at most `MAX_KEPT_BODY` bytes (by its `Content-Length`) and puts
/// it back for the handler; other bodies stream through untouched.
async fn kept_body(req: Request) -> Result<(Request, Option<Value>), Response> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let small = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= MAX_KEPT_BODY);
    if !is_json || !small {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_KEPT_BODY)
        .await
        .map_err(|_| ApiError::bad_request("The request body could not be read").into_response())?;
    let kept = serde_json::from_slice::<Value>(&bytes).ok().map(redact);
    Ok((Request::from_parts(parts, Body::from(bytes)), kept))
}

/// The value with every secret replaced: the fields of `SECRET_FIELDS`, and every
/// `value` under `secrets` (the references a run carries keep their keys).
fn redact(value: Value) -> Value {
    redact_within(value, false)
}

fn redact_within(value: Value, in_secrets: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let secret =
                        SECRET_FIELDS.contains(&k.as_str()) || (in_secrets && k == "value");
                    let v = if secret {
                        Value::String("<redacted>".into())
                    } else {
                        redact_within(v, in_secrets || k == "secrets")
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| redact_within(v, in_secrets))
                .collect(),
        ),
        other => other,
    }
}

/// The query string with the values of signatures and tokens replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("sig") || name.contains("token") || name.contains("key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = redact(json!({"a": 1, "value": 3,
                              "secrets": [{"key": "PW", "value": "hunter2"}],
                              "list": [{"api_key": "k", "b": 2}]}));
        assert_eq!(
            v,
            json!({"a": 1, "value": 3,
                   "secrets": [{"key": "PW", "value": "<redacted>"}],
                   "list": [{"api_key": "<redacted>", "b": 2}]})
        );
        assert_eq!(
            redact_query("ids=1&signature=abc&x=2"),
            "ids=1&signature=<redacted>&x=2"
        );
    }

    #[test]
    fn the_journal_keeps_the_newest_entries_only() {
        let j = Journal::new(2);
        for n in 0..5u16 {
            j.push(JournalEntry {
                at: Ts::now(),
                method: "GET".into(),
                path: format!("/{n}"),
                query: None,
                status: Some(200 + n),
                duration_ms: 0.0,
                organization_id: None,
                caller: None,
                request_body: None,
                fault_id: None,
            });
        }
        let paths: Vec<_> = j
            .list(&JournalFilter::default())
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, vec!["/4", "/3"]);
    }
}
