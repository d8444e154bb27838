//! Turning files stations produce into runs: OpenHTF JSON test records (the legacy
//! `POST /api/v1/import` and v2 `imports.structured`) and CSV files with a column
//! mapping (`imports.tabular`).
//!
//! The parsing modules (`openhtf`, `tabular`, `validators`, `lenient_json`) read bytes
//! and produce the plain input of `Db::create_run`; they know nothing of HTTP or SQL.
//! The functions here tie them to storage: read the upload, resolve the procedure,
//! create the run, keep the file as the run's report.

pub mod atdf;
pub mod lenient_json;
pub mod openhtf;
pub mod rules;
pub mod semi;
pub mod stdf;
pub mod structured;
pub mod tabular;
pub mod validators;

use crate::db::imports::ReportClaim;
use crate::db::runs::NewRun;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;

/// Largest uploaded file an import reads (it is parsed in memory).
pub const MAX_IMPORT_FILE: u64 = 64 << 20;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub run_id: Id,
    /// The same content had been imported before: `run_id` is that run, nothing new was
    /// created.
    pub already_imported: bool,
}

/// The procedure a legacy run or an imported record belongs to: `reference` (an id or
/// an identifier, case-insensitive) wins; else `name` is found (case-insensitive) or,
/// for user keys, created. Unknown reference: 404 for user keys; for station keys 403,
/// as for an unlinked procedure (a station does not learn which procedures exist
/// through run creation). Neither given: 400 naming `missing_field`.
pub async fn resolve_procedure(
    db: &Db,
    caller: &Caller,
    reference: Option<&str>,
    name: Option<&str>,
    missing_field: &str,
) -> ApiResult<Id> {
    let not_authorized =
        || ApiError::forbidden("Station is not authorized to create runs for this procedure");
    if let Some(reference) = reference.map(str::trim).filter(|r| !r.is_empty()) {
        return match db.procedure_by_ref(caller.org_id, reference).await? {
            Some(id) => Ok(id),
            None if caller.is_station() => Err(not_authorized()),
            None => Err(ApiError::not_found(format!(
                "Procedure `{reference}` not found"
            ))),
        };
    }
    if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
        crate::values::check_text("Procedure name", name, 1, 255)
            .map_err(|m| ApiError::invalid("procedure_name", m))?;
        return match db
            .find_or_create_procedure(caller.org_id, name, caller.user_id())
            .await?
        {
            Some(id) => Ok(id),
            None => Err(ApiError::forbidden(format!(
                "Stations cannot create procedures: no procedure is named `{name}`"
            ))),
        };
    }
    Err(ApiError::invalid(
        missing_field,
        "A procedure is required: give the procedure id (or identifier)",
    ))
}

/// Imports the organization's upload `upload_id`, an OpenHTF JSON test record, as a new
/// run, keeping the file as the run's report attachment. Unless `allow_duplicate`, a file
/// whose exact content is already the report of a run is not imported again: that run
/// is returned with `already_imported`.
pub async fn openhtf(
    db: &Db,
    caller: &Caller,
    upload_id: Id,
    allow_duplicate: bool,
) -> ApiResult<Imported> {
    let file = db
        .upload_file(caller.org_id, upload_id, MAX_IMPORT_FILE)
        .await?;
    if !allow_duplicate {
        if let Some(run_id) = db.run_of_report(caller.org_id, &file.sha256).await? {
            return Ok(Imported {
                run_id,
                already_imported: true,
            });
        }
    }
    let record = openhtf::Record::parse(&file.bytes)?;
    let procedure_id = resolve_procedure(
        db,
        caller,
        record.procedure_ref().as_deref(),
        None,
        "metadata.procedure_id",
    )
    .await?;
    let run = record.to_new_run(procedure_id)?;
    create_with_report(db, caller, run, upload_id, allow_duplicate).await
}

/// Creates `run` with upload `report` linked as its report, when the upload is free to
/// be (see `ReportClaim`).
pub async fn create_with_report(
    db: &Db,
    caller: &Caller,
    mut run: NewRun,
    report: Id,
    allow_duplicate: bool,
) -> ApiResult<Imported> {
    match db.claim_report(caller.org_id, report).await? {
        ReportClaim::Claimed => {
            run.attachments.push(report);
            match db.create_run(caller, run).await {
                Ok(run_id) => Ok(Imported {
                    run_id,
                    already_imported: false,
                }),
                Err(e) => {
                    db.release_report(caller.org_id, report).await?;
                    Err(e)
                }
            }
        }
        ReportClaim::AlreadyReport(Some(run_id)) if !allow_duplicate => Ok(Imported {
            run_id,
            already_imported: true,
        }),
        ReportClaim::AlreadyReport(None) if !allow_duplicate => Err(ApiError::conflict(format!(
            "Upload {report} is already being imported"
        ))),
        // A duplicate import, or a file that is a regular attachment elsewhere: the new
        // run is created without taking the file away from where it is.
        _ => Ok(Imported {
            run_id: db.create_run(caller, run).await?,
            already_imported: false,
        }),
    }
}

/// Imports the organization's upload `upload_id`, a CSV file, as one run of procedure
/// `procedure_id` with `mapping` (see `tabular`), keeping the file as the run's report.
/// Returns the run id. Every import of a file creates a run: the file stays the report
/// of the first.
pub async fn tabular(
    db: &Db,
    caller: &Caller,
    upload_id: Id,
    procedure_id: Id,
    mapping: &tabular::ImportTabularMapping,
) -> ApiResult<Id> {
    let file = db
        .upload_file(caller.org_id, upload_id, MAX_IMPORT_FILE)
        .await?;
    let table = tabular::Table::parse(&file.bytes)?;
    let run = mapping.to_new_run(&table, procedure_id)?;
    Ok(create_with_report(db, caller, run, upload_id, true)
        .await?
        .run_id)
}
