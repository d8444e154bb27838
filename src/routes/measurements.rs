//! Measurements across runs: `measurements.list` and `measurements.get`. Readable by
//! user and station keys.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::runs::content::{measurement, validators};
use super::runs::enums::{MeasurementOutcome, MeasurementType, RunOutcome, SampleFilter};
use super::runs::query;
use super::ListResponse;
use crate::db::runs::measurements::{MeasurementFilter, MeasurementListRow, MeasurementSort};
use crate::db::runs::RunFilter;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query};
use crate::values::{opt_query_ts, opt_query_ts_upper, paginate, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/measurements", get(list))
        .route("/measurements/{id}", get(get_one))
}

#[derive(Debug, Deserialize)]
pub struct MeasurementListQuery {
    /// Required by the Python client, optional here (absent = every procedure).
    procedure_id: Option<String>,
    phase_name: Option<String>,
    measurement_name: Option<String>,
    #[serde(default)]
    phase_names: Vec<String>,
    /// Run outcomes.
    #[serde(default)]
    outcomes: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
    duration_min: Option<String>,
    duration_max: Option<String>,
    #[serde(default)]
    deployment_ids: Vec<String>,
    #[serde(default)]
    procedure_versions: Vec<String>,
    #[serde(default)]
    serial_numbers: Vec<String>,
    #[serde(default)]
    part_numbers: Vec<String>,
    #[serde(default)]
    revision_numbers: Vec<String>,
    #[serde(default)]
    batch_numbers: Vec<String>,
    #[serde(default)]
    operated_by_ids: Vec<String>,
    #[serde(default)]
    operated_by_names: Vec<String>,
    #[serde(default)]
    created_by_station_ids: Vec<String>,
    #[serde(default)]
    created_by_user_ids: Vec<String>,
    started_after: Option<String>,
    started_before: Option<String>,
    exclude_retries: Option<String>,
    value_min: Option<String>,
    value_max: Option<String>,
    value_bool: Option<String>,
    #[serde(default)]
    value_strings: Vec<String>,
    #[serde(default)]
    measurement_outcomes: Vec<String>,
    #[serde(default)]
    measurement_types: Vec<String>,
    #[serde(default)]
    samples: Vec<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl MeasurementListQuery {
    fn filter(self) -> ApiResult<MeasurementFilter> {
        let procedure_ids = self.procedure_id.map(|p| vec![p]).unwrap_or_default();
        let mut phase_names = self.phase_names;
        phase_names.extend(self.phase_name);
        Ok(MeasurementFilter {
            run: RunFilter {
                procedure_ids: query::ids(procedure_ids),
                outcomes: query::enums("outcomes", self.outcomes, RunOutcome::as_str)?,
                duration_min_us: query::duration("duration_min", &self.duration_min)?,
                duration_max_us: query::duration("duration_max", &self.duration_max)?,
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
            phase_names: query::texts(phase_names),
            measurement_names: query::texts(self.measurement_name.into_iter().collect()),
            started_after: opt_query_ts("started_after", &self.started_after)?,
            started_before: opt_query_ts_upper("started_before", &self.started_before)?,
            exclude_retries: query::flag("exclude_retries", &self.exclude_retries)?,
            value_min: query::number("value_min", &self.value_min)?,
            value_max: query::number("value_max", &self.value_max)?,
            value_bool: query::opt_flag("value_bool", &self.value_bool)?,
            value_strings: query::texts(self.value_strings),
            outcomes: query::enums(
                "measurement_outcomes",
                self.measurement_outcomes,
                MeasurementOutcome::as_str,
            )?,
            measurement_types: query::enums(
                "measurement_types",
                self.measurement_types,
                MeasurementType::as_str,
            )?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct MeasurementListData {
    id: Id,
    phase_name: String,
    measurement_name: String,
    started_at: Ts,
    value: Option<f64>,
    bool_value: Option<bool>,
    string_value: Option<String>,
    units: Option<String>,
    measurement_outcome: String,
    run_id: Id,
    serial_number: String,
    sample: Option<String>,
    measurement_type: String,
    retry_count: i64,
    is_final_attempt: bool,
    validators: Value,
}

impl From<MeasurementListRow> for MeasurementListData {
    fn from(m: MeasurementListRow) -> Self {
        MeasurementListData {
            id: m.id,
            phase_name: m.phase_name,
            measurement_name: m.measurement_name,
            started_at: m.started_at,
            value: m.value_number,
            bool_value: m.value_bool,
            string_value: m.value_string,
            units: m.units,
            measurement_outcome: m.outcome,
            run_id: m.run_id,
            serial_number: m.serial_number,
            sample: m.sample,
            measurement_type: m.measurement_type,
            retry_count: m.retry_count,
            is_final_attempt: m.is_final_attempt,
            validators: validators(m.validators.map(|j| j.0)),
        }
    }
}

/// `measurements.list` — `GET /v2/measurements`: measurements across the organization's
/// runs with typed value filters, newest phase start first by default.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<MeasurementListQuery>,
) -> ApiResult<axum::Json<ListResponse<MeasurementListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let sort: MeasurementSort = query::sort_by(&q.sort_by)?;
    let order = query::sort_order(&q.sort_order)?;
    let filter = q.filter()?;
    let rows = state
        .db
        .list_measurements(caller.org_id, &filter, sort, order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    let data = rows.into_iter().map(MeasurementListData::from).collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

#[derive(Debug, Serialize)]
pub struct MeasurementGetPhase {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct MeasurementGetRun {
    id: Id,
    outcome: Option<String>,
    serial_number: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MeasurementGetProcedure {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct MeasurementGetResponse {
    #[serde(flatten)]
    measurement: super::runs::content::RunMeasurement,
    phase: MeasurementGetPhase,
    run: MeasurementGetRun,
    procedure: MeasurementGetProcedure,
}

/// `measurements.get` — `GET /v2/measurements/{id}`.
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
) -> ApiResult<axum::Json<MeasurementGetResponse>> {
    let d = state.db.measurement(caller.org_id, id).await?;
    let phase = MeasurementGetPhase {
        id: d.measurement.phase_id,
        name: d.phase_name,
    };
    Ok(axum::Json(MeasurementGetResponse {
        measurement: measurement(d.measurement),
        phase,
        run: MeasurementGetRun {
            id: d.run_id,
            outcome: Some(d.run_outcome),
            serial_number: Some(d.serial_number),
        },
        procedure: MeasurementGetProcedure {
            id: d.procedure_id,
            name: d.procedure_name,
        },
    }))
}
