//! Phases across runs: `phases.list` and `phases.get`. Readable by user and station
//! keys.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::params::{After, Before, Duration, Enums, Flag, Ids, SortBy, Texts};
use super::runs::content::{measurement, RunMeasurement};
use super::runs::enums::{PhaseOutcome, RunOutcome};
use super::runs::scope::RunScope;
use super::ListResponse;
use crate::db::runs::phases::{PhaseFilter, PhaseListRow, PhaseSort};
use crate::db::runs::RunFilter;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query};
use crate::values::{iso_duration, paginate, Page, SortOrder};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/phases", get(list))
        .route("/phases/{id}", get(get_one))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct PhaseListQuery {
    /// Required by the Python client, optional here (absent = every procedure).
    #[param(inline)]
    procedure_id: Ids,
    #[param(inline)]
    names: Texts,
    #[param(inline)]
    outcomes: Enums<PhaseOutcome>,
    #[param(inline)]
    sequence_paths: Texts,
    #[param(inline)]
    started_after: After,
    #[param(inline)]
    started_before: Before,
    #[param(inline)]
    exclude_retries: Flag,
    #[param(inline)]
    run_outcomes: Enums<RunOutcome>,
    #[param(inline)]
    ids: Ids,
    #[param(inline)]
    duration_min: Duration,
    #[param(inline)]
    duration_max: Duration,
    #[param(inline)]
    sort_by: SortBy<PhaseSort>,
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

impl PhaseListQuery {
    fn filter(self) -> ApiResult<PhaseFilter> {
        Ok(PhaseFilter {
            run: RunFilter {
                procedure_ids: self.procedure_id.0,
                outcomes: self.run_outcomes.texts(RunOutcome::as_str),
                ..self.scope.run_filter()
            },
            ids: self.ids.0,
            names: self.names.0,
            outcomes: self.outcomes.texts(PhaseOutcome::as_str),
            sequence_paths: self.sequence_paths.0,
            started_after: self.started_after.0,
            started_before: self.started_before.0,
            duration_min_us: self.duration_min.0,
            duration_max_us: self.duration_max.0,
            exclude_retries: self.exclude_retries.on(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseListData {
    id: Id,
    name: String,
    #[schema(value_type = crate::routes::runs::enums::PhaseOutcome, inline)]
    outcome: String,
    started_at: Ts,
    ended_at: Ts,
    duration_ms: i64,
    retry_count: i64,
    #[schema(required = true)]
    sequence_path: Option<String>,
    is_final_attempt: bool,
    run_id: Id,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    run_outcome: String,
    serial_number: String,
    #[schema(required = true, value_type = Option<crate::routes::units::UnitSample>, inline)]
    sample: Option<String>,
}

impl From<PhaseListRow> for PhaseListData {
    fn from(p: PhaseListRow) -> Self {
        PhaseListData {
            id: p.id,
            name: p.name,
            outcome: p.outcome,
            started_at: p.started_at,
            ended_at: p.ended_at,
            duration_ms: p.duration_us / 1000,
            retry_count: p.retry_count,
            sequence_path: p.sequence_path,
            is_final_attempt: p.is_final_attempt,
            run_id: p.run_id,
            run_outcome: p.run_outcome,
            serial_number: p.serial_number,
            sample: p.sample,
        }
    }
}

/// `phases.list` — `GET /v2/phases`: phases across the organization's runs, newest
/// start first by default.
#[utoipa::path(
    get,
    path = "/v2/phases",
    tag = "phases",
    operation_id = "phase-list",
    params(PhaseListQuery, RunScope),
    responses((status = 200, body = ListResponse<PhaseListData>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PhaseListQuery>,
) -> ApiResult<axum::Json<ListResponse<PhaseListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let (sort, order) = (q.sort_by.key(), q.sort_order);
    let filter = q.filter()?;
    let rows = state
        .db
        .list_phases(caller.org_id, &filter, sort, order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    let data = rows.into_iter().map(PhaseListData::from).collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseGetRun {
    id: Id,
    #[schema(required = true)]
    serial_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseGetProcedure {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseGetResponse {
    id: Id,
    name: String,
    #[schema(value_type = crate::routes::runs::enums::PhaseOutcome, inline)]
    outcome: String,
    started_at: Ts,
    ended_at: Ts,
    duration: String,
    retry_count: i64,
    #[schema(required = true)]
    sequence_path: Option<String>,
    #[schema(required = true)]
    docstring: Option<String>,
    measurements: Vec<RunMeasurement>,
    run: PhaseGetRun,
    procedure: PhaseGetProcedure,
}

/// `phases.get` — `GET /v2/phases/{id}`: one phase with its measurements.
#[utoipa::path(
    get,
    path = "/v2/phases/{id}",
    tag = "phases",
    operation_id = "phase-get",
    params(("id" = Id, Path)),
    responses((status = 200, body = PhaseGetResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
) -> ApiResult<axum::Json<PhaseGetResponse>> {
    let d = state.db.phase(caller.org_id, id).await?;
    let p = d.phase;
    Ok(axum::Json(PhaseGetResponse {
        id: p.id,
        name: p.name,
        outcome: p.outcome,
        started_at: p.started_at,
        ended_at: p.ended_at,
        duration: iso_duration(p.duration_us),
        retry_count: p.retry_count,
        sequence_path: p.sequence_path,
        docstring: p.docstring,
        measurements: d.measurements.into_iter().map(measurement).collect(),
        run: PhaseGetRun {
            id: p.run_id,
            serial_number: Some(d.serial_number),
        },
        procedure: PhaseGetProcedure {
            id: d.procedure_id,
            name: d.procedure_name,
        },
    }))
}
