//! Attachments (uploaded files) and their links to runs and units.
//!
//! An attachment row is created by an upload initialization (BEHAVIOR.md §10), or
//! directly linked to a run or unit (§1.7, §2.7); linking sets its `run_id` or `unit_id`
//! (or makes it a revision/station image) and stamps `linked_at`. Bytes live in `blobs` /
//! `blob_chunks` (see `db::blobs`); deleting an attachment — directly, or by deleting its
//! run, unit, procedure or organization — cascades to its blobs and chunks.
//!
//! Lifecycle: an upload that is neither linked nor finalized within
//! `--unlinked-upload-ttl` is deleted by `sweep_unlinked_uploads`. A finalized upload is
//! kept (its download URL was handed out); so is anything linked.

use std::time::Duration;

use sqlx::FromRow;

use super::blobs::cutoff;
use super::common::CreatedBy;
use super::{ci_key, Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};

/// An attachment as run and unit reads list it.
#[derive(Debug, Clone, FromRow)]
pub struct AttachmentRow {
    pub id: Id,
    pub name: String,
    pub size: Option<i64>,
    pub content_type: Option<String>,
    pub is_report: bool,
    pub run_id: Option<Id>,
    pub unit_id: Option<Id>,
    /// True once bytes were stored: only then is there something to download.
    pub has_bytes: bool,
}

/// What an upload gets linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTarget {
    Run(Id),
    Unit(Id),
}

const SELECT_ATTACHMENT: &str = "SELECT id, name, size, content_type, is_report, run_id, unit_id,
        (blob_id IS NOT NULL) AS has_bytes
    FROM attachments";

impl Db {
    /// Attachments of the given runs, oldest first (one query for any number of runs).
    pub async fn attachments_of_runs(&self, run_ids: &[Id]) -> DbResult<Vec<AttachmentRow>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(SELECT_ATTACHMENT);
        q.push(" WHERE run_id IN ")
            .push_tuple(run_ids.iter().copied())
            .push(" ORDER BY created_at, id");
        self.read().fetch_all(q).await
    }

    /// Attachments of a unit, oldest first.
    pub async fn attachments_of_unit(&self, unit_id: Id) -> DbResult<Vec<AttachmentRow>> {
        self.read()
            .fetch_all(
                Sql::new(SELECT_ATTACHMENT)
                    .then(" WHERE unit_id = $1 ORDER BY created_at, id")
                    .bind(unit_id),
            )
            .await
    }
}

/// Links uploads of the organization to a run or unit. The run or unit must be the
/// organization's (404 "Run not found" / "Unit not found" otherwise) and every id must
/// name an upload of the organization (404 naming the id); re-linking an upload moves it.
pub async fn link_uploads(tx: &mut Tx, org_id: Id, target: LinkTarget, ids: &[Id]) -> DbResult<()> {
    // The target must be the organization's too, whatever the caller checked before.
    check_target(tx, org_id, target).await?;
    let (run_id, unit_id) = match target {
        LinkTarget::Run(id) => (Some(id), None),
        LinkTarget::Unit(id) => (None, Some(id)),
    };
    for id in ids {
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE attachments SET run_id = $1, unit_id = $2,
                        linked_at = COALESCE(linked_at, $3)
                     WHERE org_id = $4 AND id = $5",
                )
                .bind(run_id)
                .bind(unit_id)
                .bind(Ts::now())
                .bind(org_id)
                .bind(*id),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found(format!("Upload {id} not found")));
        }
    }
    Ok(())
}

/// Marks an upload of the organization as used (a revision or station image, an imported
/// report) so the unlinked-upload sweep keeps it. 404 when the upload does not exist.
pub async fn mark_linked(tx: &mut Tx, org_id: Id, id: Id) -> DbResult<()> {
    let n = tx
        .execute(
            Sql::new(
                "UPDATE attachments SET linked_at = COALESCE(linked_at, $1)
                 WHERE org_id = $2 AND id = $3",
            )
            .bind(Ts::now())
            .bind(org_id)
            .bind(id),
        )
        .await?;
    if n == 0 {
        return Err(StoreError::not_found(format!("Upload {id} not found")));
    }
    Ok(())
}

