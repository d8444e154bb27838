//! The machinery every multi-run structured importer shares (IMPORTERS.md §1): a file's
//! parser runs on the blocking pool, reading the upload chunk by chunk, and hands unit
//! results one at a time through a bounded channel to the writer, which creates them in
//! batches (each batch one short transaction) and collects warnings.
//!
//! A parser is a plain function (`ParseFn`): it reads `FileInput` (as many times as it
//! needs), calls `Emitter::header` once with the procedure the file names, then
//! `Emitter::unit` once per unit result, in file order, and returns `Err(ParseError::File)`
//! with the item's error text when the file cannot be imported. A parser that finds a
//! fault only after emitting units must still return the error: the runs written so far
//! are deleted. Formats whose mapping needs the whole file (STDF's closing records)
//! validate it in a first pass, before emitting anything.
//!
//! Guarantees (decisions where the spec is silent):
//! - Nothing half-imported remains: an import that fails (bad file, storage fault,
//!   a procedure the caller may not use, every unit skipped) deletes the runs it wrote.
//!   A run is never partial: each unit result is complete before it is written.
//! - A file imports at most once at a time per organization: a second import of the same
//!   bytes waits for the first to end, then answers `already_imported` (or imports, with
//!   `allow_duplicate`).
//! - The import of an item runs in its own task: a client that disconnects does not stop
//!   it halfway; it completes (or cleans up) and a later import of the file answers with
//!   its runs. A claim whose process died is taken over after `STALE_IMPORT`.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::db::file_imports::Claim;
use crate::db::runs::NewRun;
use crate::db::{Db, Dialect, Id};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::rules;

/// Runs written per transaction, at most.
const BATCH_RUNS: usize = 64;
/// Measurements written per transaction, about (a batch closes once past it).
const BATCH_MEASUREMENTS: usize = 6_000;
/// Unit results in flight between the parser and the writer.
const CHANNEL: usize = 4;
/// Warnings returned per item; more are counted in one last entry.
const MAX_WARNINGS: usize = 50;
/// How often a second import of a file being imported checks whether it may go on.
const WAIT_POLL: Duration = Duration::from_millis(200);

/// A structured importer: its name (the contract's enum value), its parser, and the
/// largest file it takes.
#[derive(Clone, Copy)]
pub struct Format {
    pub name: &'static str,
    pub parse: ParseFn,
    pub max_size: u64,
}

/// Reads a file and emits its unit results; see the module doc.
pub type ParseFn = fn(&FileInput, &mut Emitter) -> Result<(), ParseError>;

/// Why a parser stopped early.
#[derive(Debug)]
pub enum ParseError {
    /// The file cannot be imported: the item's error text (IMPORTERS.md §1.5), naming
    /// the record/element and the byte offset or line.
    File(String),
    /// The writer stopped listening (the import failed on its side): just return.
    Stopped,
}

impl From<Stopped> for ParseError {
    fn from(_: Stopped) -> Self {
        ParseError::Stopped
    }
}

/// The writer is gone; the parser should return `Err(ParseError::Stopped)`.
#[derive(Debug)]
pub struct Stopped;

/// What a file says about the procedure its runs belong to (IMPORTERS.md §1.7).
#[derive(Debug, Clone)]
pub struct FileHeader {
    /// The procedure name (already defaulted by the format, e.g. `STDF`).
    pub procedure_name: String,
    pub procedure_version: Option<String>,
}

/// One unit result of a file: a complete run (its `procedure_id` and
/// `procedure_version` are set by the writer from the header), or why it is skipped.
#[derive(Debug)]
pub struct Unit {
    /// How a warning names it: `Part 17 (serial "A1")`.
    pub label: String,
    pub run: Result<NewRun, String>,
}

enum Msg {
    Header(FileHeader),
    Unit(Box<Unit>),
    Warning(String),
}

/// The parser's side of the channel.
pub struct Emitter {
    tx: mpsc::Sender<Msg>,
}

impl Emitter {
    fn send(&mut self, msg: Msg) -> Result<(), Stopped> {
        self.tx.blocking_send(msg).map_err(|_| Stopped)
    }

    /// The file's procedure; must come before the first unit.
    pub fn header(&mut self, header: FileHeader) -> Result<(), Stopped> {
        self.send(Msg::Header(header))
    }

    /// The next unit result, in file order. Blocks while the writer is behind.
    pub fn unit(&mut self, label: String, run: Result<NewRun, String>) -> Result<(), Stopped> {
        self.send(Msg::Unit(Box::new(Unit { label, run })))
    }

    /// A note for the item's `warnings` (a lossy mapping, a truncated file, …).
    pub fn warn(&mut self, warning: impl Into<String>) -> Result<(), Stopped> {
        self.send(Msg::Warning(warning.into()))
    }
}

