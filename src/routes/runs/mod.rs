//! Runs (BEHAVIOR.md §1): create, list, get, update (attachments), delete, update
//! metadata. Stations may do all of it except delete; station run creation is limited
//! to procedures linked to the station.

pub mod content;
pub mod convert;
pub mod create;
pub mod enums;
pub mod render;
pub mod scope;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, patch};
use axum::Router;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use self::create::RunCreateRequest;
use self::enums::RunOutcome;
use self::render::{run_detail, run_summary, Include, RunGetResponse, RunListData};
use self::scope::RunScope;
use super::attachments::{download_url, public_base};
use super::params::{After, Before, Duration, Enums, Flag, Ids, Search, SortBy, Texts};
use super::{IdResponse, IdsResponse, ListResponse};
use crate::db::runs::{RunFilter, RunSort};
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::metadata;
use crate::values::{paginate, Page, SortOrder};
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
#[utoipa::path(
    post,
    path = "/v2/runs",
    tag = "runs",
    operation_id = "run-create",
    request_body = RunCreateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
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
#[utoipa::path(
    get,
    path = "/v2/runs/{id}",
    tag = "runs",
    operation_id = "run-get",
    params(("id" = Id, Path)),
    responses((status = 200, body = RunGetResponse))
)]
pub(crate) async fn get_one(
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

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    ids: Ids,
    #[param(inline)]
    outcomes: Enums<RunOutcome>,
    #[param(inline)]
    procedure_ids: Ids,
    #[param(inline)]
    execution_ids: Texts,
    #[param(inline)]
    slot_keys: Texts,
    #[param(inline)]
    slot_names: Texts,
    #[param(inline)]
    duration_min: Duration,
    #[param(inline)]
    duration_max: Duration,
    #[param(inline)]
    started_after: After,
    #[param(inline)]
    started_before: Before,
    #[param(inline)]
    ended_after: After,
    #[param(inline)]
    ended_before: Before,
    #[param(inline)]
    created_after: After,
    #[param(inline)]
    created_before: Before,
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[param(inline)]
    sort_by: SortBy<RunSort>,
    #[param(inline)]
    sort_order: SortOrder,
    metadata: Option<String>,
    #[param(inline)]
    include_metadata: Flag,
    #[param(inline)]
    include_sequences: Flag,
    #[serde(flatten)]
    #[param(ignore)]
    scope: RunScope,
}

impl RunListQuery {
    fn filter(self) -> ApiResult<RunFilter> {
        Ok(RunFilter {
            ids: self.ids.0,
            outcomes: self.outcomes.texts(RunOutcome::as_str),
            procedure_ids: self.procedure_ids.0,
            duration_min_us: self.duration_min.0,
            duration_max_us: self.duration_max.0,
            started_after: self.started_after.0,
            started_before: self.started_before.0,
            ended_after: self.ended_after.0,
            ended_before: self.ended_before.0,
            created_after: self.created_after.0,
            created_before: self.created_before.0,
            execution_ids: self.execution_ids.0,
            slot_keys: self.slot_keys.0,
            slot_names: self.slot_names.0,
            search_query: self.search_query.0,
            metadata: metadata::parse_filter(self.metadata.as_deref())?,
            ..self.scope.run_filter()
        })
    }
}

/// `runs.list` — `GET /v2/runs`, newest start first by default.
#[utoipa::path(
    get,
    path = "/v2/runs",
    tag = "runs",
    operation_id = "run-list",
    params(RunListQuery, RunScope),
    responses((status = 200, body = ListResponse<RunListData>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RunListQuery>,
) -> ApiResult<axum::Json<ListResponse<RunListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let (sort, order) = (q.sort_by.key(), q.sort_order);
    let include = Include {
        metadata: q.include_metadata.on(),
        sequences: q.include_sequences.on(),
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RunUpdateRequest {
    #[serde(default)]
    attachments: Option<Vec<Id>>,
}

/// `runs.update` — `PATCH /v2/runs/{id}`: links uploads to the run. `{}` is valid.
#[utoipa::path(
    patch,
    path = "/v2/runs/{id}",
    tag = "runs",
    operation_id = "run-update",
    params(("id" = Id, Path)),
    request_body = RunUpdateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn update(
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunDeleteQuery {
    #[serde(default)]
    #[param(inline, required = true)]
    ids: Ids,
}

/// `runs.delete` — `DELETE /v2/runs?ids=…`. User keys only. Deletes the runs that exist
/// and answers their ids; 404 when none of them exists.
#[utoipa::path(
    delete,
    path = "/v2/runs",
    tag = "runs",
    operation_id = "run-delete",
    params(RunDeleteQuery),
    responses((status = 200, body = IdsResponse))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(q): Query<RunDeleteQuery>,
) -> ApiResult<axum::Json<IdsResponse>> {
    let ids = q
        .ids
        .0
        .ok_or_else(|| ApiError::invalid("ids", "ids: give at least one run id"))?;
    let deleted = state.db.delete_runs(caller.org_id, &ids).await?;
    Ok(axum::Json(IdsResponse { id: deleted }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RunUpdateMetadataRequest {
    #[serde(default)]
    #[validate(custom(function = "metadata::patch_rule"))]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
}

/// `runs.update_metadata` — `PATCH /v2/runs/{id}/metadata`: upserts keys; a key set to
/// `null` is removed; at most 50 keys may result.
#[utoipa::path(
    patch,
    path = "/v2/runs/{id}/metadata",
    tag = "runs",
    operation_id = "run-updateMetadata",
    params(("id" = Id, Path)),
    request_body = RunUpdateMetadataRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn update_metadata(
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
