//! Imports (`imports.structured`, `imports.tabular`): previously uploaded files become
//! runs, in the same tables and through the same `Db::create_run` as `POST /v2/runs`.
//! Both key types may import (station keys only into procedures linked to them).
//!
//! Decisions where the spec is silent:
//! - `imports.structured` supports every importer of the contract's enum
//!   (`Importer::plan`). OpenHTF records import as one run each
//!   (below); WATS, WSXF, ATML and TestStand files are parsed whole and go through
//!   `import::runs_of_file` (one transaction per run); STDF and ATDF stream through
//!   `import::structured` (several runs per file, written in batches). Both give
//!   `warnings` for skipped units.
//! - A structured file is a duplicate when a file with exactly the same content (SHA-256)
//!   is already the report of a run of the organization: without `allow_duplicate` its
//!   result is that run with `already_imported: true`. With `allow_duplicate` a new run
//!   is created; the file stays the report of the run it was first imported into.
//! - Each item is imported on its own: one that fails (unknown upload, a file that is not
//!   an OpenHTF record, an unknown procedure, a missing part number) gets
//!   `success: false` and an `error`, and the others are still imported.
//! - `imports.tabular`: tofulab has no saved mapping templates, so a `template_id` is a
//!   404; `mapping` is required. `file_import_id` is the id of the uploaded file, which
//!   stays attached to the new run as its report (`is_report: true`).

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::db::Id;
use crate::error::{ApiError, ApiResult, Issue, PathSegment};
use crate::extract::{Caller, ValidatedJson};
use crate::import::structured::{self, Format};
use crate::import::{self, tabular::ImportTabularMapping};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/imports/structured", post(structured))
        .route("/imports/tabular", post(tabular))
}

/// Most files per structured import.
const MAX_ITEMS: usize = 100;

/// The importers of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum Importer {
    #[serde(rename = "OPENHTF")]
    OpenHtf,
    #[serde(rename = "WATS")]
    Wats,
    #[serde(rename = "WSXF")]
    Wsxf,
    #[serde(rename = "ATML")]
    Atml,
    #[serde(rename = "TESTSTAND")]
    TestStand,
    #[serde(rename = "STDF")]
    Stdf,
    #[serde(rename = "ATDF")]
    Atdf,
}

/// How an importer's files are read.
#[derive(Clone, Copy)]
pub enum Plan {
    /// One run per file, parsed in memory (`import::openhtf`).
    OpenHtf,
    /// A report file parsed whole, one run per unit result (`import::runs_of_file`).
    File(import::Parser),
    /// Streamed, several runs per file (`import::structured`).
    Structured(Format),
}

