//! Measurements across runs: `measurements.list` and `measurements.get`. Readable by
//! user and station keys.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::params::{After, Before, Duration, Enums, Flag, Ids, Number, SortBy, Texts};
use super::runs::content::{measurement, validators};
use super::runs::enums::{MeasurementOutcome, MeasurementType, RunOutcome};
use super::runs::scope::RunScope;
use super::ListResponse;
use crate::db::runs::measurements::{MeasurementFilter, MeasurementListRow, MeasurementSort};
use crate::db::runs::RunFilter;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query};
use crate::values::{paginate, Page, SortOrder};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/measurements", get(list))
        .route("/measurements/{id}", get(get_one))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct MeasurementListQuery {
    /// Required by the Python client, optional here (absent = every procedure).
    #[param(inline)]
    procedure_id: Ids,
    #[param(inline)]
    phase_name: Texts,
    #[param(inline)]
    measurement_name: Texts,
    #[param(inline)]
    phase_names: Texts,
    /// Run outcomes.
    #[param(inline)]
    outcomes: Enums<RunOutcome>,
    #[param(inline)]
    ids: Ids,
    #[param(inline)]
    duration_min: Duration,
    #[param(inline)]
    duration_max: Duration,
    #[param(inline)]
    started_after: After,
    #[param(inline)]
    started_before: Before,
    #[param(inline)]
    exclude_retries: Flag,
    #[param(inline)]
    value_min: Number,
    #[param(inline)]
    value_max: Number,
    #[param(inline)]
    value_bool: Flag,
    #[param(inline)]
    value_strings: Texts,
    #[param(inline)]
    measurement_outcomes: Enums<MeasurementOutcome>,
    #[param(inline)]
    measurement_types: Enums<MeasurementType>,
    #[param(inline)]
    sort_by: SortBy<MeasurementSort>,
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

impl MeasurementListQuery {
    fn filter(self) -> ApiResult<MeasurementFilter> {
        let mut phase_names = self.phase_names.0;
        phase_names.extend(self.phase_name.0);
        Ok(MeasurementFilter {
            run: RunFilter {
                procedure_ids: self.procedure_id.0,
                outcomes: self.outcomes.texts(RunOutcome::as_str),
                duration_min_us: self.duration_min.0,
                duration_max_us: self.duration_max.0,
                ..self.scope.run_filter()
            },
            ids: self.ids.0,
            phase_names,
            measurement_names: self.measurement_name.0,
            started_after: self.started_after.0,
            started_before: self.started_before.0,
            exclude_retries: self.exclude_retries.on(),
            value_min: self.value_min.0,
            value_max: self.value_max.0,
            value_bool: self.value_bool.0,
            value_strings: self.value_strings.0,
            outcomes: self.measurement_outcomes.texts(MeasurementOutcome::as_str),
            measurement_types: self.measurement_types.texts(MeasurementType::as_str),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeasurementListData {
    id: Id,
    phase_name: String,
    measurement_name: String,
    started_at: Ts,
    #[schema(required = true)]
    value: Option<f64>,
    #[schema(required = true)]
    bool_value: Option<bool>,
    #[schema(required = true)]
    string_value: Option<String>,
    #[schema(required = true)]
    units: Option<String>,
    #[schema(value_type = crate::routes::runs::enums::MeasurementOutcome, inline)]
    measurement_outcome: String,
    run_id: Id,
    serial_number: String,
    #[schema(required = true, value_type = Option<crate::routes::units::UnitSample>, inline)]
    sample: Option<String>,
    #[schema(value_type = crate::routes::runs::enums::MeasurementType, inline)]
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
#[utoipa::path(
    get,
    path = "/v2/measurements",
    tag = "measurements",
    operation_id = "measurement-list",
    params(MeasurementListQuery, RunScope),
    responses((status = 200, body = ListResponse<MeasurementListData>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<MeasurementListQuery>,
) -> ApiResult<axum::Json<ListResponse<MeasurementListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let (sort, order) = (q.sort_by.key(), q.sort_order);
    let filter = q.filter()?;
    let rows = state
        .db
        .list_measurements(caller.org_id, &filter, sort, order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    let data = rows.into_iter().map(MeasurementListData::from).collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeasurementGetPhase {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeasurementGetRun {
    id: Id,
    #[schema(required = true, value_type = Option<crate::routes::runs::enums::RunOutcome>, inline)]
    outcome: Option<String>,
    #[schema(required = true)]
    serial_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeasurementGetProcedure {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeasurementGetResponse {
    #[serde(flatten)]
    measurement: super::runs::content::RunMeasurement,
    phase: MeasurementGetPhase,
    run: MeasurementGetRun,
    procedure: MeasurementGetProcedure,
}

/// `measurements.get` — `GET /v2/measurements/{id}`.
#[utoipa::path(
    get,
    path = "/v2/measurements/{id}",
    tag = "measurements",
    operation_id = "measurement-get",
    params(("id" = Id, Path)),
    responses((status = 200, body = MeasurementGetResponse))
)]
pub(crate) async fn get_one(
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
