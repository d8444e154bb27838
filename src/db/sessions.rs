//! Dashboard sessions. The browser holds a random token; the table holds its SHA-256
//! digest, the organization, and the user API key that signed in. A session is live
//! while it has not expired and its key is live (not revoked, user not banned): revoking
//! the key ends every session it opened.

use sqlx::FromRow;

use super::{Db, Id, Sql, Ts};
use crate::db::error::DbResult;

/// Who a live session belongs to.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: Id,
    pub org_id: Id,
    pub api_key_id: Id,
    pub user_id: Id,
    pub user_email: String,
    pub user_name: Option<String>,
    pub org_name: String,
}

impl Db {
    /// Stores a session for the user key `api_key_id`; `token_digest` is the hex SHA-256
    /// of the cookie token. Expired sessions are deleted on the way.
    pub async fn create_session(
        &self,
        org_id: Id,
        api_key_id: Id,
        user_id: Id,
        token_digest: &str,
        expires_at: Ts,
    ) -> DbResult<Id> {
        let id = Id::new();
        let now = Ts::now();
        let mut tx = self.begin().await?;
        tx.execute(Sql::new("DELETE FROM web_sessions WHERE expires_at < $1").bind(now))
            .await?;
        tx.execute(
            Sql::new(
                "INSERT INTO web_sessions
                    (id, token_hash, org_id, api_key_id, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(token_digest)
            .bind(org_id)
            .bind(api_key_id)
            .bind(user_id)
            .bind(now)
            .bind(expires_at),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The live session with this token digest: not expired, its key not revoked, its
    /// user not banned.
    pub async fn find_session(&self, token_digest: &str) -> DbResult<Option<SessionRow>> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT s.id, s.org_id, s.api_key_id, s.user_id,
                            u.email AS user_email, u.name AS user_name, o.name AS org_name
                     FROM web_sessions s
                     JOIN api_keys k ON k.id = s.api_key_id
                     JOIN users u ON u.id = s.user_id
                     JOIN organizations o ON o.id = s.org_id
                     WHERE s.token_hash = $1 AND s.expires_at > $2
                       AND k.revoked_at IS NULL AND u.banned = FALSE",
                )
                .bind(token_digest)
                .bind(Ts::now()),
            )
            .await
    }

    /// Ends the session with this token digest (signing out). Unknown tokens are fine.
    pub async fn delete_session(&self, token_digest: &str) -> DbResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(Sql::new("DELETE FROM web_sessions WHERE token_hash = $1").bind(token_digest))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes the API key with this digest (and so every session it opened). Returns
    /// whether a live key was revoked.
    pub async fn revoke_api_key(&self, key_digest: &str) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE api_keys SET revoked_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL",
                )
                .bind(Ts::now())
                .bind(key_digest),
            )
            .await?;
        tx.execute(
            Sql::new(
                "DELETE FROM web_sessions WHERE api_key_id IN
                    (SELECT id FROM api_keys WHERE key_hash = $1)",
            )
            .bind(key_digest),
        )
        .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}