/// 404 unless the run or unit belongs to the organization.
async fn check_target(tx: &mut Tx, org_id: Id, target: LinkTarget) -> DbResult<()> {
    let (sql, missing) = match target {
        LinkTarget::Run(id) => (
            Sql::new("SELECT id FROM runs WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id),
            "Run not found",
        ),
        LinkTarget::Unit(id) => (
            Sql::new("SELECT id FROM units WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id),
            "Unit not found",
        ),
    };
    match tx.fetch_optional::<(Id,)>(sql).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found(missing)),
    }
}

/// The id of the organization's unit with this serial number (case-insensitive).
async fn unit_by_serial(tx: &mut Tx, org_id: Id, serial_number: &str) -> DbResult<Id> {
    tx.fetch_optional::<(Id,)>(
        Sql::new("SELECT id FROM units WHERE org_id = $1 AND serial_key = $2")
            .bind(org_id)
            .bind(ci_key(serial_number.trim())),
    )
    .await?
    .map(|(id,)| id)
    .ok_or_else(|| StoreError::not_found(format!("Unit {serial_number} not found")))
}

async fn insert_upload(
    tx: &mut Tx,
    org_id: Id,
    created_by: CreatedBy,
    name: &str,
    target: Option<LinkTarget>,
) -> DbResult<Id> {
    let id = Id::new();
    let now = Ts::now();
    let (run_id, unit_id) = match target {
        Some(LinkTarget::Run(r)) => (Some(r), None),
        Some(LinkTarget::Unit(u)) => (None, Some(u)),
        None => (None, None),
    };
    tx.execute(
        Sql::new(
            "INSERT INTO attachments (id, org_id, name, run_id, unit_id, created_by_user_id,
                                      created_by_station_id, created_at, linked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(org_id)
        .bind(name)
        .bind(run_id)
        .bind(unit_id)
        .bind(created_by.user_id)
        .bind(created_by.station_id)
        .bind(now)
        .bind(target.map(|_| now)),
    )
    .await?;
    Ok(id)
}

impl Db {
    /// A new upload, not linked to anything yet (`attachments.initialize`).
    pub async fn create_upload(
        &self,
        org_id: Id,
        created_by: CreatedBy,
        name: &str,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let id = insert_upload(&mut tx, org_id, created_by, name, None).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A new upload linked to the organization's run `run_id` (404 "Run not found").
    pub async fn create_run_upload(
        &self,
        org_id: Id,
        run_id: Id,
        created_by: CreatedBy,
        name: &str,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let target = LinkTarget::Run(run_id);
        check_target(&mut tx, org_id, target).await?;
        let id = insert_upload(&mut tx, org_id, created_by, name, Some(target)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A new upload linked to the organization's unit with this serial number
    /// (case-insensitive; 404 when there is none).
    pub async fn create_unit_upload(
        &self,
        org_id: Id,
        serial_number: &str,
        created_by: CreatedBy,
        name: &str,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let unit_id = unit_by_serial(&mut tx, org_id, serial_number).await?;
        let target = Some(LinkTarget::Unit(unit_id));
        let id = insert_upload(&mut tx, org_id, created_by, name, target).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stamps the upload finalized (the size, digest and content type were recorded when
    /// its bytes were stored). Idempotent: finalizing again changes nothing. 404 for an
    /// unknown upload (or another organization's); 400 when no bytes were uploaded yet.
    pub async fn finalize_upload(&self, org_id: Id, id: Id) -> DbResult<()> {
        let mut tx = self.begin().await?;
        let row: Option<(Option<Id>,)> = tx
            .fetch_optional(
                Sql::new("SELECT blob_id FROM attachments WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id),
            )
            .await?;
        match row {
            None => return Err(StoreError::not_found("Upload not found")),
            Some((None,)) => {
                return Err(StoreError::rejected(format!(
                    "Upload {id} has no file yet: PUT the bytes to its upload_url, then finalize"
                )))
            }
            Some((Some(_),)) => {}
        }
        tx.execute(
            Sql::new(
                "UPDATE attachments SET finalized_at = COALESCE(finalized_at, $1) WHERE id = $2",
            )
            .bind(Ts::now())
            .bind(id),
        )
        .await?;
        tx.commit().await
    }

    /// Deletes the organization's uploads among `ids` with their bytes, wherever they are
    /// linked; returns the ids deleted, in the order asked. 404 when none exists.
    pub async fn delete_uploads(&self, org_id: Id, ids: &[Id]) -> DbResult<Vec<Id>> {
        if ids.is_empty() {
            return Err(StoreError::not_found("Attachment not found"));
        }
        let mut tx = self.begin().await?;
        let mut q = Sql::new("DELETE FROM attachments WHERE org_id = ");
        q.push_bind(org_id).push(" AND id IN ");
        q.push_tuple(ids.iter().copied()).push(" RETURNING id");
        let deleted = in_request_order(ids, tx.fetch_all(q).await?);
        if deleted.is_empty() {
            return Err(StoreError::not_found("Attachment not found"));
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes the attachments among `ids` that belong to the unit with this serial
    /// number, with their bytes; returns the ids deleted. 404 for an unknown unit, and
    /// when none of the ids is an attachment of the unit.
    pub async fn delete_unit_attachments(
        &self,
        org_id: Id,
        serial_number: &str,
        ids: &[Id],
    ) -> DbResult<Vec<Id>> {
        let mut tx = self.begin().await?;
        let unit_id = unit_by_serial(&mut tx, org_id, serial_number).await?;
        if ids.is_empty() {
            return Err(StoreError::not_found(format!(
                "Attachment not found on unit {serial_number}"
            )));
        }
        let mut q = Sql::new("DELETE FROM attachments WHERE org_id = ");
        q.push_bind(org_id)
            .push(" AND unit_id = ")
            .push_bind(unit_id)
            .push(" AND id IN ");
        q.push_tuple(ids.iter().copied()).push(" RETURNING id");
        let deleted = in_request_order(ids, tx.fetch_all(q).await?);
        if deleted.is_empty() {
            return Err(StoreError::not_found(format!(
                "Attachment not found on unit {serial_number}"
            )));
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// One pass of the background sweep: partial blobs idle for `STALE_WRITING`, then
    /// uploads never linked nor finalized within `unlinked_ttl`.
    pub async fn sweep_uploads(&self, unlinked_ttl: Duration) -> DbResult<()> {
        let blobs = self.sweep_stale_blobs(super::blobs::STALE_WRITING).await?;
        let uploads = self.sweep_unlinked_uploads(unlinked_ttl).await?;
        if blobs + uploads > 0 {
            tracing::info!(
                partial_blobs = blobs,
                unlinked_uploads = uploads,
                "deleted abandoned uploads"
            );
        }
        Ok(())
    }

    /// Deletes uploads created more than `older_than` ago that were never linked to
    /// anything nor finalized, with their bytes. Works in small batches so the sweep never
    /// holds the writer long. Returns how many uploads were deleted.
    pub async fn sweep_unlinked_uploads(&self, older_than: Duration) -> DbResult<u64> {
        const BATCH: i64 = 100;
        let cutoff = cutoff(older_than);
        let mut total = 0;
        loop {
            let mut tx = self.begin().await?;
            let ids: Vec<(Id,)> = tx
                .fetch_all(
                    Sql::new(
                        "SELECT id FROM attachments
                         WHERE linked_at IS NULL AND finalized_at IS NULL AND created_at < $1
                         ORDER BY created_at LIMIT $2",
                    )
                    .bind(cutoff)
                    .bind(BATCH),
                )
                .await?;
            if ids.is_empty() {
                return Ok(total);
            }
            let mut q = Sql::new("DELETE FROM attachments WHERE id IN ");
            q.push_tuple(ids.iter().map(|r| r.0))
                // Linked or finalized since the SELECT (Postgres): keep it.
                .push(" AND linked_at IS NULL AND finalized_at IS NULL");
            total += tx.execute(q).await?;
            tx.commit().await?;
            if (ids.len() as i64) < BATCH {
                return Ok(total);
            }
        }
    }
}

/// The ids `RETURNING` gave back, in the order the request named them.
fn in_request_order(requested: &[Id], returned: Vec<(Id,)>) -> Vec<Id> {
    let returned: std::collections::HashSet<Id> = returned.into_iter().map(|r| r.0).collect();
    let mut seen = std::collections::HashSet::new();
    requested
        .iter()
        .copied()
        .filter(|id| returned.contains(id) && seen.insert(*id))
        .collect()
}
