//! What the WATS (WSJF), WSXF, ATML and TestStand importers share: the parsed-file
//! shape they return, the comparison codes of IMPORTERS.md §1.6, number and time
//! reading, metadata capped at 50 keys, and laying steps out as phases.
//!
//! Each importer is a pure function from the file's bytes to a `ParsedFile`: one
//! `ParsedUnit` per unit result in file order, each either a run to create (its
//! procedure named, not yet resolved) or the reason it is skipped.

use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::{Number, Value};

use crate::db::runs::{NewLog, NewMeasurement, NewPhase, NewRun, NewValidator};
use crate::db::{Id, Ts};
use crate::metadata::Metadata;

use crate::rules;

/// Most warnings returned for one file; the rest are counted in a last entry.
pub const MAX_WARNINGS: usize = 50;
/// Most metadata keys of a run.
pub const MAX_METADATA: usize = 50;

/// What a file maps to.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub units: Vec<ParsedUnit>,
    /// Notes about the whole file (lossy but successful mappings).
    pub warnings: Vec<String>,
}

/// One unit result of a file.
#[derive(Debug)]
pub struct ParsedUnit {
    /// How the unit is named in warnings: `Report 2 (serial "SN-2")`.
    pub label: String,
    /// The run, or why the unit is not imported.
    pub run: Result<ImportRun, String>,
}

/// A run to create, with the procedure named by the file.
#[derive(Debug)]
pub struct ImportRun {
    /// Procedure name (found case-insensitively, created for user keys).
    pub procedure: String,
    /// `procedure_id` is a placeholder until the procedure is resolved.
    pub run: NewRun,
    /// Serial numbers of sub-units named by the file (linked when they exist).
    pub sub_units: Vec<String>,
    /// Notes about this run, returned only when it is created.
    pub warnings: Vec<String>,
    /// Files embedded in the report, stored as attachments of the run.
    pub files: Vec<EmbeddedFile>,
}

/// A file embedded in a report (base64 in WSJF/WSXF).
#[derive(Debug, Clone)]
pub struct EmbeddedFile {
    pub name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl EmbeddedFile {
    /// Decodes base64 `data` (whitespace ignored); `Err` with a warning naming the file
    /// and step when it is not base64.
    pub fn decode(
        name: Option<String>,
        content_type: Option<String>,
        data: &str,
        step: &str,
    ) -> Result<EmbeddedFile, String> {
        use base64::Engine;
        let name = name.unwrap_or_else(|| format!("{step} attachment"));
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        match base64::engine::general_purpose::STANDARD.decode(compact) {
            Ok(bytes) => Ok(EmbeddedFile {
                name,
                content_type,
                bytes,
            }),
            Err(e) => Err(format!(
                "Attachment \"{name}\" of step \"{step}\" not imported: its data is not base64 ({e})"
            )),
        }
    }
}

/// Why a file cannot be imported at all: the whole sentence, naming the place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FormatError {
    pub fn not_format(format: &str, reason: impl std::fmt::Display) -> Self {
        let article = if format.starts_with(['A', 'E', 'I', 'O']) {
            "an"
        } else {
            "a"
        };
        FormatError(format!("Not {article} {format} file: {reason}"))
    }
    pub fn invalid(format: &str, reason: impl std::fmt::Display) -> Self {
        FormatError(format!("Invalid {format} file: {reason}"))
    }
    pub fn no_result() -> Self {
        FormatError("No test result found in file".into())
    }
}

/// A number as written in a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Num {
    /// A finite number: an integer when written as one.
    Finite(Value),
    /// `NaN`, `INF`, `-Inf`, `1.#QNAN`…: the raw text.
    NonFinite(String),
}

/// Reads a number: decimal, hex (`0x1F`), or one of the non-finite spellings. `None`
/// when the text is none of these.
pub fn number(text: &str) -> Option<Num> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Num::Finite(Value::from(i)));
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        let v = i64::from_str_radix(hex, 16)
            .ok()
            .or_else(|| u64::from_str_radix(hex, 16).ok().map(|u| u as i64))?;
        return Some(Num::Finite(Value::from(if neg { -v } else { v })));
    }
    let lower = digits.to_ascii_lowercase();
    if lower == "nan"
        || lower == "inf"
        || lower == "infinity"
        || lower.starts_with("1.#")
        || lower == "-nan"
    {
        return Some(Num::NonFinite(t.to_string()));
    }
    // Rust also reads `inf`/`nan`, handled above; anything else must be a plain number.
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    let f = t.parse::<f64>().ok()?;
    if !f.is_finite() {
        return Some(Num::NonFinite(t.to_string()));
    }
    Number::from_f64(f).map(|n| Num::Finite(Value::Number(n)))
}

