//! Building the run from a table and a mapping (see the module doc of `tabular`).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::{
    fault, ImportTabularMapping, ImportTabularMeasurements, ImportTabularMetadata,
    ImportTabularSource, Table, DEFAULT_PHASE,
};
use crate::db::runs::model::limit_validators;
use crate::db::runs::{NewMeasurement, NewPhase, NewRun};
use crate::db::{Id, Ts};
use crate::error::ApiError;
use crate::metadata::{self, MAX_KEYS};
use crate::rules;
use crate::values::parse_query_ts;

use super::table::{cell_value, number_cell};

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
        run.metadata = metadata_entries("mapping.metadata", self.metadata.as_deref(), table)?;
        run.unit_metadata =
            metadata_entries("mapping.unitMetadata", self.unit_metadata.as_deref(), table)?;
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
fn metadata_entries(
    path: &str,
    entries: Option<&[ImportTabularMetadata]>,
    table: &Table,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(entries) = entries.filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if entries.len() > MAX_KEYS {
        return Err(fault(
            path,
            format!(
                "Metadata may have at most {MAX_KEYS} keys, got {}",
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
    metadata::check(&out).map_err(|m| fault(path, m))?;
    Ok(Some(out))
}
