//! CSV files with a column mapping (`imports.tabular`): one file is one run.
//!
//! The file: UTF-8 (a byte order mark is skipped), a header row naming the columns, then
//! data rows. The delimiter is `,`, or `;` / tab when the header has more of those.
//! Fully empty rows are skipped. Column names are matched exactly, else
//! case-insensitively.
//!
//! The mapping (vendor DTO `ImportTabularMapping`):
//! - `fields`: each run field comes from a `column` or is a fixed `value`. A run field
//!   read from a column takes the column's value; rows may leave it empty or repeat it,
//!   but two different values are a 400 (a file is one run). `serial_number`,
//!   `outcome`, `started_at` and `ended_at` are required. Times are RFC 3339, or
//!   `YYYY-MM-DD HH:MM:SS[.f]` / `YYYY-MM-DDTHH:MM:SS[.f]` taken as UTC. A column
//!   `outcome` goes through `valueMap` (exact key, then case-insensitive), else must
//!   itself be a run outcome (case-insensitive).
//! - `measurements`, by `layout`:
//!   - `none`: no measurements;
//!   - `wide`: each listed column is a measurement, one per row that has a value in it
//!     (`name` defaults to the column name);
//!   - `long`: each row is one measurement (`nameColumn`, `valueColumn`, optional units,
//!     limits, outcome and phase columns); rows without a name are skipped.
//!
//!   Values: integers and decimals become numbers, `true`/`false` booleans, anything else
//!   stays text; an empty value is no value. Limits become `>=` / `<=` validators. The
//!   outcome is the outcome column's (`PASS`, `FAIL`, `UNSET`, case-insensitive) when
//!   there is one, else computed from the limits for a numeric value (`PASS`/`FAIL`;
//!   `UNSET` for a value that is not a number), else `PASS` for a set value and
//!   `UNSET` for none.
//! - `phases` (`nameColumn`, optional `outcomeColumn`, `startedColumn`, `endedColumn`,
//!   `valueMap`): rows are grouped into phases by name, in order of first appearance. A
//!   phase's outcome is the worst its rows give (`ERROR` > `FAIL` > `PASS` > `SKIP`,
//!   mapped through `valueMap`), else `FAIL` when one of its measurements failed, else
//!   `PASS`; its times are the earliest start and latest end its rows give, else the
//!   run's. Measurements go to the phase of their column (`wide` `phase`) or row
//!   (`long` `phaseColumn`, else the row's phase); without any, to one phase named
//!   `Measurements`.
//! - `metadata` / `unitMetadata`: `{key, column | value}`; a column's value (typed like
//!   measurement values) is read like a run field.
//!
//! Errors name the mapping path, the column and the 1-based data row.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::db::runs::model::limit_validators;
use crate::db::runs::model::MAX_METADATA_KEYS;
use crate::db::runs::{NewMeasurement, NewPhase, NewRun};
use crate::db::{Id, Ts};
use crate::error::{ApiError, Issue, PathSegment};
use crate::values::parse_query_ts;

use super::rules;

/// Name of the phase measurements go to when nothing names one.
pub const DEFAULT_PHASE: &str = "Measurements";

/// A run field: read from a column, or a fixed value.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImportTabularSource {
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// The outcome: a fixed value, or a column with an optional map of cell values.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImportTabularOutcome {
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, rename = "valueMap", alias = "value_map")]
    pub value_map: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImportTabularFields {
    pub serial_number: ImportTabularSource,
    pub outcome: ImportTabularOutcome,
    pub started_at: ImportTabularSource,
    pub ended_at: ImportTabularSource,
    #[serde(default)]
    pub part_number: Option<ImportTabularSource>,
    #[serde(default)]
    pub revision_number: Option<ImportTabularSource>,
    #[serde(default)]
    pub batch_number: Option<ImportTabularSource>,
    #[serde(default)]
    pub operated_by: Option<ImportTabularSource>,
    #[serde(default)]
    pub docstring: Option<ImportTabularSource>,
}

/// A `wide` measurement column.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportTabularColumn {
    pub column: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub units: Option<String>,
    #[serde(default, rename = "lowerLimit", alias = "lower_limit")]
    pub lower_limit: Option<Number>,
    #[serde(default, rename = "upperLimit", alias = "upper_limit")]
    pub upper_limit: Option<Number>,
    #[serde(default)]
    pub phase: Option<String>,
}