/// A finite number from text, `None` otherwise.
pub fn finite(text: Option<&str>) -> Option<Value> {
    match number(text?)? {
        Num::Finite(v) => Some(v),
        Num::NonFinite(_) => None,
    }
}

/// A finite JSON number from a JSON value (number or numeric text).
pub fn finite_json(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Number(n) => Some(Value::Number(n.clone())),
        Value::String(s) => finite(Some(s)),
        _ => None,
    }
}

/// Seconds as a float from text or a JSON number.
pub fn seconds(v: Option<&Value>) -> Option<f64> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (f.is_finite() && (0.0..1e10).contains(&f)).then_some(f)
}

/// `t` plus `s` seconds (microsecond precision); `t` when out of range.
pub fn plus_seconds(t: Ts, s: f64) -> Ts {
    let us = (s * 1e6).round();
    if !us.is_finite() || us.abs() > 1e17 {
        return t;
    }
    t.micros()
        .checked_add(us as i64)
        .and_then(Ts::from_micros)
        .unwrap_or(t)
}

/// A timestamp: RFC 3339 with an offset, else an offset-less date-time read as UTC
/// (`T` or space separated, optional fraction, optional trailing `Z`).
pub fn timestamp(text: &str) -> Option<Ts> {
    let t = text.trim();
    if let Some(ts) = Ts::parse_rfc3339(t) {
        return Some(ts);
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Ts::from(Utc.from_utc_datetime(&d)));
        }
    }
    None
}

/// Run metadata in priority order, at most 50 keys; empty values are not stored.
#[derive(Debug, Default)]
pub struct Meta {
    pub map: Metadata,
    pub dropped: usize,
}

impl Meta {
    /// Adds `key` unless it is there already, the value is empty, or 50 keys are set.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        let value = match value.into() {
            Value::String(s) if s.trim().is_empty() => return,
            Value::String(s) => Value::String(s.trim().to_string()),
            v @ (Value::Number(_) | Value::Bool(_)) => v,
            _ => return,
        };
        let key = key.trim();
        if key.is_empty() || self.map.contains_key(key) {
            return;
        }
        if self.map.len() >= MAX_METADATA {
            self.dropped += 1;
            return;
        }
        self.map.insert(key.to_string(), value);
    }

    pub fn put_opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }
}

/// A measurement with a name, an outcome and nothing else.
pub fn measurement(name: &str, outcome: &str) -> NewMeasurement {
    NewMeasurement {
        name: name.to_string(),
        outcome: outcome.to_string(),
        measured_value: None,
        units: None,
        docstring: None,
        validators: None,
        aggregations: None,
        data_series: None,
    }
}

/// A numeric value from text: finite numbers as numbers; non-finite ones give no value
/// and their text goes to the docstring.
pub fn set_numeric(m: &mut NewMeasurement, text: Option<&str>) {
    match text.and_then(number) {
        Some(Num::Finite(v)) => m.measured_value = Some(v),
        Some(Num::NonFinite(raw)) => m.docstring = Some(format!("measured value: {raw}")),
        None => {
            if let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) {
                m.docstring = Some(format!("measured value: {t}"));
            }
        }
    }
}

fn validator(operator: &str, expected: Value, expression: String, outcome: &str) -> NewValidator {
    NewValidator {
        operator: Some(operator.to_string()),
        expected_value: Some(expected),
        expression: Some(expression),
        outcome: Some(outcome.to_string()),
        is_decisive: None,
    }
}

