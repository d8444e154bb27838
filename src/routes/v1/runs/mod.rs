//! Legacy runs (BEHAVIOR.md §11.1, §11.2): `TofuPilotClient.create_run` and `get_runs`.
//! A legacy run is mapped into the same `NewRun` a v2 `POST /v2/runs` makes, so it lands
//! in the same tables and reads back through `GET /v2/runs/{id}`.
//!
//! Decisions where the spec is silent:
//! - Deprecated `steps` become phases (outcome from `step_passed`, times from
//!   `started_at` + `duration`); a step that carries a `measurement_value` gets one
//!   measurement named after the step, with its unit and `limit_low`/`limit_high` as
//!   `>=`/`<=` validators.
//! - `unit_under_test.part_name` names the part when the part has no name of its own yet
//!   (a part created implicitly is named after its number).
//! - On a measurement with both limits and validator strings, the limit validators come
//!   first.
//! - Log timestamps without an offset are taken as UTC.

mod request;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

pub use self::request::CreateRunRequest;
use super::V1Created;
use crate::db::runs::{RunFilter, RunSort};
use crate::db::StoreError;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Query, ValidatedJson};
use crate::import::resolve_procedure;
use crate::routes::attachments::{download_url, public_base};
use crate::routes::runs::render::{run_detail, RunGetResponse};
use crate::values::{Page, SortOrder};
use crate::AppState;

/// `POST /api/v1/runs` — `TofuPilotClient.create_run`. Same keys and station rules as
/// `POST /v2/runs` (a station key on an unlinked procedure is 403).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<CreateRunRequest>,
) -> ApiResult<axum::Json<V1Created>> {
    body.check()?;
    let procedure_id = resolve_procedure(
        &state.db,
        &caller,
        body.procedure_id.as_deref(),
        body.procedure_name.as_deref(),
        "procedure_id",
    )
    .await?;
    let part = body.unit_under_test.part_number.clone();
    let part_name = body.unit_under_test.part_name.clone();
    let run = body.into_new_run(procedure_id)?;
    let id = state.db.create_run(&caller, run).await?;
    if let (Some(number), Some(name)) = (part, part_name.filter(|n| !n.is_empty())) {
        state
            .db
            .name_unnamed_part(caller.org_id, &number, &name)
            .await?;
    }
    Ok(axum::Json(V1Created::new(id)))
}

#[derive(Debug, Deserialize)]
pub struct GetRunsQuery {
    serial_number: Option<String>,
}

/// `{"success": true, "result": [runs]}`.
#[derive(Debug, Serialize)]
pub struct GetRunsResponse {
    success: bool,
    result: Vec<RunGetResponse>,
}

/// Runs per listing query while collecting all runs of a unit.
const PAGE: i64 = 100;

/// `GET /api/v1/runs?serial_number=` — `TofuPilotClient.get_runs`: every run of the unit
/// (case-insensitive), newest first, each in the `GET /v2/runs/{id}` shape. An unknown
/// serial number gives an empty list.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<GetRunsQuery>,
) -> ApiResult<axum::Json<GetRunsResponse>> {
    let serial = q
        .serial_number
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("serial_number", "serial_number is required"))?;
    let filter = RunFilter {
        serial_numbers: vec![serial],
        ..RunFilter::default()
    };
    let mut ids = Vec::new();
    loop {
        let page = Page {
            limit: PAGE,
            offset: ids.len() as i64,
        };
        let rows = state
            .db
            .list_runs(
                caller.org_id,
                &filter,
                RunSort::StartedAt,
                SortOrder::Desc,
                page,
            )
            .await?;
        let more = rows.len() as i64 > PAGE;
        ids.extend(rows.into_iter().take(PAGE as usize).map(|r| r.id));
        if !more {
            break;
        }
    }
    let mut attachments = state.db.attachments_of_runs(&ids).await?;
    let base = public_base(&state, &headers);
    let mut result = Vec::with_capacity(ids.len());
    for id in ids {
        let detail = match state.db.run(caller.org_id, id).await {
            Ok(d) => d,
            // Deleted since it was listed.
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let (mine, rest) = attachments.into_iter().partition(|a| a.run_id == Some(id));
        attachments = rest;
        result.push(run_detail(detail, mine, |a| download_url(&state, &base, a)));
    }
    Ok(axum::Json(GetRunsResponse {
        success: true,
        result,
    }))
}
