//! Deployments and realtime (CLI.md §3.9–3.12). tofulab has no build pipeline and no
//! realtime server: `pull` lists the station's procedures with no deployment (so `pull`
//! and the daemon's pull are no-ops), a descriptor is "not built", the realtime stream
//! is disabled, and `deploy` is refused.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{with_error, StationCaller};
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, UserCaller};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct PullStation {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct PullDeployment {
    id: String,
    sha: String,
    message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PullProcedure {
    id: Id,
    name: String,
    /// Always null: nothing is ever built, so the CLI skips the procedure.
    deployment: Option<PullDeployment>,
}

#[derive(Debug, Serialize)]
pub struct PullResponse {
    station: PullStation,
    procedures: Vec<PullProcedure>,
}

/// `GET /api/cli/pull` (station keys) — the procedures linked to the station, none with
/// a deployment.
pub async fn list(
    State(state): State<AppState>,
    caller: StationCaller,
) -> ApiResult<axum::Json<PullResponse>> {
    let detail = state
        .db
        .station(caller.0.org_id, caller.station_id())
        .await?;
    Ok(axum::Json(PullResponse {
        station: PullStation {
            id: detail.station.id,
            name: detail.station.name,
        },
        procedures: detail
            .procedures
            .into_iter()
            .map(|p| PullProcedure {
                id: p.id,
                name: p.name,
                deployment: None,
            })
            .collect(),
    }))
}

/// `GET /api/cli/pull/{procedure_id}` (station keys) — 409 for a linked procedure, the
/// answer the CLI reads as "Artifact not ready: build is pending, running, or failed";
/// 404 for a procedure the station is not linked to.
pub async fn descriptor(
    State(state): State<AppState>,
    Path(procedure_id): Path<Id>,
    caller: StationCaller,
) -> ApiResult<Response> {
    let detail = state
        .db
        .station(caller.0.org_id, caller.station_id())
        .await?;
    if !detail.procedures.iter().any(|p| p.id == procedure_id) {
        return Err(ApiError::not_found("Procedure not found"));
    }
    Ok(with_error(
        ApiError::conflict(
            "Not built: tofulab does not build deployments, so this procedure has no \
             artifact to pull",
        ),
        "not_built",
    ))
}

/// `GET /api/cli/stream` — 503, the answer the CLI reads as "Server has streaming
/// disabled": the station keeps running and uploading without realtime.
/// COMPAT: 503 although retrying never helps: CLI 1.4.1 has no "permanently off"
/// answer, and every other status is logged as a failure (401/403 even as a logout).
pub async fn stream(_caller: crate::extract::Caller) -> Response {
    with_error(
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Realtime streaming is disabled: tofulab has no realtime server; stations work \
             and upload without it",
        ),
        "streaming_disabled",
    )
}

/// `/api/cli/deployments*` (`tofupilot deploy`, user keys) — 404: tofulab neither
/// builds nor hosts procedure code. Station keys get 403 first.
pub async fn deployments(_caller: UserCaller) -> Response {
    with_error(
        ApiError::not_found(
            "Deployments are not supported: tofulab does not build or host procedure code",
        ),
        "deployments are not supported by tofulab",
    )
}
