//! Find-or-create of everything a run names (BEHAVIOR.md §1.1 "Implicit creation"):
//! part, revision, batch, unit, procedure version, operator and sub-units. Every function
//! runs inside the run's write transaction.
//!
//! Race safety: a lookup first, then `INSERT … ON CONFLICT (<unique ci key>) DO NOTHING`,
//! then the lookup again. Two transactions creating the same part concurrently end with
//! one row: on Postgres the second insert waits for the first transaction and then does
//! nothing; on SQLite writers are serialized anyway.

use std::collections::HashSet;

use crate::db::common::CreatedBy;
use crate::db::{ci_key, DbResult, Id, Row, Sql, StoreError, Ts, Tx, WRITE_ATTEMPTS};
use crate::fields::FieldPath;

/// `find` returns the row when it exists; `insert` must be an
/// `INSERT … ON CONFLICT … DO NOTHING` of the row `inserted` describes. Returns the row
/// and whether this call created it.
async fn find_or_insert<T: Row>(
    tx: &mut Tx,
    find: Sql,
    insert: Sql,
    inserted: T,
) -> DbResult<(T, bool)> {
    // When the insert does nothing, another transaction created the row between our
    // lookup and our insert, and a third may already have deleted it again: look again
    // (each statement sees the latest commits on Postgres).
    for _ in 0..WRITE_ATTEMPTS {
        if let Some(row) = tx.fetch_optional::<T>(find.clone()).await? {
            return Ok((row, false));
        }
        if tx.execute(insert.clone()).await? == 1 {
            return Ok((inserted, true));
        }
    }
    // BEHAVIOR (status discipline, error.rs): contention, not a bug: 503, retried.
    Err(StoreError::Unavailable(
        "find-or-create kept losing its row to concurrent deletes".into(),
    ))
}

/// The part with this number (ci), created with `name` = the number as given.
pub(super) async fn part(tx: &mut Tx, org_id: Id, number: &str, by: CreatedBy) -> DbResult<Id> {
    let key = ci_key(number);
    let id = Id::new();
    let now = Ts::now();
    let find = Sql::new("SELECT id FROM parts WHERE org_id = $1 AND number_key = $2")
        .bind(org_id)
        .bind(key.clone());
    let insert = Sql::new(
        "INSERT INTO parts (id, org_id, number, number_key, name, name_key,
                            created_by_user_id, created_by_station_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $4, $6, $7, $8, $9)
         ON CONFLICT (org_id, number_key) DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(number)
    .bind(key)
    .bind(number)
    .bind(by.user_id)
    .bind(by.station_id)
    .bind(now)
    .bind(now);
    Ok(find_or_insert(tx, find, insert, (id,)).await?.0 .0)
}

