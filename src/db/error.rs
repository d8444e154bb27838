//! What storage reports when it cannot do what was asked. Plain facts about the data — a
//! row that is missing, a key that is taken, a rule the data would break — with no status
//! codes: `crate::error` maps each variant to the response envelope in one place.
//!
//! Database errors are classified once, where sqlx hands them over (`From<sqlx::Error>`),
//! so retry loops and unique/foreign-key handling match on a variant instead of digging
//! a sqlx error out of a boxed source.

use std::fmt;

use crate::fields::FieldPath;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a storage call.
pub type DbResult<T> = std::result::Result<T, StoreError>;

#[derive(Debug)]
pub enum StoreError {
    /// Something the caller named does not exist in its organization. The text names it
    /// ("Run not found", "Unit SN-1 not found").
    NotFound(String),
    /// A unique key is already taken, or the row is still referenced. `key` is the
    /// conflicting natural key when there is one.
    Conflict {
        message: String,
        key: Option<String>,
    },
    /// The request asks for something the data's rules forbid (a unit as its own child, a
    /// new unit without a part number). `field` names the request field when one is at
    /// fault.
    Rejected {
        field: Option<FieldPath>,
        message: String,
    },
    /// The caller may not touch this row (a station and a procedure it is not linked to).
    NotAllowed(String),
    /// A run would end before it starts (the run timing rule).
    EndsBeforeStart,
    /// A streamed body went past its limit.
    TooLarge { limit: u64 },
    /// The database refused a write because a unique index already holds the key. Kept
    /// apart from `Conflict` so callers can turn it into their own wording or retry.
    UniqueViolation(sqlx::Error),
    /// A referenced row vanished under the transaction (a concurrent delete).
    ForeignKeyViolation(sqlx::Error),
    /// A transient conflict (Postgres deadlock, serialization failure or lock timeout,
    /// SQLite busy or locked): the whole transaction may be retried.
    Retryable(sqlx::Error),
    /// The database cannot answer right now (pool exhausted or closed at shutdown,
    /// connection lost, too many connections, server shutting down or starting), or a
    /// write kept losing a race: the request may be sent again later.
    Unavailable(BoxError),
    /// Anything else: a bug or an unreachable database. Logged, never shown.
    Other(BoxError),
}

impl StoreError {
    pub fn not_found(message: impl Into<String>) -> Self {
        StoreError::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        StoreError::Conflict {
            message: message.into(),
            key: None,
        }
    }

    /// A unique natural key (`key`) already taken.
    pub fn taken(key: impl Into<String>, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            message: message.into(),
            key: Some(key.into()),
        }
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        StoreError::Rejected {
            field: None,
            message: message.into(),
        }
    }

    pub fn rejected_at(field: impl Into<FieldPath>, message: impl Into<String>) -> Self {
        StoreError::Rejected {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn other(e: impl Into<BoxError>) -> Self {
        StoreError::Other(e.into())
    }

    /// True when the data asked for is at fault (something it names is missing, it
    /// breaks a rule, the caller may not use it, it is too large): the same request
    /// will fail again, other requests are unaffected.
    pub fn is_fault_of_the_input(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound(_)
                | StoreError::Rejected { .. }
                | StoreError::NotAllowed(_)
                | StoreError::TooLarge { .. }
        )
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Retryable(_))
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::UniqueViolation(_))
    }

    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, StoreError::ForeignKeyViolation(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound(m) | StoreError::NotAllowed(m) => f.write_str(m),
            StoreError::Conflict { message, .. } | StoreError::Rejected { message, .. } => {
                f.write_str(message)
            }
            StoreError::EndsBeforeStart => f.write_str("ended_at must not be before started_at"),
            StoreError::TooLarge { limit } => write!(f, "larger than the limit of {limit} bytes"),
            StoreError::UniqueViolation(e)
            | StoreError::ForeignKeyViolation(e)
            | StoreError::Retryable(e) => write!(f, "{e}"),
            StoreError::Unavailable(e) | StoreError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let db = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                return StoreError::Unavailable(e.into())
            }
            sqlx::Error::Database(db) => db,
            _ => return StoreError::Other(e.into()),
        };
        let code = db.code();
        let code = code.as_deref().unwrap_or("");
        if matches!(
            code,
            // SQLite: BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT. Postgres:
            // serialization failure, deadlock, lock not available.
            "5" | "6" | "261" | "517" | "773" | "40001" | "40P01" | "55P03"
        ) {
            StoreError::Retryable(e)
        } else if matches!(code, "53300" | "57P01" | "57P02" | "57P03") || code.starts_with("08") {
            // Postgres: too many connections, shutting down, cannot connect now, and the
            // connection exceptions.
            StoreError::Unavailable(e.into())
        } else if db.is_unique_violation() {
            StoreError::UniqueViolation(e)
        } else if db.is_foreign_key_violation() {
            StoreError::ForeignKeyViolation(e)
        } else {
            StoreError::Other(e.into())
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(e.into())
    }
}

/// How many attempts a write transaction gets when the database reports a transient
/// conflict.
pub const WRITE_ATTEMPTS: usize = 5;

/// Runs `attempt` (one whole write transaction) until it succeeds, fails for good, or has
/// had `WRITE_ATTEMPTS` tries; `again` says which failures are worth another try. Every
/// write that retries goes through here, so the attempt count and the classification
/// live in one place.
pub async fn retry<T, F, Fut>(again: impl Fn(&StoreError) -> bool, mut attempt: F) -> DbResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DbResult<T>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < WRITE_ATTEMPTS && again(&e) => n += 1,
            result => return result,
        }
    }
}

/// Retries transient conflicts only: Postgres aborts one of two deadlocked transactions
/// (e.g. a delete cascading through rows a concurrent run create is locking) and expects
/// a retry.
pub async fn retry_write<T, F, Fut>(attempt: F) -> DbResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DbResult<T>>,
{
    retry(StoreError::is_retryable, attempt).await
}
