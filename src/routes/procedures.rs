//! Procedures (BEHAVIOR.md §6): create, list, get, update, delete.

use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::{IdResponse, ListResponse, UserRef};
use crate::db::procedures::{ProcedureFilter, ProcedureRow, RecentRunRow};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::routes::params::{After, Before, Search};
use crate::values::{paginate, text_rule, trimmed, trimmed_required, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/procedures", get(list).post(create))
        .route(
            "/procedures/{id}",
            get(get_one).patch(update).delete(delete),
        )
}

fn procedure_name(name: &str) -> Result<(), validator::ValidationError> {
    // COMPAT: the real service accepts up to 255 characters and must refuse >1000.
    text_rule("Name", name, 1, 255)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ProcedureCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "procedure_name"))]
    pub name: String,
}

/// `procedures.create` — `POST /v2/procedures`. User keys only.
#[utoipa::path(
    post,
    path = "/v2/procedures",
    tag = "procedures",
    operation_id = "procedure-create",
    request_body = ProcedureCreateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<ProcedureCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .create_procedure(caller.org_id, Some(caller.user_id()), &body.name)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ProcedureListQuery {
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    created_after: After,
    #[param(inline)]
    created_before: Before,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureListRun {
    id: Id,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    outcome: String,
    started_at: Ts,
    unit: ProcedureListRunUnit,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureListRunUnit {
    id: Id,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureListItem {
    id: Id,
    identifier: String,
    name: String,
    created_at: Ts,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    runs: Vec<ProcedureListRun>,
    #[serde(rename = "linkedRepository")]
    #[schema(required = true)]
    linked_repository: Option<()>,
}

/// `procedures.list` — `GET /v2/procedures`, newest first.
#[utoipa::path(
    get,
    path = "/v2/procedures",
    tag = "procedures",
    operation_id = "procedure-list",
    params(ProcedureListQuery),
    responses((status = 200, body = ListResponse<ProcedureListItem>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ProcedureListQuery>,
) -> ApiResult<axum::Json<ListResponse<ProcedureListItem>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = ProcedureFilter {
        search_query: q.search_query.0,
        created_after: q.created_after.0,
        created_before: q.created_before.0,
    };
    let (rows, runs) = state
        .db
        .list_procedures(caller.org_id, &filter, page)
        .await?;
    let mut runs_by_procedure: HashMap<Id, Vec<RecentRunRow>> = HashMap::new();
    for r in runs {
        runs_by_procedure.entry(r.procedure_id).or_default().push(r);
    }
    let (rows, meta) = paginate(rows, page);
    let data = rows
        .into_iter()
        .map(|p| {
            let runs = runs_by_procedure
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .map(|r| ProcedureListRun {
                    id: r.id,
                    outcome: r.outcome,
                    started_at: r.started_at,
                    unit: ProcedureListRunUnit { id: r.unit_id },
                })
                .collect();
            ProcedureListItem {
                id: p.id,
                identifier: p.identifier.clone(),
                name: p.name.clone(),
                created_at: p.created_at,
                created_by_user: creator(&p),
                runs,
                linked_repository: None,
            }
        })
        .collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

/// The creator as the list schema needs it: a non-null object with a non-null email.
/// Procedures created through the seed without any user have no creator; they show an
/// empty placeholder rather than break strict clients.
fn creator(p: &ProcedureRow) -> Option<UserRef> {
    Some(UserRef {
        id: p.cu_id.unwrap_or(Id::NIL),
        name: p.cu_name.clone(),
        email: Some(p.cu_email.clone().unwrap_or_default()),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureGetRecentRun {
    id: Id,
    started_at: Ts,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    outcome: String,
    #[schema(required = true)]
    unit: Option<SerialOnly>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SerialOnly {
    serial_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureGetStation {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureGetResponse {
    id: Id,
    identifier: String,
    name: String,
    created_at: Ts,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    runs_count: i64,
    recent_runs: Vec<ProcedureGetRecentRun>,
    stations: Vec<ProcedureGetStation>,
}

/// `procedures.get` — `GET /v2/procedures/{id}`; station keys may read too.
#[utoipa::path(
    get,
    path = "/v2/procedures/{id}",
    tag = "procedures",
    operation_id = "procedure-get",
    params(("id" = Id, Path)),
    responses((status = 200, body = ProcedureGetResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<ProcedureGetResponse>> {
    let d = state.db.procedure(caller.org_id, id).await?;
    let p = d.procedure;
    Ok(axum::Json(ProcedureGetResponse {
        id: p.id,
        identifier: p.identifier.clone(),
        name: p.name.clone(),
        created_at: p.created_at,
        created_by_user: p.cu_id.map(|id| UserRef {
            id,
            name: p.cu_name.clone(),
            email: p.cu_email.clone(),
        }),
        runs_count: d.runs_count,
        recent_runs: d
            .recent_runs
            .into_iter()
            .map(|r| ProcedureGetRecentRun {
                id: r.id,
                started_at: r.started_at,
                outcome: r.outcome,
                unit: Some(SerialOnly {
                    serial_number: r.serial_number,
                }),
            })
            .collect(),
        stations: d
            .stations
            .into_iter()
            .map(|s| ProcedureGetStation {
                id: s.id,
                name: s.name,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ProcedureUpdateRequest {
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "procedure_name"))]
    pub name: Option<String>,
    // Git deployment settings: accepted (any value) and ignored, as tofulab has no build
    // pipeline; documented with the contract's types.
    #[allow(dead_code)]
    #[serde(default, rename = "productionBranch")]
    #[schema(value_type = Option<String>)]
    production_branch: Option<serde_json::Value>,
    #[allow(dead_code)]
    #[serde(default, rename = "autoPushEnabled")]
    #[schema(value_type = Option<bool>)]
    auto_push_enabled: Option<serde_json::Value>,
    #[allow(dead_code)]
    #[serde(default, rename = "excludedBranchPatterns")]
    #[schema(value_type = Option<Vec<String>>)]
    excluded_branch_patterns: Option<serde_json::Value>,
    #[allow(dead_code)]
    #[serde(default, rename = "rootDirectory")]
    #[schema(value_type = Option<String>)]
    root_directory: Option<serde_json::Value>,
    #[allow(dead_code)]
    #[serde(default, rename = "entryPoint")]
    #[schema(value_type = Option<String>)]
    entry_point: Option<serde_json::Value>,
}

/// `procedures.update` — `PATCH /v2/procedures/{id}`. User keys only.
#[utoipa::path(
    patch,
    path = "/v2/procedures/{id}",
    tag = "procedures",
    operation_id = "procedure-update",
    params(("id" = Id, Path)),
    request_body = ProcedureUpdateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<ProcedureUpdateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    match &body.name {
        Some(name) => state.db.rename_procedure(caller.org_id, id, name).await?,
        None => {
            if !state.db.procedure_exists(caller.org_id, id).await? {
                return Err(ApiError::not_found("Procedure not found"));
            }
        }
    }
    Ok(axum::Json(IdResponse { id }))
}

/// `procedures.delete` — `DELETE /v2/procedures/{id}`. User keys only. Deletes the
/// procedure's runs and versions too.
#[utoipa::path(
    delete,
    path = "/v2/procedures/{id}",
    tag = "procedures",
    operation_id = "procedure-delete",
    params(("id" = Id, Path)),
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: UserCaller,
) -> ApiResult<axum::Json<IdResponse>> {
    state.db.delete_procedure(caller.org_id, id).await?;
    Ok(axum::Json(IdResponse { id }))
}
