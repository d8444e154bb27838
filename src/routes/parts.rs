//! Parts (BEHAVIOR.md §3): create, list, get, update, delete.

use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::{IdResponse, ListResponse, StationRef, UserRef};
use crate::db::common::CreatedBy;
use crate::db::metadata as db_metadata;
use crate::db::parts::{NewPart, PartChanges, PartFilter, PartRevisionRow, PartSort};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult, Issue};
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::metadata::{self, Metadata};
use crate::routes::params::{Flag, Ids, Search, SortBy};
use crate::values::{paginate, text_rule, trimmed, trimmed_required, Page, SortOrder};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    // `{part_number}` is also the segment name of the revision routes: the router needs
    // one name per position.
    Router::new().route("/parts", get(list).post(create)).route(
        "/parts/{part_number}",
        get(get_one).patch(update).delete(delete),
    )
}

pub(crate) fn part_number_rule(v: &str) -> Result<(), validator::ValidationError> {
    text_rule("Part number", v, 1, 60)
}

pub(crate) fn revision_number_rule(v: &str) -> Result<(), validator::ValidationError> {
    text_rule("Revision number", v, 1, 60)
}

fn part_name_rule(v: &str) -> Result<(), validator::ValidationError> {
    // An empty name on create means "use the number".
    text_rule("Name", v, 0, 255)
}

fn new_part_name_rule(v: &str) -> Result<(), validator::ValidationError> {
    text_rule("Name", v, 1, 255)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct PartCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "part_number_rule"))]
    pub number: String,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "part_name_rule"))]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "revision_number_rule"))]
    pub revision_number: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "metadata::rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// `parts.create` — `POST /v2/parts`. Stations may create parts.