/// The uploaded file as a parser sees it: its name, its size, and readers over its bytes
/// (streamed from storage one chunk at a time; memory stays bounded whatever the size).
pub struct FileInput {
    db: Db,
    blob_id: Id,
    size: u64,
    name: String,
    runtime: tokio::runtime::Handle,
}

impl FileInput {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// A reader over the whole file, from its first byte. Blocking: call it on the parse
    /// thread only. Fails with an I/O error when the bytes disappear meanwhile (the
    /// upload was replaced).
    pub fn open(&self) -> BlobReader {
        BlobReader {
            done: false,
            stream: Box::pin(self.db.blob_bytes(self.blob_id, 0, self.size)),
            runtime: self.runtime.clone(),
            current: Bytes::new(),
        }
    }

    /// The whole file in memory, for formats that cannot be read as a stream (their
    /// `max_size` bounds it).
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size as usize);
        self.open().read_to_end(&mut out)?;
        Ok(out)
    }
}

/// `std::io::Read` over a stored blob.
pub struct BlobReader {
    done: bool,
    stream: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
    runtime: tokio::runtime::Handle,
    current: Bytes,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// What an item's import did (`success: true`).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The file's runs, in file order.
    pub ids: Vec<Id>,
    pub already_imported: bool,
    pub warnings: Vec<String>,
}

/// An item's failure (`success: false`): its `error` text. Server faults are logged and
/// read `Internal server error`.
#[derive(Debug, Clone)]
pub struct Failure(pub String);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        if e.status.is_server_error() {
            tracing::error!(error = %e, "structured import failed");
            Failure("Internal server error".into())
        } else if e.issues.is_empty() {
            Failure(e.message)
        } else {
            let issues: Vec<&str> = e.issues.iter().map(|i| i.message.as_str()).collect();
            Failure(issues.join("; "))
        }
    }
}

impl From<crate::db::StoreError> for Failure {
    fn from(e: crate::db::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

/// Imports the organization's upload `upload_id` with `format`. Runs to its end even if
/// the caller stops waiting (call it in a spawned task; see the module doc).
pub async fn import(
    db: Db,
    caller: Caller,
    upload_id: Id,
    format: Format,
    allow_duplicate: bool,
) -> Result<Outcome, Failure> {
    let org = caller.org_id;
    let meta = db
        .upload_meta(org, upload_id)
        .await?
        .ok_or_else(|| Failure(format!("Upload {upload_id} not found")))?;
    let (Some(blob_id), Some(size), Some(sha256)) = (meta.blob_id, meta.size, meta.sha256) else {
        return Err(Failure(format!("Upload {upload_id} has no content")));
    };
    let size = size as u64;
    if size > format.max_size {
        return Err(Failure(format!(
            "File too large to import ({size} bytes, limit {} MiB)",
            format.max_size >> 20
        )));
    }
    let import_id = loop {
        if !allow_duplicate {
            // The same bytes imported as one run (OPENHTF) count too. A file import's
            // end also links the upload as its first run's report, so that read comes
            // first: read after it, the file import's runs are then seen whole if that
            // end happened in between, never the first run alone.
            let single = db.run_of_report(org, &sha256).await?;
            let mut ids = db.runs_of_file_import(org, &sha256).await?;
            if ids.is_empty() {
                ids.extend(single);
            }
            if !ids.is_empty() {
                return Ok(Outcome {
                    ids,
                    already_imported: true,
                    warnings: Vec::new(),
                });
            }
        }
        match db
            .claim_file_import(org, upload_id, &sha256, format.name, allow_duplicate)
            .await?
        {
            Claim::Claimed(id) => break id,
            // Imported meanwhile: answer with its runs (next turn).
            Claim::Done => {}
            Claim::Busy => tokio::time::sleep(WAIT_POLL).await,
        }
    };
    let input = FileInput {
        db: db.clone(),
        blob_id,
        size,
        name: meta.name,
        runtime: tokio::runtime::Handle::current(),
    };
    let mut writer = Writer {
        db: &db,
        caller: &caller,
        import_id,
        procedure: None,
        batch: Vec::new(),
        labels: Vec::new(),
        batch_measurements: 0,
        ids: Vec::new(),
        units: 0,
        skipped: 0,
        first_skip: None,
        warnings: Vec::new(),
        dropped_warnings: 0,
        members: HashMap::new(),
        writing: VecDeque::new(),
        queued: 0,
    };
    match writer.run(input, format).await {
        Ok(()) if !writer.ids.is_empty() => {
            if let Err(e) = db
                .finish_file_import(org, import_id, upload_id, writer.ids[0], &sha256)
                .await
            {
                abandon(&db, org, import_id).await;
                return Err(e.into());
            }
            let mut warnings = writer.warnings;
            if writer.dropped_warnings > 0 {
                warnings.push(format!("… and {} more", writer.dropped_warnings));
            }
            Ok(Outcome {
                ids: writer.ids,
                already_imported: false,
                warnings,
            })
        }
        Ok(()) => {
            abandon(&db, org, import_id).await;
            Err(Failure(match writer.first_skip {
                None => "No test result found in file".into(),
                Some(first) => format!(
                    "No run imported: {} of {} units failed; first: {first}",
                    writer.skipped, writer.units
                ),
            }))
        }
        Err(f) => {
            abandon(&db, org, import_id).await;
            Err(f)
        }
    }
}

async fn abandon(db: &Db, org: Id, import_id: Id) {
    if let Err(e) = db.abandon_file_import(org, import_id).await {
        tracing::error!(error = %e, %import_id, "could not undo a failed import");
    }
}

struct Writer<'a> {
    db: &'a Db,
    caller: &'a Caller,
    import_id: Id,
    procedure: Option<(Id, Option<String>)>,
    batch: Vec<NewRun>,
    /// How warnings name the runs of `batch`.
    labels: Vec<String>,
    batch_measurements: usize,
    ids: Vec<Id>,
    units: usize,
    skipped: usize,
    first_skip: Option<String>,
    warnings: Vec<String>,
    dropped_warnings: usize,
    /// Operator emails already looked up: whether each is a member's.
    members: HashMap<String, bool>,
    /// Batches being written while the next one is gathered, oldest first.
    writing: VecDeque<tokio::task::JoinHandle<Written>>,
    /// Runs handed to batches so far: the next batch's first position in the file.
    queued: i64,
}

/// A batch written in the background: its runs and labels come back for the run-by-run
/// retry when one of them was at fault.
struct Written {
    first_position: i64,
    runs: Vec<NewRun>,
    labels: Vec<String>,
    result: crate::db::DbResult<Vec<Id>>,
}

/// Batches written at once: SQLite has one writer, so one batch writes while the next is
/// parsed; Postgres writes several transactions in parallel (as concurrent posting
/// clients do).
fn batches_in_flight(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => 1,
        Dialect::Postgres => 2,
    }
}

