//! Revisions: the versions of a part (number unique ci within the part) that units are
//! built to, with an optional image and metadata.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use super::attachments::mark_linked;
use super::common::{creator_joins, CreatedBy, CreatorRow, CREATOR_COLUMNS};
use super::metadata::{self as meta_sql, MetaTable};
use super::parts::{count_phrase, part_id};
use super::{ci_key, Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::metadata::Metadata;

#[derive(Debug, Clone, FromRow)]
pub struct RevisionRow {
    pub id: Id,
    pub number: String,
    pub created_at: Ts,
    pub metadata: Option<Json<Value>>,
    pub image_attachment_id: Option<Id>,
    pub part_id: Id,
    pub part_number: String,
    pub part_name: String,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
}

#[derive(Debug, Clone, FromRow)]
pub struct RevisionUnitRow {
    pub id: Id,
    pub serial_number: String,
}

pub struct RevisionDetail {
    pub revision: RevisionRow,
    pub units: Vec<RevisionUnitRow>,
}

/// The image change of a revision update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageChange {
    Set(Id),
    Remove,
}

#[derive(Debug, Default)]
pub struct RevisionChanges {
    pub number: Option<String>,
    pub image: Option<ImageChange>,
    pub metadata: Option<Metadata>,
}

impl Db {
    /// Creates a revision of an existing part: 404 for an unknown part, 409 when the part
    /// already has that number (ci).
    pub async fn create_revision(
        &self,
        org_id: Id,
        part_number: &str,
        number: &str,
        metadata: Option<Value>,
        by: CreatedBy,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let part = part_id(&mut tx, org_id, part_number).await?;
        let id =
            insert_revision(&mut tx, org_id, (part, part_number), number, metadata, by).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A revision (ci on both numbers) with the units built to it.
    pub async fn revision(
        &self,
        org_id: Id,
        part_number: &str,
        number: &str,
    ) -> DbResult<RevisionDetail> {
        let mut r = self.read();
        let revision: RevisionRow = r
            .fetch_optional(
                Sql::new(
                    "SELECT rv.id, rv.number, rv.created_at, rv.metadata, rv.image_attachment_id,
                        p.id AS part_id, p.number AS part_number, p.name AS part_name, ",
                )
                .then(CREATOR_COLUMNS)
                .then(
                    "
                     FROM revisions rv JOIN parts p ON p.id = rv.part_id ",
                )
                .then(creator_joins!("rv"))
                .then(
                    "
                     WHERE p.org_id = $1 AND p.number_key = $2 AND rv.number_key = $3",
                )
                .bind(org_id)
                .bind(ci_key(part_number))
                .bind(ci_key(number)),
            )
            .await?
            .ok_or_else(|| revision_not_found(part_number, number))?;
        let units = r
            .fetch_all(
                Sql::new(
                    "SELECT id, serial_number FROM units WHERE revision_id = $1
                     ORDER BY created_at, id",
                )
                .bind(revision.id),
            )
            .await?;
        Ok(RevisionDetail { revision, units })
    }

    /// Renames a revision, sets or removes its image, patches its metadata.
    pub async fn update_revision(
        &self,
        org_id: Id,
        part_number: &str,
        number: &str,
        changes: RevisionChanges,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let (id, part, old_image) = find_revision(&mut tx, org_id, part_number, number).await?;
        if let Some(new_number) = &changes.number {
            let taken: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT id FROM revisions
                         WHERE part_id = $1 AND number_key = $2 AND id <> $3",
                    )
                    .bind(part)
                    .bind(ci_key(new_number))
                    .bind(id),
                )
                .await?;
            if taken.is_some() {
                return Err(revision_exists(new_number, part_number));
            }
            tx.execute(
                Sql::new("UPDATE revisions SET number = $1, number_key = $2 WHERE id = $3")
                    .bind(new_number.as_str())
                    .bind(ci_key(new_number))
                    .bind(id),
            )
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    revision_exists(new_number, part_number)
                } else {
                    e
                }
            })?;
        }
        if let Some(change) = changes.image {
            let new_image = match change {
                ImageChange::Set(image) => {
                    mark_linked(&mut tx, org_id, image).await?;
                    Some(image)
                }
                ImageChange::Remove => None,
            };
            tx.execute(
                Sql::new("UPDATE revisions SET image_attachment_id = $1 WHERE id = $2")
                    .bind(new_image)
                    .bind(id),
            )
            .await?;
            // The replaced image is no longer reachable: remove its file.
            if let Some(old) = old_image.filter(|old| Some(*old) != new_image) {
                delete_images(&mut tx, &[old]).await?;
            }
        }
        if let Some(m) = &changes.metadata {
            meta_sql::patch(&mut tx, MetaTable::Revisions, id, m, "metadata").await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes a revision and its image. Refused (409) while units or runs use it.
    pub async fn delete_revision(
        &self,
        org_id: Id,
        part_number: &str,
        number: &str,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let (id, _, image) = find_revision(&mut tx, org_id, part_number, number).await?;
        let (units,): (i64,) = tx
            .fetch_one(Sql::new("SELECT COUNT(*) FROM units WHERE revision_id = $1").bind(id))
            .await?;
        if units > 0 {
            return Err(StoreError::conflict(format!(
                "Revision {number} of part {part_number} cannot be deleted: {} it",
                count_phrase(units, "unit uses", "units use")
            )));
        }
        let (runs,): (i64,) = tx
            .fetch_one(Sql::new("SELECT COUNT(*) FROM runs WHERE revision_id = $1").bind(id))
            .await?;
        if runs > 0 {
            return Err(StoreError::conflict(format!(
                "Revision {number} of part {part_number} cannot be deleted: {} it",
                count_phrase(runs, "run references", "runs reference")
            )));
        }
        tx.execute(Sql::new("DELETE FROM revisions WHERE id = $1").bind(id))
            .await?;
        if let Some(image) = image {
            delete_images(&mut tx, &[image]).await?;
        }
        tx.commit().await?;
        Ok(id)
    }
}