#[utoipa::path(
    post,
    path = "/v2/parts",
    tag = "parts",
    operation_id = "part-create",
    request_body = PartCreateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<PartCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let name = body
        .name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| body.number.clone());
    let new = NewPart {
        number: body.number,
        name,
        revision_number: body.revision_number,
        metadata: db_metadata::stored(body.metadata),
    };
    let id = state
        .db
        .create_part(caller.org_id, CreatedBy::of(&caller), new)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartListSortBy {
    Name,
    Number,
    CreatedAt,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct PartListQuery {
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    procedure_ids: Ids,
    #[param(inline)]
    sort_by: SortBy<PartListSortBy>,
    #[param(inline)]
    sort_order: SortOrder,
    metadata: Option<String>,
    #[param(inline)]
    include_metadata: Flag,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartListRevision {
    id: Id,
    number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartListItem {
    id: Id,
    number: String,
    name: String,
    created_at: Ts,
    revisions: Vec<PartListRevision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Metadata>,
}

/// `parts.list` — `GET /v2/parts`, newest first by default.
#[utoipa::path(
    get,
    path = "/v2/parts",
    tag = "parts",
    operation_id = "part-list",
    params(PartListQuery),
    responses((status = 200, body = ListResponse<PartListItem>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PartListQuery>,
) -> ApiResult<axum::Json<ListResponse<PartListItem>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = PartFilter {
        search_query: q.search_query.0,
        procedure_ids: q.procedure_ids.0,
        metadata: metadata::parse_filter(q.metadata.as_deref())?,
    };
    let sort = match q.sort_by.0 {
        Some(PartListSortBy::Name) => PartSort::Name,
        Some(PartListSortBy::Number) => PartSort::Number,
        Some(PartListSortBy::CreatedAt) | None => PartSort::CreatedAt,
    };
    let (rows, revisions) = state
        .db
        .list_parts(caller.org_id, &filter, sort, q.sort_order, page)
        .await?;
    let mut by_part = group_revisions(revisions);
    let include_metadata = q.include_metadata.on();
    let (rows, meta) = paginate(rows, page);
    let data = rows
        .into_iter()
        .map(|p| PartListItem {
            revisions: by_part
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .map(|r| PartListRevision {
                    id: r.id,
                    number: r.number,
                })
                .collect(),
            metadata: include_metadata.then(|| db_metadata::object(p.metadata)),
            id: p.id,
            number: p.number,
            name: p.name,
            created_at: p.created_at,
        })
        .collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

fn group_revisions(rows: Vec<PartRevisionRow>) -> HashMap<Id, Vec<PartRevisionRow>> {
    let mut out: HashMap<Id, Vec<PartRevisionRow>> = HashMap::new();
    for r in rows {
        out.entry(r.part_id).or_default().push(r);
    }
    out
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartGetRevision {
    id: Id,
    number: String,
    created_at: Ts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartGetResponse {
    id: Id,
    number: String,
    name: String,
    created_at: Ts,
    revisions: Vec<PartGetRevision>,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
    #[schema(value_type = Object)]
    metadata: Metadata,
}

/// `parts.get` — `GET /v2/parts/{number}`; the number matches case-insensitively.
#[utoipa::path(
    get,
    path = "/v2/parts/{number}",
    tag = "parts",
    operation_id = "part-get",
    params(("number" = String, Path)),
    responses((status = 200, body = PartGetResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: Caller,
) -> ApiResult<axum::Json<PartGetResponse>> {
    let d = state.db.part(caller.org_id, number.trim()).await?;
    let p = d.part;
    Ok(axum::Json(PartGetResponse {
        created_by_user: p.creator.user(),
        created_by_station: p.creator.station(),
        id: p.id,
        number: p.number,
        name: p.name,
        created_at: p.created_at,
        revisions: d
            .revisions
            .into_iter()
            .map(|r| PartGetRevision {
                id: r.id,
                number: r.number,
                created_at: r.created_at,
            })
            .collect(),
        metadata: db_metadata::object(p.metadata),
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct PartUpdateRequest {
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "part_number_rule"))]
    pub new_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "new_part_name_rule"))]
    pub name: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "metadata::patch_rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartUpdateResponse {
    id: Id,
    number: String,
    name: String,
    updated_at: Ts,
}

/// `parts.update` — `PATCH /v2/parts/{number}`. User keys only; at least one field.
#[utoipa::path(
    patch,
    path = "/v2/parts/{number}",
    tag = "parts",
    operation_id = "part-update",
    params(("number" = String, Path)),
    request_body = PartUpdateRequest,
    responses((status = 200, body = PartUpdateResponse))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<PartUpdateRequest>,
) -> ApiResult<axum::Json<PartUpdateResponse>> {
    if body.new_number.is_none() && body.name.is_none() && body.metadata.is_none() {
        return Err(ApiError::validation(vec![Issue::new(
            "Nothing to update: send new_number, name or metadata",
        )]));
    }
    let changes = PartChanges {
        new_number: body.new_number,
        name: body.name,
        metadata: body.metadata,
    };
    let p = state
        .db
        .update_part(caller.org_id, number.trim(), changes)
        .await?;
    Ok(axum::Json(PartUpdateResponse {
        id: p.id,
        number: p.number,
        name: p.name,
        updated_at: p.updated_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartDeleteResponse {
    id: Id,
    #[serde(rename = "deletedRevisionIds")]
    deleted_revision_ids: Vec<Id>,
}

/// `parts.delete` — `DELETE /v2/parts/{number}`. User keys only. Deletes the part with
/// its revisions and their images; refused (409) while units or runs use a revision.
#[utoipa::path(
    delete,
    path = "/v2/parts/{number}",
    tag = "parts",
    operation_id = "part-delete",
    params(("number" = String, Path)),
    responses((status = 200, body = PartDeleteResponse))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: UserCaller,
) -> ApiResult<axum::Json<PartDeleteResponse>> {
    let d = state.db.delete_part(caller.org_id, number.trim()).await?;
    Ok(axum::Json(PartDeleteResponse {
        id: d.id,
        deleted_revision_ids: d.revision_ids,
    }))
}
