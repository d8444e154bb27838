//! `POST /api/v1/import` (BEHAVIOR.md §11.4): the OpenHTF callback's report import. The
//! uploaded OpenHTF JSON record becomes a run (mapping in `crate::import::openhtf`) and
//! stays attached to it as its report.
//!
//! COMPAT: the success body is `{"success": true, "id"}` and nothing more: a `url` makes
//! the client print it instead of the line `Run imported successfully with ID: <id>` that
//! downstream tooling parses, and a `message` would be logged as a second success line.
//!
//! Importing the same file content again returns the run it was first imported into.

use axum::extract::State;
use serde::Deserialize;
use validator::Validate;

use super::V1Created;
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, ValidatedJson};
use crate::import;
use crate::AppState;

/// Body of `POST /api/v1/import` (`client` and `client_version` are accepted and unused).
#[derive(Debug, Deserialize, Validate)]
pub struct ImportRunRequest {
    pub upload_id: Id,
    pub importer: String,
}

/// `POST /api/v1/import` — creates a run from an uploaded OpenHTF test record.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<ImportRunRequest>,
) -> ApiResult<axum::Json<V1Created>> {
    if !body.importer.trim().eq_ignore_ascii_case("OPENHTF") {
        return Err(ApiError::invalid(
            "importer",
            format!(
                "Importer `{}` is not supported: tofulab imports OPENHTF test records",
                body.importer
            ),
        ));
    }
    // In its own task: a client that disconnects mid-import does not leave the upload
    // claimed (the import completes or releases it).
    let (db, upload_id) = (state.db.clone(), body.upload_id);
    let imported =
        tokio::spawn(async move { import::openhtf(&db, &caller, upload_id, false).await })
            .await
            .map_err(ApiError::internal)??;
    Ok(axum::Json(V1Created::new(imported.run_id)))
}
