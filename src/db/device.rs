//! The device login of `tofupilot login` (RFC 8628, spec/CLI.md §3.1–3.4).
//!
//! `POST /api/auth/device/code` creates a row with a secret device code (stored as its
//! digest) and a short user code. An administrator approves the user code for a user's
//! email (`tofulab keys approve-device`, later a dashboard page), or the server approves
//! it itself (`--auto-approve-devices`, single-user installs). The next poll then gets a
//! short-lived access token (stored as its digest, issued once), which lists the
//! organizations where a user with that email exists and mints one user key in the
//! chosen one, after which it is spent.

use sqlx::FromRow;

use super::cli::{insert_login_key, secret, ts_in};
use super::identity::OrgRow;
use super::{ci_key, retry_write, Db, Id, Sql, Ts};
use crate::apikey;
use crate::db::error::DbResult;

/// A device code is valid for this long.
pub const DEVICE_CODE_TTL_SECS: i64 = 900;
/// The polling interval first announced; `slow_down` adds 5 s each time.
pub const POLL_INTERVAL_SECS: i64 = 5;
/// An issued access token is valid for this long, and for one key.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 600;

/// Consonants only: no vowels (no words), no 0/O or 1/I confusion, URL-safe.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    pub device_code: String,
    /// Eight characters, shown by the CLI as `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The answer to one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// Approved: the access token (shown once).
    Token(String),
    Pending,
    SlowDown,
    Expired,
    Denied,
    /// Unknown device code, or its token was already issued.
    Invalid,
}

/// Why a user code cannot be approved or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideRefusal {
    Unknown,
    Expired,
    AlreadyDecided,
    NoSuchUser,
}

impl DecideRefusal {
    pub fn message(self) -> &'static str {
        match self {
            DecideRefusal::Unknown => "no pending login has this code",
            DecideRefusal::Expired => "this login code has expired: run `tofupilot login` again",
            DecideRefusal::AlreadyDecided => "this login code was already approved or denied",
            DecideRefusal::NoSuchUser => "no user has this email",
        }
    }
}

#[derive(FromRow)]
struct PollRow {
    id: Id,
    expires_at: Ts,
    interval_secs: i64,
    last_polled_at: Option<Ts>,
    approved_email_key: Option<String>,
    denied: bool,
    access_token_hash: Option<String>,
}

/// `ABCD-EFGH`, `abcdefgh`, ` abcd efgh ` → `ABCDEFGH`.
pub fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn user_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())]))
        .collect()
}

impl Db {
    /// Starts a device login that expires at `expires_at`.
    pub async fn create_device_code(&self, expires_at: Ts) -> DbResult<NewDeviceCode> {
        let device_code = secret("tp_device_");
        let digest = apikey::digest(&device_code);
        let user_code = retry_write(|| async {
            let code = user_code();
            let mut tx = self.begin().await?;
            // Requests nobody finished are forgotten a day after they expired.
            tx.execute(
                Sql::new("DELETE FROM device_codes WHERE expires_at < $1").bind(ts_in(-86400)),
            )
            .await?;
            tx.execute(
                Sql::new(
                    "INSERT INTO device_codes (id, device_code_hash, user_code, created_at,
                         expires_at, interval_secs)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(Id::new())
                .bind(&digest)
                .bind(&code)
                .bind(Ts::now())
                .bind(expires_at)
                .bind(POLL_INTERVAL_SECS),
            )
            .await?;
            tx.commit().await?;
            Ok(code)
        })
        .await?;
        Ok(NewDeviceCode {
            device_code,
            user_code,
            expires_in: (expires_at.0 - Ts::now().0).num_seconds().max(0),
            interval: POLL_INTERVAL_SECS,
        })
    }

