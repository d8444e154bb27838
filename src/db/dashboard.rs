//! Small reads the dashboard needs beyond the API's: names for filter menus, and an
//! attachment's bytes scoped to the organization (the API serves bytes by signed URL
//! only).

use sqlx::FromRow;

use super::blobs::FileRow;
use super::{Db, Id, Sql, Ts};
use crate::db::error::DbResult;

/// An id and a display name, for a filter menu.
#[derive(Debug, Clone, FromRow)]
pub struct NameRow {
    pub id: Id,
    pub name: String,
}

/// At most this many entries in a filter menu.
pub const MENU_LIMIT: i64 = 500;

/// A procedure's name and the start of its latest run.
#[derive(Debug, Clone, FromRow)]
pub struct ProcedureSummary {
    pub id: Id,
    pub name: String,
    pub latest_run: Option<Ts>,
}

impl Db {
    /// The procedure of the organization with the start of its latest run (one index
    /// probe on `runs_procedure_started`), or `None`.
    pub async fn procedure_summary(
        &self,
        org_id: Id,
        id: Id,
    ) -> DbResult<Option<ProcedureSummary>> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT p.id, p.name,
                        (SELECT MAX(r.started_at) FROM runs r WHERE r.procedure_id = p.id)
                            AS latest_run
                     FROM procedures p WHERE p.org_id = $1 AND p.id = $2",
                )
                .bind(org_id)
                .bind(id),
            )
            .await
    }

    /// The organization's procedures by name.
    pub async fn procedure_names(&self, org_id: Id) -> DbResult<Vec<NameRow>> {
        self.read()
            .fetch_all(
                Sql::new(
                    "SELECT id, name FROM procedures WHERE org_id = $1 ORDER BY name, id LIMIT $2",
                )
                .bind(org_id)
                .bind(MENU_LIMIT),
            )
            .await
    }

    /// The organization's stations (archived ones too: their runs stay) by name.
    pub async fn station_names(&self, org_id: Id) -> DbResult<Vec<NameRow>> {
        self.read()
            .fetch_all(
                Sql::new(
                    "SELECT id, name FROM stations WHERE org_id = $1 ORDER BY name, id LIMIT $2",
                )
                .bind(org_id)
                .bind(MENU_LIMIT),
            )
            .await
    }

    /// An attachment of the organization, or `None` (also for other organizations').
    pub async fn org_file(&self, org_id: Id, id: Id) -> DbResult<Option<FileRow>> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT id, name, blob_id, size, sha256, content_type
                     FROM attachments WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id)
                .bind(id),
            )
            .await
    }
}
