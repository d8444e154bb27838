//! Units: physical items identified by serial number (unique ci per organization), built
//! to one part revision, optionally in a batch and under a parent unit.

mod children;
mod list;

pub use list::{ListedUnitRow, SampleFilter, UnitChildRow, UnitFilter, UnitSort};

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use super::attachments::{link_uploads, LinkTarget};
use super::batches::batch_id;
use super::common::{creator_joins, CreatedBy, CreatorRow, CREATOR_COLUMNS};
use super::metadata::{self as meta_sql, MetaTable};
use super::revisions::revision_not_found;
use super::{ci_key, retry_write, Arg, Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::metadata::Metadata;

/// A unit with its part, revision, batch, parent and creator.
#[derive(Debug, Clone, FromRow)]
pub struct UnitRow {
    pub id: Id,
    pub serial_number: String,
    pub created_at: Ts,
    pub sample: Option<String>,
    pub metadata: Option<Json<Value>>,
    pub created_during_run_id: Option<Id>,
    pub part_id: Id,
    pub part_number: String,
    pub part_name: String,
    pub revision_id: Id,
    pub revision_number: String,
    pub batch_id: Option<Id>,
    pub batch_number: Option<String>,
    pub parent_id: Option<Id>,
    pub parent_serial: Option<String>,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
}

/// A related unit (parent or child) with its part and revision.
#[derive(Debug, Clone, FromRow)]
pub struct RelatedUnitRow {
    pub id: Id,
    pub serial_number: String,
    pub part_id: Id,
    pub part_number: String,
    pub part_name: String,
    pub revision_id: Id,
    pub revision_number: String,
}

/// The run that created a unit.
#[derive(Debug, Clone, FromRow)]
pub struct CreatingRunRow {
    pub id: Id,
    pub created_at: Ts,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub duration_us: i64,
    pub outcome: String,
    pub procedure_id: Id,
    pub procedure_name: String,
}

pub struct UnitDetail {
    pub unit: UnitRow,
    pub parent: Option<RelatedUnitRow>,
    pub children: Vec<RelatedUnitRow>,
    pub created_during: Option<CreatingRunRow>,
}

pub struct NewUnit {
    pub serial_number: String,
    pub part_number: String,
    pub revision_number: String,
    pub sample: Option<String>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Default)]
pub struct UnitChanges {
    pub new_serial_number: Option<String>,
    /// Move to this revision: `(part number, revision number)`; without a part number
    /// the revision is looked up on the unit's current part.
    pub revision: Option<(Option<String>, String)>,
    /// `Some(None)` removes the batch.
    pub batch_number: Option<Option<String>>,
    pub attachments: Vec<Id>,
    /// `Some(None)` clears the sample flag (a production unit).
    pub sample: Option<Option<String>>,
    pub metadata: Option<Metadata>,
}

const RELATED_COLUMNS: &str = "u.id, u.serial_number,
    p.id AS part_id, p.number AS part_number, p.name AS part_name,
    rv.id AS revision_id, rv.number AS revision_number
    FROM units u JOIN parts p ON p.id = u.part_id JOIN revisions rv ON rv.id = u.revision_id";

/// Select list and joins of `UnitRow` (alias `u`), for get and list.
const UNIT_COLUMNS: &str = "u.id, u.serial_number, u.created_at, u.sample, u.metadata,
    u.created_during_run_id,
    p.id AS part_id, p.number AS part_number, p.name AS part_name,
    rv.id AS revision_id, rv.number AS revision_number,
    b.id AS batch_id, b.number AS batch_number,
    par.id AS parent_id, par.serial_number AS parent_serial, ";

pub(super) const UNIT_JOINS: &str = concat!(
    " FROM units u JOIN parts p ON p.id = u.part_id
      JOIN revisions rv ON rv.id = u.revision_id
      LEFT JOIN batches b ON b.id = u.batch_id
      LEFT JOIN units par ON par.id = u.parent_id",
    creator_joins!("u")
);

/// `SELECT` and the select list of `UnitRow` (alias `u`), for get and list; the joins
/// are `UNIT_JOINS`.
pub(super) fn unit_select() -> Sql {
    Sql::new("SELECT ").then(UNIT_COLUMNS).then(CREATOR_COLUMNS)
}

