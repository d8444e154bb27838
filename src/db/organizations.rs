//! Whole organizations for the control API: create one from a seed-shaped description,
//! delete one with everything in it, reset its test data, reset the whole database.
//! Every table holding an organization's rows references `organizations` (directly or
//! through a row that does) with `ON DELETE CASCADE`, so deleting the organization row
//! removes its runs, units, attachments, blobs and keys in the same transaction.

use sqlx::FromRow;

use super::identity::OrgRow;
use super::seed::{apply_organization, SeedFile, SeedOrganization, SeedReport};
use super::{retry_write, Db, Id, Sql, Tx};
use crate::db::error::{DbResult, StoreError};

/// A user of a created organization.
#[derive(Debug, Clone, FromRow)]
pub struct OrgUserRow {
    pub id: Id,
    pub email: String,
    pub name: Option<String>,
}

/// A station of a created organization, with its linked procedures.
#[derive(Debug, Clone)]
pub struct OrgStationRow {
    pub id: Id,
    pub name: String,
    pub procedure_ids: Vec<Id>,
}

/// A named row (procedure, team).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct NamedRow {
    pub id: Id,
    pub name: String,
}

/// An organization as created, read back in creation order.
#[derive(Debug, Clone)]
pub struct CreatedOrganization {
    pub organization: OrgRow,
    pub users: Vec<OrgUserRow>,
    pub teams: Vec<NamedRow>,
    pub procedures: Vec<NamedRow>,
    pub stations: Vec<OrgStationRow>,
}

/// The tables of an organization's test data, in an order that respects their
/// references (children first). Users, keys, teams, procedures (with their versions)
/// and stations are kept.
const TEST_DATA: [&str; 7] = [
    "DELETE FROM file_imports WHERE org_id = $1",
    "DELETE FROM runs WHERE org_id = $1",
    "DELETE FROM attachments WHERE org_id = $1",
    "DELETE FROM units WHERE org_id = $1",
    "DELETE FROM revisions WHERE org_id = $1",
    "DELETE FROM parts WHERE org_id = $1",
    "DELETE FROM batches WHERE org_id = $1",
];

impl Db {
    /// Every organization, oldest first.
    pub async fn organizations(&self) -> DbResult<Vec<OrgRow>> {
        self.read()
            .fetch_all(Sql::new(
                "SELECT id, name, slug FROM organizations ORDER BY created_at, id",
            ))
            .await
    }

    /// Creates a new organization as `org` describes (ids, names and keys as given); a
    /// slug already taken is a conflict (without a slug one is derived from the name and
    /// made unique).
    pub async fn create_organization(
        &self,
        org: &SeedOrganization,
    ) -> DbResult<CreatedOrganization> {
        SeedFile::check_organization(org).map_err(StoreError::rejected)?;
        let mut tx = self.begin().await?;
        if let Some(slug) = &org.slug {
            let taken: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new("SELECT id FROM organizations WHERE slug = $1").bind(slug.trim()),
                )
                .await?;
            if taken.is_some() {
                return Err(StoreError::conflict(format!(
                    "An organization with slug {:?} already exists",
                    slug.trim()
                )));
            }
        }
        let org_id = apply_organization(&mut tx, org, &mut SeedReport::default(), true).await?;
        let created = read_organization(&mut tx, org_id).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Deletes an organization and everything in it. `NotFound` when there is none.
    pub async fn delete_organization(&self, org_id: Id) -> DbResult<()> {
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let n = tx
                .execute(Sql::new("DELETE FROM organizations WHERE id = $1").bind(org_id))
                .await?;
            if n == 0 {
                return Err(StoreError::not_found("Organization not found"));
            }
            tx.commit().await
        })
        .await
    }

    /// Deletes an organization's test data (runs, units, parts, batches, attachments,
    /// imports) and keeps its users, keys, teams, procedures and stations.
    pub async fn reset_organization(&self, org_id: Id) -> DbResult<()> {
        retry_write(|| async {
            let mut tx = self.begin().await?;
            let found: Option<(Id,)> = tx
                .fetch_optional(Sql::new("SELECT id FROM organizations WHERE id = $1").bind(org_id))
                .await?;
            if found.is_none() {
                return Err(StoreError::not_found("Organization not found"));
            }
            for delete in TEST_DATA {
                tx.execute(Sql::new(delete).bind(org_id)).await?;
            }
            tx.commit().await
        })
        .await
    }

    /// Returns the database to what `seed` describes: every organization is deleted and
    /// the seed applied, in one transaction.
    pub async fn reset_all(&self, seed: Option<&SeedFile>) -> DbResult<SeedReport> {
        if let Some(seed) = seed {
            seed.check().map_err(StoreError::rejected)?;
        }
        retry_write(|| async {
            let mut tx = self.begin().await?;
            tx.execute(Sql::new("DELETE FROM organizations")).await?;
            let mut report = SeedReport::default();
            for org in seed.map(|s| s.organizations.as_slice()).unwrap_or_default() {
                apply_organization(&mut tx, org, &mut report, false).await?;
            }
            tx.commit().await?;
            Ok(report)
        })
        .await
    }
}

async fn read_organization(tx: &mut Tx, org_id: Id) -> DbResult<CreatedOrganization> {
    let organization: OrgRow = tx
        .fetch_one(Sql::new("SELECT id, name, slug FROM organizations WHERE id = $1").bind(org_id))
        .await?;
    let users: Vec<OrgUserRow> = tx
        .fetch_all(
            Sql::new("SELECT id, email, name FROM users WHERE org_id = $1 ORDER BY created_at, id")
                .bind(org_id),
        )
        .await?;
    let teams: Vec<NamedRow> = tx
        .fetch_all(
            Sql::new("SELECT id, name FROM teams WHERE org_id = $1 ORDER BY created_at, id")
                .bind(org_id),
        )
        .await?;
    let procedures: Vec<NamedRow> = tx
        .fetch_all(
            Sql::new("SELECT id, name FROM procedures WHERE org_id = $1 ORDER BY created_at, id")
                .bind(org_id),
        )
        .await?;
    let station_rows: Vec<NamedRow> = tx
        .fetch_all(
            Sql::new("SELECT id, name FROM stations WHERE org_id = $1 ORDER BY created_at, id")
                .bind(org_id),
        )
        .await?;
    let links: Vec<(Id, Id)> = tx
        .fetch_all(
            Sql::new(
                "SELECT sp.station_id, sp.procedure_id FROM station_procedures sp
                 JOIN stations s ON s.id = sp.station_id
                 WHERE s.org_id = $1 ORDER BY sp.created_at, sp.procedure_id",
            )
            .bind(org_id),
        )
        .await?;
    let stations = station_rows
        .into_iter()
        .map(|s| OrgStationRow {
            procedure_ids: links
                .iter()
                .filter(|(station, _)| *station == s.id)
                .map(|(_, procedure)| *procedure)
                .collect(),
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(CreatedOrganization {
        organization,
        users,
        teams,
        procedures,
        stations,
    })
}
