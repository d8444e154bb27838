//! What importing files and the legacy API need from storage beyond `create_run`:
//! procedures named by identifier or by name, the bytes of an upload, and the upload's
//! role as the imported report of a run (`attachments.is_report`).
//!
//! An upload being imported is claimed first (`is_report` set while it is still linked
//! to nothing), then linked to the new run by `create_run` in the run's transaction. A
//! failed import releases the claim. A report file is "already imported" when an
//! attachment of the organization with the same content (`sha256`) is the report of a
//! run.

use futures_util::TryStreamExt;
use sqlx::FromRow;

use super::procedures::insert_procedure;
use super::{ci_key, Db, Dialect, Id, Sql, Ts};
use crate::db::error::{DbResult, StoreError};

/// An upload's stored file.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

#[derive(FromRow)]
struct UploadRow {
    name: String,
    blob_id: Option<Id>,
    size: Option<i64>,
    sha256: Option<String>,
}

/// What claiming an upload as the report of a new run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportClaim {
    /// The upload is now reserved for the run about to be created.
    Claimed,
    /// The upload already is the report of a run (`Some`), or is being imported by a
    /// concurrent request (`None`).
    AlreadyReport(Option<Id>),
    /// The upload is a regular attachment of a run or unit: it stays where it is.
    InUse,
}

#[derive(FromRow)]
struct ClaimRow {
    is_report: bool,
    run_id: Option<Id>,
}

#[derive(FromRow)]
struct NamedProcedure {
    id: Id,
    name: String,
}

impl Db {
    /// The organization's procedure with this id or (case-insensitive) identifier.
    pub async fn procedure_by_ref(&self, org_id: Id, reference: &str) -> DbResult<Option<Id>> {
        let reference = reference.trim();
        let mut q = Sql::new("SELECT id FROM procedures WHERE org_id = ");
        q.push_bind(org_id);
        match Id::parse(reference) {
            Some(id) => q.push(" AND id = ").push_bind(id),
            None => q
                .push(" AND identifier_key = ")
                .push_bind(ci_key(reference)),
        };
        Ok(self.read().fetch_optional::<(Id,)>(q).await?.map(|r| r.0))
    }

