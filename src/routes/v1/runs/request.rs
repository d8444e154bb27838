//! The body of `POST /api/v1/runs` and its mapping into a `NewRun` (see the module doc
//! of `runs`).

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

use crate::db::runs::model::limit_validators;
use crate::db::runs::{NewLog, NewMeasurement, NewPhase, NewRun};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult};
use crate::import::{openhtf::millis, validators};
use crate::routes::runs::enums::{LogLevel, MeasurementOutcome, PhaseOutcome};
use crate::rules;
use crate::values::{parse_iso_duration, parse_query_ts, trimmed, trimmed_required, Faults};

/// `unit_under_test` of a legacy run.
#[derive(Debug, Deserialize)]
pub struct UnitUnderTest {
    #[serde(deserialize_with = "trimmed_required")]
    pub serial_number: String,
    #[serde(default, deserialize_with = "trimmed")]
    pub part_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    pub part_name: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    pub revision: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    pub batch_number: Option<String>,
}

/// Body of `POST /api/v1/runs` (`client` and `client_version` are accepted and unused).
#[derive(Debug, Deserialize, validator::Validate)]
pub struct CreateRunRequest {
    pub unit_under_test: UnitUnderTest,
    pub run_passed: bool,
    #[serde(default)]
    pub procedure_id: Option<String>,
    #[serde(default)]
    pub procedure_name: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    pub procedure_version: Option<String>,
    #[serde(default, deserialize_with = "lenient_ts")]
    pub started_at: Option<Ts>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub phases: Option<Vec<LegacyPhase>>,
    #[serde(default)]
    pub steps: Option<Vec<LegacyStep>>,
    #[serde(default)]
    pub logs: Option<Vec<LegacyLog>>,
    #[serde(default)]
    pub sub_units: Option<Vec<LegacySubUnit>>,
}

#[derive(Debug, Deserialize)]
pub struct LegacyPhase {
    pub name: String,
    pub outcome: PhaseOutcome,
    pub start_time_millis: Value,
    pub end_time_millis: Value,
    #[serde(default)]
    pub docstring: Option<String>,
    #[serde(default)]
    pub measurements: Option<Vec<LegacyMeasurement>>,
}

#[derive(Debug, Deserialize)]
pub struct LegacyMeasurement {
    pub name: String,
    pub outcome: MeasurementOutcome,
    #[serde(default)]
    pub measured_value: Option<Value>,
    #[serde(default)]
    pub units: Option<Value>,
    #[serde(default)]
    pub lower_limit: Option<Number>,
    #[serde(default)]
    pub upper_limit: Option<Number>,
    #[serde(default)]
    pub validators: Option<Vec<String>>,
    #[serde(default)]
    pub docstring: Option<String>,
}

/// A deprecated step: a phase with at most one measurement.
#[derive(Debug, Deserialize)]
pub struct LegacyStep {
    pub name: String,
    #[serde(deserialize_with = "required_ts")]
    pub started_at: Ts,
    pub duration: String,
    pub step_passed: bool,
    #[serde(default)]
    pub measurement_unit: Option<String>,
    #[serde(default)]
    pub measurement_value: Option<Value>,
    #[serde(default)]
    pub limit_low: Option<Number>,
    #[serde(default)]
    pub limit_high: Option<Number>,
}

#[derive(Debug, Deserialize)]
pub struct LegacyLog {
    pub level: LogLevel,
    #[serde(deserialize_with = "required_ts")]
    pub timestamp: Ts,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub source_file: String,
    /// An integer, or a float such as `1.0` from Python.
    #[serde(default)]
    pub line_number: Option<Number>,
}

#[derive(Debug, Deserialize)]
pub struct LegacySubUnit {
    #[serde(deserialize_with = "trimmed_required")]
    pub serial_number: String,
}

/// An RFC 3339 timestamp, or one without offset (taken as UTC).
fn lenient_ts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_query_ts("timestamp", &s)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("invalid datetime `{s}`"))),
    }
}

fn required_ts<'de, D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
    lenient_ts(d)?.ok_or_else(|| serde::de::Error::custom("a datetime is required"))
}

/// `units` as a string, or a list of strings (one per column) joined with `, `.
fn units_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

fn millis_ts(field: &str, v: &Value) -> ApiResult<Ts> {
    millis(Some(v))
        .and_then(|ms| Ts::from_micros(ms.checked_mul(1000)?))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} must be a time in milliseconds since the Unix epoch"),
            )
        })
}

fn duration_us(field: &str, s: &str) -> ApiResult<i64> {
    parse_iso_duration(s).filter(|us| *us >= 0).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("{field} must be an ISO 8601 duration such as PT1M30S, got `{s}`"),
        )
    })
}

fn plus(t: Ts, us: i64) -> Ts {
    Ts::from_micros(t.micros().saturating_add(us)).unwrap_or(t)
}