    /// One poll of `POST /api/auth/device/token`. With `auto_approve`, an undecided code
    /// is approved for the only user email of the database (if there is exactly one).
    pub async fn poll_device_code(
        &self,
        device_code: &str,
        auto_approve: bool,
    ) -> DbResult<DevicePoll> {
        let digest = apikey::digest(device_code);
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let row: Option<PollRow> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT id, expires_at, interval_secs, last_polled_at,
                                approved_email_key, denied, access_token_hash
                         FROM device_codes WHERE device_code_hash = $1",
                    )
                    .bind(&digest),
                )
                .await?;
            let Some(row) = row else {
                return Ok(DevicePoll::Invalid);
            };
            let now = Ts::now();
            if row.access_token_hash.is_some() {
                return Ok(DevicePoll::Invalid);
            }
            if row.denied {
                return Ok(DevicePoll::Denied);
            }
            if row.expires_at <= now {
                return Ok(DevicePoll::Expired);
            }
            let mut approved = row.approved_email_key.is_some();
            if !approved && auto_approve {
                let emails: Vec<(String,)> = tx
                    .fetch_all(Sql::new(
                        "SELECT DISTINCT email_key FROM users WHERE banned = FALSE LIMIT 2",
                    ))
                    .await?;
                if let [(only,)] = emails.as_slice() {
                    tx.execute(
                        Sql::new(
                            "UPDATE device_codes SET approved_email_key = $1, decided_at = $2
                             WHERE id = $3",
                        )
                        .bind(only)
                        .bind(now)
                        .bind(row.id),
                    )
                    .await?;
                    approved = true;
                } else {
                    tracing::warn!(
                        "--auto-approve-devices needs exactly one user; approve this login \
                         with `tofulab keys approve-device`"
                    );
                }
            }
            let answer = if approved {
                let token = secret("tp_access_");
                tx.execute(
                    Sql::new(
                        "UPDATE device_codes SET access_token_hash = $1, token_expires_at = $2
                         WHERE id = $3",
                    )
                    .bind(apikey::digest(&token))
                    .bind(ts_in(ACCESS_TOKEN_TTL_SECS))
                    .bind(row.id),
                )
                .await?;
                DevicePoll::Token(token)
            } else {
                let too_soon = row
                    .last_polled_at
                    .is_some_and(|last| (now.0 - last.0).num_seconds() < row.interval_secs);
                let interval = row.interval_secs + if too_soon { 5 } else { 0 };
                tx.execute(
                    Sql::new(
                        "UPDATE device_codes SET last_polled_at = $1, interval_secs = $2
                         WHERE id = $3",
                    )
                    .bind(now)
                    .bind(interval)
                    .bind(row.id),
                )
                .await?;
                if too_soon {
                    DevicePoll::SlowDown
                } else {
                    DevicePoll::Pending
                }
            };
            tx.commit().await?;
            Ok(answer)
        })
        .await
    }

    /// Approves a pending user code for the users with `email` (`Some`), or denies it.
    pub async fn decide_device_code(
        &self,
        user_code: &str,
        email: Option<&str>,
    ) -> DbResult<Result<(), DecideRefusal>> {
        let code = normalize_user_code(user_code);
        let email_key = email.map(|e| ci_key(e.trim()));
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let row: Option<(Id, Ts, Option<Ts>)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT id, expires_at, decided_at FROM device_codes WHERE user_code = $1",
                    )
                    .bind(&code),
                )
                .await?;
            let Some((id, expires_at, decided_at)) = row else {
                return Ok(Err(DecideRefusal::Unknown));
            };
            if decided_at.is_some() {
                return Ok(Err(DecideRefusal::AlreadyDecided));
            }
            if expires_at <= Ts::now() {
                return Ok(Err(DecideRefusal::Expired));
            }
            if let Some(key) = &email_key {
                let user: Option<(Id,)> = tx
                    .fetch_optional(
                        Sql::new(
                            "SELECT id FROM users WHERE email_key = $1 AND banned = FALSE LIMIT 1",
                        )
                        .bind(key),
                    )
                    .await?;
                if user.is_none() {
                    return Ok(Err(DecideRefusal::NoSuchUser));
                }
            }
            tx.execute(
                Sql::new(
                    "UPDATE device_codes SET approved_email_key = $1, denied = $2, decided_at = $3
                     WHERE id = $4",
                )
                .bind(email_key.clone())
                .bind(email_key.is_none())
                .bind(Ts::now())
                .bind(id),
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
        .await
    }

    /// The email (key) behind a live, unspent access token.
    pub async fn access_token_email(&self, token: &str) -> DbResult<Option<String>> {
        let row: Option<(String, Ts)> = self
            .read()
            .fetch_optional(
                Sql::new(
                    "SELECT approved_email_key, token_expires_at FROM device_codes
                     WHERE access_token_hash = $1 AND token_used_at IS NULL
                       AND approved_email_key IS NOT NULL",
                )
                .bind(apikey::digest(token)),
            )
            .await?;
        Ok(row
            .filter(|(_, exp)| *exp > Ts::now())
            .map(|(email, _)| email))
    }

    /// The organizations where a user with this email (key) exists and is not banned,
    /// oldest first.
    pub async fn organizations_of_email(&self, email_key: &str) -> DbResult<Vec<OrgRow>> {
        self.read()
            .fetch_all(
                Sql::new(
                    "SELECT o.id, o.name, o.slug FROM organizations o
                     JOIN users u ON u.org_id = o.id
                     WHERE u.email_key = $1 AND u.banned = FALSE
                     ORDER BY o.created_at, o.id",
                )
                .bind(email_key),
            )
            .await
    }

    /// Spends an access token on a user key in `org_id`. `None` when the token is not
    /// (or no longer) valid or the organization has no such user.
    pub async fn device_login(
        &self,
        token: &str,
        org_id: Id,
    ) -> DbResult<Option<(String, OrgRow)>> {
        let digest = apikey::digest(token);
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let row: Option<(Id, String, Ts)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT id, approved_email_key, token_expires_at FROM device_codes
                         WHERE access_token_hash = $1 AND token_used_at IS NULL
                           AND approved_email_key IS NOT NULL",
                    )
                    .bind(&digest),
                )
                .await?;
            let Some((code_id, email_key, expires)) = row else {
                return Ok(None);
            };
            if expires <= Ts::now() {
                return Ok(None);
            }
            let user: Option<(Id, String, String)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT u.id, o.name, o.slug FROM users u
                         JOIN organizations o ON o.id = u.org_id
                         WHERE u.org_id = $1 AND u.email_key = $2 AND u.banned = FALSE",
                    )
                    .bind(org_id)
                    .bind(&email_key),
                )
                .await?;
            let Some((user_id, name, slug)) = user else {
                return Ok(None);
            };
            let spent = tx
                .execute(
                    Sql::new(
                        "UPDATE device_codes SET token_used_at = $1
                         WHERE id = $2 AND token_used_at IS NULL",
                    )
                    .bind(Ts::now())
                    .bind(code_id),
                )
                .await?;
            if spent == 0 {
                return Ok(None);
            }
            let key = insert_login_key(&mut tx, org_id, user_id).await?;
            tx.commit().await?;
            Ok(Some((
                key,
                OrgRow {
                    id: org_id,
                    name,
                    slug,
                },
            )))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_codes_normalize() {
        assert_eq!(super::normalize_user_code(" bcdf-ghjk "), "BCDFGHJK");
        let code = super::user_code();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| super::USER_CODE_ALPHABET.contains(&b)));
    }
}