/// The revision `number` (ci) of the part.
pub(super) async fn revision(
    tx: &mut Tx,
    org_id: Id,
    part_id: Id,
    number: &str,
    by: CreatedBy,
) -> DbResult<Id> {
    let key = ci_key(number);
    let id = Id::new();
    let find = Sql::new("SELECT id FROM revisions WHERE part_id = $1 AND number_key = $2")
        .bind(part_id)
        .bind(key.clone());
    let insert = Sql::new(
        "INSERT INTO revisions (id, org_id, part_id, number, number_key, created_by_user_id,
                                created_by_station_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (part_id, number_key) DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(part_id)
    .bind(number)
    .bind(key)
    .bind(by.user_id)
    .bind(by.station_id)
    .bind(Ts::now());
    Ok(find_or_insert(tx, find, insert, (id,)).await?.0 .0)
}

/// The number of the revision created for a part that has none when a run names no
/// revision.
pub const DEFAULT_REVISION: &str = "A";

/// The revision a unit gets when the run names none: the part's oldest revision, or a
/// new revision `A` when the part has none yet.
pub(super) async fn default_revision(
    tx: &mut Tx,
    org_id: Id,
    part_id: Id,
    by: CreatedBy,
) -> DbResult<Id> {
    let oldest: Option<(Id,)> = tx
        .fetch_optional(
            Sql::new("SELECT id FROM revisions WHERE part_id = $1 ORDER BY created_at, id LIMIT 1")
                .bind(part_id),
        )
        .await?;
    match oldest {
        Some((id,)) => Ok(id),
        None => revision(tx, org_id, part_id, DEFAULT_REVISION, by).await,
    }
}

pub(super) async fn batch(tx: &mut Tx, org_id: Id, number: &str, by: CreatedBy) -> DbResult<Id> {
    let key = ci_key(number);
    let id = Id::new();
    let find = Sql::new("SELECT id FROM batches WHERE org_id = $1 AND number_key = $2")
        .bind(org_id)
        .bind(key.clone());
    let insert = Sql::new(
        "INSERT INTO batches (id, org_id, number, number_key, created_by_user_id,
                              created_by_station_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (org_id, number_key) DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(number)
    .bind(key)
    .bind(by.user_id)
    .bind(by.station_id)
    .bind(Ts::now());
    Ok(find_or_insert(tx, find, insert, (id,)).await?.0 .0)
}

/// The version `tag` (ci) of the procedure; stations may create versions this way.
pub(super) async fn version(
    tx: &mut Tx,
    org_id: Id,
    procedure_id: Id,
    tag: &str,
    by: CreatedBy,
) -> DbResult<Id> {
    let key = ci_key(tag);
    let id = Id::new();
    let find =
        Sql::new("SELECT id FROM procedure_versions WHERE procedure_id = $1 AND tag_key = $2")
            .bind(procedure_id)
            .bind(key.clone());
    let insert = Sql::new(
        "INSERT INTO procedure_versions (id, org_id, procedure_id, tag, tag_key,
                                         created_by_user_id, created_by_station_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (procedure_id, tag_key) DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(procedure_id)
    .bind(tag)
    .bind(key)
    .bind(by.user_id)
    .bind(by.station_id)
    .bind(Ts::now());
    Ok(find_or_insert(tx, find, insert, (id,)).await?.0 .0)
}

/// A unit as the run found it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct UnitRow {
    pub id: Id,
    pub part_id: Id,
    pub revision_id: Id,
    pub batch_id: Option<Id>,
}

pub(super) async fn find_unit(tx: &mut Tx, org_id: Id, serial: &str) -> DbResult<Option<UnitRow>> {
    tx.fetch_optional(unit_by_serial(org_id, serial)).await
}

fn unit_by_serial(org_id: Id, serial: &str) -> Sql {
    Sql::new(
        "SELECT id, part_id, revision_id, batch_id FROM units
         WHERE org_id = $1 AND serial_key = $2",
    )
    .bind(org_id)
    .bind(ci_key(serial))
}

/// Creates the unit (serial exactly as sent) unless a concurrent run just did; returns
/// the unit and whether this call created it.
pub(super) async fn insert_unit(
    tx: &mut Tx,
    org_id: Id,
    serial: &str,
    part_id: Id,
    revision_id: Id,
    batch_id: Option<Id>,
    by: CreatedBy,
) -> DbResult<(UnitRow, bool)> {
    let id = Id::new();
    let insert = Sql::new(
        "INSERT INTO units (id, org_id, serial_number, serial_key, part_id, revision_id,
                            batch_id, created_by_user_id, created_by_station_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (org_id, serial_key) DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(serial)
    .bind(ci_key(serial))
    .bind(part_id)
    .bind(revision_id)
    .bind(batch_id)
    .bind(by.user_id)
    .bind(by.station_id)
    .bind(Ts::now());
    let unit = UnitRow {
        id,
        part_id,
        revision_id,
        batch_id,
    };
    find_or_insert(tx, unit_by_serial(org_id, serial), insert, unit).await
}

/// Moves the unit to `revision_id` (and its part) and/or `batch_id` when they differ:
/// the last run wins.
pub(super) async fn update_unit(
    tx: &mut Tx,
    unit: &UnitRow,
    part_id: Id,
    revision_id: Id,
    batch_id: Option<Id>,
) -> DbResult<()> {
    if unit.part_id == part_id && unit.revision_id == revision_id && unit.batch_id == batch_id {
        return Ok(());
    }
    tx.execute(
        Sql::new("UPDATE units SET part_id = $1, revision_id = $2, batch_id = $3 WHERE id = $4")
            .bind(part_id)
            .bind(revision_id)
            .bind(batch_id)
            .bind(unit.id),
    )
    .await?;
    Ok(())
}

/// The member of the organization with this email (ci).
pub(super) async fn operator(tx: &mut Tx, org_id: Id, email: &str) -> DbResult<Id> {
    let found: Option<(Id,)> = tx
        .fetch_optional(
            Sql::new("SELECT id FROM users WHERE org_id = $1 AND email_key = $2")
                .bind(org_id)
                .bind(ci_key(email)),
        )
        .await?;
    found.map(|(id,)| id).ok_or_else(|| {
        StoreError::rejected_at(
            "operated_by",
            format!("No member of this organization has the email address {email}"),
        )
    })
}

/// The units named as sub-units, in request order without repeats. Each must exist
/// (404 naming the serial); none may be the run's unit or one of its ancestors (400).
pub(super) async fn sub_units(
    tx: &mut Tx,
    org_id: Id,
    unit_id: Id,
    serials: &[String],
) -> DbResult<Vec<Id>> {
    if serials.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<String> = Vec::new();
    for s in serials {
        let k = ci_key(s);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut q = Sql::new("SELECT id, serial_key FROM units WHERE org_id = ");
    q.push_bind(org_id)
        .push(" AND serial_key IN ")
        .push_tuple(keys.iter().cloned());
    let found: Vec<(Id, String)> = tx.fetch_all(q).await?;
    let ancestors = ancestors(tx, unit_id).await?;
    let mut ids = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let serial = serials
            .iter()
            .find(|s| &ci_key(s) == key)
            .map(String::as_str)
            .unwrap_or(key);
        let Some((id, _)) = found.iter().find(|(_, k)| k == key) else {
            return Err(StoreError::not_found(format!("Unit {serial} not found")));
        };
        let problem = if *id == unit_id {
            Some(format!("Unit {serial} cannot be a sub-unit of itself"))
        } else if ancestors.contains(id) {
            Some(format!(
                "Unit {serial} contains the run's unit: linking it as a sub-unit would create a cycle"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            let index = serials.iter().position(|s| &ci_key(s) == key).unwrap_or(i);
            return Err(StoreError::rejected_at(
                FieldPath::default().key("sub_units").index(index),
                message,
            ));
        }
        ids.push(*id);
    }
    Ok(ids)
}

/// The chain of parents above a unit.
async fn ancestors(tx: &mut Tx, unit_id: Id) -> DbResult<HashSet<Id>> {
    let mut seen = HashSet::new();
    let mut current = unit_id;
    // Parent chains are short; the bound only guards against a corrupt cycle.
    for _ in 0..10_000 {
        let parent: Option<(Option<Id>,)> = tx
            .fetch_optional(Sql::new("SELECT parent_id FROM units WHERE id = $1").bind(current))
            .await?;
        match parent.and_then(|p| p.0) {
            Some(p) if seen.insert(p) => current = p,
            _ => break,
        }
    }
    Ok(seen)
}

/// Makes `parent` the parent of every unit in `children` (removing them from any
/// previous parent).
pub(super) async fn adopt(tx: &mut Tx, parent: Id, children: &[Id]) -> DbResult<()> {
    if children.is_empty() {
        return Ok(());
    }
    // A stable order keeps concurrent runs from locking the same units in opposite order.
    let mut sorted = children.to_vec();
    sorted.sort();
    let mut q = Sql::new("UPDATE units SET parent_id = ");
    q.push_bind(parent).push(" WHERE id IN ").push_tuple(sorted);
    tx.execute(q).await?;
    Ok(())
}
