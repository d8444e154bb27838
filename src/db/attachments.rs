//! Attachments (uploaded files) and their links to runs and units.
//!
//! An attachment row is created by an upload initialization; linking sets its `run_id` or
//! `unit_id` (or makes it a revision/station image) and stamps `linked_at`. Bytes live in
//! `blobs` / `blob_chunks` (see the blob functions); deleting a run or unit cascades to
//! its attachments, their blobs and chunks.

use sqlx::FromRow;

use super::{Db, Id, Sql, Ts, Tx};
use crate::error::{ApiError, ApiResult};

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
    pub async fn attachments_of_runs(&self, run_ids: &[Id]) -> ApiResult<Vec<AttachmentRow>> {
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
    pub async fn attachments_of_unit(&self, unit_id: Id) -> ApiResult<Vec<AttachmentRow>> {
        self.read()
            .fetch_all(
                Sql::new(format!(
                    "{SELECT_ATTACHMENT} WHERE unit_id = $1 ORDER BY created_at, id"
                ))
                .bind(unit_id),
            )
            .await
    }
}

/// Links uploads of the organization to a run or unit. Every id must name an upload of
/// the caller's organization (404 otherwise, naming the id); re-linking an upload moves it.
pub async fn link_uploads(
    tx: &mut Tx,
    org_id: Id,
    target: LinkTarget,
    ids: &[Id],
) -> ApiResult<()> {
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
            return Err(ApiError::not_found(format!("Upload {id} not found")));
        }
    }
    Ok(())
}

/// Marks an upload of the organization as used (a revision or station image, an imported
/// report) so the unlinked-upload sweep keeps it. 404 when the upload does not exist.
pub async fn mark_linked(tx: &mut Tx, org_id: Id, id: Id) -> ApiResult<()> {
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
        return Err(ApiError::not_found(format!("Upload {id} not found")));
    }
    Ok(())
}
