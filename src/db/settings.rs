//! Server-wide settings kept in the database.

use rand::RngCore;

use super::{Db, Sql};
use crate::db::error::{DbResult, StoreError};

const SIGNING_KEY: &str = "url_signing_key";

/// The secret that signs upload/download URLs: created on first use, then kept, so URLs
/// handed out before a restart stay valid until they expire.
pub async fn signing_secret(db: &Db) -> DbResult<Vec<u8>> {
    let mut fresh = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let mut tx = db.begin().await?;
    tx.execute(
        Sql::new("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(SIGNING_KEY)
            .bind(hex::encode(&fresh)),
    )
    .await?;
    let (value,): (String,) = tx
        .fetch_one(Sql::new("SELECT value FROM settings WHERE key = $1").bind(SIGNING_KEY))
        .await?;
    tx.commit().await?;
    hex::decode(value).map_err(StoreError::other)
}

impl Db {
    /// Every server-wide setting, for copying a database (`migrate-data`).
    pub async fn settings(&self) -> DbResult<Vec<(String, String)>> {
        self.read()
            .fetch_all(Sql::new("SELECT key, value FROM settings ORDER BY key"))
            .await
    }

    /// Writes settings, replacing those with the same key.
    pub async fn put_settings(&self, rows: &[(String, String)]) -> DbResult<()> {
        let mut tx = self.begin().await?;
        for (key, value) in rows {
            tx.execute(
                Sql::new(
                    "INSERT INTO settings (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value),
            )
            .await?;
        }
        tx.commit().await
    }
}
