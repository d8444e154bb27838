//! Procedure versions (BEHAVIOR.md §7): create, get, delete. A version is a tag on a
//! procedure, unique per procedure case-insensitively, addressed by that tag.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{IdResponse, StationRef, UserRef};
use crate::db::common::CreatedBy;
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Path, UserCaller, ValidatedJson};
use crate::values::{text_rule, trimmed_required};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/procedures/{id}/versions", post(create))
        .route(
            "/procedures/{id}/versions/{tag}",
            get(get_one).delete(delete),
        )
}

fn version_tag(tag: &str) -> Result<(), validator::ValidationError> {
    // "String must contain at most 60 character(s)": callers search for "60 character".
    text_rule("Tag", tag, 1, 60)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ProcedureCreateVersionRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "version_tag"))]
    pub tag: String,
}

/// `procedures.versions.create` — `POST /v2/procedures/{procedure_id}/versions`. User
/// keys only; a malformed procedure id is 400 for every key (§16).
#[utoipa::path(
    post,
    path = "/v2/procedures/{procedure_id}/versions",
    tag = "procedures",
    operation_id = "procedure-createVersion",
    params(("procedure_id" = Id, Path)),
    request_body = ProcedureCreateVersionRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Path(procedure_id): Path<Id>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<ProcedureCreateVersionRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .create_version(
            caller.org_id,
            procedure_id,
            &body.tag,
            CreatedBy::of(&caller),
        )
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureGetVersionProcedure {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureGetVersionResponse {
    id: Id,
    tag: String,
    created_at: Ts,
    procedure: ProcedureGetVersionProcedure,
    run_count: i64,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
}

/// `procedures.versions.get` — `GET /v2/procedures/{procedure_id}/versions/{tag}`; the
/// tag matches case-insensitively. Station keys may read.
#[utoipa::path(
    get,
    path = "/v2/procedures/{procedure_id}/versions/{tag}",
    tag = "procedures",
    operation_id = "procedure-getVersion",
    params(("procedure_id" = Id, Path), ("tag" = String, Path)),
    responses((status = 200, body = ProcedureGetVersionResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path((procedure_id, tag)): Path<(Id, String)>,
    caller: Caller,
) -> ApiResult<axum::Json<ProcedureGetVersionResponse>> {
    let v = state
        .db
        .version(caller.org_id, procedure_id, tag.trim())
        .await?;
    Ok(axum::Json(ProcedureGetVersionResponse {
        created_by_user: v.creator.user(),
        created_by_station: v.creator.station(),
        id: v.id,
        tag: v.tag,
        created_at: v.created_at,
        procedure: ProcedureGetVersionProcedure {
            id: v.procedure_id,
            name: v.procedure_name,
        },
        run_count: v.run_count,
    }))
}

/// `procedures.versions.delete` — `DELETE /v2/procedures/{procedure_id}/versions/{tag}`.
/// User keys only. Refused with 409 while runs reference the version: deleting it would
/// silently strip the version from their history.
#[utoipa::path(
    delete,
    path = "/v2/procedures/{procedure_id}/versions/{tag}",
    tag = "procedures",
    operation_id = "procedure-deleteVersion",
    params(("procedure_id" = Id, Path), ("tag" = String, Path)),
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((procedure_id, tag)): Path<(Id, String)>,
    caller: UserCaller,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .delete_version(caller.org_id, procedure_id, tag.trim())
        .await?;
    Ok(axum::Json(IdResponse { id }))
}
