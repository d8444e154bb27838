//! Turning files stations produce into runs: OpenHTF JSON test records (the legacy
//! `POST /api/v1/import` and v2 `imports.structured`) and CSV files with a column
//! mapping (`imports.tabular`).
//!
//! The parsing modules (`openhtf`, `tabular`, `validators`, `lenient_json`) read bytes
//! and produce the plain input of `Db::create_run`; they know nothing of HTTP or SQL.
//! The functions here tie them to storage: read the upload, resolve the procedure,
//! create the run, keep the file as the run's report.

pub mod atdf;
pub mod atml;
pub mod lenient_json;
pub mod openhtf;
pub mod resultmap;
pub mod semi;
pub mod stdf;
pub mod structured;
pub mod tabular;
pub mod teststand;
pub mod validators;
pub mod wats;
pub mod wsxf;
pub mod xml;

use crate::caller::Caller;
use crate::db::imports::ReportClaim;
use crate::db::runs::NewRun;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};

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
                    Err(e.into())
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

/// What importing a file that may hold several runs did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileImport {
    /// The file's runs: created now in file order, or (`already_imported`) the runs an
    /// earlier import created, by start time.
    pub ids: Vec<Id>,
    pub already_imported: bool,
    pub warnings: Vec<String>,
}

impl From<Imported> for FileImport {
    fn from(i: Imported) -> Self {
        FileImport {
            ids: vec![i.run_id],
            already_imported: i.already_imported,
            warnings: Vec::new(),
        }
    }
}

/// A file format's parser: the file's bytes to its unit results.
pub type Parser = fn(&[u8]) -> Result<resultmap::ParsedFile, resultmap::FormatError>;

/// Imports the organization's upload `upload_id` with `parse` (IMPORTERS.md §1): one
/// run per unit result, each in its own transaction; a unit that cannot be created is
/// skipped with a warning. The file is the report attachment of the first run created.
///
/// Duplicates: each run carries `client_run_ref` `import:<sha256>:<position>`, so
/// without `allow_duplicate` a file whose runs (any of them) still exist is answered
/// with those runs and `already_imported`, and two concurrent imports of the same bytes
/// create each run once.
pub async fn runs_of_file(
    db: &Db,
    caller: &Caller,
    upload_id: Id,
    allow_duplicate: bool,
    parse: Parser,
) -> ApiResult<FileImport> {
    let file = db
        .upload_file(caller.org_id, upload_id, MAX_IMPORT_FILE)
        .await?;
    let sha256 = file.sha256;
    let bytes = file.bytes;
    let parsed = tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad_request(e.0))?;
    let refs: Vec<String> = (0..parsed.units.len())
        .map(|i| format!("import:{sha256}:{i}"))
        .collect();
    if !allow_duplicate {
        let existing = db.runs_by_refs(caller.org_id, &refs).await?;
        // A file first imported with allow_duplicate: the run it is the report of.
        let existing = if existing.is_empty() {
            db.run_of_report(caller.org_id, &sha256)
                .await?
                .into_iter()
                .collect()
        } else {
            existing
        };
        if !existing.is_empty() {
            return Ok(FileImport {
                ids: existing,
                already_imported: true,
                warnings: Vec::new(),
            });
        }
    }

    // Every procedure first: a file naming one the caller may not use imports nothing.
    let mut procedures: Vec<(String, Id)> = Vec::new();
    for unit in &parsed.units {
        if let Ok(r) = &unit.run {
            let key = crate::db::ci_key(&r.procedure);
            if !procedures.iter().any(|(k, _)| *k == key) {
                let id = file_procedure(db, caller, &r.procedure).await?;
                procedures.push((key, id));
            }
        }
    }

    let total = parsed.units.len();
    let mut warnings = parsed.warnings;
    let mut ids = Vec::new();
    let mut first_failure: Option<String> = None;
    let mut report_linked = false;
    for (i, unit) in parsed.units.into_iter().enumerate() {
        let outcome = match unit.run {
            Err(reason) => Err(reason),
            Ok(item) => {
                let key = crate::db::ci_key(&item.procedure);
                let procedure_id = procedures
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, id)| *id)
                    .ok_or_else(|| ApiError::internal("procedure not resolved"))?;
                let reference = (!allow_duplicate).then(|| refs[i].clone());
                let link_report = (!report_linked).then_some(upload_id);
                match create_unit_run(db, caller, item, procedure_id, reference, link_report).await
                {
                    Ok((id, linked, notes)) => {
                        report_linked |= linked;
                        warnings.extend(notes.into_iter().map(|n| format!("{}: {n}", unit.label)));
                        Ok(id)
                    }
                    Err(e) => {
                        if e.status.is_server_error() {
                            tracing::error!(error = %e, "imported run not created");
                        }
                        Err(api_error_text(&e))
                    }
                }
            }
        };
        match outcome {
            Ok(id) => ids.push(id),
            Err(reason) => {
                let note = format!(
                    "{} not imported: {reason}. Fix the file, delete this file's runs and import it again, or import it again with allow_duplicate.",
                    unit.label
                );
                first_failure.get_or_insert_with(|| note.clone());
                warnings.push(note);
            }
        }
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No run imported: {total} of {total} units failed; first: {}",
            first_failure.unwrap_or_default()
        )));
    }
    if warnings.len() > resultmap::MAX_WARNINGS {
        let more = warnings.len() - resultmap::MAX_WARNINGS;
        warnings.truncate(resultmap::MAX_WARNINGS);
        warnings.push(format!("… and {more} more"));
    }
    Ok(FileImport {
        ids,
        already_imported: false,
        warnings,
    })
}