/// `mapping.measurements`: the three layouts in one shape (told apart by `layout`,
/// else by which keys are present).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImportTabularMeasurements {
    #[serde(default)]
    pub layout: Option<String>,
    #[serde(default)]
    pub columns: Option<Vec<ImportTabularColumn>>,
    #[serde(default, rename = "nameColumn", alias = "name_column")]
    pub name_column: Option<String>,
    #[serde(default, rename = "valueColumn", alias = "value_column")]
    pub value_column: Option<String>,
    #[serde(default, rename = "unitsColumn", alias = "units_column")]
    pub units_column: Option<String>,
    #[serde(default, rename = "lowerColumn", alias = "lower_column")]
    pub lower_column: Option<String>,
    #[serde(default, rename = "upperColumn", alias = "upper_column")]
    pub upper_column: Option<String>,
    #[serde(default, rename = "outcomeColumn", alias = "outcome_column")]
    pub outcome_column: Option<String>,
    #[serde(default, rename = "phaseColumn", alias = "phase_column")]
    pub phase_column: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImportTabularPhases {
    #[serde(rename = "nameColumn", alias = "name_column")]
    pub name_column: String,
    #[serde(default, rename = "outcomeColumn", alias = "outcome_column")]
    pub outcome_column: Option<String>,
    #[serde(default, rename = "startedColumn", alias = "started_column")]
    pub started_column: Option<String>,
    #[serde(default, rename = "endedColumn", alias = "ended_column")]
    pub ended_column: Option<String>,
    #[serde(default, rename = "valueMap", alias = "value_map")]
    pub value_map: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImportTabularMetadata {
    pub key: String,
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImportTabularMapping {
    pub fields: ImportTabularFields,
    #[serde(default)]
    pub measurements: Option<ImportTabularMeasurements>,
    #[serde(default)]
    pub phases: Option<ImportTabularPhases>,
    #[serde(default)]
    pub metadata: Option<Vec<ImportTabularMetadata>>,
    #[serde(default, rename = "unitMetadata", alias = "unit_metadata")]
    pub unit_metadata: Option<Vec<ImportTabularMetadata>>,
}

/// A 400 with one issue at `path` (e.g. `mapping.fields.outcome.column`).
fn fault(path: &str, message: impl Into<String>) -> ApiError {
    let path = path
        .split('.')
        .map(|seg| match seg.parse::<usize>() {
            Ok(i) => PathSegment::Index(i),
            Err(_) => PathSegment::Key(seg.to_string()),
        })
        .collect();
    ApiError::validation(vec![Issue {
        message: message.into(),
        path,
    }])
}

/// The parsed file: column names and the non-empty data rows (cells trimmed).
pub struct Table {
    pub columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses CSV bytes (see the module doc).
    pub fn parse(bytes: &[u8]) -> Result<Table, ApiError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "The file is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(sniff_delimiter(text))
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| ApiError::bad_request(format!("Cannot read the CSV header row: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(ApiError::bad_request(
                "The file has no header row: its first line must name the columns",
            ));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                ApiError::bad_request(format!("Cannot read the CSV file at line {line}: {e}"))
            })?;
            if record.iter().all(str::is_empty) {
                continue;
            }
            rows.push(record.iter().map(str::to_string).collect());
        }
        if rows.is_empty() {
            return Err(ApiError::bad_request(
                "The file has a header row but no data rows",
            ));
        }
        Ok(Table { columns, rows })
    }

    /// The index of `name` (exact, else case-insensitive); 400 at `path` when absent.
    fn column(&self, path: &str, name: &str) -> Result<usize, ApiError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .or_else(|| {
                let lower = name.trim().to_lowercase();
                self.columns.iter().position(|c| c.to_lowercase() == lower)
            })
            .ok_or_else(|| {
                fault(
                    path,
                    format!(
                        "Column `{name}` is not in the file (its columns: {})",
                        self.columns.join(", ")
                    ),
                )
            })
    }

    fn cell(&self, row: usize, col: usize) -> &str {
        self.rows[row].get(col).map(String::as_str).unwrap_or("")
    }

    /// The one value a run-level column holds (see the module doc); `None` when every
    /// row leaves it empty.
    fn run_value(&self, path: &str, col: usize) -> Result<Option<(usize, String)>, ApiError> {
        let mut found: Option<(usize, &str)> = None;
        for row in 0..self.rows.len() {
            let v = self.cell(row, col);
            if v.is_empty() {
                continue;
            }
            match found {
                None => found = Some((row, v)),
                Some((first, seen)) if seen != v => {
                    return Err(fault(
                        path,
                        format!(
                            "Column `{}` has `{seen}` in row {} and `{v}` in row {}: a tabular file imports as one run, so run fields must hold one value",
                            self.columns[col],
                            first + 1,
                            row + 1
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(found.map(|(row, v)| (row, v.to_string())))
    }
}

/// `,` unless the header line has more `;` or tabs.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let count = |c: char| header.chars().filter(|x| *x == c).count();
    let mut best = (b',', count(','));
    for d in [b';', b'\t'] {
        let n = count(d as char);
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// A cell as a measured value: integer, decimal, boolean or text.
pub fn cell_value(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Some(n) = s
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(Number::from_f64)
    {
        // Only plain decimal notation: `inf`, `nan` and the like stay text.
        if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
            return Value::Number(n);
        }
    }
    match s.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s.to_string()),
    }
}

fn number_cell(
    table: &Table,
    path: &str,
    row: usize,
    col: usize,
) -> Result<Option<Number>, ApiError> {
    let s = table.cell(row, col);
    if s.is_empty() {
        return Ok(None);
    }
    match cell_value(s) {
        Value::Number(n) => Ok(Some(n)),
        _ => Err(fault(
            path,
            format!(
                "Column `{}`, row {}: `{s}` is not a number",
                table.columns[col],
                row + 1
            ),
        )),
    }
}

fn timestamp(path: &str, what: &str, s: &str) -> Result<Ts, ApiError> {
    parse_query_ts(path, s).map_err(|_| {
        fault(
            path,
            format!(
                "{what}: `{s}` is not a date and time (use RFC 3339, e.g. 2026-01-02T03:04:05Z)"
            ),
        )
    })
}

/// Looks `s` up in `map` (exact key, then case-insensitive), else `s` itself;
/// upper-cased.
fn mapped(map: Option<&HashMap<String, String>>, s: &str) -> String {
    let m = map.and_then(|m| {
        m.get(s).or_else(|| {
            let lower = s.to_lowercase();
            m.iter()
                .find(|(k, _)| k.to_lowercase() == lower)
                .map(|(_, v)| v)
        })
    });
    m.map(String::as_str)
        .unwrap_or(s)
        .trim()
        .to_ascii_uppercase()
}

const RUN_OUTCOMES: [&str; 5] = ["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"];
const PHASE_OUTCOMES: [&str; 4] = ["PASS", "FAIL", "SKIP", "ERROR"];
const MEASUREMENT_OUTCOMES: [&str; 3] = ["PASS", "FAIL", "UNSET"];

/// A run built from a table and a mapping, with the run-level metadata.
impl ImportTabularMapping {
    /// The run the file describes, for procedure `procedure_id`.
    pub fn to_new_run(&self, table: &Table, procedure_id: Id) -> Result<NewRun, ApiError> {
        let f = &self.fields;
        let serial = self
            .text("mapping.fields.serial_number", &f.serial_number, table)?
            .ok_or_else(|| {
                fault(
                    "mapping.fields.serial_number",
                    "The serial number is empty in every row",
                )
            })?;
        rules::serial(&serial).map_err(|m| fault("mapping.fields.serial_number", m))?;
        let started_at = self.time(
            "mapping.fields.started_at",
            "started_at",
            &f.started_at,
            table,
        )?;
        let ended_at = self.time("mapping.fields.ended_at", "ended_at", &f.ended_at, table)?;
        if ended_at < started_at {
            return Err(fault(
                "mapping.fields.ended_at",
                format!("ended_at ({ended_at}) is before started_at ({started_at})"),
            ));
        }
        let outcome = self.run_outcome(table)?;

        let mut run = NewRun::new(procedure_id, serial, outcome, started_at, ended_at);
        run.part_number = self.opt_text(
            "mapping.fields.part_number",
            &f.part_number,
            table,
            rules::part,
        )?;
        run.revision_number = self.opt_text(
            "mapping.fields.revision_number",
            &f.revision_number,
            table,
            rules::revision,
        )?;
        run.batch_number = self.opt_text(
            "mapping.fields.batch_number",
            &f.batch_number,
            table,
            rules::batch,
        )?;
        run.operated_by =
            self.opt_text("mapping.fields.operated_by", &f.operated_by, table, |_| {
                Ok(())
            })?;
        run.docstring =
            self.opt_text("mapping.fields.docstring", &f.docstring, table, |_| Ok(()))?;
        run.metadata = metadata("mapping.metadata", self.metadata.as_deref(), table)?;
        run.unit_metadata = metadata("mapping.unitMetadata", self.unit_metadata.as_deref(), table)?;
        run.phases = self.phases(table, started_at, ended_at)?;
        Ok(run)
    }

    fn text(
        &self,
        path: &str,
        src: &ImportTabularSource,
        table: &Table,
    ) -> Result<Option<String>, ApiError> {
        match (&src.column, &src.value) {
            (Some(c), None) => {
                let col = table.column(&format!("{path}.column"), c)?;
                Ok(table
                    .run_value(&format!("{path}.column"), col)?
                    .map(|(_, v)| v))
            }
            (None, Some(v)) => Ok(Some(v.trim().to_string()).filter(|v| !v.is_empty())),
            _ => Err(fault(path, "Give either `column` or `value`")),
        }
    }

    fn opt_text(
        &self,
        path: &str,
        src: &Option<ImportTabularSource>,
        table: &Table,
        rule: fn(&str) -> Result<(), String>,
    ) -> Result<Option<String>, ApiError> {
        let Some(src) = src else { return Ok(None) };
        let v = self.text(path, src, table)?;
        if let Some(v) = &v {
            rule(v).map_err(|m| fault(path, m))?;
        }
        Ok(v)
    }

    fn time(
        &self,
        path: &str,
        what: &str,
        src: &ImportTabularSource,
        table: &Table,
    ) -> Result<Ts, ApiError> {
        let v = self
            .text(path, src, table)?
            .ok_or_else(|| fault(path, format!("{what} is empty in every row")))?;
        timestamp(path, what, &v)
    }

    fn run_outcome(&self, table: &Table) -> Result<&'static str, ApiError> {
        let o = &self.fields.outcome;
        let path = "mapping.fields.outcome";
        let (raw, row) = match (&o.column, &o.value) {
            (Some(c), None) => {
                let col = table.column(&format!("{path}.column"), c)?;
                match table.run_value(&format!("{path}.column"), col)? {
                    Some((row, v)) => (v, Some(row)),
                    None => return Err(fault(path, format!("Column `{c}` is empty in every row"))),
                }
            }
            (None, Some(v)) => (v.clone(), None),
            _ => return Err(fault(path, "Give either `column` or `value`")),
        };
        let value = mapped(o.value_map.as_ref(), &raw);
        RUN_OUTCOMES
            .iter()
            .find(|x| **x == value)
            .copied()
            .ok_or_else(|| {
                let at = row.map(|r| format!(" (row {})", r + 1)).unwrap_or_default();
                fault(
                    path,
                    format!(
                        "Outcome `{raw}`{at} is not one of {}; map other values with `valueMap`",
                        RUN_OUTCOMES.join(", ")
                    ),
                )
            })
    }

    fn phases(&self, table: &Table, run_start: Ts, run_end: Ts) -> Result<Vec<NewPhase>, ApiError> {
        let mut phases = PhaseBuilder::default();
        // The phase of each row, from the phases mapping.
        let mut row_phase: Vec<Option<String>> = vec![None; table.rows.len()];
        if let Some(p) = &self.phases {
            let name_col = table.column("mapping.phases.nameColumn", &p.name_column)?;
            let outcome_col = p
                .outcome_column
                .as_ref()
                .map(|c| table.column("mapping.phases.outcomeColumn", c))
                .transpose()?;
            let started_col = p
                .started_column
                .as_ref()
                .map(|c| table.column("mapping.phases.startedColumn", c))
                .transpose()?;
            let ended_col = p
                .ended_column
                .as_ref()
                .map(|c| table.column("mapping.phases.endedColumn", c))
                .transpose()?;
            for (row, slot) in row_phase.iter_mut().enumerate() {
                let name = table.cell(row, name_col);
                if name.is_empty() {
                    continue;
                }
                *slot = Some(name.to_string());
                let ph = phases.get(name);
                if let Some(col) = outcome_col {
                    let raw = table.cell(row, col);
                    if !raw.is_empty() {
                        let v = mapped(p.value_map.as_ref(), raw);
                        let Some(o) = PHASE_OUTCOMES.iter().find(|x| **x == v) else {
                            return Err(fault(
                                "mapping.phases.outcomeColumn",
                                format!(
                                    "Column `{}`, row {}: `{raw}` is not one of {}; map other values with `valueMap`",
                                    table.columns[col],
                                    row + 1,
                                    PHASE_OUTCOMES.join(", ")
                                ),
                            ));
                        };
                        ph.outcome = Some(worse(ph.outcome, o));
                    }
                }
                for (col, is_start, path) in [
                    (started_col, true, "mapping.phases.startedColumn"),
                    (ended_col, false, "mapping.phases.endedColumn"),
                ] {
                    let Some(col) = col else { continue };
                    let raw = table.cell(row, col);
                    if raw.is_empty() {
                        continue;
                    }
                    let what = format!("Column `{}`, row {}", table.columns[col], row + 1);
                    let t = timestamp(path, &what, raw)?;
                    if is_start {
                        ph.started_at = Some(ph.started_at.map_or(t, |s| s.min(t)));
                    } else {
                        ph.ended_at = Some(ph.ended_at.map_or(t, |e| e.max(t)));
                    }
                }
            }
        }
        if let Some(m) = &self.measurements {
            self.measurements(m, table, &row_phase, &mut phases)?;
        }
        Ok(phases.finish(run_start, run_end))
    }

    fn measurements(
        &self,
        m: &ImportTabularMeasurements,
        table: &Table,
        row_phase: &[Option<String>],
        phases: &mut PhaseBuilder,
    ) -> Result<(), ApiError> {
        let path = "mapping.measurements";
        let layout = match m.layout.as_deref() {
            Some(l) => l.to_ascii_lowercase(),
            None if m.columns.is_some() => "wide".into(),
            None if m.name_column.is_some() => "long".into(),
            None => "none".into(),
        };
        match layout.as_str() {
            "none" => Ok(()),
            "wide" => {
                let columns = m.columns.as_deref().unwrap_or_default();
                let resolved = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| table.column(&format!("{path}.columns.{i}.column"), &c.column))
                    .collect::<Result<Vec<_>, _>>()?;
                for (row, row_phase) in row_phase.iter().enumerate() {
                    for (c, &col) in columns.iter().zip(&resolved) {
                        let raw = table.cell(row, col);
                        if raw.is_empty() {
                            continue;
                        }
                        let name = c.name.clone().unwrap_or_else(|| table.columns[col].clone());
                        let phase = c.phase.clone().or_else(|| row_phase.clone());
                        let meas = measurement(
                            name,
                            Some(cell_value(raw)),
                            c.units.clone(),
                            c.lower_limit.clone(),
                            c.upper_limit.clone(),
                            None,
                        );
                        phases.push(phase, meas);
                    }
                }
                Ok(())
            }
            "long" => {
                let col = |key: &str, name: &Option<String>| -> Result<Option<usize>, ApiError> {
                    name.as_ref()
                        .map(|n| table.column(&format!("{path}.{key}"), n))
                        .transpose()
                };
                let missing = |key: &str| {
                    fault(
                        &format!("{path}.{key}"),
                        format!("The long layout needs `{key}`"),
                    )
                };
                let name_col =
                    col("nameColumn", &m.name_column)?.ok_or_else(|| missing("nameColumn"))?;
                let value_col =
                    col("valueColumn", &m.value_column)?.ok_or_else(|| missing("valueColumn"))?;
                let units_col = col("unitsColumn", &m.units_column)?;
                let lower_col = col("lowerColumn", &m.lower_column)?;
                let upper_col = col("upperColumn", &m.upper_column)?;
                let outcome_col = col("outcomeColumn", &m.outcome_column)?;
                let phase_col = col("phaseColumn", &m.phase_column)?;
                for (row, row_phase) in row_phase.iter().enumerate() {
                    let name = table.cell(row, name_col);
                    if name.is_empty() {
                        continue;
                    }
                    let raw = table.cell(row, value_col);
                    let value = (!raw.is_empty()).then(|| cell_value(raw));
                    let units = units_col
                        .map(|c| table.cell(row, c).to_string())
                        .filter(|u| !u.is_empty());
                    let lower = match lower_col {
                        Some(c) => number_cell(table, &format!("{path}.lowerColumn"), row, c)?,
                        None => None,
                    };
                    let upper = match upper_col {
                        Some(c) => number_cell(table, &format!("{path}.upperColumn"), row, c)?,
                        None => None,
                    };
                    let outcome = match outcome_col {
                        Some(c) if !table.cell(row, c).is_empty() => {
                            let raw = table.cell(row, c);
                            let v = raw.to_ascii_uppercase();
                            match MEASUREMENT_OUTCOMES.iter().find(|x| **x == v) {
                                Some(o) => Some(*o),
                                None => {
                                    return Err(fault(
                                        &format!("{path}.outcomeColumn"),
                                        format!(
                                            "Column `{}`, row {}: `{raw}` is not one of {}",
                                            table.columns[c],
                                            row + 1,
                                            MEASUREMENT_OUTCOMES.join(", ")
                                        ),
                                    ))
                                }
                            }
                        }
                        _ => None,
                    };
                    let phase = phase_col
                        .map(|c| table.cell(row, c).to_string())
                        .filter(|p| !p.is_empty())
                        .or_else(|| row_phase.clone());
                    phases.push(
                        phase,
                        measurement(name.to_string(), value, units, lower, upper, outcome),
                    );
                }
                Ok(())
            }
            other => Err(fault(
                &format!("{path}.layout"),
                format!("Unknown layout `{other}`: use none, wide or long"),
            )),
        }
    }
}

/// A measurement with its limits as validators and its outcome (see the module doc).
fn measurement(
    name: String,
    value: Option<Value>,
    units: Option<String>,
    lower: Option<Number>,
    upper: Option<Number>,
    outcome: Option<&'static str>,
) -> NewMeasurement {
    let has_limits = lower.is_some() || upper.is_some();
    let numeric = value.as_ref().and_then(Value::as_f64);
    let outcome = outcome.unwrap_or(match (&value, has_limits, numeric) {
        (None, _, _) => "UNSET",
        (Some(_), false, _) => "PASS",
        (Some(_), true, None) => "UNSET",
        (Some(_), true, Some(v)) => {
            let ok_low = lower
                .as_ref()
                .and_then(Number::as_f64)
                .is_none_or(|l| v >= l);
            let ok_high = upper
                .as_ref()
                .and_then(Number::as_f64)
                .is_none_or(|u| v <= u);
            if ok_low && ok_high {
                "PASS"
            } else {
                "FAIL"
            }
        }
    });
    let validators = limit_validators(lower, upper, value.as_ref(), outcome);
    NewMeasurement {
        name,
        outcome: outcome.to_string(),
        measured_value: value,
        units,
        docstring: None,
        validators: (!validators.is_empty()).then_some(validators),
        aggregations: None,
        data_series: None,
    }
}

/// The more severe of two phase outcomes: `ERROR` > `FAIL` > `PASS` > `SKIP`.
fn worse(current: Option<&'static str>, new: &'static str) -> &'static str {
    let rank = |o: &str| match o {
        "ERROR" => 3,
        "FAIL" => 2,
        "PASS" => 1,
        _ => 0,
    };
    match current {
        Some(c) if rank(c) >= rank(new) => c,
        _ => new,
    }
}

