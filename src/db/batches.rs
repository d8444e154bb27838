//! Batches: production lots (number unique ci per organization) that units belong to.

use sqlx::FromRow;

use super::common::{creator_joins, CreatedBy, CreatorRow, CREATOR_COLUMNS};
use super::{ci_key, retry_write, Db, Id, SortKey, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::values::{contains_pattern, Page, SortOrder};

#[derive(Debug, Clone, FromRow)]
pub struct BatchRow {
    pub id: Id,
    pub number: String,
    pub created_at: Ts,
    pub unit_count: i64,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
}

/// A unit of a batch, with its part and revision.
#[derive(Debug, Clone, FromRow)]
pub struct BatchUnitRow {
    pub id: Id,
    pub serial_number: String,
    pub created_at: Ts,
    pub part_id: Id,
    pub part_number: String,
    pub part_name: String,
    pub revision_id: Id,
    pub revision_number: String,
}

pub struct BatchDetail {
    pub batch: BatchRow,
    pub units: Vec<BatchUnitRow>,
}

#[derive(Debug, Default)]
pub struct BatchFilter {
    /// `Some(empty)` matches nothing.
    pub ids: Option<Vec<Id>>,
    pub numbers: Vec<String>,
    pub created_after: Option<Ts>,
    pub created_before: Option<Ts>,
    pub search_query: Option<String>,
    pub part_numbers: Vec<String>,
    pub revision_numbers: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BatchSort {
    Number,
    #[default]
    CreatedAt,
}

fn select_batch() -> Sql {
    Sql::new(
        "SELECT b.id, b.number, b.created_at,
            (SELECT COUNT(*) FROM units bu WHERE bu.batch_id = b.id) AS unit_count, ",
    )
    .then(CREATOR_COLUMNS)
    .then(" FROM batches b")
    .then(creator_joins!("b"))
}

impl Db {
    /// Creates a batch; 409 when the number is taken (ci).
    pub async fn create_batch(&self, org_id: Id, by: CreatedBy, number: &str) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let id = Id::new();
        let n = tx
            .execute(
                Sql::new(
                    "INSERT INTO batches (id, org_id, number, number_key,
                        created_by_user_id, created_by_station_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(org_id)
                .bind(number)
                .bind(ci_key(number))
                .bind(by.user_id)
                .bind(by.station_id)
                .bind(Ts::now()),
            )
            .await?;
        if n == 0 {
            return Err(batch_exists(number));
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A batch by number (ci) with its units, oldest first.
    pub async fn batch(&self, org_id: Id, number: &str) -> DbResult<BatchDetail> {
        let mut r = self.read();
        let batch: BatchRow = r
            .fetch_optional(
                select_batch()
                    .then(" WHERE b.org_id = $1 AND b.number_key = $2")
                    .bind(org_id)
                    .bind(ci_key(number)),
            )
            .await?
            .ok_or_else(|| batch_not_found(number))?;
        let units = r
            .fetch_all(
                Sql::new(
                    "SELECT u.id, u.serial_number, u.created_at,
                        p.id AS part_id, p.number AS part_number, p.name AS part_name,
                        rv.id AS revision_id, rv.number AS revision_number
                     FROM units u JOIN parts p ON p.id = u.part_id
                     JOIN revisions rv ON rv.id = u.revision_id
                     WHERE u.batch_id = $1 ORDER BY u.created_at, u.id",
                )
                .bind(batch.id),
            )
            .await?;
        Ok(BatchDetail { batch, units })
    }

    pub async fn list_batches(
        &self,
        org_id: Id,
        f: &BatchFilter,
        sort: BatchSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<Vec<BatchRow>> {
        let mut q = select_batch();
        q.push(" WHERE b.org_id = ").push_bind(org_id);
        if let Some(ids) = &f.ids {
            if ids.is_empty() {
                q.push(" AND 1 = 0");
            } else {
                q.push(" AND b.id IN ").push_tuple(ids.iter().copied());
            }
        }
        if !f.numbers.is_empty() {
            q.push(" AND b.number_key IN ")
                .push_tuple(f.numbers.iter().map(|n| ci_key(n)));
        }
        if let Some(t) = f.created_after {
            q.push(" AND b.created_at >= ").push_bind(t);
        }
        if let Some(t) = f.created_before {
            q.push(" AND b.created_at <= ").push_bind(t);
        }
        if let Some(s) = &f.search_query {
            q.push(" AND b.number_key LIKE ")
                .push_bind(contains_pattern(s))
                .push(" ESCAPE '\\'");
        }
        if !f.part_numbers.is_empty() {
            q.push(
                " AND EXISTS (SELECT 1 FROM units fu JOIN parts fp ON fp.id = fu.part_id
                   WHERE fu.batch_id = b.id AND fp.number_key IN ",
            )
            .push_tuple(f.part_numbers.iter().map(|n| ci_key(n)))
            .push(")");
        }
        if !f.revision_numbers.is_empty() {
            q.push(
                " AND EXISTS (SELECT 1 FROM units ru JOIN revisions rrv ON rrv.id = ru.revision_id
                   WHERE ru.batch_id = b.id AND rrv.number_key IN ",
            )
            .push_tuple(f.revision_numbers.iter().map(|n| ci_key(n)))
            .push(")");
        }
        let key = match sort {
            BatchSort::Number => SortKey::text("b.number_key"),
            BatchSort::CreatedAt => SortKey::plain("b.created_at"),
        };
        q.order_and_page(self.dialect(), key, "b.id", order, page);
        self.read().fetch_all(q).await
    }

    /// Renumbers a batch; 409 when another batch has the new number (ci).
    pub async fn renumber_batch(&self, org_id: Id, number: &str, new_number: &str) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let id = batch_id(&mut tx, org_id, number).await?;
        let taken: Option<(Id,)> = tx
            .fetch_optional(
                Sql::new(
                    "SELECT id FROM batches WHERE org_id = $1 AND number_key = $2 AND id <> $3",
                )
                .bind(org_id)
                .bind(ci_key(new_number))
                .bind(id),
            )
            .await?;
        if taken.is_some() {
            return Err(batch_exists(new_number));
        }
        tx.execute(
            Sql::new("UPDATE batches SET number = $1, number_key = $2 WHERE id = $3")
                .bind(new_number)
                .bind(ci_key(new_number))
                .bind(id),
        )
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                batch_exists(new_number)
            } else {
                e
            }
        })?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes a batch. Its units (and runs) stay and lose the batch (FK `SET NULL`).
    pub async fn delete_batch(&self, org_id: Id, number: &str) -> DbResult<Id> {
        retry_write(|| self.delete_batch_once(org_id, number)).await
    }

    async fn delete_batch_once(&self, org_id: Id, number: &str) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let id = batch_id(&mut tx, org_id, number).await?;
        tx.execute(Sql::new("DELETE FROM batches WHERE id = $1").bind(id))
            .await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// The id of the organization's batch numbered `number` (ci); 404 otherwise.
pub async fn batch_id(tx: &mut Tx, org_id: Id, number: &str) -> DbResult<Id> {
    tx.fetch_optional::<(Id,)>(
        Sql::new("SELECT id FROM batches WHERE org_id = $1 AND number_key = $2")
            .bind(org_id)
            .bind(ci_key(number)),
    )
    .await?
    .map(|r| r.0)
    .ok_or_else(|| batch_not_found(number))
}

pub fn batch_not_found(number: &str) -> StoreError {
    StoreError::not_found(format!("Batch {number} not found"))
}

fn batch_exists(number: &str) -> StoreError {
    StoreError::conflict(format!("Batch with number {number} already exists"))
}
