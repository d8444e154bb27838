//! Log lines across runs: `logs.list` and `logs.get`. Readable by user and station keys.
//!
//! A log line's `created_at` is its own timestamp (when the line was logged during the
//! run); `timestamp_after` / `timestamp_before` and `sort_by=created_at` use it too.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::runs::enums::{LogLevel, RunOutcome, SampleFilter};
use super::runs::query;
use super::{ListResponse, StationRef, UserRef};
use crate::db::runs::logs::{LogFilter, LogListRow, LogSort};
use crate::db::runs::RunFilter;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query};
use crate::values::{opt_query_ts, opt_query_ts_upper, paginate, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logs", get(list))
        .route("/logs/{id}", get(get_one))
}

#[derive(Debug, Deserialize)]
pub struct LogListQuery {
    #[serde(default)]
    procedure_ids: Vec<String>,
    search_query: Option<String>,
    #[serde(default)]
    levels: Vec<String>,
    timestamp_after: Option<String>,
    timestamp_before: Option<String>,
    #[serde(default)]
    source_files: Vec<String>,
    #[serde(default)]
    run_ids: Vec<String>,
    #[serde(default)]
    run_outcomes: Vec<String>,
    #[serde(default)]
    procedure_versions: Vec<String>,
    #[serde(default)]
    deployment_ids: Vec<String>,
    #[serde(default)]
    serial_numbers: Vec<String>,
    #[serde(default)]
    part_numbers: Vec<String>,
    #[serde(default)]
    revision_numbers: Vec<String>,
    #[serde(default)]
    batch_numbers: Vec<String>,
    #[serde(default)]
    samples: Vec<String>,
    #[serde(default)]
    created_by_station_ids: Vec<String>,
    #[serde(default)]
    created_by_user_ids: Vec<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl LogListQuery {
    fn filter(self) -> ApiResult<LogFilter> {
        Ok(LogFilter {
            run: RunFilter {
                ids: query::ids(self.run_ids),
                outcomes: query::enums("run_outcomes", self.run_outcomes, RunOutcome::as_str)?,
                procedure_ids: query::ids(self.procedure_ids),
                procedure_versions: query::texts(self.procedure_versions),
                serial_numbers: query::texts(self.serial_numbers),
                part_numbers: query::texts(self.part_numbers),
                revision_numbers: query::texts(self.revision_numbers),
                batch_numbers: query::texts(self.batch_numbers),
                created_by_user_ids: query::ids(self.created_by_user_ids),
                created_by_station_ids: query::ids(self.created_by_station_ids),
                deployment_ids: query::texts(self.deployment_ids),
                samples: query::enums("samples", self.samples, SampleFilter::as_str)?,
                ..RunFilter::default()
            },
            search_query: self.search_query.filter(|s| !s.trim().is_empty()),
            levels: query::enums("levels", self.levels, LogLevel::as_str)?,
            timestamp_after: opt_query_ts("timestamp_after", &self.timestamp_after)?,
            timestamp_before: opt_query_ts_upper("timestamp_before", &self.timestamp_before)?,
            source_files: query::texts(self.source_files),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct LogRun {
    id: Id,
    outcome: String,
    started_at: Ts,
}

#[derive(Debug, Serialize)]
pub struct LogUnit {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize)]
pub struct LogProcedure {
    id: Id,
    name: String,
}

/// A `logs.list` item and the `logs.get` response.
#[derive(Debug, Serialize)]
pub struct LogData {
    id: Id,
    level: String,
    message: String,
    created_at: Ts,
    source_file: Option<String>,
    line_number: Option<i64>,
    run: LogRun,
    unit: LogUnit,
    procedure: LogProcedure,
    created_by_user: Option<UserRef>,
    created_by_station: Option<StationRef>,
}

impl From<LogListRow> for LogData {
    fn from(l: LogListRow) -> Self {
        LogData {
            id: l.id,
            level: l.level,
            message: l.message,
            created_at: l.timestamp,
            source_file: Some(l.source_file),
            line_number: Some(l.line_number),
            run: LogRun {
                id: l.run_id,
                outcome: l.run_outcome,
                started_at: l.run_started_at,
            },
            unit: LogUnit {
                id: l.unit_id,
                serial_number: l.serial_number,
            },
            procedure: LogProcedure {
                id: l.procedure_id,
                name: l.procedure_name,
            },
            created_by_user: l.creator.user(),
            created_by_station: l.creator.station(),
        }
    }
}

/// `logs.list` — `GET /v2/logs`: log lines across the organization's runs, newest first
/// by default.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LogListQuery>,
) -> ApiResult<axum::Json<ListResponse<LogData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let sort: LogSort = query::sort_by(&q.sort_by)?;
    let order = query::sort_order(&q.sort_order)?;
    let filter = q.filter()?;
    let rows = state
        .db
        .list_logs(caller.org_id, &filter, sort, order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    let data = rows.into_iter().map(LogData::from).collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

/// `logs.get` — `GET /v2/logs/{id}`.
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
) -> ApiResult<axum::Json<LogData>> {
    Ok(axum::Json(state.db.log(caller.org_id, id).await?.into()))
}
