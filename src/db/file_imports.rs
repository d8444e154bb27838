//! Structured imports that write a file's runs in batches (`file_imports` and
//! `file_import_runs`, migration 0004): which runs a file produced, in file order, and
//! the claim that keeps two imports of the same bytes (per organization) from running
//! at once.
//!
//! Life of an import: `claim_file_import` inserts an `importing` row (the unique partial
//! index on `(org_id, sha256)` makes it a claim); each batch of runs is written in its
//! own transaction together with its `file_import_runs` rows and a heartbeat
//! (`runs::create`); `finish_file_import` marks it `done` and links the upload as the
//! report of the file's first run; `abandon_file_import` deletes the runs written so far
//! and the row. A claim whose heartbeat is older than `STALE_IMPORT` belongs to a
//! process that died: the next claim of the same bytes deletes its runs and takes over.

use std::time::Duration;

use sqlx::FromRow;

use super::blobs::cutoff;
use super::{Db, Dialect, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};

/// An `importing` claim without a heartbeat for this long is abandoned.
pub const STALE_IMPORT: Duration = Duration::from_secs(5 * 60);

/// Ids per `IN (…)` list when deleting an import's runs.
const DELETE_CHUNK: usize = 500;

/// An upload's stored file, without its bytes.
#[derive(Debug, Clone, FromRow)]
pub struct UploadMeta {
    pub name: String,
    pub blob_id: Option<Id>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
}

/// What claiming a file's import found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This import may write the file's runs (the import's id).
    Claimed(Id),
    /// Another import of the same bytes is running.
    Busy,
    /// The bytes were imported (and some of their runs survive), and duplicates are not
    /// wanted.
    Done,
}

#[derive(FromRow)]
struct ImportRun {
    import_id: Id,
    run_id: Id,
}

impl Db {
    /// The organization's upload `id` (its name and stored blob), or `None`.
    pub async fn upload_meta(&self, org_id: Id, id: Id) -> DbResult<Option<UploadMeta>> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT name, blob_id, size, sha256 FROM attachments
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id)
                .bind(id),
            )
            .await
    }

    /// The surviving runs of the first completed import of these bytes, in file order;
    /// empty when there is none (or all its runs were deleted).
    pub async fn runs_of_file_import(&self, org_id: Id, sha256: &str) -> DbResult<Vec<Id>> {
        let rows: Vec<ImportRun> = self
            .read()
            .fetch_all(
                Sql::new(
                    "SELECT r.import_id, r.run_id FROM file_import_runs r
                     JOIN file_imports f ON f.id = r.import_id
                     WHERE f.org_id = $1 AND f.sha256 = $2 AND f.state = 'done'
                     ORDER BY f.created_at, f.id, r.position",
                )
                .bind(org_id)
                .bind(sha256),
            )
            .await?;
        let first = rows.first().map(|r| r.import_id);
        Ok(rows
            .into_iter()
            .filter(|r| Some(r.import_id) == first)
            .map(|r| r.run_id)
            .collect())
    }

    /// Claims the import of upload `upload_id` (content `sha256`); see `Claim`. Takes
    /// over a stale claim (deleting its runs). Marks the upload as linked so the
    /// unlinked-upload sweep leaves it alone while it is read.
    pub async fn claim_file_import(
        &self,
        org_id: Id,
        upload_id: Id,
        sha256: &str,
        importer: &str,
        allow_duplicate: bool,
    ) -> DbResult<Claim> {
        let mut tx = self.begin().await?;
        lock_file(&mut tx, org_id, sha256).await?;
        if !allow_duplicate {
            let done: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT r.run_id FROM file_import_runs r
                         JOIN file_imports f ON f.id = r.import_id
                         WHERE f.org_id = $1 AND f.sha256 = $2 AND f.state = 'done' LIMIT 1",
                    )
                    .bind(org_id)
                    .bind(sha256),
                )
                .await?;
            if done.is_some() {
                return Ok(Claim::Done);
            }
        }
        let stale: Option<(Id,)> = tx
            .fetch_optional(
                Sql::new(
                    "SELECT id FROM file_imports WHERE org_id = $1 AND sha256 = $2
                       AND state = 'importing' AND heartbeat_at < $3",
                )
                .bind(org_id)
                .bind(sha256)
                .bind(cutoff(STALE_IMPORT)),
            )
            .await?;
        if let Some((stale,)) = stale {
            delete_import(&mut tx, org_id, stale).await?;
        }
        let id = Id::new();
        let now = Ts::now();
        let inserted = tx
            .execute(
                Sql::new(
                    "INSERT INTO file_imports
                        (id, org_id, upload_id, sha256, importer, state, created_at, heartbeat_at)
                     VALUES ($1, $2, $3, $4, $5, 'importing', $6, $6)
                     ON CONFLICT (org_id, sha256) WHERE state = 'importing' DO NOTHING",
                )
                .bind(id)
                .bind(org_id)
                .bind(upload_id)
                .bind(sha256)
                .bind(importer)
                .bind(now),
            )
            .await?;
        if inserted == 0 {
            return Ok(Claim::Busy);
        }
        super::attachments::mark_linked(&mut tx, org_id, upload_id).await?;
        tx.commit().await?;
        Ok(Claim::Claimed(id))
    }

    /// Completes import `import_id`: from now on its runs answer duplicate imports. The
    /// upload becomes the report of `first_run` unless it is linked elsewhere already.
    pub async fn finish_file_import(
        &self,
        org_id: Id,
        import_id: Id,
        upload_id: Id,
        first_run: Id,
        sha256: &str,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        lock_file(&mut tx, org_id, sha256).await?;
        tx.execute(
            Sql::new(
                "UPDATE file_imports SET state = 'done', heartbeat_at = $1
                 WHERE org_id = $2 AND id = $3",
            )
            .bind(Ts::now())
            .bind(org_id)
            .bind(import_id),
        )
        .await?;
        tx.execute(
            Sql::new(
                "UPDATE attachments SET run_id = $1, is_report = TRUE,
                    linked_at = COALESCE(linked_at, $2)
                 WHERE org_id = $3 AND id = $4 AND run_id IS NULL AND unit_id IS NULL
                   AND NOT is_report",
            )
            .bind(first_run)
            .bind(Ts::now())
            .bind(org_id)
            .bind(upload_id),
        )
        .await?;
        tx.commit().await
    }

    /// Undoes import `import_id`: deletes the runs it wrote and its claim.
    pub async fn abandon_file_import(&self, org_id: Id, import_id: Id) -> DbResult<()> {
        super::retry_write(|| async {
            let mut tx = self.begin().await?;
            delete_import(&mut tx, org_id, import_id).await?;
            tx.commit().await
        })
        .await
    }

    /// Whether the station is linked to the procedure (both of the organization).
    pub async fn station_linked(
        &self,
        org_id: Id,
        station_id: Id,
        procedure_id: Id,
    ) -> DbResult<bool> {
        let found: Option<(Id,)> = self
            .read()
            .fetch_optional(
                Sql::new(
                    "SELECT p.id FROM station_procedures sp
                     JOIN procedures p ON p.id = sp.procedure_id
                     WHERE sp.station_id = $1 AND sp.procedure_id = $2 AND p.org_id = $3",
                )
                .bind(station_id)
                .bind(procedure_id)
                .bind(org_id),
            )
            .await?;
        Ok(found.is_some())
    }

    /// Whether a member of the organization has this email address.
    pub async fn member_email(&self, org_id: Id, email: &str) -> DbResult<bool> {
        let found: Option<(Id,)> = self
            .read()
            .fetch_optional(
                Sql::new("SELECT id FROM users WHERE org_id = $1 AND email_key = $2")
                    .bind(org_id)
                    .bind(super::ci_key(email)),
            )
            .await?;
        Ok(found.is_some())
    }
}

