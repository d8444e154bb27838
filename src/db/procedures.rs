//! Procedures: named test procedures that runs, versions and stations hang off.

use crate::types::ci_key;
use rand::Rng;
use sqlx::FromRow;

use super::{Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::values::{contains_pattern, Page};

#[derive(Debug, Clone, FromRow)]
pub struct ProcedureRow {
    pub id: Id,
    pub name: String,
    pub identifier: String,
    pub created_at: Ts,
    pub cu_id: Option<Id>,
    pub cu_name: Option<String>,
    pub cu_email: Option<String>,
}

/// A recent run of a procedure.
#[derive(Debug, Clone, FromRow)]
pub struct RecentRunRow {
    pub procedure_id: Id,
    pub id: Id,
    pub outcome: String,
    pub started_at: Ts,
    pub unit_id: Id,
    pub serial_number: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct LinkedStationRow {
    pub id: Id,
    pub name: String,
}

pub struct ProcedureDetail {
    pub procedure: ProcedureRow,
    pub runs_count: i64,
    pub recent_runs: Vec<RecentRunRow>,
    pub stations: Vec<LinkedStationRow>,
}

pub struct ProcedureFilter {
    pub search_query: Option<String>,
    pub created_after: Option<Ts>,
    pub created_before: Option<Ts>,
}

const SELECT_PROCEDURE: &str = "SELECT p.id, p.name, p.identifier, p.created_at,
        cu.id AS cu_id, cu.name AS cu_name, cu.email AS cu_email
    FROM procedures p LEFT JOIN users cu ON cu.id = p.created_by_user_id";

/// How many recent runs a procedure list item carries.
pub const LIST_RECENT_RUNS: i64 = 5;
/// How many recent runs a procedure detail carries.
pub const DETAIL_RECENT_RUNS: i64 = 10;

impl Db {
    pub async fn create_procedure(
        &self,
        org_id: Id,
        user_id: Option<Id>,
        name: &str,
    ) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        let id = insert_procedure(&mut tx, org_id, None, user_id, name).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn procedure(&self, org_id: Id, id: Id) -> DbResult<ProcedureDetail> {
        let mut r = self.read();
        let procedure: ProcedureRow = r
            .fetch_optional(
                Sql::new(SELECT_PROCEDURE)
                    .then(" WHERE p.org_id = $1 AND p.id = $2")
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Procedure not found"))?;
        let (runs_count,): (i64,) = r
            .fetch_one(Sql::new("SELECT COUNT(*) FROM runs WHERE procedure_id = $1").bind(id))
            .await?;
        let recent_runs = r
            .fetch_all(recent_runs_sql(&[id], DETAIL_RECENT_RUNS))
            .await?;
        let stations = r
            .fetch_all(
                Sql::new(
                    "SELECT s.id, s.name FROM station_procedures sp
                     JOIN stations s ON s.id = sp.station_id
                     WHERE sp.procedure_id = $1 AND s.archived_at IS NULL
                     ORDER BY s.created_at, s.id",
                )
                .bind(id),
            )
            .await?;
        Ok(ProcedureDetail {
            procedure,
            runs_count,
            recent_runs,
            stations,
        })
    }

    /// A page of procedures, newest first, with each one's recent runs.
    pub async fn list_procedures(
        &self,
        org_id: Id,
        filter: &ProcedureFilter,
        page: Page,
    ) -> DbResult<(Vec<ProcedureRow>, Vec<RecentRunRow>)> {
        let mut q = Sql::new(SELECT_PROCEDURE);
        q.push(" WHERE p.org_id = ").push_bind(org_id);
        if let Some(s) = &filter.search_query {
            q.push(" AND p.name_key LIKE ")
                .push_bind(contains_pattern(s))
                .push(" ESCAPE '\\'");
        }
        if let Some(t) = filter.created_after {
            q.push(" AND p.created_at >= ").push_bind(t);
        }
        if let Some(t) = filter.created_before {
            q.push(" AND p.created_at <= ").push_bind(t);
        }
        q.push(" ORDER BY p.created_at DESC, p.id DESC LIMIT ")
            .push_bind(page.fetch_limit())
            .push(" OFFSET ")
            .push_bind(page.offset);
        let mut r = self.read();
        let rows: Vec<ProcedureRow> = r.fetch_all(q).await?;
        let ids: Vec<Id> = rows.iter().map(|p| p.id).collect();
        let runs = if ids.is_empty() {
            Vec::new()
        } else {
            r.fetch_all(recent_runs_sql(&ids, LIST_RECENT_RUNS)).await?
        };
        Ok((rows, runs))
    }

    pub async fn rename_procedure(&self, org_id: Id, id: Id, name: &str) -> DbResult<()> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE procedures SET name = $1, name_key = $4 WHERE org_id = $2 AND id = $3",
                )
                .bind(name)
                .bind(org_id)
                .bind(id)
                .bind(ci_key(name)),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("Procedure not found"));
        }
        tx.commit().await
    }

    /// Deletes the procedure with its versions, runs (and their content, attachments
    /// and files) and station links. Units, parts and batches stay.
    pub async fn delete_procedure(&self, org_id: Id, id: Id) -> DbResult<()> {
        let mut tx = self.begin().await?;
        // Versions are referenced by runs; remove the runs first so the version rows
        // can go with the procedure.
        tx.execute(
            Sql::new("DELETE FROM runs WHERE org_id = $1 AND procedure_id = $2")
                .bind(org_id)
                .bind(id),
        )
        .await?;
        let n = tx
            .execute(
                Sql::new("DELETE FROM procedures WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("Procedure not found"));
        }
        tx.commit().await
    }

    /// True when the procedure exists in the organization.
    pub async fn procedure_exists(&self, org_id: Id, id: Id) -> DbResult<bool> {
        Ok(self
            .read()
            .fetch_optional::<(Id,)>(
                Sql::new("SELECT id FROM procedures WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .is_some())
    }
}

/// The `limit` most recent runs of each procedure, in one statement: a `UNION ALL` of
/// per-procedure index range scans (a window function would read every run).
fn recent_runs_sql(procedure_ids: &[Id], limit: i64) -> Sql {
    let mut q = Sql::new("");
    for (i, id) in procedure_ids.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push(
            "SELECT * FROM (SELECT r.procedure_id, r.id, r.outcome, r.started_at,
                    u.id AS unit_id, u.serial_number
                FROM runs r JOIN units u ON u.id = r.unit_id
                WHERE r.procedure_id = ",
        )
        .push_bind(*id)
        .push(" ORDER BY r.started_at DESC, r.id DESC LIMIT ")
        .push_bind(limit)
        // Each branch is its own scope: the alias may repeat.
        .push(") recent");
    }
    q
}

/// Inserts a procedure with a fresh unique identifier (a short code also accepted by
/// the legacy API in place of the id).
pub async fn insert_procedure(
    tx: &mut Tx,
    org_id: Id,
    id: Option<Id>,
    user_id: Option<Id>,
    name: &str,
) -> DbResult<Id> {
    let id = id.unwrap_or_else(Id::new);
    let identifier = loop {
        let candidate = new_identifier();
        let taken: Option<(Id,)> = tx
            .fetch_optional(
                Sql::new("SELECT id FROM procedures WHERE org_id = $1 AND identifier_key = $2")
                    .bind(org_id)
                    .bind(candidate.to_lowercase()),
            )
            .await?;
        if taken.is_none() {
            break candidate;
        }
    };
    tx.execute(
        Sql::new(
            "INSERT INTO procedures (id, org_id, name, identifier, identifier_key,
                                     created_by_user_id, created_at, name_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(org_id)
        .bind(name)
        .bind(&identifier)
        .bind(identifier.to_lowercase())
        .bind(user_id)
        .bind(Ts::now())
        .bind(ci_key(name)),
    )
    .await?;
    Ok(id)
}

/// `PROC-` and six characters from an alphabet without look-alikes.
fn new_identifier() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let code: String = (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("PROC-{code}")
}

/// Checks, inside a transaction, that the procedure exists in the organization (404).
pub async fn require_procedure(tx: &mut Tx, org_id: Id, id: Id) -> DbResult<()> {
    tx.fetch_optional::<(Id,)>(
        Sql::new("SELECT id FROM procedures WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id),
    )
    .await?
    .map(|_| ())
    .ok_or_else(|| StoreError::not_found("Procedure not found"))
}