fn expression_only(expression: String, outcome: &str) -> NewValidator {
    NewValidator {
        operator: None,
        expected_value: None,
        expression: Some(expression),
        outcome: Some(outcome.to_string()),
        is_decisive: None,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// The validators of comparison code `code` (IMPORTERS.md §1.6) with low limit `low`
/// and high limit `high`; single-limit codes use `low`, else `high`. `None` for `LOG`
/// and for codes whose limits are missing (a non-finite limit is dropped).
pub fn comparison(
    code: Option<&str>,
    low: Option<Value>,
    high: Option<Value>,
    outcome: &str,
) -> Option<Vec<NewValidator>> {
    let code = code
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let one = low.clone().or_else(|| high.clone());
    let single = |op: &str| {
        let v = one.clone()?;
        Some(vec![validator(
            op,
            v.clone(),
            format!("x {op} {}", show(&v)),
            outcome,
        )])
    };
    let both = || Some((low.clone()?, high.clone()?));
    match code.as_str() {
        "" | "LOG" => None,
        "EQ" => single("=="),
        "NE" => single("!="),
        "GT" => single(">"),
        "GE" => single(">="),
        "LT" => single("<"),
        "LE" => single("<="),
        "GELE" => {
            let (l, h) = both()?;
            Some(vec![validator(
                "range",
                Value::Array(vec![l.clone(), h.clone()]),
                format!("{} <= x <= {}", show(&l), show(&h)),
                outcome,
            )])
        }
        "GTLT" | "GELT" | "GTLE" => {
            let (l, h) = both()?;
            let lo = if code.starts_with("GE") { ">=" } else { ">" };
            let hi = if code.ends_with("LE") { "<=" } else { "<" };
            Some(vec![
                validator(lo, l.clone(), format!("x {lo} {}", show(&l)), outcome),
                validator(hi, h.clone(), format!("x {hi} {}", show(&h)), outcome),
            ])
        }
        "LTGT" | "LEGE" | "LEGT" | "LTGE" => {
            let (l, h) = both()?;
            let lo = if code.starts_with("LE") { "<=" } else { "<" };
            let hi = if code.ends_with("GE") { ">=" } else { ">" };
            Some(vec![expression_only(
                format!("x {lo} {} or x {hi} {}", show(&l), show(&h)),
                outcome,
            )])
        }
        "EQT" => Some(vec![expression_only(
            format!(
                "EQT {} {}",
                low.as_ref().map(show).unwrap_or_default(),
                high.as_ref().map(show).unwrap_or_default()
            ),
            outcome,
        )]),
        "CASESENSIT" | "CASESENSITIVE" => single("=="),
        "IGNORECASE" => {
            let v = one.clone()?;
            Some(vec![validator(
                "==",
                v.clone(),
                format!("x == {} (ignore case)", show(&v)),
                outcome,
            )])
        }
        other => Some(vec![expression_only(
            format!(
                "{other} {} {}",
                low.as_ref().map(show).unwrap_or_default(),
                high.as_ref().map(show).unwrap_or_default()
            )
            .trim()
            .to_string(),
            outcome,
        )]),
    }
}

/// A leaf step of a sequence tree, before it is laid out as a phase.
#[derive(Debug, Default)]
pub struct Step {
    pub name: String,
    /// `PASS`, `FAIL`, `SKIP` or `ERROR`.
    pub outcome: &'static str,
    pub start: Option<Ts>,
    pub end: Option<Ts>,
    pub duration: Option<f64>,
    pub docstring: Option<String>,
    /// Names of the sequence calls the step sits in.
    pub path: Vec<String>,
    pub measurements: Vec<NewMeasurement>,
    /// Error messages of the step (`<text> (code N)`).
    pub errors: Vec<String>,
    /// Files embedded in the step.
    pub files: Vec<EmbeddedFile>,
}

/// Lays steps out as phases from `run_start`: a step without a start starts where the
/// previous one ended; its end is its own, else start + duration, else its start.
pub fn phases(steps: Vec<Step>, run_start: Ts) -> Layout {
    let mut files = Vec::new();
    let mut cursor = run_start;
    let mut out = Vec::with_capacity(steps.len());
    let mut logs = Vec::new();
    let mut last_end = None;
    for mut step in steps {
        files.append(&mut step.files);
        let started_at = step.start.unwrap_or(cursor);
        let ended_at = step
            .end
            .or_else(|| step.duration.map(|d| plus_seconds(started_at, d)))
            .unwrap_or(started_at)
            .max(started_at);
        cursor = ended_at;
        last_end = Some(last_end.map_or(ended_at, |e: Ts| e.max(ended_at)));
        for e in &step.errors {
            logs.push(NewLog::new(
                "ERROR",
                started_at,
                &format!("{}: {e}", step.name),
                "",
                0,
            ));
        }
        let docstring = match (step.path.is_empty(), step.docstring) {
            (true, d) => d,
            (false, None) => Some(format!("in: {}", step.path.join("/"))),
            (false, Some(d)) => Some(format!("in: {}\n{d}", step.path.join("/"))),
        };
        let mut measurements = step.measurements;
        dedupe_names(&mut measurements);
        out.push(NewPhase {
            name: if step.name.trim().is_empty() {
                format!("Step {}", out.len() + 1)
            } else {
                step.name
            },
            outcome: step.outcome.to_string(),
            started_at,
            ended_at,
            retry_count: 0,
            docstring,
            sequence_path: None,
            measurements,
        });
    }
    Layout {
        phases: out,
        logs,
        last_end,
        files,
    }
}

/// Steps laid out: the phases, the `ERROR` logs of step errors, the last phase end and
/// the steps' embedded files.
pub struct Layout {
    pub phases: Vec<NewPhase>,
    pub logs: Vec<NewLog>,
    pub last_end: Option<Ts>,
    pub files: Vec<EmbeddedFile>,
}

/// Suffixes ` #2`, ` #3` to measurement names repeated in one phase.
fn dedupe_names(ms: &mut [NewMeasurement]) {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for m in ms.iter_mut() {
        match seen.iter_mut().find(|(n, _)| *n == m.name) {
            Some((_, count)) => {
                *count += 1;
                m.name = format!("{} #{}", m.name, count);
            }
            None => seen.push((m.name.clone(), 1)),
        }
    }
}

/// The run outcome derived from its phases when the file gives none: any `FAIL` →
/// `FAIL`, any `ERROR` → `ERROR`, else `PASS`.
pub fn derived_outcome(phases: &[NewPhase]) -> &'static str {
    let fail = phases
        .iter()
        .any(|p| p.outcome == "FAIL" || p.measurements.iter().any(|m| m.outcome == "FAIL"));
    if fail {
        "FAIL"
    } else if phases.iter().any(|p| p.outcome == "ERROR") {
        "ERROR"
    } else {
        "PASS"
    }
}

/// The header of a unit result, as the importers read it.
#[derive(Debug, Default)]
pub struct Header {
    pub serial: Option<String>,
    pub part: Option<String>,
    pub revision: Option<String>,
    pub batch: Option<String>,
    pub procedure: Option<String>,
    pub version: Option<String>,
    /// `PASS`, `FAIL`, `ERROR`, `TIMEOUT` or `ABORTED`; derived when `None`.
    pub outcome: Option<&'static str>,
    pub started_at: Option<Ts>,
    pub ended_at: Option<Ts>,
    /// Seconds from the start to the end.
    pub duration: Option<f64>,
    pub operator: Option<String>,
    pub docstring: Option<String>,
    pub metadata: Meta,
    pub sub_units: Vec<String>,
    /// Run-level `ERROR` log messages (placed at the run start).
    pub errors: Vec<String>,
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Builds the run of `header` and its `steps` (IMPORTERS.md §1.6), or the reason it is
/// skipped. `default_procedure` names the procedure when the file names none.
pub fn build_run(
    mut h: Header,
    steps: Vec<Step>,
    default_procedure: &str,
) -> Result<ImportRun, String> {
    let mut warnings = Vec::new();
    let serial = clean(h.serial.take()).unwrap_or_default();
    if serial.is_empty() {
        return Err("serial number is empty".into());
    }
    rules::serial(&serial).map_err(|e| e.to_lowercase())?;
    let part = clean(h.part.take());
    if let Some(p) = &part {
        rules::part(p).map_err(|e| e.to_lowercase())?;
    }
    let revision = clean(h.revision.take());
    if let Some(r) = &revision {
        rules::revision(r).map_err(|e| e.to_lowercase())?;
    }
    let batch = clean(h.batch.take()).map(|b| {
        if rules::batch(&b).is_ok() {
            return b;
        }
        let fixed: String = b
            .chars()
            .take(100)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        warnings.push(format!(
            "Batch \"{b}\" stored as \"{fixed}\" (batch numbers allow only letters, digits, `_` and `-`); the original is in metadata `batch_serial`"
        ));
        h.metadata.put("batch_serial", b.as_str());
        fixed
    });
    let version = clean(h.version.take()).filter(|v| match rules::version(v) {
        Ok(()) => true,
        Err(e) => {
            warnings.push(format!("Procedure version \"{v}\" not used: {e}"));
            false
        }
    });
    let procedure: String = clean(h.procedure.take())
        .unwrap_or_else(|| default_procedure.to_string())
        .chars()
        .take(255)
        .collect();
    if let Some(op) = clean(h.operator.take()) {
        h.metadata.put("operator", op);
    }

    let first_step = steps.iter().filter_map(|s| s.start).min();
    let started_at = h.started_at.or(first_step).unwrap_or_else(Ts::now);
    let Layout {
        phases,
        mut logs,
        last_end,
        files,
    } = phases(steps, started_at);
    let ended_at = h
        .ended_at
        .or_else(|| h.duration.map(|d| plus_seconds(started_at, d)))
        .or(last_end)
        .unwrap_or(started_at)
        .max(started_at);
    let outcome = h.outcome.unwrap_or_else(|| derived_outcome(&phases));
    for e in &h.errors {
        logs.insert(0, NewLog::new("ERROR", started_at, e, "", 0));
    }
    if h.metadata.dropped > 0 {
        warnings.push(format!(
            "{} metadata entries dropped: a run keeps at most {MAX_METADATA}",
            h.metadata.dropped
        ));
    }
    let mut run = NewRun::new(Id::NIL, serial, outcome, started_at, ended_at);
    run.part_number = part;
    run.revision_number = revision;
    run.batch_number = batch;
    run.procedure_version = version;
    run.docstring = clean(h.docstring.take());
    run.phases = phases;
    run.logs = logs;
    run.metadata = (!h.metadata.map.is_empty()).then_some(h.metadata.map);
    let mut sub_units = Vec::new();
    for s in h.sub_units.into_iter().filter_map(|s| clean(Some(s))) {
        if !sub_units.contains(&s) {
            sub_units.push(s);
        }
    }
    Ok(ImportRun {
        procedure,
        run,
        sub_units,
        warnings,
        files,
    })
}

/// `Report 2 (serial "SN-2")`.
pub fn label(kind: &str, position: usize, serial: Option<&str>) -> String {
    format!(
        "{kind} {position} (serial \"{}\")",
        serial.unwrap_or("").trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers() {
        assert_eq!(number("3"), Some(Num::Finite(json!(3))));
        assert_eq!(number(" 3.25 "), Some(Num::Finite(json!(3.25))));
        assert_eq!(number("0x1F"), Some(Num::Finite(json!(31))));
        assert_eq!(number("-0x10"), Some(Num::Finite(json!(-16))));
        assert_eq!(number("NaN"), Some(Num::NonFinite("NaN".into())));
        assert_eq!(number("-INF"), Some(Num::NonFinite("-INF".into())));
        assert_eq!(number("1.#QNAN"), Some(Num::NonFinite("1.#QNAN".into())));
        assert_eq!(number("1e999"), Some(Num::NonFinite("1e999".into())));
        assert_eq!(number("abc"), None);
        assert_eq!(number(""), None);
    }

    #[test]
    fn comparison_codes() {
        let v = comparison(Some("GELE"), Some(json!(1)), Some(json!(2)), "PASS").unwrap();
        assert_eq!(v[0].operator.as_deref(), Some("range"));
        assert_eq!(v[0].expected_value, Some(json!([1, 2])));
        let v = comparison(Some("GTLE"), Some(json!(1)), Some(json!(2)), "PASS").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].operator.as_deref(), Some(">"));
        assert_eq!(v[1].operator.as_deref(), Some("<="));
        let v = comparison(Some("LE"), None, Some(json!(5)), "FAIL").unwrap();
        assert_eq!(v[0].operator.as_deref(), Some("<="));
        assert_eq!(v[0].expected_value, Some(json!(5)));
        let v = comparison(Some("LTGT"), Some(json!(1)), Some(json!(5)), "PASS").unwrap();
        assert!(v[0].operator.is_none());
        assert_eq!(v[0].expression.as_deref(), Some("x < 1 or x > 5"));
        assert!(comparison(Some("LOG"), Some(json!(1)), None, "PASS").is_none());
        assert!(comparison(Some("GELE"), Some(json!(1)), None, "PASS").is_none());
    }

    #[test]
    fn run_rules() {
        let mut h = Header {
            serial: Some("SN".into()),
            part: Some("P".into()),
            version: Some("v".repeat(61)),
            procedure: Some("p".repeat(300)),
            ..Header::default()
        };
        for i in 0..55 {
            h.metadata.put(&format!("k{i}"), i);
        }
        h.metadata.put("empty", "  ");
        let r = build_run(h, Vec::new(), "X").unwrap();
        assert_eq!(r.run.metadata.as_ref().unwrap().len(), 50);
        assert_eq!(r.procedure.chars().count(), 255, "names are truncated");
        assert_eq!(r.run.procedure_version, None);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[1].starts_with("5 metadata entries dropped"));
        assert_eq!(r.run.outcome, "PASS", "derived: nothing failed");
        let long = Header {
            serial: Some("s".repeat(61)),
            ..Header::default()
        };
        assert!(build_run(long, Vec::new(), "X")
            .unwrap_err()
            .contains("at most 60"));
    }

    #[test]
    fn times() {
        let t = timestamp("2024-01-02T03:04:05").unwrap();
        assert_eq!(
            t.to_string(),
            timestamp("2024-01-02T03:04:05Z").unwrap().to_string()
        );
        let o = timestamp("2024-01-02T05:04:05+02:00").unwrap();
        assert_eq!(o, t);
        assert!(timestamp("yesterday").is_none());
    }
}