/// Records runs `ids` (file positions from `first_position`) as written by import
/// `import_id`, and refreshes its heartbeat; part of the batch's transaction.
pub(crate) async fn record_batch(
    tx: &mut Tx,
    import_id: Id,
    first_position: i64,
    ids: &[Id],
) -> DbResult<()> {
    for (n, chunk) in ids.chunks(DELETE_CHUNK).enumerate() {
        let mut q = Sql::new("INSERT INTO file_import_runs (import_id, position, run_id) VALUES ");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            let position = first_position + (n * DELETE_CHUNK + i) as i64;
            q.push("(")
                .push_bind(import_id)
                .push(", ")
                .push_bind(position)
                .push(", ")
                .push_bind(*id)
                .push(")");
        }
        tx.execute(q).await?;
    }
    let n = tx
        .execute(
            Sql::new(
                "UPDATE file_imports SET heartbeat_at = $1 WHERE id = $2 AND state = 'importing'",
            )
            .bind(Ts::now())
            .bind(import_id),
        )
        .await?;
    if n == 0 {
        // The claim was taken over as stale: this import must stop.
        return Err(StoreError::conflict(
            "The import was taken over by another one",
        ));
    }
    Ok(())
}

/// Serializes claims and completions of imports of the same bytes.
// DIALECT: SQLite's writer transaction (BEGIN IMMEDIATE) is exclusive already; Postgres
// takes a transaction-scoped advisory lock on the organization and digest.
async fn lock_file(tx: &mut Tx, org_id: Id, sha256: &str) -> DbResult<()> {
    if tx.dialect() == Dialect::Postgres {
        tx.execute(
            Sql::new("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("file-import:{org_id}:{sha256}")),
        )
        .await?;
    }
    Ok(())
}

/// Deletes import `import_id`'s runs (everything hanging off them cascades) and its row.
async fn delete_import(tx: &mut Tx, org_id: Id, import_id: Id) -> DbResult<()> {
    let runs: Vec<(Id,)> = tx
        .fetch_all(
            Sql::new("SELECT run_id FROM file_import_runs WHERE import_id = $1").bind(import_id),
        )
        .await?;
    for chunk in runs.chunks(DELETE_CHUNK) {
        let mut q = Sql::new("DELETE FROM runs WHERE org_id = ");
        q.push_bind(org_id)
            .push(" AND id IN ")
            .push_tuple(chunk.iter().map(|r| r.0));
        tx.execute(q).await?;
    }
    tx.execute(
        Sql::new("DELETE FROM file_imports WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(import_id),
    )
    .await?;
    Ok(())
}
