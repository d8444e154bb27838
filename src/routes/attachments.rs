//! Attachments and signed file transfer (BEHAVIOR.md §10, §1.7, §2.7).
//!
//! Upload and download URLs are absolute, self-authorising and expiring:
//! `{base}/files/{id}?expires={unix seconds}&signature={hex hmac}`, signed for one method
//! (`PUT` to upload, `GET` to download). The transfers themselves are in `files`.
//!
//! Decisions where the spec is silent:
//! - Finalizing is idempotent: a second finalize answers 200 with a fresh download URL.
//!   Finalizing before any bytes were uploaded is `400 BAD_REQUEST` (there is nothing to
//!   finalize yet), never a URL that would then 404.
//! - `DELETE /v2/attachments` and `DELETE /v2/units/{serial}/attachments` delete the ids
//!   that exist (for the unit: that are attachments of that unit) and answer 404 when
//!   none does; ids that are not UUIDs match nothing. Both are allowed to station keys
//!   (BEHAVIOR.md §15 forbids stations nothing about attachments).

mod files;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::IdsResponse;
use crate::db::common::CreatedBy;
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query, ValidatedJson};
use crate::routes::params::Ids;
use crate::values::{text_rule, trimmed_required};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/attachments", post(initialize).delete(delete_uploads))
        .route("/attachments/{id}/finalize", post(finalize))
        .route("/runs/{id}/attachments", post(create_run_attachment))
        .route(
            "/units/{serial_number}/attachments",
            post(create_unit_attachment).delete(delete_unit_attachments),
        )
}

/// The unauthenticated, signed upload/download endpoints.
pub fn file_routes() -> Router<AppState> {
    Router::new().route("/files/{id}", get(files::download).put(files::upload))
}

fn attachment_name(name: &str) -> Result<(), validator::ValidationError> {
    // COMPAT: the real service keeps names up to 255 characters and must refuse >1000.
    text_rule("Name", name, 1, 255)
}

/// Body of every "create an upload" operation: the file name, extension included.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct AttachmentInitializeRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "attachment_name"))]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentInitializeResponse {
    pub id: Id,
    pub upload_url: String,
}

impl AttachmentInitializeResponse {
    fn new(state: &AppState, headers: &HeaderMap, id: Id) -> Self {
        let base = public_base(state, headers);
        AttachmentInitializeResponse {
            id,
            upload_url: signed_url(state, &base, id, "PUT"),
        }
    }
}

