//! Parts: part numbers (unique ci per organization) with a display name, metadata and
//! their revisions.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use super::common::{creator_joins, CreatedBy, CreatorRow, CREATOR_COLUMNS};
use super::metadata::{self as meta_sql, MetaTable};
use super::revisions::{delete_images, insert_revision};
use super::{ci_key, Db, Id, SortKey, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::metadata::{Condition, Metadata};
use crate::values::{contains_pattern, Page, SortOrder};

/// Who creates a row: `(created_by_user_id, created_by_station_id)`.

#[derive(Debug, Clone, FromRow)]
pub struct PartRow {
    pub id: Id,
    pub number: String,
    pub name: String,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub metadata: Option<Json<Value>>,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
}

/// A revision as part reads list it.
#[derive(Debug, Clone, FromRow)]
pub struct PartRevisionRow {
    pub part_id: Id,
    pub id: Id,
    pub number: String,
    pub created_at: Ts,
}

pub struct PartDetail {
    pub part: PartRow,
    pub revisions: Vec<PartRevisionRow>,
}

pub struct NewPart {
    pub number: String,
    pub name: String,
    pub revision_number: Option<String>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Default)]
pub struct PartFilter {
    pub search_query: Option<String>,
    /// Parts with runs under these procedures; `Some(empty)` matches nothing.
    pub procedure_ids: Option<Vec<Id>>,
    /// Metadata conditions (none = no filter).
    pub metadata: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartSort {
    Name,
    Number,
    #[default]
    CreatedAt,
}

#[derive(Debug, Default)]
pub struct PartChanges {
    pub new_number: Option<String>,
    pub name: Option<String>,
    pub metadata: Option<Metadata>,
}

/// What `PATCH /v2/parts/{number}` answers.
#[derive(Debug, Clone, FromRow)]
pub struct UpdatedPart {
    pub id: Id,
    pub number: String,
    pub name: String,
    pub updated_at: Ts,
}

/// What deleting a part removed.
pub struct DeletedPart {
    pub id: Id,
    pub revision_ids: Vec<Id>,
}

fn select_part() -> Sql {
    Sql::new("SELECT p.id, p.number, p.name, p.created_at, p.updated_at, p.metadata, ")
        .then(CREATOR_COLUMNS)
        .then(" FROM parts p")
        .then(creator_joins!("p"))
}

/// "1 unit uses" / "3 units use".
pub fn count_phrase(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Db {
    /// Creates a part (and its first revision when named). 409 when the number is taken.
    pub async fn create_part(&self, org_id: Id, by: CreatedBy, new: NewPart) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let id = Id::new();
        let now = Ts::now();
        let n = tx
            .execute(
                Sql::new(
                    "INSERT INTO parts (id, org_id, number, number_key, name, metadata,
                        created_by_user_id, created_by_station_id, created_at, updated_at,
                        name_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(org_id)
                .bind(&new.number)
                .bind(ci_key(&new.number))
                .bind(&new.name)
                .bind(new.metadata)
                .bind(by.user_id)
                .bind(by.station_id)
                .bind(now)
                .bind(ci_key(&new.name)),
            )
            .await?;
        if n == 0 {
            return Err(part_exists(&new.number));
        }
        if let Some(rev) = &new.revision_number {
            insert_revision(&mut tx, org_id, (id, &new.number), rev, None, by).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A part by number (ci) with its revisions, oldest first.
    pub async fn part(&self, org_id: Id, number: &str) -> DbResult<PartDetail> {
        let mut r = self.read();
        let part: PartRow = r
            .fetch_optional(
                select_part()
                    .then(" WHERE p.org_id = $1 AND p.number_key = $2")
                    .bind(org_id)
                    .bind(ci_key(number)),
            )
            .await?
            .ok_or_else(part_not_found)?;
        let revisions = r.fetch_all(revisions_of_sql(&[part.id])).await?;
        Ok(PartDetail { part, revisions })
    }

    /// A page of parts with their revisions.
    pub async fn list_parts(
        &self,
        org_id: Id,
        filter: &PartFilter,
        sort: PartSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<(Vec<PartRow>, Vec<PartRevisionRow>)> {
        let dialect = self.dialect();
        let mut q = select_part();
        q.push(" WHERE p.org_id = ").push_bind(org_id);
        if let Some(s) = &filter.search_query {
            let pat = contains_pattern(s);
            q.push(" AND (p.number_key LIKE ")
                .push_bind(pat.as_str())
                .push(" ESCAPE '\\' OR p.name_key LIKE ")
                .push_bind(pat.as_str())
                .push(
                    " ESCAPE '\\' OR EXISTS (SELECT 1 FROM revisions srv
                       WHERE srv.part_id = p.id AND srv.number_key LIKE ",
                )
                .push_bind(pat.as_str())
                .push(" ESCAPE '\\'))");
        }
        if let Some(ids) = &filter.procedure_ids {
            if ids.is_empty() {
                q.push(" AND 1 = 0");
            } else {
                // The part the unit was on when it was tested: the run's revision.
                q.push(
                    " AND p.id IN (SELECT prv.part_id FROM runs r
                       JOIN revisions prv ON prv.id = r.revision_id
                       WHERE r.org_id = ",
                )
                .push_bind(org_id)
                .push(" AND r.procedure_id IN ")
                .push_tuple(ids.iter().copied())
                .push(")");
            }
        }
        meta_sql::push_filter(&mut q, dialect, "p.metadata", &filter.metadata);
        let key = match sort {
            PartSort::Name => SortKey::text("p.name_key"),
            PartSort::Number => SortKey::text("p.number_key"),
            PartSort::CreatedAt => SortKey::plain("p.created_at"),
        };
        q.order_and_page(dialect, key, "p.id", order, page);
        let mut r = self.read();
        let parts: Vec<PartRow> = r.fetch_all(q).await?;
        let ids: Vec<Id> = parts.iter().map(|p| p.id).collect();
        let revisions = if ids.is_empty() {
            Vec::new()
        } else {
            r.fetch_all(revisions_of_sql(&ids)).await?
        };
        Ok((parts, revisions))
    }

    /// Renames / renumbers a part and patches its metadata.
    pub async fn update_part(
        &self,
        org_id: Id,
        number: &str,
        changes: PartChanges,
    ) -> DbResult<UpdatedPart> {
        let mut tx = self.begin().await?;
        let id = part_id(&mut tx, org_id, number).await?;
        if let Some(new_number) = &changes.new_number {
            let taken: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT id FROM parts WHERE org_id = $1 AND number_key = $2 AND id <> $3",
                    )
                    .bind(org_id)
                    .bind(ci_key(new_number))
                    .bind(id),
                )
                .await?;
            if taken.is_some() {
                return Err(part_exists(new_number));
            }
        }
        tx.execute(
            Sql::new(
                "UPDATE parts SET number = COALESCE($1, number),
                    number_key = COALESCE($2, number_key),
                    name = COALESCE($3, name), name_key = COALESCE($6, name_key),
                    updated_at = $4
                 WHERE id = $5",
            )
            .bind(changes.new_number.as_deref())
            .bind(changes.new_number.as_deref().map(ci_key))
            .bind(changes.name.as_deref())
            .bind(Ts::now())
            .bind(id)
            .bind(changes.name.as_deref().map(ci_key)),
        )
        .await
        .map_err(|e| match &changes.new_number {
            Some(n) if e.is_unique_violation() => part_exists(n),
            _ => e,
        })?;
        if let Some(m) = &changes.metadata {
            meta_sql::patch(&mut tx, MetaTable::Parts, id, m, "metadata").await?;
        }
        let updated: UpdatedPart = tx
            .fetch_one(
                Sql::new("SELECT id, number, name, updated_at FROM parts WHERE id = $1").bind(id),
            )
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a part with its revisions and their images. Refused (409) while units or
    /// runs use any of its revisions: lab records are never deleted implicitly.
    pub async fn delete_part(&self, org_id: Id, number: &str) -> DbResult<DeletedPart> {
        let mut tx = self.begin().await?;
        let id = part_id(&mut tx, org_id, number).await?;
        let lock = tx.dialect().row_lock();
        let revisions: Vec<(Id, Option<Id>)> = tx
            .fetch_all(
                Sql::new(
                    "SELECT id, image_attachment_id FROM revisions WHERE part_id = $1
                     ORDER BY created_at, id",
                )
                .then(lock)
                .bind(id),
            )
            .await?;
        let (units,): (i64,) = tx
            .fetch_one(
                Sql::new(
                    "SELECT COUNT(*) FROM units WHERE part_id = $1
                        OR revision_id IN (SELECT id FROM revisions WHERE part_id = $1)",
                )
                .bind(id),
            )
            .await?;
        if units > 0 {
            return Err(StoreError::conflict(format!(
                "Part {number} cannot be deleted: {} its revisions",
                count_phrase(units, "unit uses", "units use")
            )));
        }
        let (runs,): (i64,) = tx
            .fetch_one(
                Sql::new(
                    "SELECT COUNT(*) FROM runs
                     WHERE revision_id IN (SELECT id FROM revisions WHERE part_id = $1)",
                )
                .bind(id),
            )
            .await?;
        if runs > 0 {
            return Err(StoreError::conflict(format!(
                "Part {number} cannot be deleted: {} its revisions",
                count_phrase(runs, "run references", "runs reference")
            )));
        }
        tx.execute(Sql::new("DELETE FROM parts WHERE id = $1").bind(id))
            .await?;
        let images: Vec<Id> = revisions.iter().filter_map(|r| r.1).collect();
        delete_images(&mut tx, &images).await?;
        tx.commit().await?;
        Ok(DeletedPart {
            id,
            revision_ids: revisions.into_iter().map(|r| r.0).collect(),
        })
    }
}

/// The id of the organization's part numbered `number` (ci), locked for the rest of the
/// transaction; 404 otherwise.
pub async fn part_id(tx: &mut Tx, org_id: Id, number: &str) -> DbResult<Id> {
    let lock = tx.dialect().row_lock();
    tx.fetch_optional::<(Id,)>(
        Sql::new("SELECT id FROM parts WHERE org_id = $1 AND number_key = $2")
            .then(lock)
            .bind(org_id)
            .bind(ci_key(number)),
    )
    .await?
    .map(|r| r.0)
    .ok_or_else(part_not_found)
}

fn revisions_of_sql(part_ids: &[Id]) -> Sql {
    let mut q = Sql::new("SELECT part_id, id, number, created_at FROM revisions WHERE part_id IN ");
    q.push_tuple(part_ids.iter().copied())
        .push(" ORDER BY created_at, id");
    q
}

pub fn part_not_found() -> StoreError {
    StoreError::not_found("Part not found")
}

fn part_exists(number: &str) -> StoreError {
    StoreError::conflict(format!("Part with number {number} already exists"))
}
