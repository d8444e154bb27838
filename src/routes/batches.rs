//! Batches (BEHAVIOR.md §5): create, list, get, update, delete.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{IdResponse, IdsResponse, ListResponse, StationRef, UserRef};
use crate::db::batches::{BatchFilter, BatchRow, BatchSort};
use crate::db::common::CreatedBy;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::routes::params::{After, Before, Ids, Search, SortBy, Texts};
use crate::rules;
use crate::values::{paginate, trimmed_required, Page, SortOrder};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/batches", get(list).post(create))
        .route(
            "/batches/{number}",
            get(get_one).patch(update).delete(delete),
        )
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct BatchCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "rules::validate::batch"))]
    pub number: String,
}

/// `batches.create` — `POST /v2/batches`. Stations may create batches.
#[utoipa::path(post, path = "/v2/batches", tag = "batches", operation_id = "batch-create",
    request_body = BatchCreateRequest, responses((status = 200, body = IdResponse)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<BatchCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .create_batch(caller.org_id, CreatedBy::of(&caller), &body.number)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchListSortBy {
    Number,
    CreatedAt,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct BatchListQuery {
    #[param(inline)]
    ids: Ids,
    #[param(inline)]
    numbers: Texts,
    #[param(inline)]
    created_after: After,
    #[param(inline)]
    created_before: Before,
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    part_numbers: Texts,
    #[param(inline)]
    revision_numbers: Texts,
    #[param(inline)]
    sort_by: SortBy<BatchListSortBy>,
    #[param(inline)]
    sort_order: SortOrder,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchListItem {
    id: Id,
    number: String,
    created_at: Ts,
    unit_count: i64,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
}

impl From<BatchRow> for BatchListItem {
    fn from(b: BatchRow) -> Self {
        BatchListItem {
            created_by_user: b.creator.user(),
            created_by_station: b.creator.station(),
            id: b.id,
            number: b.number,
            created_at: b.created_at,
            unit_count: b.unit_count,
        }
    }
}

/// `batches.list` — `GET /v2/batches`, newest first by default.
#[utoipa::path(get, path = "/v2/batches", tag = "batches", operation_id = "batch-list",
    params(BatchListQuery), responses((status = 200, body = ListResponse<BatchListItem>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BatchListQuery>,
) -> ApiResult<axum::Json<ListResponse<BatchListItem>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = BatchFilter {
        ids: q.ids.0,
        numbers: q.numbers.0,
        created_after: q.created_after.0,
        created_before: q.created_before.0,
        search_query: q.search_query.0,
        part_numbers: q.part_numbers.0,
        revision_numbers: q.revision_numbers.0,
    };
    let sort = match q.sort_by.0 {
        Some(BatchListSortBy::Number) => BatchSort::Number,
        Some(BatchListSortBy::CreatedAt) | None => BatchSort::CreatedAt,
    };
    let rows = state
        .db
        .list_batches(caller.org_id, &filter, sort, q.sort_order, page)
        .await?;
    let (rows, meta) = paginate(rows, page);
    Ok(axum::Json(ListResponse {
        data: rows.into_iter().map(BatchListItem::from).collect(),
        meta,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchGetRevision {
    id: Id,
    number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchGetPart {
    id: Id,
    number: String,
    name: String,
    revision: BatchGetRevision,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchGetUnit {
    id: Id,
    serial_number: String,
    created_at: Ts,
    part: BatchGetPart,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchGetResponse {
    id: Id,
    number: String,
    created_at: Ts,
    unit_count: i64,
    units: Vec<BatchGetUnit>,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
}

/// `batches.get` — `GET /v2/batches/{number}`; the number matches case-insensitively.
#[utoipa::path(get, path = "/v2/batches/{number}", tag = "batches", operation_id = "batch-get",
    params(("number" = String, Path)), responses((status = 200, body = BatchGetResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: Caller,
) -> ApiResult<axum::Json<BatchGetResponse>> {
    let d = state.db.batch(caller.org_id, number.trim()).await?;
    let b = d.batch;
    Ok(axum::Json(BatchGetResponse {
        created_by_user: b.creator.user(),
        created_by_station: b.creator.station(),
        id: b.id,
        number: b.number,
        created_at: b.created_at,
        unit_count: b.unit_count,
        units: d
            .units
            .into_iter()
            .map(|u| BatchGetUnit {
                id: u.id,
                serial_number: u.serial_number,
                created_at: u.created_at,
                part: BatchGetPart {
                    id: u.part_id,
                    number: u.part_number,
                    name: u.part_name,
                    revision: BatchGetRevision {
                        id: u.revision_id,
                        number: u.revision_number,
                    },
                },
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct BatchUpdateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "rules::validate::batch"))]
    pub new_number: String,
}

/// `batches.update` — `PATCH /v2/batches/{number}`. User keys only.
#[utoipa::path(patch, path = "/v2/batches/{number}", tag = "batches", operation_id = "batch-update",
    params(("number" = String, Path)), request_body = BatchUpdateRequest,
    responses((status = 200, body = IdResponse)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<BatchUpdateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .renumber_batch(caller.org_id, number.trim(), &body.new_number)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

/// `batches.delete` — `DELETE /v2/batches/{number}`. User keys only. The batch's units
/// are kept and lose their batch.
#[utoipa::path(delete, path = "/v2/batches/{number}", tag = "batches", operation_id = "batch-delete",
    params(("number" = String, Path)), responses((status = 200, body = IdsResponse)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: UserCaller,
) -> ApiResult<axum::Json<IdsResponse>> {
    let id = state.db.delete_batch(caller.org_id, number.trim()).await?;
    Ok(axum::Json(IdsResponse { id: vec![id] }))
}
