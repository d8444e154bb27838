//! Organizations, users and API keys: who a caller is.

use sqlx::FromRow;

use super::{ci_key, Db, Id, Sql, Ts, Tx};
use crate::apikey;
use crate::caller::{Caller, Principal};
use crate::db::error::{DbResult, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct OrgRow {
    pub id: Id,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Id,
    pub email: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub banned: bool,
}

#[derive(FromRow)]
struct KeyRow {
    id: Id,
    org_id: Id,
    key_hash: String,
    user_id: Option<Id>,
    station_id: Option<Id>,
}

impl Db {
    /// The caller owning the key with this digest, if the key is live: not revoked, its
    /// station not removed, its user not banned.
    pub async fn find_caller_by_key_digest(&self, digest: &str) -> DbResult<Option<Caller>> {
        let row: Option<KeyRow> = self
            .read()
            .fetch_optional(
                Sql::new(
                    "SELECT k.id, k.org_id, k.key_hash, k.user_id, k.station_id
                     FROM api_keys k
                     LEFT JOIN stations s ON s.id = k.station_id
                     LEFT JOIN users u ON u.id = k.user_id
                     WHERE k.key_hash = $1 AND k.revoked_at IS NULL
                       AND (k.station_id IS NULL OR s.archived_at IS NULL)
                       AND (k.user_id IS NULL OR u.banned = FALSE)",
                )
                .bind(digest),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        if !apikey::digests_match(&row.key_hash, digest) {
            return Ok(None);
        }
        let principal = match (row.user_id, row.station_id) {
            (Some(u), None) => Principal::User(u),
            (None, Some(s)) => Principal::Station(s),
            _ => return Ok(None),
        };
        Ok(Some(Caller {
            org_id: row.org_id,
            principal,
            key_id: row.id,
        }))
    }

    pub async fn organization(&self, org_id: Id) -> DbResult<OrgRow> {
        self.read()
            .fetch_optional(
                Sql::new("SELECT id, name, slug FROM organizations WHERE id = $1").bind(org_id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Organization not found"))
    }

    pub async fn count_organizations(&self) -> DbResult<i64> {
        let (n,): (i64,) = self
            .read()
            .fetch_one(Sql::new("SELECT COUNT(*) FROM organizations"))
            .await?;
        Ok(n)
    }

    /// Members of the organization, oldest first.
    pub async fn list_users(&self, org_id: Id) -> DbResult<Vec<UserRow>> {
        self.read()
            .fetch_all(
                Sql::new(
                    "SELECT id, email, name, image, banned FROM users
                     WHERE org_id = $1 ORDER BY created_at, id",
                )
                .bind(org_id),
            )
            .await
    }

    pub async fn user(&self, org_id: Id, user_id: Id) -> DbResult<UserRow> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT id, email, name, image, banned FROM users WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id)
                .bind(user_id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("User not found"))
    }

    /// A new key for a user or station; returns the key (shown once).
    pub async fn create_api_key(&self, org_id: Id, principal: Principal) -> DbResult<String> {
        let kind = match principal {
            Principal::User(_) => apikey::KeyKind::User,
            Principal::Station(_) => apikey::KeyKind::Station,
        };
        let key = apikey::generate(kind);
        let mut tx = self.begin().await?;
        insert_api_key(&mut tx, org_id, principal, &key).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Users with this email, with their organization (for `tofulab keys create`).
    pub async fn users_by_email(&self, email: &str) -> DbResult<Vec<(UserRow, OrgRow)>> {
        #[derive(FromRow)]
        struct UserOrgRow {
            id: Id,
            email: String,
            name: Option<String>,
            image: Option<String>,
            banned: bool,
            org_id: Id,
            org_name: String,
            org_slug: String,
        }
        let rows: Vec<UserOrgRow> = self
            .read()
            .fetch_all(
                Sql::new(
                    "SELECT u.id, u.email, u.name, u.image, u.banned,
                            o.id AS org_id, o.name AS org_name, o.slug AS org_slug
                     FROM users u JOIN organizations o ON o.id = u.org_id
                     WHERE u.email_key = $1 ORDER BY o.created_at",
                )
                .bind(ci_key(email.trim())),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    UserRow {
                        id: r.id,
                        email: r.email,
                        name: r.name,
                        image: r.image,
                        banned: r.banned,
                    },
                    OrgRow {
                        id: r.org_id,
                        name: r.org_name,
                        slug: r.org_slug,
                    },
                )
            })
            .collect())
    }

    /// The organization of a live station (for `tofulab keys create --station`).
    pub async fn station_org(&self, station_id: Id) -> DbResult<Option<Id>> {
        let row: Option<(Id,)> = self
            .read()
            .fetch_optional(
                Sql::new("SELECT org_id FROM stations WHERE id = $1 AND archived_at IS NULL")
                    .bind(station_id),
            )
            .await?;
        Ok(row.map(|r| r.0))
    }
}