/// Inserts a revision of `part` (id, number); 409 when the part already has the number
/// (ci).
pub async fn insert_revision(
    tx: &mut Tx,
    org_id: Id,
    part: (Id, &str),
    number: &str,
    metadata: Option<Value>,
    by: CreatedBy,
) -> DbResult<Id> {
    let id = Id::new();
    let n = tx
        .execute(
            Sql::new(
                "INSERT INTO revisions (id, org_id, part_id, number, number_key, metadata,
                    created_by_user_id, created_by_station_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(org_id)
            .bind(part.0)
            .bind(number)
            .bind(ci_key(number))
            .bind(metadata)
            .bind(by.user_id)
            .bind(by.station_id)
            .bind(Ts::now()),
        )
        .await?;
    if n == 0 {
        return Err(revision_exists(number, part.1));
    }
    Ok(id)
}

/// `(revision id, part id, image id)` of a revision addressed by numbers (ci), locked for
/// the rest of the transaction; 404 when the part or the revision is unknown.
async fn find_revision(
    tx: &mut Tx,
    org_id: Id,
    part_number: &str,
    number: &str,
) -> DbResult<(Id, Id, Option<Id>)> {
    let part = part_id(tx, org_id, part_number).await?;
    let lock = tx.dialect().row_lock();
    tx.fetch_optional(
        Sql::new(
            "SELECT id, part_id, image_attachment_id FROM revisions
             WHERE part_id = $1 AND number_key = $2",
        )
        .then(lock)
        .bind(part)
        .bind(ci_key(number)),
    )
    .await?
    .ok_or_else(|| revision_not_found(part_number, number))
}

/// Deletes image uploads no longer used: not linked to a run or unit and not the image
/// of any revision or station. Blobs and chunks go with them (FK cascade).
pub async fn delete_images(tx: &mut Tx, ids: &[Id]) -> DbResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new("DELETE FROM attachments WHERE id IN ");
    q.push_tuple(ids.iter().copied()).push(
        " AND run_id IS NULL AND unit_id IS NULL
          AND NOT EXISTS (SELECT 1 FROM revisions r WHERE r.image_attachment_id = attachments.id)
          AND NOT EXISTS (SELECT 1 FROM stations s WHERE s.image_attachment_id = attachments.id)",
    );
    tx.execute(q).await?;
    Ok(())
}

pub fn revision_not_found(part_number: &str, number: &str) -> StoreError {
    StoreError::not_found(format!(
        "Revision {number} not found for part {part_number}"
    ))
}

fn revision_exists(number: &str, part_number: &str) -> StoreError {
    StoreError::conflict(format!(
        "Revision {number} already exists for part {part_number}"
    ))
}