#[derive(Default)]
struct PhaseDraft {
    name: String,
    outcome: Option<&'static str>,
    started_at: Option<Ts>,
    ended_at: Option<Ts>,
    measurements: Vec<NewMeasurement>,
}

/// Phases in order of first appearance.
#[derive(Default)]
struct PhaseBuilder {
    drafts: Vec<PhaseDraft>,
}

impl PhaseBuilder {
    fn get(&mut self, name: &str) -> &mut PhaseDraft {
        let i = match self.drafts.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => {
                self.drafts.push(PhaseDraft {
                    name: name.to_string(),
                    ..PhaseDraft::default()
                });
                self.drafts.len() - 1
            }
        };
        &mut self.drafts[i]
    }

    fn push(&mut self, phase: Option<String>, m: NewMeasurement) {
        let name = phase.unwrap_or_else(|| DEFAULT_PHASE.to_string());
        self.get(&name).measurements.push(m);
    }

    fn finish(self, run_start: Ts, run_end: Ts) -> Vec<NewPhase> {
        self.drafts
            .into_iter()
            .map(|d| {
                let failed = d.measurements.iter().any(|m| m.outcome == "FAIL");
                let started_at = d.started_at.unwrap_or(run_start);
                NewPhase {
                    outcome: d
                        .outcome
                        .unwrap_or(if failed { "FAIL" } else { "PASS" })
                        .to_string(),
                    started_at,
                    ended_at: d.ended_at.unwrap_or(run_end).max(started_at),
                    name: d.name,
                    retry_count: 0,
                    docstring: None,
                    sequence_path: None,
                    measurements: d.measurements,
                }
            })
            .collect()
    }
}

