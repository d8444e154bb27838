//! Log lines across runs: `logs.list` and `logs.get`. Readable by user and station keys.
//!
//! A log line's `created_at` is its own timestamp (when the line was logged during the
//! run); `timestamp_after` / `timestamp_before` and `sort_by=created_at` use it too.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::params::{After, Before, Enums, Ids, Search, SortBy, Texts};
use super::runs::enums::{LogLevel, RunOutcome};
use super::runs::scope::RunScope;
use super::{ListResponse, StationRef, UserRef};
use crate::db::runs::logs::{LogFilter, LogListRow, LogSort};
use crate::db::runs::RunFilter;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query};
use crate::values::{paginate, Page, SortOrder};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logs", get(list))
        .route("/logs/{id}", get(get_one))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct LogListQuery {
    #[param(inline)]
    procedure_ids: Ids,
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    levels: Enums<LogLevel>,
    #[param(inline)]
    timestamp_after: After,
    #[param(inline)]
    timestamp_before: Before,
    #[param(inline)]
    source_files: Texts,
    #[param(inline)]
    run_ids: Ids,
    #[param(inline)]
    run_outcomes: Enums<RunOutcome>,
    #[param(inline)]
    sort_by: SortBy<LogSort>,
    #[param(inline)]
    sort_order: SortOrder,
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    scope: RunScope,
}

impl LogListQuery {
    fn filter(self) -> ApiResult<LogFilter> {
        Ok(LogFilter {
            run: RunFilter {
                ids: self.run_ids.0,
                outcomes: self.run_outcomes.texts(RunOutcome::as_str),
                procedure_ids: self.procedure_ids.0,
                ..self.scope.run_filter()
            },
            search_query: self.search_query.0,
            levels: self.levels.texts(LogLevel::as_str),
            timestamp_after: self.timestamp_after.0,
            timestamp_before: self.timestamp_before.0,
            source_files: self.source_files.0,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogRun {
    id: Id,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    outcome: String,
    started_at: Ts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogUnit {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogProcedure {
    id: Id,
    name: String,
}

/// A `logs.list` item and the `logs.get` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogData {
    id: Id,
    #[schema(value_type = crate::routes::runs::enums::LogLevel, inline)]
    level: String,
    message: String,
    created_at: Ts,
    #[schema(required = true)]
    source_file: Option<String>,
    #[schema(required = true)]
    line_number: Option<i64>,
    run: LogRun,
    unit: LogUnit,
    procedure: LogProcedure,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
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
#[utoipa::path(
    get,
    path = "/v2/logs",
    tag = "logs",
    operation_id = "log-list",
    params(LogListQuery, RunScope),
    responses((status = 200, body = ListResponse<LogData>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LogListQuery>,
) -> ApiResult<axum::Json<ListResponse<LogData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let (sort, order) = (q.sort_by.key(), q.sort_order);
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
#[utoipa::path(
    get,
    path = "/v2/logs/{id}",
    tag = "logs",
    operation_id = "log-get",
    params(("id" = Id, Path)),
    responses((status = 200, body = LogData))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
) -> ApiResult<axum::Json<LogData>> {
    Ok(axum::Json(state.db.log(caller.org_id, id).await?.into()))
}