impl Db {
    /// Creates a unit on an existing revision: 404 (naming the revision) when the part
    /// or revision is unknown, 409 when the serial is taken (ci).
    pub async fn create_unit(&self, org_id: Id, by: CreatedBy, new: NewUnit) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let (revision_id, part_id) =
            find_revision(&mut tx, org_id, &new.part_number, &new.revision_number).await?;
        let id = Id::new();
        let n = tx
            .execute(
                Sql::new(
                    "INSERT INTO units (id, org_id, serial_number, serial_key, part_id,
                        revision_id, sample, metadata, created_by_user_id,
                        created_by_station_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(org_id)
                .bind(&new.serial_number)
                .bind(ci_key(&new.serial_number))
                .bind(part_id)
                .bind(revision_id)
                .bind(new.sample)
                .bind(new.metadata)
                .bind(by.user_id)
                .bind(by.station_id)
                .bind(Ts::now()),
            )
            .await?;
        if n == 0 {
            return Err(unit_exists(&new.serial_number));
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A unit by serial (ci) with its parent, direct children and creating run.
    pub async fn unit(&self, org_id: Id, serial: &str) -> DbResult<UnitDetail> {
        let mut r = self.read();
        let unit: UnitRow = r
            .fetch_optional(
                unit_select()
                    .then(UNIT_JOINS)
                    .then(" WHERE u.org_id = $1 AND u.serial_key = $2")
                    .bind(org_id)
                    .bind(ci_key(serial)),
            )
            .await?
            .ok_or_else(|| unit_not_found(serial))?;
        let parent = match unit.parent_id {
            Some(pid) => {
                r.fetch_optional(
                    Sql::new("SELECT ")
                        .then(RELATED_COLUMNS)
                        .then(" WHERE u.id = $1")
                        .bind(pid),
                )
                .await?
            }
            None => None,
        };
        let children = r
            .fetch_all(
                Sql::new("SELECT ")
                    .then(RELATED_COLUMNS)
                    .then(" WHERE u.parent_id = $1 ORDER BY u.created_at, u.id")
                    .bind(unit.id),
            )
            .await?;
        let created_during = match unit.created_during_run_id {
            Some(run_id) => {
                r.fetch_optional(
                    Sql::new(
                        "SELECT r.id, r.created_at, r.started_at, r.ended_at, r.duration_us,
                            r.outcome, pr.id AS procedure_id, pr.name AS procedure_name
                         FROM runs r JOIN procedures pr ON pr.id = r.procedure_id
                         WHERE r.id = $1",
                    )
                    .bind(run_id),
                )
                .await?
            }
            None => None,
        };
        Ok(UnitDetail {
            unit,
            parent,
            children,
            created_during,
        })
    }

    /// Applies `changes` to the unit `serial`; returns its id. Lookups (404) come before
    /// the serial uniqueness check (409).
    pub async fn update_unit(
        &self,
        org_id: Id,
        serial: &str,
        changes: UnitChanges,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let (id, current_part) = unit_ids(&mut tx, org_id, serial).await?;
        let revision = match &changes.revision {
            Some((Some(part_number), rev)) => {
                Some(find_revision(&mut tx, org_id, part_number, rev).await?)
            }
            Some((None, rev)) => {
                let (part_number,): (String,) = tx
                    .fetch_one(
                        Sql::new("SELECT number FROM parts WHERE id = $1").bind(current_part),
                    )
                    .await?;
                Some(find_revision(&mut tx, org_id, &part_number, rev).await?)
            }
            None => None,
        };
        let batch = match &changes.batch_number {
            Some(Some(number)) => Some(Some(batch_id(&mut tx, org_id, number).await?)),
            Some(None) => Some(None),
            None => None,
        };
        if let Some(new_serial) = &changes.new_serial_number {
            let taken: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT id FROM units WHERE org_id = $1 AND serial_key = $2 AND id <> $3",
                    )
                    .bind(org_id)
                    .bind(ci_key(new_serial))
                    .bind(id),
                )
                .await?;
            if taken.is_some() {
                return Err(unit_exists(new_serial));
            }
        }

        let mut sets: Vec<(&str, Arg)> = Vec::new();
        if let Some(s) = &changes.new_serial_number {
            sets.push(("serial_number", s.as_str().into()));
            sets.push(("serial_key", ci_key(s).into()));
        }
        if let Some((revision_id, part_id)) = revision {
            sets.push(("revision_id", revision_id.into()));
            sets.push(("part_id", part_id.into()));
        }
        if let Some(b) = batch {
            sets.push(("batch_id", b.into()));
        }
        if let Some(s) = &changes.sample {
            sets.push(("sample", s.as_deref().into()));
        }
        if !sets.is_empty() {
            let mut q = Sql::new("UPDATE units SET ");
            for (i, (col, arg)) in sets.into_iter().enumerate() {
                q.push(if i == 0 { "" } else { ", " })
                    .push(col)
                    .push(" = ")
                    .push_bind(arg);
            }
            q.push(" WHERE id = ").push_bind(id);
            tx.execute(q)
                .await
                .map_err(|e| match &changes.new_serial_number {
                    Some(s) if e.is_unique_violation() => unit_exists(s),
                    _ => e,
                })?;
        }
        if !changes.attachments.is_empty() {
            link_uploads(&mut tx, org_id, LinkTarget::Unit(id), &changes.attachments).await?;
        }
        if let Some(m) = &changes.metadata {
            meta_sql::patch(&mut tx, MetaTable::Units, id, m, "metadata").await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes the units with these serials (ci); returns the ids deleted, 404 when none
    /// exists. Their children stay and lose their parent; their runs, attachments and
    /// files are deleted with them (FK cascade); units created during those runs keep
    /// existing with `created_during` cleared.
    pub async fn delete_units(&self, org_id: Id, serials: &[String]) -> DbResult<Vec<Id>> {
        retry_write(|| self.delete_units_once(org_id, serials)).await
    }

    async fn delete_units_once(&self, org_id: Id, serials: &[String]) -> DbResult<Vec<Id>> {
        let mut tx = self.begin().await?;
        let mut q = Sql::new("SELECT id FROM units WHERE org_id = ");
        q.push_bind(org_id)
            .push(" AND serial_key IN ")
            .push_tuple(serials.iter().map(|s| ci_key(s)))
            .push(" ORDER BY created_at, id");
        let ids: Vec<(Id,)> = tx.fetch_all(q).await?;
        if ids.is_empty() {
            return Err(StoreError::not_found(
                "No unit found with the given serial numbers",
            ));
        }
        let ids: Vec<Id> = ids.into_iter().map(|r| r.0).collect();
        let mut q = Sql::new("DELETE FROM units WHERE id IN ");
        q.push_tuple(ids.iter().copied());
        tx.execute(q).await?;
        tx.commit().await?;
        Ok(ids)
    }
}

/// `(revision id, part id)` of part `part_number` / revision `revision_number` (ci);
/// 404 naming the revision when either is unknown.
async fn find_revision(
    tx: &mut Tx,
    org_id: Id,
    part_number: &str,
    revision_number: &str,
) -> DbResult<(Id, Id)> {
    tx.fetch_optional(
        Sql::new(
            "SELECT rv.id, rv.part_id FROM revisions rv JOIN parts p ON p.id = rv.part_id
             WHERE p.org_id = $1 AND p.number_key = $2 AND rv.number_key = $3",
        )
        .bind(org_id)
        .bind(ci_key(part_number))
        .bind(ci_key(revision_number)),
    )
    .await?
    .ok_or_else(|| revision_not_found(part_number, revision_number))
}

/// `(unit id, part id)` of the unit with serial `serial` (ci); 404 otherwise.
async fn unit_ids(tx: &mut Tx, org_id: Id, serial: &str) -> DbResult<(Id, Id)> {
    tx.fetch_optional(
        Sql::new("SELECT id, part_id FROM units WHERE org_id = $1 AND serial_key = $2")
            .bind(org_id)
            .bind(ci_key(serial)),
    )
    .await?
    .ok_or_else(|| unit_not_found(serial))
}

pub fn unit_not_found(serial: &str) -> StoreError {
    if serial.is_empty() {
        return StoreError::not_found("Unit not found");
    }
    StoreError::not_found(format!("Unit {serial} not found"))
}

fn unit_exists(serial: &str) -> StoreError {
    StoreError::conflict(format!("Unit with serial number {serial} already exists"))
}
