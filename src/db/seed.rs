//! Seed files: organizations with their users, keys, procedures, teams and stations,
//! described in JSON and applied idempotently in one transaction (applying a file twice
//! changes nothing). Entities are matched by id when the file gives one, else by their
//! natural key (organization slug or name, user email, procedure/station/team name).

use crate::types::ci_key;
use serde::Deserialize;

use super::identity::{insert_api_key, insert_organization, upsert_user};
use super::procedures::insert_procedure;
use super::{Db, Id, Sql, Ts, Tx};
use crate::apikey::MIN_KEY_LEN;
use crate::caller::Principal;
use crate::db::error::{DbResult, StoreError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub organizations: Vec<SeedOrganization>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOrganization {
    pub name: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub teams: Vec<SeedTeam>,
    #[serde(default)]
    pub procedures: Vec<SeedProcedure>,
    #[serde(default)]
    pub stations: Vec<SeedStation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// A known key for this user (e.g. `tp_user_…`), at least 16 characters.
    #[serde(default)]
    pub api_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTeam {
    #[serde(default)]
    pub id: Option<Id>,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProcedure {
    #[serde(default)]
    pub id: Option<Id>,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedStation {
    #[serde(default)]
    pub id: Option<Id>,
    pub name: String,
    #[serde(default)]
    pub api_key: Option<String>,
    /// Linked procedures, by id or by name (procedures of the same organization).
    #[serde(default)]
    pub procedures: Vec<String>,
    /// Team, by id or name.
    #[serde(default)]
    pub team: Option<String>,
}

/// What applying a seed did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub organizations: usize,
    pub users: usize,
    pub procedures: usize,
    pub stations: usize,
}

impl SeedFile {
    pub fn parse(json: &str) -> Result<SeedFile, String> {
        serde_json::from_str(json).map_err(|e| format!("invalid seed file: {e}"))
    }

    /// Checks what can be checked without the database.
    pub fn check(&self) -> Result<(), String> {
        self.organizations
            .iter()
            .try_for_each(SeedFile::check_organization)
    }

    /// Checks one organization's description.
    pub fn check_organization(org: &SeedOrganization) -> Result<(), String> {
        if org.name.trim().is_empty() {
            return Err("an organization has an empty name".into());
        }
        let keys = org
            .users
            .iter()
            .filter_map(|u| u.api_key.as_deref())
            .chain(org.stations.iter().filter_map(|s| s.api_key.as_deref()));
        for key in keys {
            if key.trim() != key || key.chars().count() < MIN_KEY_LEN {
                return Err(format!(
                    "API keys in seed files must be at least {MIN_KEY_LEN} characters without surrounding spaces (organization {:?})",
                    org.name
                ));
            }
        }
        for u in &org.users {
            if !u.email.contains('@') {
                return Err(format!("user email {:?} is not an email address", u.email));
            }
        }
        Ok(())
    }
}

impl Db {
    /// Applies a seed file in one transaction.
    pub async fn apply_seed(&self, seed: &SeedFile) -> Result<SeedReport, String> {
        seed.check()?;
        let run = async {
            let mut tx = self.begin().await?;
            let mut report = SeedReport::default();
            for org in &seed.organizations {
                apply_organization(&mut tx, org, &mut report, false).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(report)
        };
        run.await.map_err(|e| format!("seeding failed: {e}"))
    }
}

/// Applies one organization; returns its id. An existing organization (same slug, or
/// same name without a slug) is updated unless `always_new`.
pub(super) async fn apply_organization(
    tx: &mut Tx,
    org: &SeedOrganization,
    report: &mut SeedReport,
    always_new: bool,
) -> DbResult<Id> {
    let name = org.name.trim();
    let existing: Option<(Id,)> = match &org.slug {
        _ if always_new => None,
        Some(slug) => {
            tx.fetch_optional(
                Sql::new("SELECT id FROM organizations WHERE slug = $1").bind(slug.trim()),
            )
            .await?
        }
        None => {
            tx.fetch_optional(
                Sql::new(
                    "SELECT id FROM organizations WHERE name = $1 ORDER BY created_at LIMIT 1",
                )
                .bind(name),
            )
            .await?
        }
    };
    let org_id = match existing {
        Some((id,)) => id,
        None => {
            report.organizations += 1;
            insert_organization(tx, name, org.slug.as_deref()).await?.id
        }
    };

    let mut first_user = None;
    for u in &org.users {
        let before = count(tx, "users", org_id).await?;
        let id = upsert_user(tx, org_id, &u.email, u.name.as_deref()).await?;
        report.users += (count(tx, "users", org_id).await? - before) as usize;
        first_user.get_or_insert(id);
        if let Some(key) = &u.api_key {
            insert_api_key(tx, org_id, Principal::User(id), key).await?;
        }
    }
    if first_user.is_none() {
        first_user = tx
            .fetch_optional::<(Id,)>(
                Sql::new("SELECT id FROM users WHERE org_id = $1 ORDER BY created_at, id LIMIT 1")
                    .bind(org_id),
            )
            .await?
            .map(|r| r.0);
    }

    for t in &org.teams {
        find_or_insert_named(tx, "teams", org_id, t.id, t.name.trim(), None).await?;
    }

    for p in &org.procedures {
        let name = p.name.trim();
        let found = find_named(tx, "procedures", org_id, p.id, name).await?;
        if found.is_none() {
            insert_procedure(tx, org_id, p.id, first_user, name).await?;
            report.procedures += 1;
        }
    }

    for s in &org.stations {
        let name = s.name.trim();
        let team_id = match &s.team {
            Some(t) => Some(resolve_named(tx, "teams", org_id, t).await?),
            None => None,
        };
        let station_id = match find_named(tx, "stations", org_id, s.id, name).await? {
            Some(id) => id,
            None => {
                report.stations += 1;
                find_or_insert_named(tx, "stations", org_id, s.id, name, team_id).await?
            }
        };
        if let Some(key) = &s.api_key {
            insert_api_key(tx, org_id, Principal::Station(station_id), key).await?;
        }
        for p in &s.procedures {
            let procedure_id = resolve_named(tx, "procedures", org_id, p).await?;
            tx.execute(
                Sql::new(
                    "INSERT INTO station_procedures (station_id, procedure_id, created_at)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(station_id)
                .bind(procedure_id)
                .bind(Ts::now()),
            )
            .await?;
        }
    }
    Ok(org_id)
}

async fn count(tx: &mut Tx, table: &'static str, org_id: Id) -> DbResult<i64> {
    let (n,): (i64,) = tx
        .fetch_one(
            Sql::new("SELECT COUNT(*) FROM ")
                .then(table)
                .then(" WHERE org_id = $1")
                .bind(org_id),
        )
        .await?;
    Ok(n)
}

/// A row of `table` in the organization, by id when given (an id used by another
/// organization is an error), else by exact name.
async fn find_named(
    tx: &mut Tx,
    table: &'static str,
    org_id: Id,
    id: Option<Id>,
    name: &str,
) -> DbResult<Option<Id>> {
    if let Some(id) = id {
        let row: Option<(Id,)> = tx
            .fetch_optional(
                Sql::new("SELECT org_id FROM ")
                    .then(table)
                    .then(" WHERE id = $1")
                    .bind(id),
            )
            .await?;
        return match row {
            Some((owner,)) if owner == org_id => Ok(Some(id)),
            Some(_) => Err(StoreError::conflict(format!(
                "{table} id {id} already belongs to another organization"
            ))),
            None => Ok(None),
        };
    }
    let archived = if table == "stations" {
        " AND archived_at IS NULL"
    } else {
        ""
    };
    let row: Option<(Id,)> = tx
        .fetch_optional(
            Sql::new("SELECT id FROM ")
                .then(table)
                .then(" WHERE org_id = $1 AND name = $2")
                .then(archived)
                .then(" ORDER BY created_at, id LIMIT 1")
                .bind(org_id)
                .bind(name),
        )
        .await?;
    Ok(row.map(|r| r.0))
}

/// A team or station by id or name, inserted when missing.
async fn find_or_insert_named(
    tx: &mut Tx,
    table: &'static str,
    org_id: Id,
    id: Option<Id>,
    name: &str,
    team_id: Option<Id>,
) -> DbResult<Id> {
    if let Some(found) = find_named(tx, table, org_id, id, name).await? {
        return Ok(found);
    }
    let id = id.unwrap_or_else(Id::new);
    let sql = if table == "stations" {
        Sql::new(
            "INSERT INTO stations (id, org_id, name, team_id, created_at, name_key)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(org_id)
        .bind(name)
        .bind(team_id)
        .bind(Ts::now())
        .bind(ci_key(name))
    } else {
        Sql::new("INSERT INTO ")
            .then(table)
            .then(" (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(org_id)
            .bind(name)
            .bind(Ts::now())
    };
    tx.execute(sql).await?;
    Ok(id)
}

/// A reference written in the seed as an id or a name.
async fn resolve_named(
    tx: &mut Tx,
    table: &'static str,
    org_id: Id,
    reference: &str,
) -> DbResult<Id> {
    let reference = reference.trim();
    let by_id = Id::parse(reference);
    let found = find_named(tx, table, org_id, by_id, reference).await?;
    match (found, by_id) {
        (Some(id), _) => Ok(id),
        (None, Some(_)) => find_named(tx, table, org_id, None, reference)
            .await?
            .ok_or_else(|| {
                StoreError::not_found(format!("{table}: nothing named or with id {reference:?}"))
            }),
        (None, None) => Err(StoreError::not_found(format!(
            "{table}: nothing named or with id {reference:?}"
        ))),
    }
}