impl LegacyMeasurement {
    fn into_new(self) -> NewMeasurement {
        let outcome = self.outcome.as_str();
        let mut vs = limit_validators(
            self.lower_limit,
            self.upper_limit,
            self.measured_value.as_ref(),
            outcome,
        );
        vs.extend(validators::from_strings(
            self.validators.as_deref().unwrap_or_default(),
            outcome,
        ));
        NewMeasurement {
            name: self.name,
            outcome: outcome.to_string(),
            units: units_text(self.units.as_ref()),
            measured_value: self.measured_value.filter(|v| !v.is_null()),
            docstring: self.docstring,
            validators: (!vs.is_empty()).then_some(vs),
            aggregations: None,
            data_series: None,
        }
    }
}

impl LegacyStep {
    fn into_phase(self, i: usize) -> ApiResult<NewPhase> {
        let us = duration_us(&format!("steps.{i}.duration"), &self.duration)?;
        let outcome = if self.step_passed { "PASS" } else { "FAIL" };
        let measurements = match self.measurement_value.filter(|v| !v.is_null()) {
            None => Vec::new(),
            Some(value) => vec![NewMeasurement {
                name: self.name.clone(),
                outcome: outcome.to_string(),
                validators: Some(limit_validators(
                    self.limit_low,
                    self.limit_high,
                    Some(&value),
                    outcome,
                ))
                .filter(|v| !v.is_empty()),
                measured_value: Some(value),
                units: self.measurement_unit,
                docstring: None,
                aggregations: None,
                data_series: None,
            }],
        };
        Ok(NewPhase {
            name: self.name,
            outcome: outcome.to_string(),
            started_at: self.started_at,
            ended_at: plus(self.started_at, us),
            retry_count: 0,
            docstring: None,
            sequence_path: None,
            measurements,
        })
    }
}

impl CreateRunRequest {
    /// Checks the names the run uses (same rules as v2).
    pub(super) fn check(&self) -> ApiResult<()> {
        let u = &self.unit_under_test;
        let mut faults = Faults::new();
        faults.check(
            "unit_under_test.serial_number",
            rules::serial(&u.serial_number),
        );
        if let Some(p) = &u.part_number {
            faults.check("unit_under_test.part_number", rules::part(p));
        }
        if let Some(r) = &u.revision {
            faults.check("unit_under_test.revision", rules::revision(r));
        }
        if let Some(b) = &u.batch_number {
            faults.check("unit_under_test.batch_number", rules::batch(b));
        }
        if let Some(v) = &self.procedure_version {
            faults.check("procedure_version", rules::version(v));
        }
        for (i, s) in self.sub_units.iter().flatten().enumerate() {
            faults.check(
                &format!("sub_units.{i}.serial_number"),
                rules::serial(&s.serial_number),
            );
        }
        faults.into_result()
    }

    /// The run of BEHAVIOR.md §11.1, for procedure `procedure_id`.
    pub(super) fn into_new_run(self, procedure_id: Id) -> ApiResult<NewRun> {
        let mut phases = Vec::new();
        for (i, p) in self.phases.into_iter().flatten().enumerate() {
            let started_at = millis_ts(
                &format!("phases.{i}.start_time_millis"),
                &p.start_time_millis,
            )?;
            let ended_at = millis_ts(&format!("phases.{i}.end_time_millis"), &p.end_time_millis)?;
            phases.push(NewPhase {
                name: p.name,
                outcome: p.outcome.as_str().to_string(),
                started_at,
                ended_at: ended_at.max(started_at),
                retry_count: 0,
                docstring: p.docstring,
                sequence_path: None,
                measurements: p
                    .measurements
                    .into_iter()
                    .flatten()
                    .map(LegacyMeasurement::into_new)
                    .collect(),
            });
        }
        for (i, s) in self.steps.into_iter().flatten().enumerate() {
            phases.push(s.into_phase(i)?);
        }
        let now = Ts::now();
        let started_at = self
            .started_at
            .or_else(|| phases.iter().map(|p| p.started_at).min())
            .unwrap_or(now);
        let ended_at = match &self.duration {
            Some(d) => plus(started_at, duration_us("duration", d)?),
            None => phases
                .iter()
                .map(|p| p.ended_at)
                .max()
                .unwrap_or(started_at),
        }
        .max(started_at);
        let logs = self
            .logs
            .into_iter()
            .flatten()
            .map(|l| {
                let line = l
                    .line_number
                    .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
                    .unwrap_or(0);
                NewLog::new(
                    l.level.as_str(),
                    l.timestamp,
                    &l.message,
                    &l.source_file,
                    line,
                )
            })
            .collect();
        let outcome = if self.run_passed { "PASS" } else { "FAIL" };
        let u = self.unit_under_test;
        let mut run = NewRun::new(procedure_id, u.serial_number, outcome, started_at, ended_at);
        run.part_number = u.part_number;
        run.revision_number = u.revision;
        run.batch_number = u.batch_number;
        run.procedure_version = self.procedure_version;
        run.sub_units = self
            .sub_units
            .into_iter()
            .flatten()
            .map(|s| s.serial_number)
            .collect();
        run.phases = phases;
        run.logs = logs;
        Ok(run)
    }
}