    /// The organization's procedure named `name` (case-insensitive), created by
    /// `creator` when there is none and `creator` is given. Several procedures with that
    /// name: 400 (the caller must give an id). `None`: none exists and none was created.
    ///
    /// Race-safe: the lookup and the insert are one write transaction, and on Postgres a
    /// transaction-scoped advisory lock on the organization and name serializes
    /// concurrent find-or-creates of the same name (procedure names are not unique, so
    /// there is no index to conflict on).
    pub async fn find_or_create_procedure(
        &self,
        org_id: Id,
        name: &str,
        creator: Option<Id>,
    ) -> DbResult<Option<Id>> {
        let key = ci_key(name);
        let mut tx = self.begin().await?;
        // DIALECT: SQLite's writer transaction (BEGIN IMMEDIATE) is exclusive already.
        if tx.dialect() == Dialect::Postgres {
            tx.execute(
                Sql::new("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(format!("procedure-name:{org_id}:{key}")),
            )
            .await?;
        }
        // Compared in Rust: `ci_key` folds all of Unicode, SQLite's lower() only ASCII.
        // An organization has few procedures.
        let all: Vec<NamedProcedure> = tx
            .fetch_all(
                Sql::new(
                    "SELECT id, name FROM procedures WHERE org_id = $1 ORDER BY created_at, id",
                )
                .bind(org_id),
            )
            .await?;
        let found: Vec<Id> = all
            .into_iter()
            .filter(|p| ci_key(&p.name) == key)
            .map(|p| p.id)
            .collect();
        match found.as_slice() {
            [id] => return Ok(Some(*id)),
            [] => {}
            _ => {
                return Err(StoreError::rejected(format!(
                    "{} procedures are named `{name}`: give procedure_id to choose one",
                    found.len()
                )))
            }
        }
        let Some(user_id) = creator else {
            return Ok(None);
        };
        let id = insert_procedure(&mut tx, org_id, None, Some(user_id), name).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The stored bytes of the organization's upload `id`. 404 for an unknown upload (or
    /// another organization's), 400 when no bytes were uploaded yet or the file is larger
    /// than `max_size` bytes.
    pub async fn upload_file(&self, org_id: Id, id: Id, max_size: u64) -> DbResult<UploadFile> {
        let row: UploadRow = self
            .read()
            .fetch_optional(
                Sql::new(
                    "SELECT name, blob_id, size, sha256 FROM attachments
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id)
                .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("Upload {id} not found")))?;
        let (Some(blob_id), Some(size), Some(sha256)) = (row.blob_id, row.size, row.sha256) else {
            return Err(StoreError::rejected(format!(
                "Upload {id} has no file yet: PUT its bytes to the upload URL first"
            )));
        };
        if size as u64 > max_size {
            return Err(StoreError::rejected(format!(
                "Upload {id} is {size} bytes: files to import may be at most {max_size} bytes"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let mut chunks = std::pin::pin!(self.blob_bytes(blob_id, 0, size as u64));
        while let Some(chunk) = chunks.try_next().await.map_err(StoreError::other)? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(UploadFile {
            name: row.name,
            bytes,
            sha256,
        })
    }

    /// The run that a report with this content was imported into, if any (the oldest).
    pub async fn run_of_report(&self, org_id: Id, sha256: &str) -> DbResult<Option<Id>> {
        Ok(self
            .read()
            .fetch_optional::<(Id,)>(
                Sql::new(
                    "SELECT run_id FROM attachments
                     WHERE org_id = $1 AND is_report AND sha256 = $2 AND run_id IS NOT NULL
                     ORDER BY created_at, id LIMIT 1",
                )
                .bind(org_id)
                .bind(sha256),
            )
            .await?
            .map(|r| r.0))
    }

    /// Reserves the upload as the report of a run about to be created (see the module
    /// doc). Only an upload linked to nothing can be claimed.
    pub async fn claim_report(&self, org_id: Id, id: Id) -> DbResult<ReportClaim> {
        let mut tx = self.begin().await?;
        let claimed = tx
            .execute(
                Sql::new(
                    "UPDATE attachments SET is_report = TRUE
                     WHERE org_id = $1 AND id = $2 AND NOT is_report
                       AND run_id IS NULL AND unit_id IS NULL",
                )
                .bind(org_id)
                .bind(id),
            )
            .await?;
        let outcome = if claimed == 1 {
            ReportClaim::Claimed
        } else {
            let row: ClaimRow = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT is_report, run_id FROM attachments WHERE org_id = $1 AND id = $2",
                    )
                    .bind(org_id)
                    .bind(id),
                )
                .await?
                .ok_or_else(|| StoreError::not_found(format!("Upload {id} not found")))?;
            if row.is_report {
                ReportClaim::AlreadyReport(row.run_id)
            } else {
                ReportClaim::InUse
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Gives up a claim whose run could not be created.
    pub async fn release_report(&self, org_id: Id, id: Id) -> DbResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "UPDATE attachments SET is_report = FALSE
                 WHERE org_id = $1 AND id = $2 AND run_id IS NULL",
            )
            .bind(org_id)
            .bind(id),
        )
        .await?;
        tx.commit().await
    }

    /// Names the part `number` `name`, unless it already has a name of its own (a part
    /// created implicitly is named after its number).
    pub async fn name_unnamed_part(&self, org_id: Id, number: &str, name: &str) -> DbResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "UPDATE parts SET name = $1, name_key = $5, updated_at = $2
                 WHERE org_id = $3 AND number_key = $4 AND name = number",
            )
            .bind(name)
            .bind(Ts::now())
            .bind(org_id)
            .bind(ci_key(number))
            .bind(ci_key(name)),
        )
        .await?;
        tx.commit().await
    }

    /// Runs of the organization whose `client_run_ref` is one of `refs`, by start time
    /// then creation (the runs an earlier import of a file created).
    pub async fn runs_by_refs(&self, org_id: Id, refs: &[String]) -> DbResult<Vec<Id>> {
        let mut ids = Vec::new();
        for chunk in refs.chunks(500) {
            let mut q = Sql::new("SELECT id, started_at, created_at FROM runs WHERE org_id = ");
            q.push_bind(org_id)
                .push(" AND client_run_ref IN ")
                .push_tuple(chunk.iter().cloned());
            let rows: Vec<(Id, Ts, Ts)> = self.read().fetch_all(q).await?;
            ids.extend(rows);
        }
        ids.sort_by_key(|r| (r.1, r.2, r.0));
        Ok(ids.into_iter().map(|r| r.0).collect())
    }

    /// Which of `serials` name units of the organization (case-insensitive).
    pub async fn known_serials(&self, org_id: Id, serials: &[String]) -> DbResult<Vec<String>> {
        if serials.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT serial_key FROM units WHERE org_id = ");
        q.push_bind(org_id)
            .push(" AND serial_key IN ")
            .push_tuple(serials.iter().map(|s| ci_key(s)));
        let keys: Vec<(String,)> = self.read().fetch_all(q).await?;
        Ok(serials
            .iter()
            .filter(|s| keys.iter().any(|k| k.0 == ci_key(s)))
            .cloned()
            .collect())
    }

    /// Whether procedure `procedure_id` is linked to station `station_id`.
    pub async fn station_has_procedure(&self, station_id: Id, procedure_id: Id) -> DbResult<bool> {
        let found: Option<(Id,)> = self
            .read()
            .fetch_optional(
                Sql::new(
                    "SELECT procedure_id FROM station_procedures
                     WHERE station_id = $1 AND procedure_id = $2",
                )
                .bind(station_id)
                .bind(procedure_id),
            )
            .await?;
        Ok(found.is_some())
    }
}
