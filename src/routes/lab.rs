//! `/api/lab/v1`: tofulab's own analytics endpoints (not part of the TofuPilot API).
//! The numbers of the procedure analytics page as JSON, defined in ANALYTICS.md. Same
//! bearer authentication as `/api/v2` (user or station key), scoped to the caller's
//! organization (another organization's procedure is a 404), same error envelope.
//!
//! Every endpoint takes `procedure_id`, `from` and `to` (UTC dates `YYYY-MM-DD`, both
//! inclusive, at most `MAX_RANGE_DAYS` days) and `samples` (unit kinds included,
//! comma-separated or repeated: `production`, `golden`, `failing`, `ignored`; default
//! `production`, i.e. reference samples excluded).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::analytics::{DateRange, ParetoRow};
use crate::db::analytics::{
    CapabilityRow, FailureBy, HistogramReport, Scope, SeriesReport, VolumeDay, YieldGroup,
    YieldReport, SAMPLE_KINDS, SERIES_PAGE_MAX,
};
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/yield", get(yields))
        .route("/volume", get(volume))
        .route("/capability", get(capability))
        .route("/failures", get(failures))
        .route("/series", get(series))
        .route("/histogram", get(histogram))
}

/// Query parameters of every endpoint (each reads the ones it needs).
#[derive(Debug, Default, Deserialize)]
pub struct LabQuery {
    procedure_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    samples: Vec<String>,
    group_by: Option<String>,
    by: Option<String>,
    phase: Option<String>,
    measurement: Option<String>,
    units: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn required<'a>(v: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid(field, format!("`{field}` is required")))
}

impl LabQuery {
    /// The scope of the request, after checking the procedure is the caller's.
    async fn scope(&self, state: &AppState, caller: &Caller) -> ApiResult<Scope> {
        let procedure_id = Id::parse(required(&self.procedure_id, "procedure_id")?)
            .ok_or_else(|| ApiError::invalid("procedure_id", "`procedure_id` must be a UUID"))?;
        let range = DateRange::parse(required(&self.from, "from")?, required(&self.to, "to")?)
            .map_err(|e| ApiError::invalid(e.field, e.message))?;
        let mut samples: Vec<String> = Vec::new();
        for s in self.samples.iter().flat_map(|s| s.split(',')) {
            let s = s.trim().to_ascii_lowercase();
            if !SAMPLE_KINDS.contains(&s.as_str()) {
                return Err(ApiError::invalid(
                    "samples",
                    format!("`samples` takes {}", SAMPLE_KINDS.join(", ")),
                ));
            }
            if !samples.contains(&s) {
                samples.push(s);
            }
        }
        if !state
            .db
            .procedure_exists(caller.org_id, procedure_id)
            .await?
        {
            return Err(ApiError::not_found("Procedure not found"));
        }
        let mut scope = Scope::new(procedure_id, range);
        if !samples.is_empty() {
            scope.samples = samples;
        }
        Ok(scope)
    }

    fn measurement(&self) -> ApiResult<(&str, &str)> {
        Ok((
            required(&self.phase, "phase")?,
            required(&self.measurement, "measurement")?,
        ))
    }
}

#[derive(Debug, Serialize)]
pub struct DataResponse<T> {
    pub data: Vec<T>,
}

/// `GET /api/lab/v1/yield`: FPY/SPY/TPY/LPY per day (ANALYTICS.md §2), optionally
/// sliced by `group_by=station|revision|batch|version`, plus the pooled `window`.
async fn yields(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LabQuery>,
) -> ApiResult<Json<YieldReport>> {
    let group = match q.group_by.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("station") => Some(YieldGroup::Station),
        Some("revision") => Some(YieldGroup::Revision),
        Some("batch") => Some(YieldGroup::Batch),
        Some("version") => Some(YieldGroup::Version),
        Some(_) => {
            return Err(ApiError::invalid(
                "group_by",
                "`group_by` takes station, revision, batch or version",
            ))
        }
    };
    let scope = q.scope(&state, &caller).await?;
    Ok(Json(
        state
            .db
            .analytics_yield(caller.org_id, &scope, group)
            .await?,
    ))
}

/// `GET /api/lab/v1/volume`: runs per day by outcome, distinct units, retests and mean
/// run duration (§3).
async fn volume(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LabQuery>,
) -> ApiResult<Json<DataResponse<VolumeDay>>> {
    let scope = q.scope(&state, &caller).await?;
    let data = state.db.analytics_volume(caller.org_id, &scope).await?;
    Ok(Json(DataResponse { data }))
}

/// `GET /api/lab/v1/capability`: the capability table (§4), weakest Cpk first.
async fn capability(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LabQuery>,
) -> ApiResult<Json<DataResponse<CapabilityRow>>> {
    let scope = q.scope(&state, &caller).await?;
    let data = state.db.analytics_capability(caller.org_id, &scope).await?;
    Ok(Json(DataResponse { data }))
}

/// `GET /api/lab/v1/failures`: the failure Pareto (§6.1), `by=phase` (default) or
/// `by=measurement`.
async fn failures(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LabQuery>,
) -> ApiResult<Json<DataResponse<ParetoRow>>> {
    let by = match q.by.as_deref().map(str::trim) {
        None | Some("") | Some("phase") => FailureBy::Phase,
        Some("measurement") => FailureBy::Measurement,
        Some(_) => return Err(ApiError::invalid("by", "`by` takes phase or measurement")),
    };
    let scope = q.scope(&state, &caller).await?;
    let data = state
        .db
        .analytics_failures(caller.org_id, &scope, by)
        .await?;
    Ok(Json(DataResponse { data }))
}

/// `GET /api/lab/v1/series`: the control chart of one measurement (§5.1): points in
/// time order, `limit` (at most 10 000, the default) per page from offset `cursor`;
/// CL/UCL/LCL over the whole range; the day-by-day spec limits.
async fn series(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LabQuery>,
) -> ApiResult<Json<SeriesReport>> {
    let (phase, measurement) = q.measurement()?;
    let number = |v: &Option<String>, field: &str, min: i64| -> ApiResult<Option<i64>> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= min)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid(field, format!("`{field}` must be an integer ≥ {min}"))
                }),
        }
    };
    let limit = number(&q.limit, "limit", 1)?
        .unwrap_or(SERIES_PAGE_MAX)
        .min(SERIES_PAGE_MAX);
    let offset = number(&q.cursor, "cursor", 0)?.unwrap_or(0);
    let scope = q.scope(&state, &caller).await?;
    let report = state
        .db
        .analytics_control_chart(
            caller.org_id,
            &scope,
            phase,
            measurement,
            q.units.as_deref(),
            offset,
            limit,
        )
        .await?;
    Ok(Json(report))
}

/// `GET /api/lab/v1/histogram`: the histogram of one measurement (§5.2) with its spec
/// limits, mean and σ for the overlay.
async fn histogram(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LabQuery>,
) -> ApiResult<Json<HistogramReport>> {
    let (phase, measurement) = q.measurement()?;
    let scope = q.scope(&state, &caller).await?;
    let report = state
        .db
        .analytics_histogram(
            caller.org_id,
            &scope,
            phase,
            measurement,
            q.units.as_deref(),
        )
        .await?;
    Ok(Json(report))
}