impl Importer {
    /// The name the contract spells.
    pub fn name(self) -> &'static str {
        match self {
            Importer::OpenHtf => "OPENHTF",
            Importer::Wats => "WATS",
            Importer::Wsxf => "WSXF",
            Importer::Atml => "ATML",
            Importer::TestStand => "TESTSTAND",
            Importer::Stdf => "STDF",
            Importer::Atdf => "ATDF",
        }
    }

    /// How files of this importer are read.
    pub fn plan(self) -> Plan {
        match self {
            Importer::OpenHtf => Plan::OpenHtf,
            Importer::Stdf => Plan::Structured(import::stdf::FORMAT),
            Importer::Atdf => Plan::Structured(import::atdf::FORMAT),
            Importer::Wats => Plan::File(import::wats::parse),
            Importer::Wsxf => Plan::File(import::wsxf::parse),
            Importer::Atml => Plan::File(import::atml::parse),
            Importer::TestStand => Plan::File(import::teststand::parse),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportStructuredItem {
    pub upload_id: String,
    pub importer: Importer,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ImportStructuredRequest {
    pub items: Vec<ImportStructuredItem>,
    #[serde(default)]
    pub allow_duplicate: Option<bool>,
}

impl ImportStructuredRequest {
    fn check(&self) -> ApiResult<()> {
        let mut issues = Vec::new();
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            issues.push(Issue::at(
                format!(
                    "items must hold 1 to {MAX_ITEMS} files, got {}",
                    self.items.len()
                ),
                "items",
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(issues))
        }
    }
}

/// The result of one file.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportStructuredResult {
    upload_id: String,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    already_imported: Option<bool>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl ImportStructuredResult {
    fn failed(upload_id: String, error: String) -> Self {
        ImportStructuredResult {
            upload_id,
            success: false,
            id: None,
            ids: None,
            already_imported: None,
            warnings: Vec::new(),
            error: Some(error),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportStructuredResponse {
    results: Vec<ImportStructuredResult>,
}

/// `imports.structured` — `POST /v2/imports/structured`: each uploaded OpenHTF record
/// becomes a run; results per item, in request order.
#[utoipa::path(
    post,
    path = "/v2/imports/structured",
    tag = "imports",
    operation_id = "import-structured",
    request_body = ImportStructuredRequest,
    responses((status = 200, body = ImportStructuredResponse))
)]
pub(crate) async fn structured(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<ImportStructuredRequest>,
) -> ApiResult<axum::Json<ImportStructuredResponse>> {
    body.check()?;
    let allow_duplicate = body.allow_duplicate.unwrap_or(false);
    let mut results = Vec::with_capacity(body.items.len());
    for item in body.items {
        let Some(upload_id) = Id::parse(item.upload_id.trim()) else {
            let error = format!("Upload {} not found", item.upload_id);
            results.push(ImportStructuredResult::failed(item.upload_id, error));
            continue;
        };
        // Each item runs in its own task: a client that disconnects does not stop an
        // import halfway (it completes or cleans up, and its upload is never left
        // claimed).
        let (db, caller) = (state.db.clone(), caller.clone());
        let plan = item.importer.plan();
        let task = tokio::spawn(async move {
            match plan {
                Plan::OpenHtf => import::openhtf(&db, &caller, upload_id, allow_duplicate)
                    .await
                    .map(|i| structured::Outcome {
                        ids: vec![i.run_id],
                        already_imported: i.already_imported,
                        warnings: Vec::new(),
                    })
                    .map_err(|e| structured::Failure(error_text(&e))),
                Plan::File(parse) => {
                    import::runs_of_file(&db, &caller, upload_id, allow_duplicate, parse)
                        .await
                        .map(|f| structured::Outcome {
                            ids: f.ids,
                            already_imported: f.already_imported,
                            warnings: f.warnings,
                        })
                        .map_err(|e| structured::Failure(error_text(&e)))
                }
                Plan::Structured(format) => {
                    structured::import(db, caller, upload_id, format, allow_duplicate).await
                }
            }
        });
        let outcome = task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "structured import task failed");
            Err(structured::Failure("Internal server error".into()))
        });
        crate::monitoring::import_done(item.importer.name(), outcome.is_ok());
        results.push(match outcome {
            Ok(done) => ImportStructuredResult {
                upload_id: item.upload_id,
                success: true,
                id: done.ids.first().copied(),
                ids: Some(done.ids),
                already_imported: Some(done.already_imported),
                warnings: done.warnings,
                error: None,
            },
            Err(structured::Failure(error)) => {
                ImportStructuredResult::failed(item.upload_id, error)
            }
        });
    }
    Ok(axum::Json(ImportStructuredResponse { results }))
}

/// An error as one line: the message and each issue (`path: message`).
fn error_text(e: &ApiError) -> String {
    if e.status.is_server_error() {
        tracing::error!(error = %e, "structured import failed");
        return "Internal server error".into();
    }
    let issues: Vec<String> = e
        .issues
        .iter()
        .map(|i| {
            let path: Vec<String> = i
                .path
                .iter()
                .map(|p| match p {
                    PathSegment::Key(k) => k.clone(),
                    PathSegment::Index(n) => n.to_string(),
                })
                .collect();
            if path.is_empty() {
                i.message.clone()
            } else {
                format!("{}: {}", path.join("."), i.message)
            }
        })
        .collect();
    if issues.is_empty() {
        e.message.clone()
    } else {
        format!("{}: {}", e.message, issues.join("; "))
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ImportTabularRequest {
    pub upload_id: Id,
    pub procedure_id: Id,
    #[serde(default)]
    pub mapping: Option<ImportTabularMapping>,
    #[serde(default)]
    pub template_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportTabularResponse {
    id: Id,
    file_import_id: Id,
}

/// `imports.tabular` — `POST /v2/imports/tabular`: an uploaded CSV file becomes one run
/// through an inline column mapping.
#[utoipa::path(
    post,
    path = "/v2/imports/tabular",
    tag = "imports",
    operation_id = "import-tabular",
    request_body = ImportTabularRequest,
    responses((status = 200, body = ImportTabularResponse))
)]
pub(crate) async fn tabular(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<ImportTabularRequest>,
) -> ApiResult<axum::Json<ImportTabularResponse>> {
    let mapping = match (body.mapping, body.template_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "template_id",
                "Give either mapping or template_id, not both",
            ))
        }
        (None, Some(_)) => return Err(ApiError::not_found(
            "Template not found: tofulab has no saved mapping templates, send `mapping` instead",
        )),
        (None, None) => return Err(ApiError::invalid("mapping", "mapping is required")),
        (Some(m), None) => m,
    };
    let id = import::tabular(
        &state.db,
        &caller,
        body.upload_id,
        body.procedure_id,
        &mapping,
    )
    .await?;
    Ok(axum::Json(ImportTabularResponse {
        id,
        file_import_id: body.upload_id,
    }))
}