impl Writer<'_> {
    async fn run(&mut self, input: FileInput, format: Format) -> Result<(), Failure> {
        let (tx, mut rx) = mpsc::channel(CHANNEL);
        let parser = tokio::task::spawn_blocking(move || {
            let mut emitter = Emitter { tx };
            (format.parse)(&input, &mut emitter)
        });
        let mut failure = None;
        while let Some(msg) = rx.recv().await {
            if let Err(f) = self.take(msg).await {
                failure = Some(f);
                break;
            }
        }
        // Dropping the receiver stops a parser still sending.
        drop(rx);
        let parsed = parser.await;
        // The batch in flight ends before anything else: a failed import then deletes
        // every run it wrote.
        let settled = self.settle().await;
        if let Some(f) = failure {
            return Err(f);
        }
        settled?;
        match parsed {
            Ok(Ok(())) => {}
            Ok(Err(ParseError::File(message))) => return Err(Failure(message)),
            Ok(Err(ParseError::Stopped)) => {
                return Err(ApiError::internal("parser stopped without a cause").into())
            }
            Err(e) => {
                tracing::error!(error = %e, "structured import parser panicked");
                return Err(Failure("Internal server error".into()));
            }
        }
        self.flush().await?;
        self.settle().await
    }

    async fn take(&mut self, msg: Msg) -> Result<(), Failure> {
        match msg {
            Msg::Header(h) => self.header(h).await,
            Msg::Warning(w) => {
                self.warn(w);
                Ok(())
            }
            Msg::Unit(unit) => {
                let unit = *unit;
                let Some((procedure_id, version)) = self.procedure.clone() else {
                    return Err(ApiError::internal("a unit came before the file header").into());
                };
                self.units += 1;
                let mut run = match unit.run.and_then(check_run) {
                    Ok(run) => run,
                    Err(reason) => {
                        self.skip(&unit.label, &reason);
                        return Ok(());
                    }
                };
                run.procedure_id = procedure_id;
                run.procedure_version = version;
                if let Some(email) = run.operated_by.take() {
                    if self.is_member(&email).await? {
                        run.operated_by = Some(email);
                    }
                }
                self.batch_measurements += run
                    .phases
                    .iter()
                    .map(|p| p.measurements.len() + 1)
                    .sum::<usize>();
                self.batch.push(run);
                self.labels.push(unit.label);
                if self.batch.len() >= BATCH_RUNS || self.batch_measurements >= BATCH_MEASUREMENTS {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    /// Resolves the file's procedure: found by name (case-insensitive) or, for user
    /// keys, created; a station key may only use procedures linked to it.
    async fn header(&mut self, h: FileHeader) -> Result<(), Failure> {
        let name: String = h.procedure_name.trim().chars().take(255).collect();
        let denied = || {
            Failure(format!(
                "Station is not authorized to create runs for procedure \"{name}\""
            ))
        };
        let procedure_id = match self
            .db
            .find_or_create_procedure(self.caller.org_id, &name, self.caller.user_id())
            .await?
        {
            Some(id) => id,
            None => return Err(denied()),
        };
        if let Some(station) = self.caller.station_id() {
            if !self
                .db
                .station_linked(self.caller.org_id, station, procedure_id)
                .await?
            {
                return Err(denied());
            }
        }
        let version = match h.procedure_version.map(|v| v.trim().to_string()) {
            Some(v) if v.is_empty() => None,
            Some(v) => match rules::version(&v) {
                Ok(()) => Some(v),
                Err(e) => {
                    self.warn(format!("Procedure version not kept: {e}"));
                    None
                }
            },
            None => None,
        };
        self.procedure = Some((procedure_id, version));
        Ok(())
    }

    async fn is_member(&mut self, email: &str) -> Result<bool, Failure> {
        if let Some(known) = self.members.get(email) {
            return Ok(*known);
        }
        let member = email.contains('@') && self.db.member_email(self.caller.org_id, email).await?;
        self.members.insert(email.to_string(), member);
        Ok(member)
    }

    fn warn(&mut self, w: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.dropped_warnings += 1;
        }
    }

    fn skip(&mut self, label: &str, reason: &str) {
        self.skipped += 1;
        if self.first_skip.is_none() {
            self.first_skip = Some(format!("{label}: {reason}"));
        }
        self.warn(format!(
            "{label} not imported: {reason}. Fix the file, delete this file's runs and \
             import it again, or import it again with allow_duplicate."
        ));
    }

    /// Starts writing the pending batch in one transaction, in the background, once
    /// there is room (`batches_in_flight`): parsing the next batch overlaps the writes
    /// (the parser thread and the writers run on separate cores). Each batch knows its
    /// place in the file, so runs keep file order however the writes interleave.
    async fn flush(&mut self) -> Result<(), Failure> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.writing.len() >= batches_in_flight(self.db.dialect()) {
            self.settle_oldest().await?;
        }
        let runs = std::mem::take(&mut self.batch);
        let labels = std::mem::take(&mut self.labels);
        self.batch_measurements = 0;
        let first_position = self.queued;
        self.queued += runs.len() as i64;
        let (db, caller, import_id) = (self.db.clone(), self.caller.clone(), self.import_id);
        self.writing.push_back(tokio::spawn(async move {
            let result = db
                .create_import_batch(&caller, &runs, import_id, first_position)
                .await;
            Written {
                first_position,
                runs,
                labels,
                result,
            }
        }));
        Ok(())
    }

    /// Waits for every batch being written, oldest first; the first failure is
    /// returned once all have ended.
    async fn settle(&mut self) -> Result<(), Failure> {
        let mut outcome = Ok(());
        while !self.writing.is_empty() {
            let settled = self.settle_oldest().await;
            if outcome.is_ok() {
                outcome = settled;
            }
        }
        outcome
    }

    /// Waits for the oldest batch being written. When its transaction failed for a
    /// reason of one run (not a storage fault), writes its runs one by one and skips the
    /// bad ones.
    async fn settle_oldest(&mut self) -> Result<(), Failure> {
        let Some(writing) = self.writing.pop_front() else {
            return Ok(());
        };
        let written = writing.await.map_err(ApiError::internal)?;
        match written.result {
            Ok(ids) => {
                self.ids.extend(ids);
                return Ok(());
            }
            Err(e) if !e.is_fault_of_the_input() => return Err(e.into()),
            Err(_) => {}
        }
        let runs = written.labels.iter().zip(written.runs);
        for (offset, (label, run)) in runs.enumerate() {
            match self
                .db
                .create_import_batch(
                    self.caller,
                    std::slice::from_ref(&run),
                    self.import_id,
                    written.first_position + offset as i64,
                )
                .await
            {
                Ok(ids) => self.ids.extend(ids),
                Err(e) if !e.is_fault_of_the_input() => return Err(e.into()),
                Err(e) => {
                    let reason = Failure::from(e).0;
                    self.skip(label, reason.trim_end_matches('.'));
                }
            }
        }
        Ok(())
    }
}

/// The identifier rules of IMPORTERS.md §1.6 a run must meet (never truncated).
fn check_run(run: NewRun) -> Result<NewRun, String> {
    rules::serial(&run.serial_number)?;
    if let Some(p) = &run.part_number {
        rules::part(p)?;
    }
    if let Some(r) = &run.revision_number {
        rules::revision(r)?;
    }
    if let Some(b) = &run.batch_number {
        rules::batch(b)?;
    }
    if run.ended_at < run.started_at {
        return Err("the run ends before it starts".into());
    }
    Ok(run)
}
