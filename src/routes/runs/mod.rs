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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunListQuery {
    search_query: Search,
    ids: Ids,
    outcomes: Enums<RunOutcome>,
    procedure_ids: Ids,
    execution_ids: Texts,
    slot_keys: Texts,
    slot_names: Texts,
    /// Accepted; tofulab has no deployments, so no run has an environment to match.
    #[allow(dead_code)]
    environments: Texts,
    duration_min: Duration,
    duration_max: Duration,
    started_after: After,
    started_before: Before,
    ended_after: After,
    ended_before: Before,
    created_after: After,
    created_before: Before,
    limit: Option<String>,
    cursor: Option<String>,
    sort_by: SortBy<RunSort>,
    sort_order: SortOrder,
    metadata: Option<String>,
    include_metadata: Flag,
    include_sequences: Flag,
    #[serde(flatten)]
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
async fn list(
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
    ids: Ids,
}

/// `runs.delete` — `DELETE /v2/runs?ids=…`. User keys only. Deletes the runs that exist
/// and answers their ids; 404 when none of them exists.
async fn delete(
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
