//! Stations and developers on the TofuPilot CLI (spec/CLI.md): setup tokens and the
//! installations they create, per-organization CLI settings. The device login flow is in
//! `db::device`.
//!
//! A setup token is single use, expires (one hour by default), is bound to one station
//! and is stored only as its SHA-256 digest. Redeeming it, in one transaction: marks it
//! used, ends the station's active installation (status `replaced`, its key revoked),
//! mints a station key (`source = 'cli_installation'`) and records the new installation.
//! Keys from a seed file or `tofulab keys create` are not installations and are never
//! touched by any of this.

use sqlx::FromRow;

use super::{retry_write, Db, Id, Sql, Ts, Tx};
use crate::apikey;
use crate::db::error::DbResult;

/// Where a key came from (`api_keys.source`).
pub const SOURCE_INSTALLATION: &str = "cli_installation";
pub const SOURCE_LOGIN: &str = "cli_login";

/// Setup tokens live this long unless the caller says otherwise.
pub const SETUP_TOKEN_TTL_SECS: i64 = 3600;

/// A freshly minted setup token (shown once).
#[derive(Debug, Clone)]
pub struct NewSetupToken {
    pub token: String,
    pub station_id: Id,
    pub station_name: String,
    pub organization_slug: String,
    pub expires_at: Ts,
}

/// What the CLI reports about the machine it is installed on.
#[derive(Debug, Clone, Default)]
pub struct Hardware {
    pub hostname: String,
    pub os: Option<String>,
    pub platform: Option<String>,
    pub mac_address: Option<String>,
    pub cli_version: Option<String>,
}

/// The result of redeeming a setup token.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub api_key: String,
    pub organization_slug: String,
    pub installation_id: Id,
    pub replaced_installations: i64,
}

/// Why a setup token cannot be redeemed. The words matter: the CLI searches the message
/// for `invalid`/`already`/`consumed` (→ "tokens are single use") and then `expire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemRefusal {
    Unknown,
    AlreadyUsed,
    Expired,
}

