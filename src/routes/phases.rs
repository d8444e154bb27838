//! Phases across runs: `phases.list` and `phases.get`. Readable by user and station
//! keys.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::runs::content::{measurement, RunMeasurement};
use super::runs::enums::{PhaseOutcome, RunOutcome, SampleFilter};
use super::runs::query;
use super::ListResponse;
use crate::db::runs::phases::{PhaseFilter, PhaseListRow, PhaseSort};
use crate::db::runs::RunFilter;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query};
use crate::values::{iso_duration, opt_query_ts, opt_query_ts_upper, paginate, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/phases", get(list))
        .route("/phases/{id}", get(get_one))
}

#[derive(Debug, Deserialize)]
pub struct PhaseListQuery {
    /// Required by the Python client, optional here (absent = every procedure).
    procedure_id: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    outcomes: Vec<String>,
    #[serde(default)]
    sequence_paths: Vec<String>,
    started_after: Option<String>,
    started_before: Option<String>,
    exclude_retries: Option<String>,
    #[serde(default)]
    run_outcomes: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
    duration_min: Option<String>,
    duration_max: Option<String>,
    #[serde(default)]
    deployment_ids: Vec<String>,
    #[serde(default)]
    procedure_versions: Vec<String>,
    #[serde(default)]
    operated_by_ids: Vec<String>,
    #[serde(default)]
    operated_by_names: Vec<String>,
    #[serde(default)]
    created_by_station_ids: Vec<String>,
    #[serde(default)]
    created_by_user_ids: Vec<String>,
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
    sort_by: Option<String>,
    sort_order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl PhaseListQuery {
    fn filter(self) -> ApiResult<PhaseFilter> {
        let procedure_ids = self.procedure_id.map(|p| vec![p]).unwrap_or_default();
        Ok(PhaseFilter {
            run: RunFilter {
                procedure_ids: query::ids(procedure_ids),
                outcomes: query::enums("run_outcomes", self.run_outcomes, RunOutcome::as_str)?,
                procedure_versions: query::texts(self.procedure_versions),
                serial_numbers: query::texts(self.serial_numbers),
                part_numbers: query::texts(self.part_numbers),
                revision_numbers: query::texts(self.revision_numbers),
                batch_numbers: query::texts(self.batch_numbers),
                created_by_user_ids: query::ids(self.created_by_user_ids),
                created_by_station_ids: query::ids(self.created_by_station_ids),
                operated_by_ids: query::ids(self.operated_by_ids),
                operated_by_names: query::texts(self.operated_by_names),
                deployment_ids: query::texts(self.deployment_ids),
                samples: query::enums("samples", self.samples, SampleFilter::as_str)?,
                ..RunFilter::default()
            },
            ids: query::ids(self.ids),
            names: query::texts(self.names),
            outcomes: query::enums("outcomes", self.outcomes, PhaseOutcome::as_str)?,
            sequence_paths: query::texts(self.sequence_paths),
            started_after: opt_query_ts("started_after", &self.started_after)?,
            started_before: opt_query_ts_upper("started_before", &self.started_before)?,
            duration_min_us: query::duration("duration_min", &self.duration_min)?,
            duration_max_us: query::duration("duration_max", &self.duration_max)?,
            exclude_retries: query::flag("exclude_retries", &self.exclude_retries)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct PhaseListData {
    id: Id,
    name: String,
    outcome: String,
    started_at: Ts,
    ended_at: Ts,
    duration_ms: i64,
    retry_count: i64,
    sequence_path: Option<String>,
    is_final_attempt: bool,
    run_id: Id,
    run_outcome: String,
    serial_number: String,
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
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PhaseListQuery>,
) -> ApiResult<axum::Json<ListResponse<PhaseListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let sort: PhaseSort = query::sort_by(&q.sort_by)?;
    let order = query::sort_order(&q.sort_order)?;
    let filter = q.filter()?;
    let rows = state
        .db
        .list_phases(caller.org_id, &filter, sort, order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    let data = rows.into_iter().map(PhaseListData::from).collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

#[derive(Debug, Serialize)]
pub struct PhaseGetRun {
    id: Id,
    serial_number: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PhaseGetProcedure {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct PhaseGetResponse {
    id: Id,
    name: String,
    outcome: String,
    started_at: Ts,
    ended_at: Ts,
    duration: String,
    retry_count: i64,
    sequence_path: Option<String>,
    docstring: Option<String>,
    measurements: Vec<RunMeasurement>,
    run: PhaseGetRun,
    procedure: PhaseGetProcedure,
}

/// `phases.get` — `GET /v2/phases/{id}`: one phase with its measurements.
async fn get_one(
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
