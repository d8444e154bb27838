//! The one error type. Every non-2xx v2 response leaves as
//! `{"message", "code", "issues"?}` JSON with the status and code of BEHAVIOR.md §13.3.
//! 5xx bodies carry a fixed message; the cause goes to the log only.
//!
//! ## Status discipline (BEHAVIOR: the TofuPilot CLI's offline queue, CLI.md §4.3)
//!
//! The CLI parks a queued run forever on any 4xx and retries on 429 and 5xx (and, for
//! the attachment steps, only when the message says `temporarily`, `timeout`,
//! `connection`, …). So on every path the queue uses — `POST /v2/runs`,
//! `POST /v2/runs/{id}/attachments`, the upload `PUT`, `POST /v2/attachments/{id}/finalize`
//! and the key check in front of them:
//! - a 4xx only when sending the same request again can never succeed (bad body, unknown
//!   or unlinked id, revoked key, expired or forged signature, too large);
//! - 503 + `Retry-After` when it can: the database busy, unreachable or shutting down
//!   (`From<sqlx::Error>` sorts with `is_transient`); 429 + `Retry-After` over the rate
//!   limit; both say "temporarily";
//! - 500 for bugs, plus the timing rule of BEHAVIOR.md §1.1 (a deliberate 500 that the
//!   CLI retries: BEHAVIOR.md wins, the run stays queued with backoff).
//!
//! A server shutting down stops accepting connections and finishes in-flight requests:
//! clients see a connection error, which the CLI retries.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::StoreError;
pub use crate::fields::{FieldPath, PathSegment};

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub message: &'a str,
    /// The status's name: `BAD_REQUEST`, `NOT_FOUND`, …
    pub code: &'a str,
    #[serde(skip_serializing_if = "<[Issue]>::is_empty")]
    #[schema(required = false)]
    pub issues: &'a [Issue],
}

/// One problem with the request, pointing at the offending field.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Issue {
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathSegment>,
}

impl Issue {
    pub fn new(message: impl Into<String>) -> Self {
        Issue {
            message: message.into(),
            path: Vec::new(),
        }
    }

    pub fn at(message: impl Into<String>, field: &str) -> Self {
        Issue {
            message: message.into(),
            path: vec![PathSegment::Key(field.to_string())],
        }
    }
}

/// The message every validation failure carries (clients search it for "validation").
pub const VALIDATION_FAILED: &str = "Input validation failed";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub issues: Vec<Issue>,
    /// Extra response headers (Retry-After on 429).
    pub retry_after_secs: Option<u64>,
    /// The underlying cause of a 5xx, logged and never sent.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            issues: Vec::new(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 `Input validation failed` with one issue per fault.
    pub fn validation(mut issues: Vec<Issue>) -> Self {
        issues.sort_by(|a, b| a.path.cmp(&b.path));
        let mut e = Self::bad_request(VALIDATION_FAILED);
        e.issues = issues;
        e
    }

    /// 400 `Input validation failed` with a single issue on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![Issue::at(message, field)])
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the limit of {limit} bytes"),
        )
    }

    /// BEHAVIOR (status discipline): 429 with `Retry-After`. The message says
    /// "temporarily": the TofuPilot CLI sorts attachment-step failures by the words of
    /// the message and retries only on words such as `temporarily` or `timeout`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests: temporarily rate limited, retry later",
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// BEHAVIOR (status discipline): 503 with `Retry-After` for a database that is busy,
    /// unreachable or shutting down: retrying will help, so the answer must not be a 4xx
    /// (the CLI's offline queue parks a run forever on any 4xx) and says "temporarily"
    /// (see `too_many_requests`). The cause is logged, never sent.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, retry later",
        );
        e.retry_after_secs = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        e.source = Some(source.into());
        e
    }

    /// A 500 whose cause is logged but never shown to the client.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        e.source = Some(source.into());
        e
    }

    /// The tRPC-style code name for a status (BEHAVIOR.md §13.3).
    pub fn code_for(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 => "BAD_REQUEST",
            401 => "UNAUTHORIZED",
            403 => "FORBIDDEN",
            404 => "NOT_FOUND",
            405 => "METHOD_NOT_SUPPORTED",
            408 => "TIMEOUT",
            409 => "CONFLICT",
            413 => "PAYLOAD_TOO_LARGE",
            415 => "UNSUPPORTED_MEDIA_TYPE",
            416 => "RANGE_NOT_SATISFIABLE",
            422 => "UNPROCESSABLE_CONTENT",
            429 => "TOO_MANY_REQUESTS",
            502 => "BAD_GATEWAY",
            503 => "SERVICE_UNAVAILABLE",
            s if s >= 500 => "INTERNAL_SERVER_ERROR",
            _ => "BAD_REQUEST",
        }
    }

    pub fn code(&self) -> &'static str {
        Self::code_for(self.status)
    }

    pub fn body(&self) -> serde_json::Value {
        let body = ErrorBody {
            message: &self.message,
            code: self.code(),
            issues: &self.issues,
        };
        serde_json::to_value(body).unwrap_or_default()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// `Retry-After` of a 503 for a busy or unreachable database.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// The one place where storage outcomes become statuses and envelopes.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(message) => ApiError::not_found(message),
            StoreError::Conflict { message, .. } => ApiError::conflict(message),
            StoreError::Rejected {
                field: Some(field),
                message,
            } => ApiError::validation(vec![Issue {
                message,
                path: field.0,
            }]),
            StoreError::Rejected {
                field: None,
                message,
            } => ApiError::bad_request(message),
            StoreError::NotAllowed(message) => ApiError::forbidden(message),
            // COMPAT: 500, not 400: the older Python client only accepts a generic error
            // or a 500 here (BEHAVIOR.md §1.1 timing rule, §24).
            e @ StoreError::EndsBeforeStart => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            StoreError::TooLarge { limit } => ApiError::payload_too_large(limit),
            // Still conflicting after every retry, or the database cannot answer right
            // now: the client may try again later (status discipline above).
            StoreError::Retryable(cause) => ApiError::unavailable(cause),
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            e @ (StoreError::UniqueViolation(_)
            | StoreError::ForeignKeyViolation(_)
            | StoreError::Other(_)) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error = %self, "request failed");
        }
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_database_errors_are_503_with_retry_after() {
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let e = ApiError::from(e);
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.retry_after_secs, Some(UNAVAILABLE_RETRY_AFTER_SECS));
            assert!(e.message.contains("temporarily"));
        }
        let e = ApiError::from(sqlx::Error::RowNotFound);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.retry_after_secs, None);
        let limited = ApiError::too_many_requests(0);
        assert_eq!(limited.retry_after_secs, Some(1));
        assert!(limited.message.contains("temporarily"));
    }
}
