//! Procedure versions: ci-unique tags on a procedure that runs may reference.

use sqlx::FromRow;

use super::common::{creator_joins, CreatedBy, CreatorRow, CREATOR_COLUMNS};
use super::procedures::require_procedure;
use super::{ci_key, Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct VersionRow {
    pub id: Id,
    pub tag: String,
    pub created_at: Ts,
    pub procedure_id: Id,
    pub procedure_name: String,
    /// Runs referencing this version.
    pub run_count: i64,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
}

impl Db {
    /// Creates version `tag` of a procedure of the organization. 404 when the procedure
    /// does not exist, 409 when the tag (ci) already does.
    pub async fn create_version(
        &self,
        org_id: Id,
        procedure_id: Id,
        tag: &str,
        created_by: CreatedBy,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        require_procedure(&mut tx, org_id, procedure_id).await?;
        let id = Id::new();
        let n = insert_version(&mut tx, id, org_id, procedure_id, tag, created_by).await?;
        if n == 0 {
            return Err(StoreError::conflict(format!(
                "Version with tag {tag} already exists on this procedure"
            )));
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Version `tag` (ci) of a procedure of the organization.
    pub async fn version(&self, org_id: Id, procedure_id: Id, tag: &str) -> DbResult<VersionRow> {
        let mut r = self.read();
        let row = r
            .fetch_optional(
                Sql::new(
                    "SELECT v.id, v.tag, v.created_at, p.id AS procedure_id,
                        p.name AS procedure_name,
                        (SELECT COUNT(*) FROM runs r WHERE r.version_id = v.id) AS run_count,
                        ",
                )
                .then(CREATOR_COLUMNS)
                .then(
                    "
                     FROM procedure_versions v JOIN procedures p ON p.id = v.procedure_id
                     ",
                )
                .then(creator_joins!("v"))
                .then(
                    "
                     WHERE v.org_id = $1 AND v.procedure_id = $2 AND v.tag_key = $3",
                )
                .bind(org_id)
                .bind(procedure_id)
                .bind(ci_key(tag)),
            )
            .await?;
        match row {
            Some(v) => Ok(v),
            None => Err(self.version_missing(org_id, procedure_id).await),
        }
    }

    /// Deletes version `tag` (ci); refused with 409 while runs reference it. Returns its id.
    pub async fn delete_version(&self, org_id: Id, procedure_id: Id, tag: &str) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        // DIALECT: on Postgres the row lock makes a concurrent run that is about to
        // reference this version wait (its foreign key check needs the row), so the count
        // below cannot go stale before the delete. SQLite writers are serialized already.
        let lock = tx.dialect().row_lock();
        let found: Option<(Id, String)> = tx
            .fetch_optional(
                Sql::new(
                    "SELECT id, tag FROM procedure_versions
                     WHERE org_id = $1 AND procedure_id = $2 AND tag_key = $3",
                )
                .then(lock)
                .bind(org_id)
                .bind(procedure_id)
                .bind(ci_key(tag)),
            )
            .await?;
        let Some((id, stored_tag)) = found else {
            drop(tx);
            return Err(self.version_missing(org_id, procedure_id).await);
        };
        let (runs,): (i64,) = tx
            .fetch_one(Sql::new("SELECT COUNT(*) FROM runs WHERE version_id = $1").bind(id))
            .await?;
        if runs > 0 {
            return Err(StoreError::conflict(format!(
                "Version {stored_tag} is used by {runs} run(s); delete those runs first"
            )));
        }
        tx.execute(Sql::new("DELETE FROM procedure_versions WHERE id = $1").bind(id))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The 404 for a version lookup that found nothing: names the procedure when that is
    /// what is missing.
    async fn version_missing(&self, org_id: Id, procedure_id: Id) -> StoreError {
        match self.procedure_exists(org_id, procedure_id).await {
            Ok(true) => StoreError::not_found("Version not found"),
            Ok(false) => StoreError::not_found("Procedure not found"),
            Err(e) => e,
        }
    }
}

/// Inserts a version unless the tag (ci) exists on the procedure; returns rows inserted.
async fn insert_version(
    tx: &mut Tx,
    id: Id,
    org_id: Id,
    procedure_id: Id,
    tag: &str,
    by: CreatedBy,
) -> DbResult<u64> {
    tx.execute(
        Sql::new(
            "INSERT INTO procedure_versions (id, org_id, procedure_id, tag, tag_key,
                 created_by_user_id, created_by_station_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (procedure_id, tag_key) DO NOTHING",
        )
        .bind(id)
        .bind(org_id)
        .bind(procedure_id)
        .bind(tag)
        .bind(ci_key(tag))
        .bind(by.user_id)
        .bind(by.station_id)
        .bind(Ts::now()),
    )
    .await
}

/// Finds version `tag` (ci) of a procedure or creates it, race-safely (for implicit
/// creation by a run). The procedure must already be known to belong to `org_id`.
pub async fn find_or_create_version(
    tx: &mut Tx,
    org_id: Id,
    procedure_id: Id,
    tag: &str,
    created_by: CreatedBy,
) -> DbResult<Id> {
    insert_version(tx, Id::new(), org_id, procedure_id, tag, created_by).await?;
    let (id,): (Id,) = tx
        .fetch_one(
            Sql::new("SELECT id FROM procedure_versions WHERE procedure_id = $1 AND tag_key = $2")
                .bind(procedure_id)
                .bind(ci_key(tag)),
        )
        .await?;
    Ok(id)
}