impl RedeemRefusal {
    pub fn message(self) -> &'static str {
        match self {
            RedeemRefusal::Unknown => {
                "Invalid setup token: this server does not know it (or its station was removed)"
            }
            RedeemRefusal::AlreadyUsed => "This setup token was already used",
            RedeemRefusal::Expired => {
                "This setup token has expired: setup tokens are valid for one hour"
            }
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct InstallationRow {
    pub id: Id,
    pub station_id: Id,
    pub hostname: String,
    pub os: Option<String>,
    pub platform: Option<String>,
    pub mac_address: Option<String>,
    pub cli_version: Option<String>,
    pub status: String,
    pub created_at: Ts,
    pub ended_at: Option<Ts>,
    pub replaced_by: Option<Id>,
}

const SELECT_INSTALLATION: &str = "SELECT id, station_id, hostname, os, platform, mac_address,
        cli_version, status, created_at, ended_at, replaced_by
    FROM cli_installations";

#[derive(FromRow)]
struct TokenRow {
    id: Id,
    org_id: Id,
    station_id: Id,
    expires_at: Ts,
    used_at: Option<Ts>,
    station_live: bool,
}

/// `now + secs` (negative for the past).
pub fn ts_in(secs: i64) -> Ts {
    Ts::from(Ts::now().0 + chrono::Duration::seconds(secs))
}

/// A random secret with a visible prefix: `tp_setup_…` followed by 32 alphanumerics.
pub fn secret(prefix: &str) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

impl Db {
    /// Mints a setup token for a live station (of `org_id` when given) expiring at
    /// `expires_at`. `None` when there is no such station.
    pub async fn create_setup_token(
        &self,
        org_id: Option<Id>,
        station_id: Id,
        expires_at: Ts,
    ) -> DbResult<Option<NewSetupToken>> {
        let mut tx = self.begin().await?;
        let station: Option<(Id, String, String)> = tx
            .fetch_optional(
                Sql::new(
                    "SELECT s.org_id, s.name, o.slug FROM stations s
                     JOIN organizations o ON o.id = s.org_id
                     WHERE s.id = $1 AND s.archived_at IS NULL",
                )
                .bind(station_id),
            )
            .await?;
        let Some((station_org, station_name, organization_slug)) = station else {
            return Ok(None);
        };
        if org_id.is_some_and(|o| o != station_org) {
            return Ok(None);
        }
        let token = secret("tp_setup_");
        tx.execute(
            Sql::new(
                "INSERT INTO setup_tokens (id, org_id, station_id, token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(Id::new())
            .bind(station_org)
            .bind(station_id)
            .bind(apikey::digest(&token))
            .bind(Ts::now())
            .bind(expires_at),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(NewSetupToken {
            token,
            station_id,
            station_name,
            organization_slug,
            expires_at,
        }))
    }

    /// Redeems a setup token: see the module documentation.
    pub async fn redeem_setup_token(
        &self,
        token: &str,
        hardware: &Hardware,
    ) -> DbResult<Result<Redeemed, RedeemRefusal>> {
        let digest = apikey::digest(token);
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let outcome = redeem(&mut tx, &digest, hardware).await?;
            if outcome.is_ok() {
                tx.commit().await?;
            }
            Ok(outcome)
        })
        .await
    }

    /// The installations of a live station of the organization, newest first.
    pub async fn station_installations(
        &self,
        org_id: Id,
        station_id: Id,
    ) -> DbResult<Vec<InstallationRow>> {
        self.station_name(org_id, station_id).await?;
        self.read()
            .fetch_all(
                Sql::new(SELECT_INSTALLATION)
                    .then(
                        " WHERE org_id = $1 AND station_id = $2
                     ORDER BY created_at DESC, id DESC",
                    )
                    .bind(org_id)
                    .bind(station_id),
            )
            .await
    }

    /// The installation created together with this key, if any.
    pub async fn installation_of_key(&self, key_id: Id) -> DbResult<Option<InstallationRow>> {
        self.read()
            .fetch_optional(
                Sql::new(SELECT_INSTALLATION)
                    .then(" WHERE api_key_id = $1")
                    .bind(key_id),
            )
            .await
    }

    /// `tofupilot logout` / `uninstall` with this key: a key minted by a CLI flow is
    /// revoked and its installation (if any) ends as `logged_out` or `uninstalled`. Keys
    /// from admin paths are left alone. Returns whether a key was revoked.
    pub async fn cli_logout(&self, key_id: Id, uninstalled: bool) -> DbResult<bool> {
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let now = Ts::now();
            let revoked = tx
                .execute(
                    Sql::new(
                        "UPDATE api_keys SET revoked_at = $1
                         WHERE id = $2 AND source IS NOT NULL AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(key_id),
                )
                .await?;
            let status = if uninstalled {
                "uninstalled"
            } else {
                "logged_out"
            };
            tx.execute(
                Sql::new(
                    "UPDATE cli_installations SET status = $1, ended_at = $2
                     WHERE api_key_id = $3 AND status = 'active'",
                )
                .bind(status)
                .bind(now)
                .bind(key_id),
            )
            .await?;
            tx.commit().await?;
            Ok(revoked > 0)
        })
        .await
    }

    /// The CLI settings stored for the organization (defaults not included).
    pub async fn cli_settings(&self, org_id: Id) -> DbResult<Vec<(String, String)>> {
        self.read()
            .fetch_all(
                Sql::new("SELECT key, value FROM cli_settings WHERE org_id = $1 ORDER BY key")
                    .bind(org_id),
            )
            .await
    }

    /// Sets (`Some`) or clears (`None`, back to the default) CLI settings, in one
    /// transaction.
    pub async fn set_cli_settings(
        &self,
        org_id: Id,
        changes: &[(String, Option<String>)],
    ) -> DbResult<()> {
        retry_write(|| async {
            let mut tx = self.begin().await?;
            for (key, value) in changes {
                tx.execute(
                    Sql::new("DELETE FROM cli_settings WHERE org_id = $1 AND key = $2")
                        .bind(org_id)
                        .bind(key),
                )
                .await?;
                if let Some(value) = value {
                    tx.execute(
                        Sql::new(
                            "INSERT INTO cli_settings (org_id, key, value) VALUES ($1, $2, $3)",
                        )
                        .bind(org_id)
                        .bind(key)
                        .bind(value),
                    )
                    .await?;
                }
            }
            tx.commit().await
        })
        .await
    }
}

