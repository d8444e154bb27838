//! Changing and deleting runs.

use super::model::Metadata;
use crate::db::attachments::{link_uploads, LinkTarget};
use crate::db::error::{DbResult, StoreError};
use crate::db::metadata::{self as meta_sql, MetaTable};
use crate::db::{retry_write, Db, Id, Sql, Tx};

/// Ids per `DELETE … IN (…)` statement.
const DELETE_CHUNK: usize = 500;

impl Db {
    /// Links uploads to run `id` (404 "Run not found" first, also for an empty list —
    /// `link_uploads` checks the run).
    pub async fn link_run_attachments(&self, org_id: Id, id: Id, uploads: &[Id]) -> DbResult<()> {
        let mut tx = self.begin().await?;
        link_uploads(&mut tx, org_id, LinkTarget::Run(id), uploads).await?;
        tx.commit().await
    }

    /// Deletes the runs among `ids` that exist in the organization, with everything
    /// hanging off them (phases, measurements, logs, sub-unit links, attachments and
    /// their stored bytes — all by foreign-key cascade). Units, parts, batches,
    /// procedures and versions stay. Returns the ids deleted; 404 when none existed.
    pub async fn delete_runs(&self, org_id: Id, ids: &[Id]) -> DbResult<Vec<Id>> {
        let mut unique: Vec<Id> = ids.to_vec();
        unique.sort();
        unique.dedup();
        let deleted = retry_write(|| self.delete_runs_once(org_id, &unique)).await?;
        // Answer in the order the caller named them.
        Ok(ids
            .iter()
            .filter(|id| deleted.contains(id))
            .fold(Vec::new(), |mut out, id| {
                if !out.contains(id) {
                    out.push(*id);
                }
                out
            }))
    }

    async fn delete_runs_once(&self, org_id: Id, unique: &[Id]) -> DbResult<Vec<Id>> {
        let mut tx = self.begin().await?;
        let mut deleted = Vec::new();
        for chunk in unique.chunks(DELETE_CHUNK) {
            let mut q = Sql::new("DELETE FROM runs WHERE org_id = ");
            q.push_bind(org_id)
                .push(" AND id IN ")
                .push_tuple(chunk.iter().copied())
                .push(" RETURNING id");
            let rows: Vec<(Id,)> = tx.fetch_all(q).await?;
            deleted.extend(rows.into_iter().map(|r| r.0));
        }
        if deleted.is_empty() {
            return Err(StoreError::not_found("Run not found"));
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Upserts metadata keys of run `id`: keys set to `null` are removed, keys not named
    /// stay; at most 50 keys may result.
    pub async fn update_run_metadata(&self, org_id: Id, id: Id, patch: &Metadata) -> DbResult<()> {
        let mut tx = self.begin().await?;
        check_run(&mut tx, org_id, id).await?;
        meta_sql::patch(&mut tx, MetaTable::Runs, id, patch, "metadata").await?;
        tx.commit().await
    }
}

/// 404 unless run `id` exists in the organization.
async fn check_run(tx: &mut Tx, org_id: Id, id: Id) -> DbResult<()> {
    let found: Option<(Id,)> = tx
        .fetch_optional(
            Sql::new("SELECT id FROM runs WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id),
        )
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found("Run not found"))
}
