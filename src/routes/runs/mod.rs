//! Runs (BEHAVIOR.md §1): create, list, get, update (attachments), delete, update
//! metadata. Stations may do all of it except delete; station run creation is limited
//! to procedures linked to the station.

pub mod content;
pub mod convert;
pub mod create;
pub mod enums;
pub mod query;
pub mod render;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, patch};
use axum::Router;
use serde::Deserialize;
use serde_json::{Map, Value};
use validator::Validate;

use self::create::RunCreateRequest;
use self::enums::{RunOutcome, SampleFilter};
use self::render::{run_detail, run_summary, Include, RunGetResponse, RunListData};
use super::attachments::{download_url, public_base};
use super::{IdResponse, IdsResponse, ListResponse};
use crate::db::runs::{RunFilter, RunSort};
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::metadata;
use crate::values::{opt_query_ts, opt_query_ts_upper, paginate, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list).post(create).delete(delete))
        .route("/runs/{id}", get(get_one).patch(update))
        .route("/runs/{id}/metadata", patch(update_metadata))
}

/// `runs.create` — `POST /v2/runs`. Returns the run id; with a `client_run_ref` already
/// used, the id of the run created first.
// BEHAVIOR: first step of the CLI's offline queue. 4xx only for what no retry fixes
// (400 body, 403 unlinked procedure, 404 unknown procedure); a busy database is 503
// with Retry-After (see the status discipline in `error.rs`).
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<RunCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let run = body.into_new_run()?;
    let id = state.db.create_run(&caller, run).await?;
    Ok(axum::Json(IdResponse { id }))
}

/// `runs.get` — `GET /v2/runs/{id}`: the run with phases, measurements, logs,
/// attachments and sub-units.
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<axum::Json<RunGetResponse>> {
    let detail = state.db.run(caller.org_id, id).await?;
    let attachments = state.db.attachments_of_runs(&[id]).await?;
    let base = public_base(&state, &headers);
    Ok(axum::Json(run_detail(detail, attachments, |a| {
        download_url(&state, &base, a)
    })))
}

#[derive(Debug, Deserialize)]
pub struct RunListQuery {
    search_query: Option<String>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    outcomes: Vec<String>,
    #[serde(default)]
    procedure_ids: Vec<String>,
    #[serde(default)]
    procedure_versions: Vec<String>,
    #[serde(default)]
    deployment_ids: Vec<String>,
    #[serde(default)]
    execution_ids: Vec<String>,
    #[serde(default)]
    slot_keys: Vec<String>,
    #[serde(default)]
    slot_names: Vec<String>,
    /// Accepted; tofulab has no deployments, so no run has an environment to match.
    #[serde(default)]
    #[allow(dead_code)]
    environments: Vec<String>,
    #[serde(default)]
    serial_numbers: Vec<String>,
    #[serde(default)]
    samples: Vec<String>,
    #[serde(default)]
    part_numbers: Vec<String>,
    #[serde(default)]
    revision_numbers: Vec<String>,
    #[serde(default)]
    batch_numbers: Vec<String>,
    duration_min: Option<String>,
    duration_max: Option<String>,
    started_after: Option<String>,
    started_before: Option<String>,
    ended_after: Option<String>,
    ended_before: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    #[serde(default)]
    created_by_user_ids: Vec<String>,
    #[serde(default)]
    created_by_station_ids: Vec<String>,
    #[serde(default)]
    operated_by_ids: Vec<String>,
    #[serde(default)]
    operated_by_names: Vec<String>,
    limit: Option<String>,
    cursor: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    metadata: Option<String>,
    include_metadata: Option<String>,
    include_sequences: Option<String>,
}

