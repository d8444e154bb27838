//! Legacy uploads (BEHAVIOR.md §11.3): the legacy client's file transfer, used for run
//! attachments and for OpenHTF reports to import. An upload made here is the same kind
//! of upload as `POST /v2/attachments` makes: its bytes go to the same signed
//! `PUT /files/{id}` URL.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::V1Success;
use crate::db::common::CreatedBy;
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, ValidatedJson};
use crate::routes::attachments::{public_base, signed_url};
use crate::values::{text_rule, trimmed_required};
use crate::AppState;

fn upload_name(name: &str) -> Result<(), validator::ValidationError> {
    // COMPAT: as for v2 uploads: up to 255 characters kept, more than 1000 refused.
    text_rule("Name", name, 1, 255)
}

/// Body of `POST /api/v1/uploads/initialize`. `mimeType` is accepted and unused: the
/// content type is the one the `PUT` carries. `sizeBytes`, when given, must be positive.
#[derive(Debug, Deserialize, Validate)]
pub struct InitializeUploadRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "upload_name"))]
    pub name: String,
    #[serde(default, rename = "sizeBytes")]
    pub size_bytes: Option<i64>,
}

/// `{"id", "uploadUrl"}` (camelCase, unlike v2's `upload_url`).
#[derive(Debug, Serialize)]
pub struct InitializeUploadResponse {
    id: Id,
    #[serde(rename = "uploadUrl")]
    upload_url: String,
}

/// `POST /api/v1/uploads/initialize` — a new upload and the signed URL to `PUT` its
/// bytes to. Both key types.
pub async fn initialize(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidatedJson(body): ValidatedJson<InitializeUploadRequest>,
) -> ApiResult<axum::Json<InitializeUploadResponse>> {
    if let Some(size) = body.size_bytes {
        if size <= 0 {
            return Err(ApiError::invalid(
                "sizeBytes",
                "sizeBytes must be a positive number of bytes",
            ));
        }
        if size as u64 > state.settings.max_upload_size {
            return Err(ApiError::payload_too_large(state.settings.max_upload_size));
        }
    }
    let id = state
        .db
        .create_upload(caller.org_id, CreatedBy::of(&caller), &body.name)
        .await?;
    let base = public_base(&state, &headers);
    Ok(axum::Json(InitializeUploadResponse {
        id,
        upload_url: signed_url(&state, &base, id, "PUT"),
    }))
}

/// Body of `POST /api/v1/uploads/sync`.
#[derive(Debug, Deserialize, Validate)]
pub struct SyncUploadRequest {
    pub upload_id: Id,
    pub run_id: Id,
}

/// `POST /api/v1/uploads/sync` — links the upload to the run as a regular attachment
/// (listed under the upload's name). 404 for a run or upload of another organization.
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<SyncUploadRequest>,
) -> ApiResult<axum::Json<V1Success>> {
    state
        .db
        .link_run_attachments(caller.org_id, body.run_id, &[body.upload_id])
        .await?;
    Ok(axum::Json(V1Success::default()))
}
