//! Log lines across runs.

use sqlx::FromRow;

use super::filter::{limit_offset, order_by, push_run_filters, RunFilter};
use crate::db::common::CreatorRow;
use crate::db::error::{DbResult, StoreError};
use crate::db::{Db, Id, Sql, Ts};
use crate::values::{Page, SortOrder};

/// A log line with its run, unit, procedure and the run's creator.
#[derive(Debug, Clone, FromRow)]
pub struct LogListRow {
    pub id: Id,
    pub level: String,
    pub message: String,
    pub timestamp: Ts,
    pub source_file: String,
    pub line_number: i64,
    pub run_id: Id,
    pub run_outcome: String,
    pub run_started_at: Ts,
    pub unit_id: Id,
    pub serial_number: String,
    pub procedure_id: Id,
    pub procedure_name: String,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
}

const LOG_SELECT: &str = "SELECT l.id, l.level, l.message, l.timestamp, l.source_file,
        l.line_number, r.id AS run_id, r.outcome AS run_outcome, r.started_at AS run_started_at,
        u.id AS unit_id, u.serial_number, pr.id AS procedure_id, pr.name AS procedure_name,
        cu.id AS cu_id, cu.name AS cu_name, cu.email AS cu_email, cs.id AS cs_id, cs.name AS cs_name
    FROM logs l
    JOIN runs r ON r.id = l.run_id
    JOIN units u ON u.id = r.unit_id
    JOIN procedures pr ON pr.id = r.procedure_id
    LEFT JOIN users cu ON cu.id = r.created_by_user_id
    LEFT JOIN stations cs ON cs.id = r.created_by_station_id";

/// Conditions of the log list. `run` holds the conditions on the run (`ids` = run ids,
/// `outcomes` = run outcomes, `procedure_ids`).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub run: RunFilter,
    /// Substring of the message (ci).
    pub search_query: Option<String>,
    pub levels: Vec<String>,
    pub timestamp_after: Option<Ts>,
    pub timestamp_before: Option<Ts>,
    pub source_files: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogSort {
    /// The log line's own timestamp.
    #[default]
    CreatedAt,
    /// Severity, DEBUG lowest.
    Level,
    RunId,
    /// The run's outcome.
    Outcome,
}

const SEVERITY: &str = "(CASE l.level WHEN 'DEBUG' THEN 10 WHEN 'INFO' THEN 20
    WHEN 'WARNING' THEN 30 WHEN 'ERROR' THEN 40 ELSE 50 END)";

impl LogSort {
    fn columns(self) -> &'static [&'static str] {
        match self {
            LogSort::CreatedAt => &["l.timestamp", "l.id"],
            LogSort::Level => &[SEVERITY, "l.timestamp", "l.id"],
            LogSort::RunId => &["r.id", "l.timestamp", "l.id"],
            LogSort::Outcome => &["r.outcome", "l.timestamp", "l.id"],
        }
    }
}

impl Db {
    pub async fn list_logs(
        &self,
        org_id: Id,
        f: &LogFilter,
        sort: LogSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<Vec<LogListRow>> {
        let keys = self.resolve_keys(org_id, &f.run).await?;
        if keys.matches_nothing() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(LOG_SELECT);
        q.push(" WHERE r.org_id = ").push_bind(org_id);
        push_run_filters(&mut q, self.dialect(), &f.run, &keys);
        if let Some(s) = f.search_query.as_deref().filter(|s| !s.is_empty()) {
            q.push(" AND ");
            crate::db::push_contains(&mut q, self.dialect(), "l.message", s);
        }
        q.and_text_in("l.level", &f.levels)
            .and_text_in("l.source_file", &f.source_files);
        if let Some(t) = f.timestamp_after {
            q.push(" AND l.timestamp >= ").push_bind(t);
        }
        if let Some(t) = f.timestamp_before {
            q.push(" AND l.timestamp <= ").push_bind(t);
        }
        order_by(&mut q, sort.columns(), order);
        limit_offset(&mut q, page);
        self.read().fetch_all(q).await
    }

    /// Log line `id` of the organization (404 "Log not found").
    pub async fn log(&self, org_id: Id, id: Id) -> DbResult<LogListRow> {
        self.read()
            .fetch_optional(
                Sql::new(LOG_SELECT)
                    .then(" WHERE r.org_id = $1 AND l.id = $2")
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Log not found"))
    }
}