impl RunListQuery {
    fn filter(self) -> ApiResult<RunFilter> {
        Ok(RunFilter {
            ids: query::ids(self.ids),
            outcomes: query::enums("outcomes", self.outcomes, RunOutcome::as_str)?,
            procedure_ids: query::ids(self.procedure_ids),
            procedure_versions: query::texts(self.procedure_versions),
            serial_numbers: query::texts(self.serial_numbers),
            part_numbers: query::texts(self.part_numbers),
            revision_numbers: query::texts(self.revision_numbers),
            batch_numbers: query::texts(self.batch_numbers),
            duration_min_us: query::duration("duration_min", &self.duration_min)?,
            duration_max_us: query::duration("duration_max", &self.duration_max)?,
            started_after: opt_query_ts("started_after", &self.started_after)?,
            started_before: opt_query_ts_upper("started_before", &self.started_before)?,
            ended_after: opt_query_ts("ended_after", &self.ended_after)?,
            ended_before: opt_query_ts_upper("ended_before", &self.ended_before)?,
            created_after: opt_query_ts("created_after", &self.created_after)?,
            created_before: opt_query_ts_upper("created_before", &self.created_before)?,
            created_by_user_ids: query::ids(self.created_by_user_ids),
            created_by_station_ids: query::ids(self.created_by_station_ids),
            operated_by_ids: query::ids(self.operated_by_ids),
            operated_by_names: query::texts(self.operated_by_names),
            execution_ids: query::texts(self.execution_ids),
            slot_keys: query::texts(self.slot_keys),
            slot_names: query::texts(self.slot_names),
            deployment_ids: query::texts(self.deployment_ids),
            samples: query::enums("samples", self.samples, SampleFilter::as_str)?,
            search_query: self.search_query.filter(|s| !s.trim().is_empty()),
            metadata: metadata::parse_filter(self.metadata.as_deref())?,
        })
    }
}

/// `runs.list` — `GET /v2/runs`, newest start first by default.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RunListQuery>,
) -> ApiResult<axum::Json<ListResponse<RunListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let sort: RunSort = query::sort_by(&q.sort_by)?;
    let order = query::sort_order(&q.sort_order)?;
    let include = Include {
        metadata: query::flag("include_metadata", &q.include_metadata)?,
        sequences: query::flag("include_sequences", &q.include_sequences)?,
    };
    let filter = q.filter()?;
    let rows = state
        .db
        .list_runs(caller.org_id, &filter, sort, order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    let data = rows.into_iter().map(|r| run_summary(r, include)).collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunUpdateRequest {
    #[serde(default)]
    attachments: Option<Vec<Id>>,
}

/// `runs.update` — `PATCH /v2/runs/{id}`: links uploads to the run. `{}` is valid.
async fn update(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<RunUpdateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let uploads = body.attachments.unwrap_or_default();
    state
        .db
        .link_run_attachments(caller.org_id, id, &uploads)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Deserialize)]
pub struct RunDeleteQuery {
    #[serde(default)]
    ids: Vec<String>,
}

/// `runs.delete` — `DELETE /v2/runs?ids=…`. User keys only. Deletes the runs that exist
/// and answers their ids; 404 when none of them exists.
async fn delete(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(q): Query<RunDeleteQuery>,
) -> ApiResult<axum::Json<IdsResponse>> {
    let ids = query::ids(q.ids)
        .ok_or_else(|| ApiError::invalid("ids", "ids: give at least one run id"))?;
    let deleted = state.db.delete_runs(caller.org_id, &ids).await?;
    Ok(axum::Json(IdsResponse { id: deleted }))
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunUpdateMetadataRequest {
    #[serde(default)]
    #[validate(custom(function = "metadata::patch_rule"))]
    metadata: Option<Map<String, Value>>,
}

/// `runs.update_metadata` — `PATCH /v2/runs/{id}/metadata`: upserts keys; a key set to
/// `null` is removed; at most 50 keys may result.
async fn update_metadata(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<RunUpdateMetadataRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let patch = body.metadata.unwrap_or_default();
    state
        .db
        .update_run_metadata(caller.org_id, id, &patch)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}
