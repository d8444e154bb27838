//! Imports (`imports.structured`, `imports.tabular`): previously uploaded files become
//! runs, in the same tables and through the same `Db::create_run` as `POST /v2/runs`.
//! Both key types may import (station keys only into procedures linked to them).
//!
//! Decisions where the spec is silent:
//! - `imports.structured` supports the `OPENHTF`, `WATS`, `WSXF`, `ATML` and `TESTSTAND`
//!   importers (the last four through `import::runs_of_file`: several runs per file,
//!   per-run transactions, `warnings`). `STDF` and `ATDF` are refused with a 400 naming
//!   the item and what is supported, before anything is imported.
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
use validator::Validate;

use crate::db::Id;
use crate::error::{ApiError, ApiResult, Issue, PathSegment};
use crate::extract::{Caller, ValidatedJson};
use crate::import::{self, tabular::ImportTabularMapping};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/imports/structured", post(structured))
        .route("/imports/tabular", post(tabular))
}

/// Most files per structured import.
const MAX_ITEMS: usize = 100;

/// Importers of the contract (STDF and ATDF not implemented yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

impl Importer {
    /// The parser of a format importing through `import::runs_of_file`; `None` for
    /// OpenHTF, which has its own path (shared with the legacy import).
    fn parser(self) -> Option<import::Parser> {
        match self {
            Importer::OpenHtf | Importer::Stdf | Importer::Atdf => None,
            Importer::Wats => Some(import::wats::parse),
            Importer::Wsxf => Some(import::wsxf::parse),
            Importer::Atml => Some(import::atml::parse),
            Importer::TestStand => Some(import::teststand::parse),
        }
    }

    fn as_str(self) -> &'static str {
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
}

#[derive(Debug, Deserialize)]
pub struct ImportStructuredItem {
    pub upload_id: String,
    pub importer: Importer,
}

#[derive(Debug, Deserialize, Validate)]
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
        for (i, item) in self.items.iter().enumerate() {
            if matches!(item.importer, Importer::Stdf | Importer::Atdf) {
                issues.push(Issue {
                    message: format!(
                        "Importer {} is not supported by tofulab: the supported importers are OPENHTF, WATS, WSXF, ATML and TESTSTAND",
                        item.importer.as_str()
                    ),
                    path: vec![
                        PathSegment::Key("items".into()),
                        PathSegment::Index(i),
                        PathSegment::Key("importer".into()),
                    ],
                });
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(issues))
        }
    }
}

/// The result of one file.
#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct ImportStructuredResponse {
    results: Vec<ImportStructuredResult>,
}

/// `imports.structured` — `POST /v2/imports/structured`: each uploaded file becomes
/// its runs; results per item, in request order.
async fn structured(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<ImportStructuredRequest>,
) -> ApiResult<axum::Json<ImportStructuredResponse>> {
    body.check()?;
    let allow_duplicate = body.allow_duplicate.unwrap_or(false);
    let mut results = Vec::with_capacity(body.items.len());
    for item in body.items {
        let outcome = match Id::parse(item.upload_id.trim()) {
            Some(id) => match item.importer.parser() {
                None => import::openhtf(&state.db, &caller, id, allow_duplicate)
                    .await
                    .map(Into::into),
                Some(parser) => {
                    import::runs_of_file(&state.db, &caller, id, allow_duplicate, parser).await
                }
            },
            None => Err(ApiError::not_found(format!(
                "Upload {} not found",
                item.upload_id
            ))),
        };
        results.push(result(item.upload_id, outcome));
    }
    Ok(axum::Json(ImportStructuredResponse { results }))
}

/// The result of one item.
fn result(upload_id: String, outcome: ApiResult<import::FileImport>) -> ImportStructuredResult {
    match outcome {
        Ok(imported) => ImportStructuredResult {
            upload_id,
            success: true,
            id: imported.ids.first().copied(),
            ids: Some(imported.ids),
            already_imported: Some(imported.already_imported),
            warnings: imported.warnings,
            error: None,
        },
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(error = %e, "structured import failed");
            }
            ImportStructuredResult {
                upload_id,
                success: false,
                id: None,
                ids: None,
                already_imported: None,
                warnings: Vec::new(),
                error: Some(error_text(&e)),
            }
        }
    }
}

/// An error as one line: the message and each issue (`path: message`).
fn error_text(e: &ApiError) -> String {
    if e.status.is_server_error() {
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

#[derive(Debug, Deserialize, Validate)]
pub struct ImportTabularRequest {
    pub upload_id: Id,
    pub procedure_id: Id,
    #[serde(default)]
    pub mapping: Option<ImportTabularMapping>,
    #[serde(default)]
    pub template_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ImportTabularResponse {
    id: Id,
    file_import_id: Id,
}

/// `imports.tabular` — `POST /v2/imports/tabular`: an uploaded CSV file becomes one run
/// through an inline column mapping.
async fn tabular(
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