async fn redeem(
    tx: &mut Tx,
    digest: &str,
    hardware: &Hardware,
) -> DbResult<Result<Redeemed, RedeemRefusal>> {
    let row: Option<TokenRow> = tx
        .fetch_optional(
            Sql::new(
                "SELECT t.id, t.org_id, t.station_id, t.expires_at, t.used_at,
                        (s.archived_at IS NULL) AS station_live
                 FROM setup_tokens t JOIN stations s ON s.id = t.station_id
                 WHERE t.token_hash = $1",
            )
            .bind(digest),
        )
        .await?;
    let Some(row) = row else {
        return Ok(Err(RedeemRefusal::Unknown));
    };
    let now = Ts::now();
    if !row.station_live {
        return Ok(Err(RedeemRefusal::Unknown));
    }
    if row.used_at.is_some() {
        return Ok(Err(RedeemRefusal::AlreadyUsed));
    }
    if row.expires_at <= now {
        return Ok(Err(RedeemRefusal::Expired));
    }
    // Guarded by `used_at IS NULL`: of two concurrent redemptions only one changes the row.
    let marked = tx
        .execute(
            Sql::new("UPDATE setup_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(row.id),
        )
        .await?;
    if marked == 0 {
        return Ok(Err(RedeemRefusal::AlreadyUsed));
    }

    let installation_id = Id::new();
    tx.execute(
        Sql::new(
            "UPDATE api_keys SET revoked_at = $1
             WHERE revoked_at IS NULL AND id IN (
                 SELECT api_key_id FROM cli_installations
                 WHERE station_id = $2 AND status = 'active')",
        )
        .bind(now)
        .bind(row.station_id),
    )
    .await?;

    let api_key = apikey::generate(apikey::KeyKind::Station);
    let key_id = Id::new();
    tx.execute(
        Sql::new(
            "INSERT INTO api_keys (id, org_id, key_hash, prefix, station_id, created_at, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key_id)
        .bind(row.org_id)
        .bind(apikey::digest(&api_key))
        .bind(apikey::masked(&api_key))
        .bind(row.station_id)
        .bind(now)
        .bind(SOURCE_INSTALLATION),
    )
    .await?;
    tx.execute(
        Sql::new(
            "INSERT INTO cli_installations (id, org_id, station_id, api_key_id, hostname, os,
                 platform, mac_address, cli_version, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10)",
        )
        .bind(installation_id)
        .bind(row.org_id)
        .bind(row.station_id)
        .bind(key_id)
        .bind(&hardware.hostname)
        .bind(hardware.os.clone())
        .bind(hardware.platform.clone())
        .bind(hardware.mac_address.clone())
        .bind(hardware.cli_version.clone())
        .bind(now),
    )
    .await?;
    let replaced = tx
        .execute(
            Sql::new(
                "UPDATE cli_installations SET status = 'replaced', ended_at = $1, replaced_by = $2
                 WHERE station_id = $3 AND status = 'active' AND id <> $2",
            )
            .bind(now)
            .bind(installation_id)
            .bind(row.station_id),
        )
        .await?;
    let (organization_slug,): (String,) = tx
        .fetch_one(Sql::new("SELECT slug FROM organizations WHERE id = $1").bind(row.org_id))
        .await?;
    Ok(Ok(Redeemed {
        api_key,
        organization_slug,
        installation_id,
        replaced_installations: i64::try_from(replaced).unwrap_or(i64::MAX),
    }))
}

/// A user key minted by the device login (`source = 'cli_login'`); returns the key.
pub(super) async fn insert_login_key(tx: &mut Tx, org_id: Id, user_id: Id) -> DbResult<String> {
    let key = apikey::generate(apikey::KeyKind::User);
    tx.execute(
        Sql::new(
            "INSERT INTO api_keys (id, org_id, key_hash, prefix, user_id, created_at, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Id::new())
        .bind(org_id)
        .bind(apikey::digest(&key))
        .bind(apikey::masked(&key))
        .bind(user_id)
        .bind(Ts::now())
        .bind(SOURCE_LOGIN),
    )
    .await?;
    Ok(key)
}