/// Creates the run of one unit of a file (its own transaction), linking sub-units that
/// exist and, when `report` is given and free, the file as its report. Returns the run,
/// whether the report was linked, and notes (unknown sub-units, the run's own warnings,
/// embedded files that could not be stored).
async fn create_unit_run(
    db: &Db,
    caller: &Caller,
    item: resultmap::ImportRun,
    procedure_id: Id,
    reference: Option<String>,
    report: Option<Id>,
) -> ApiResult<(Id, bool, Vec<String>)> {
    let mut notes = Vec::new();
    let mut run = item.run;
    run.procedure_id = procedure_id;
    run.client_run_ref = reference;
    let known = db.known_serials(caller.org_id, &item.sub_units).await?;
    for s in item.sub_units.iter().filter(|s| !known.contains(s)) {
        notes.push(format!(
            "sub-unit \"{s}\" not linked: no unit has this serial number"
        ));
    }
    run.sub_units = known;
    let claimed = match report {
        Some(id) => db.claim_report(caller.org_id, id).await? == ReportClaim::Claimed,
        None => false,
    };
    if let (true, Some(id)) = (claimed, report) {
        run.attachments.push(id);
    }
    let run_id = match db.create_run(caller, run).await {
        Ok(id) => id,
        Err(e) => {
            if let (true, Some(id)) = (claimed, report) {
                db.release_report(caller.org_id, id).await?;
            }
            return Err(e.into());
        }
    };
    notes.extend(item.warnings);
    for file in item.files {
        if let Err(e) = store_file(db, caller, run_id, &file).await {
            notes.push(format!(
                "attachment \"{}\" not stored: {}",
                file.name,
                api_error_text(&e)
            ));
        }
    }
    Ok((run_id, claimed, notes))
}

/// Stores a file embedded in a report as an attachment of run `run_id`.
async fn store_file(
    db: &Db,
    caller: &Caller,
    run_id: Id,
    file: &resultmap::EmbeddedFile,
) -> ApiResult<()> {
    let by = crate::db::common::CreatedBy::of(caller);
    let id = db
        .create_run_upload(caller.org_id, run_id, by, &file.name)
        .await?;
    let body = futures_util::stream::iter([Ok(bytes::Bytes::from(file.bytes.clone()))]);
    let content_type = file
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    db.store_blob::<_, ApiError>(id, content_type, MAX_IMPORT_FILE, body)
        .await?;
    Ok(db.finalize_upload(caller.org_id, id).await?)
}

/// The procedure a file names (IMPORTERS.md §1.7): found by name (case-insensitive),
/// created for user keys. A station key may only use a procedure linked to it.
async fn file_procedure(db: &Db, caller: &Caller, name: &str) -> ApiResult<Id> {
    let refused = || {
        ApiError::forbidden(format!(
            "Station is not authorized to create runs for procedure \"{name}\""
        ))
    };
    let id = db
        .find_or_create_procedure(caller.org_id, name, caller.user_id())
        .await?;
    match (id, caller.station_id()) {
        (Some(id), None) => Ok(id),
        (Some(id), Some(station)) if db.station_has_procedure(station, id).await? => Ok(id),
        _ => Err(refused()),
    }
}

/// An error as one line: the message, then each issue's.
fn api_error_text(e: &ApiError) -> String {
    if e.status.is_server_error() {
        return "Internal server error".into();
    }
    let issues: Vec<&str> = e.issues.iter().map(|i| i.message.as_str()).collect();
    if issues.is_empty() {
        e.message.clone()
    } else {
        format!("{}: {}", e.message, issues.join("; "))
    }
}