/// `attachments.initialize` — `POST /v2/attachments`: a new upload and the URL to `PUT`
/// its bytes to. Both key types.
#[utoipa::path(
    post,
    path = "/v2/attachments",
    tag = "attachments",
    operation_id = "attachment-initialize",
    request_body = AttachmentInitializeRequest,
    responses((status = 200, body = AttachmentInitializeResponse))
)]
pub(crate) async fn initialize(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidatedJson(body): ValidatedJson<AttachmentInitializeRequest>,
) -> ApiResult<axum::Json<AttachmentInitializeResponse>> {
    let id = state
        .db
        .create_upload(caller.org_id, CreatedBy::of(&caller), &body.name)
        .await?;
    Ok(axum::Json(AttachmentInitializeResponse::new(
        &state, &headers, id,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentFinalizeResponse {
    pub url: String,
}

/// `attachments.finalize` — `POST /v2/attachments/{id}/finalize` (no body): confirms
/// the upload and returns its download URL. Idempotent; 400 before any bytes arrived.
// BEHAVIOR: last step of the CLI's offline queue (its result only warns). 404 for an
// unknown id and 400 before any bytes arrived are final; a busy database is 503.
#[utoipa::path(
    post,
    path = "/v2/attachments/{id}/finalize",
    tag = "attachments",
    operation_id = "attachment-finalize",
    params(("id" = Id, Path)),
    responses((status = 200, body = AttachmentFinalizeResponse))
)]
pub(crate) async fn finalize(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<axum::Json<AttachmentFinalizeResponse>> {
    state.db.finalize_upload(caller.org_id, id).await?;
    let base = public_base(&state, &headers);
    Ok(axum::Json(AttachmentFinalizeResponse {
        url: download_url(&state, &base, id),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachmentDeleteQuery {
    #[serde(default)]
    #[param(inline, required = true)]
    ids: Ids,
}

/// The ids of a delete query; none at all is a 400.
fn requested_ids(ids: &Ids) -> ApiResult<Vec<Id>> {
    ids.0
        .clone()
        .ok_or_else(|| ApiError::invalid("ids", "At least one id is required"))
}

/// `attachments.delete` (older Python SDK) — `DELETE /v2/attachments?ids=…`: deletes the
/// uploads and their bytes, wherever they are linked. Answers `{"id": [deleted ids]}`.
async fn delete_uploads(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AttachmentDeleteQuery>,
) -> ApiResult<axum::Json<IdsResponse>> {
    let ids = requested_ids(&q.ids)?;
    let id = state.db.delete_uploads(caller.org_id, &ids).await?;
    Ok(axum::Json(IdsResponse { id }))
}

/// `runs.create_attachment` — `POST /v2/runs/{id}/attachments`: an upload already linked
/// to the run (listed by the run right away). Both key types.
// BEHAVIOR: second step of the CLI's offline queue, which parks on 4xx and on any
// message without a "transient" word: 404 (`not found`) and 400 only for an unknown run
// or a bad name; a busy database is 503 "temporarily unavailable" with Retry-After.
#[utoipa::path(
    post,
    path = "/v2/runs/{id}/attachments",
    tag = "runs",
    operation_id = "run-createAttachment",
    params(("id" = Id, Path)),
    request_body = AttachmentInitializeRequest,
    responses((status = 200, body = AttachmentInitializeResponse))
)]
pub(crate) async fn create_run_attachment(
    State(state): State<AppState>,
    Path(run_id): Path<Id>,
    caller: Caller,
    headers: HeaderMap,
    ValidatedJson(body): ValidatedJson<AttachmentInitializeRequest>,
) -> ApiResult<axum::Json<AttachmentInitializeResponse>> {
    let id = state
        .db
        .create_run_upload(caller.org_id, run_id, CreatedBy::of(&caller), &body.name)
        .await?;
    Ok(axum::Json(AttachmentInitializeResponse::new(
        &state, &headers, id,
    )))
}

/// `units.create_attachment` — `POST /v2/units/{serial_number}/attachments`: an upload
/// already linked to the unit (serial matched case-insensitively). Both key types.
#[utoipa::path(
    post,
    path = "/v2/units/{serial_number}/attachments",
    tag = "units",
    operation_id = "unit-createAttachment",
    params(("serial_number" = String, Path)),
    request_body = AttachmentInitializeRequest,
    responses((status = 200, body = AttachmentInitializeResponse))
)]
pub(crate) async fn create_unit_attachment(
    State(state): State<AppState>,
    Path(serial_number): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    ValidatedJson(body): ValidatedJson<AttachmentInitializeRequest>,
) -> ApiResult<axum::Json<AttachmentInitializeResponse>> {
    let id = state
        .db
        .create_unit_upload(
            caller.org_id,
            &serial_number,
            CreatedBy::of(&caller),
            &body.name,
        )
        .await?;
    Ok(axum::Json(AttachmentInitializeResponse::new(
        &state, &headers, id,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitDeleteAttachmentResponse {
    pub ids: Vec<Id>,
}

/// `units.delete_attachment` — `DELETE /v2/units/{serial_number}/attachments?ids=…`:
/// removes the unit's attachments and their stored files. Both key types.
#[utoipa::path(
    delete,
    path = "/v2/units/{serial_number}/attachments",
    tag = "units",
    operation_id = "unit-deleteAttachment",
    params(("serial_number" = String, Path), AttachmentDeleteQuery),
    responses((status = 200, body = UnitDeleteAttachmentResponse))
)]
pub(crate) async fn delete_unit_attachments(
    State(state): State<AppState>,
    Path(serial_number): Path<String>,
    caller: Caller,
    Query(q): Query<AttachmentDeleteQuery>,
) -> ApiResult<axum::Json<UnitDeleteAttachmentResponse>> {
    let ids = requested_ids(&q.ids)?;
    let ids = state
        .db
        .delete_unit_attachments(caller.org_id, &serial_number, &ids)
        .await?;
    Ok(axum::Json(UnitDeleteAttachmentResponse { ids }))
}

/// The base URL clients reach this server at: `--public-url` when configured, else the
/// request's `Host` (and `X-Forwarded-Proto`, default `https` when serving TLS, else
/// `http`).
pub fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    use axum::http::header;
    if let Some(url) = &state.settings.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or(if state.settings.tls { "https" } else { "http" });
    format!("{proto}://{host}")
}

/// A signed URL for `method` (`PUT` to upload, `GET` to download) on attachment `id`.
pub fn signed_url(state: &AppState, base: &str, id: Id, method: &str) -> String {
    let expires = chrono::Utc::now().timestamp() + state.settings.signed_url_ttl.as_secs() as i64;
    let signature = state.signer.sign(id, method, expires);
    format!("{base}/files/{id}?expires={expires}&signature={signature}")
}

/// The download URL of an attachment.
pub fn download_url(state: &AppState, base: &str, id: Id) -> String {
    signed_url(state, base, id, "GET")
}