/// Stores the digest of `key` for `principal`. A key already stored for the same
/// principal is fine (seeding twice); for anyone else it is refused.
pub async fn insert_api_key(
    tx: &mut Tx,
    org_id: Id,
    principal: Principal,
    key: &str,
) -> DbResult<()> {
    let digest = apikey::digest(key);
    let (user_id, station_id) = match principal {
        Principal::User(u) => (Some(u), None),
        Principal::Station(s) => (None, Some(s)),
    };
    let existing: Option<(Option<Id>, Option<Id>)> = tx
        .fetch_optional(
            Sql::new("SELECT user_id, station_id FROM api_keys WHERE key_hash = $1").bind(&digest),
        )
        .await?;
    if let Some((u, s)) = existing {
        if u == user_id && s == station_id {
            return Ok(());
        }
        return Err(StoreError::conflict(
            "This API key is already assigned to another user or station",
        ));
    }
    tx.execute(
        Sql::new(
            "INSERT INTO api_keys (id, org_id, key_hash, prefix, user_id, station_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Id::new())
        .bind(org_id)
        .bind(digest)
        .bind(apikey::masked(key))
        .bind(user_id)
        .bind(station_id)
        .bind(Ts::now()),
    )
    .await?;
    Ok(())
}

/// Creates an organization with a slug derived from its name (made unique).
pub async fn insert_organization(tx: &mut Tx, name: &str, slug: Option<&str>) -> DbResult<OrgRow> {
    let base = slugify(slug.unwrap_or(name));
    let mut slug = base.clone();
    for n in 2.. {
        let taken: Option<(Id,)> = tx
            .fetch_optional(Sql::new("SELECT id FROM organizations WHERE slug = $1").bind(&slug))
            .await?;
        if taken.is_none() {
            break;
        }
        slug = format!("{base}-{n}");
    }
    let id = Id::new();
    tx.execute(
        Sql::new("INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(&slug)
            .bind(Ts::now()),
    )
    .await?;
    Ok(OrgRow {
        id,
        name: name.to_string(),
        slug,
    })
}

/// Finds a user of the organization by email (ci) or creates it.
pub async fn upsert_user(tx: &mut Tx, org_id: Id, email: &str, name: Option<&str>) -> DbResult<Id> {
    let email = email.trim();
    let key = ci_key(email);
    let existing: Option<(Id, Option<String>)> = tx
        .fetch_optional(
            Sql::new("SELECT id, name FROM users WHERE org_id = $1 AND email_key = $2")
                .bind(org_id)
                .bind(&key),
        )
        .await?;
    if let Some((id, current)) = existing {
        if let Some(name) = name {
            if current.as_deref() != Some(name) {
                tx.execute(
                    Sql::new("UPDATE users SET name = $1, name_key = $3 WHERE id = $2")
                        .bind(name)
                        .bind(id)
                        .bind(ci_key(name)),
                )
                .await?;
            }
        }
        return Ok(id);
    }
    let id = Id::new();
    tx.execute(
        Sql::new(
            "INSERT INTO users (id, org_id, email, email_key, name, created_at, name_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(org_id)
        .bind(email)
        .bind(key)
        .bind(name)
        .bind(Ts::now())
        .bind(name.map(ci_key)),
    )
    .await?;
    Ok(id)
}

/// `"My Lab #1"` → `"my-lab-1"`.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "org".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs() {
        assert_eq!(super::slugify("My Lab #1"), "my-lab-1");
        assert_eq!(super::slugify("  "), "org");
    }
}
