//! Revisions of a part (BEHAVIOR.md §4): create, get, update, delete.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::parts::revision_number_rule;
use super::{IdResponse, StationRef, UserRef};
use crate::db::common::CreatedBy;
use crate::db::metadata as db_metadata;
use crate::db::revisions::{ImageChange, RevisionChanges};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult, Issue};
use crate::extract::{Caller, Path, UserCaller, ValidatedJson};
use crate::metadata::{self, Metadata};
use crate::values::{trimmed, trimmed_required};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/parts/{part_number}/revisions", post(create))
        .route(
            "/parts/{part_number}/revisions/{revision_number}",
            get(get_one).patch(update).delete(delete),
        )
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RevisionCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "revision_number_rule"))]
    pub number: String,
    #[serde(default)]
    #[validate(custom(function = "metadata::rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// `parts.revisions.create` — `POST /v2/parts/{part_number}/revisions`. Stations may
/// create revisions.
#[utoipa::path(
    post,
    path = "/v2/parts/{part_number}/revisions",
    tag = "parts",
    operation_id = "part-createRevision",
    params(("part_number" = String, Path)),
    request_body = RevisionCreateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Path(part_number): Path<String>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<RevisionCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .create_revision(
            caller.org_id,
            part_number.trim(),
            &body.number,
            db_metadata::stored(body.metadata),
            CreatedBy::of(&caller),
        )
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionGetPart {
    id: Id,
    number: String,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionGetUnit {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionGetResponse {
    id: Id,
    number: String,
    created_at: Ts,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
    part: RevisionGetPart,
    units: Vec<RevisionGetUnit>,
    /// The upload id of the revision image, if any.
    #[schema(required = true)]
    image_id: Option<Id>,
    #[schema(value_type = Object)]
    metadata: Metadata,
}

/// `parts.revisions.get` — `GET /v2/parts/{part_number}/revisions/{revision_number}`;
/// both numbers match case-insensitively.
#[utoipa::path(
    get,
    path = "/v2/parts/{part_number}/revisions/{revision_number}",
    tag = "parts",
    operation_id = "part-getRevision",
    params(("part_number" = String, Path), ("revision_number" = String, Path)),
    responses((status = 200, body = RevisionGetResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path((part_number, number)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<axum::Json<RevisionGetResponse>> {
    let d = state
        .db
        .revision(caller.org_id, part_number.trim(), number.trim())
        .await?;
    let r = d.revision;
    Ok(axum::Json(RevisionGetResponse {
        created_by_user: r.creator.user(),
        created_by_station: r.creator.station(),
        id: r.id,
        number: r.number,
        created_at: r.created_at,
        part: RevisionGetPart {
            id: r.part_id,
            number: r.part_number,
            name: r.part_name,
        },
        units: d
            .units
            .into_iter()
            .map(|u| RevisionGetUnit {
                id: u.id,
                serial_number: u.serial_number,
            })
            .collect(),
        image_id: r.image_attachment_id,
        metadata: db_metadata::object(r.metadata),
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RevisionUpdateRequest {
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "revision_number_rule"))]
    pub number: Option<String>,
    /// An upload id to use as the image; `""` removes the image.
    #[serde(default, deserialize_with = "trimmed")]
    pub image_id: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "metadata::patch_rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// `parts.revisions.update` — `PATCH /v2/parts/{part_number}/revisions/{revision_number}`.
/// User keys only.
#[utoipa::path(
    patch,
    path = "/v2/parts/{part_number}/revisions/{revision_number}",
    tag = "parts",
    operation_id = "part-updateRevision",
    params(("part_number" = String, Path), ("revision_number" = String, Path)),
    request_body = RevisionUpdateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path((part_number, number)): Path<(String, String)>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<RevisionUpdateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    if body.number.is_none() && body.image_id.is_none() && body.metadata.is_none() {
        return Err(ApiError::validation(vec![Issue::new(
            "Nothing to update: send number, image_id or metadata",
        )]));
    }
    let image = match body.image_id.as_deref() {
        None => None,
        Some("") => Some(ImageChange::Remove),
        Some(s) => Some(ImageChange::Set(Id::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "image_id",
                format!("image_id must be an upload id, got `{s}`"),
            )
        })?)),
    };
    let changes = RevisionChanges {
        number: body.number,
        image,
        metadata: body.metadata,
    };
    let id = state
        .db
        .update_revision(caller.org_id, part_number.trim(), number.trim(), changes)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

/// `parts.revisions.delete` — `DELETE /v2/parts/{part_number}/revisions/{revision_number}`.
/// User keys only; refused (409) while units or runs use the revision.
#[utoipa::path(
    delete,
    path = "/v2/parts/{part_number}/revisions/{revision_number}",
    tag = "parts",
    operation_id = "part-deleteRevision",
    params(("part_number" = String, Path), ("revision_number" = String, Path)),
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((part_number, number)): Path<(String, String)>,
    caller: UserCaller,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .delete_revision(caller.org_id, part_number.trim(), number.trim())
        .await?;
    Ok(axum::Json(IdResponse { id }))
}