/// Run or unit metadata from `{key, column | value}` entries.
fn metadata(
    path: &str,
    entries: Option<&[ImportTabularMetadata]>,
    table: &Table,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(entries) = entries.filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if entries.len() > MAX_METADATA_KEYS {
        return Err(fault(
            path,
            format!(
                "Metadata may have at most {MAX_METADATA_KEYS} keys, got {}",
                entries.len()
            ),
        ));
    }
    let mut out = Map::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("{path}.{i}");
        if e.key.trim().is_empty() {
            return Err(fault(&format!("{at}.key"), "Metadata key cannot be empty"));
        }
        let value = match (&e.column, &e.value) {
            (Some(c), None) => {
                let col = table.column(&format!("{at}.column"), c)?;
                match table.run_value(&format!("{at}.column"), col)? {
                    Some((_, v)) => cell_value(&v),
                    None => continue,
                }
            }
            (None, Some(v)) => Value::String(v.clone()),
            _ => return Err(fault(&at, "Give either `column` or `value`")),
        };
        out.insert(e.key.trim().to_string(), value);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(v: Value) -> ImportTabularMapping {
        serde_json::from_value(v).unwrap()
    }

    fn base_fields() -> Value {
        json!({
            "serial_number": {"column": "serial"},
            "outcome": {"column": "result", "valueMap": {"ok": "PASS", "nok": "FAIL"}},
            "started_at": {"column": "start"},
            "ended_at": {"value": "2026-01-02T03:10:00Z"},
            "part_number": {"value": "PN-1"},
        })
    }

    const WIDE: &str = "serial,result,start,v1,temp,step\n\
        SN-1,ok,2026-01-02T03:04:05Z,3.3,25,power\n\
        SN-1,,,3.4,,thermal\n";

    #[test]
    fn wide_layout_with_phases() {
        let t = Table::parse(WIDE.as_bytes()).unwrap();
        let m = mapping(json!({
            "fields": base_fields(),
            "measurements": {"layout": "wide", "columns": [
                {"column": "v1", "name": "voltage", "units": "V", "lowerLimit": 3.0, "upperLimit": 3.35},
                {"column": "TEMP"}
            ]},
            "phases": {"nameColumn": "step"},
            "metadata": [{"key": "fixture", "value": "F1"}, {"key": "start", "column": "start"}]
        }));
        let run = m.to_new_run(&t, Id::NIL).unwrap();
        assert_eq!(run.serial_number, "SN-1");
        assert_eq!(run.outcome, "PASS");
        assert_eq!(run.part_number.as_deref(), Some("PN-1"));
        assert_eq!(run.phases.len(), 2);
        let power = &run.phases[0];
        assert_eq!(power.name, "power");
        assert_eq!(power.measurements.len(), 2);
        assert_eq!(power.measurements[0].name, "voltage");
        assert_eq!(power.measurements[0].outcome, "PASS");
        assert_eq!(power.measurements[0].validators.as_ref().unwrap().len(), 2);
        assert_eq!(power.measurements[1].name, "temp");
        assert_eq!(power.measurements[1].measured_value, Some(json!(25)));
        let thermal = &run.phases[1];
        assert_eq!(thermal.outcome, "FAIL", "3.4 is above the upper limit");
        assert_eq!(thermal.measurements.len(), 1);
        let md = run.metadata.unwrap();
        assert_eq!(md["fixture"], json!("F1"));
        assert_eq!(md["start"], json!("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn long_layout() {
        let csv = "serial;result;start;name;value;unit;low;high;outcome\n\
            SN-2;FAIL;2026-01-02 03:04:05;voltage;3.3;V;3;3.6;\n\
            SN-2;FAIL;2026-01-02 03:04:05;label;ABC;;;;pass\n\
            SN-2;FAIL;2026-01-02 03:04:05;;;;;;\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let m = mapping(json!({
            "fields": base_fields(),
            "measurements": {"layout": "long", "nameColumn": "name", "valueColumn": "value",
                "unitsColumn": "unit", "lowerColumn": "low", "upperColumn": "high",
                "outcomeColumn": "outcome"}
        }));
        let run = m.to_new_run(&t, Id::NIL).unwrap();
        assert_eq!(run.outcome, "FAIL");
        assert_eq!(run.phases.len(), 1);
        assert_eq!(run.phases[0].name, DEFAULT_PHASE);
        let ms = &run.phases[0].measurements;
        assert_eq!(ms.len(), 2);
        assert_eq!(
            (ms[0].outcome.as_str(), ms[0].units.as_deref()),
            ("PASS", Some("V"))
        );
        assert_eq!(ms[1].measured_value, Some(json!("ABC")));
        assert_eq!(ms[1].outcome, "PASS");
        assert_eq!(run.started_at.to_string(), "2026-01-02T03:04:05.000000Z");
    }

    #[test]
    fn none_layout_makes_no_measurements() {
        let t = Table::parse(WIDE.as_bytes()).unwrap();
        let m = mapping(json!({"fields": base_fields(), "measurements": {"layout": "none"}}));
        let run = m.to_new_run(&t, Id::NIL).unwrap();
        assert!(run.phases.is_empty());
    }

    #[test]
    fn errors_name_column_and_row() {
        let t = Table::parse(WIDE.as_bytes()).unwrap();
        let mut fields = base_fields();
        fields["serial_number"] = json!({"column": "sn"});
        let e = mapping(json!({"fields": fields, "measurements": {"layout": "none"}}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(e.issues[0].message.contains("`sn`"), "{:?}", e.issues);
        assert!(
            e.issues[0].message.contains("serial, result"),
            "{:?}",
            e.issues
        );

        let csv = "serial,result,start\nSN-1,maybe,2026-01-02T03:04:05Z\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields()}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(e.issues[0].message.contains("maybe"), "{:?}", e.issues);
        assert!(e.issues[0].message.contains("row 1"), "{:?}", e.issues);

        let csv = "serial,result,start,low\nSN-1,ok,yesterday,1\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields()}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(e.issues[0].message.contains("yesterday"), "{:?}", e.issues);

        let csv = "serial,result,start,name,value,low\nSN-1,ok,2026-01-02T03:04:05Z,v,1,abc\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields(), "measurements": {
            "layout": "long", "nameColumn": "name", "valueColumn": "value", "lowerColumn": "low"}}))
        .to_new_run(&t, Id::NIL)
        .unwrap_err();
        assert!(
            e.issues[0].message.contains("Column `low`, row 1"),
            "{:?}",
            e.issues
        );

        let csv = "serial,result,start\nSN-1,ok,2026-01-02T03:04:05Z\nSN-2,ok,\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields()}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(
            e.issues[0].message.contains("row 1") && e.issues[0].message.contains("row 2"),
            "{:?}",
            e.issues
        );
    }

    #[test]
    fn file_errors() {
        assert!(Table::parse(b"a,b\n").is_err(), "no data rows");
        assert!(Table::parse(b"\xff\xfe").is_err(), "not UTF-8");
        let t = Table::parse(b"\xEF\xBB\xBFa\tb\n1\t2\n").unwrap();
        assert_eq!(t.columns, ["a", "b"]);
    }

    #[test]
    fn cell_values() {
        assert_eq!(cell_value("3"), json!(3));
        assert_eq!(cell_value("-3.5e2"), json!(-350.0));
        assert_eq!(cell_value("TRUE"), json!(true));
        assert_eq!(cell_value("nan"), json!("nan"));
        assert_eq!(cell_value("inf"), json!("inf"));
        assert_eq!(cell_value("1.2.3"), json!("1.2.3"));
    }
}
