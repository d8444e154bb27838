//! The body of `POST /v2/runs` (`RunCreateRequest`), its validation (BEHAVIOR.md §1.1,
//! §1.2, §1.7) and its mapping into the backend-neutral `NewRun`.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};
use validator::{Validate, ValidateEmail, ValidationError};

use super::enums::{
    LogLevel, MeasurementOutcome, PhaseOutcome, RunOutcome, SequenceOutcome, VariableSource,
};
use crate::db::runs::model::{limit_validators, MAX_METADATA_KEYS};
use crate::db::runs::{
    ConfigEntry, NewAggregation, NewDataSeries, NewLog, NewMeasurement, NewPhase, NewRun,
    NewValidator, SecretEntry, SequenceEntry,
};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult, Issue, PathSegment};
use crate::values::{text_rule, trimmed, trimmed_required};

#[derive(Debug, Deserialize, Validate)]
pub struct RunCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "serial_rule"))]
    pub serial_number: String,
    #[validate(custom(function = "uuid_rule"))]
    pub procedure_id: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub outcome: RunOutcome,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "part_rule"))]
    pub part_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "revision_rule"))]
    pub revision_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "batch_rule"))]
    pub batch_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "version_rule"))]
    pub procedure_version: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "email_rule"))]
    pub operated_by: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "sub_units_rule"))]
    pub sub_units: Option<Vec<String>>,
    #[serde(default)]
    pub docstring: Option<String>,
    #[serde(default)]
    #[validate(nested)]
    pub phases: Option<Vec<RunCreatePhase>>,
    #[serde(default)]
    #[validate(nested)]
    pub logs: Option<Vec<RunCreateLog>>,
    #[serde(default)]
    #[validate(custom(function = "metadata_rule"))]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    #[validate(custom(function = "metadata_rule"))]
    pub unit_metadata: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(length(max = 255, message = "client_run_ref must be at most 255 characters"))]
    pub client_run_ref: Option<String>,
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub slot_key: Option<String>,
    #[serde(default)]
    pub slot_name: Option<String>,
    #[serde(default)]
    pub deployment_id: Option<String>,
    #[serde(default)]
    #[validate(nested)]
    pub sequences: Option<Vec<RunCreateSequence>>,
    #[serde(default)]
    #[validate(nested)]
    pub config: Option<Vec<RunCreateConfig>>,
    #[serde(default)]
    #[validate(nested)]
    pub secrets: Option<Vec<RunCreateSecret>>,
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunCreatePhase {
    pub name: String,
    pub outcome: PhaseOutcome,
    pub started_at: Ts,
    pub ended_at: Ts,
    #[serde(default, deserialize_with = "opt_whole_number")]
    #[validate(range(min = 0, message = "retry_count must be a non-negative integer"))]
    pub retry_count: Option<i64>,
    #[serde(default)]
    pub docstring: Option<String>,
    #[serde(default)]
    pub sequence_path: Option<String>,
    #[serde(default)]
    pub measurements: Option<Vec<RunCreateMeasurement>>,
}

#[derive(Debug, Deserialize)]
pub struct RunCreateMeasurement {
    pub name: String,
    pub outcome: MeasurementOutcome,
    #[serde(default)]
    pub measured_value: Option<Value>,
    #[serde(default)]
    pub units: Option<Units>,
    #[serde(default)]
    pub lower_limit: Option<Number>,
    #[serde(default)]
    pub upper_limit: Option<Number>,
    #[serde(default)]
    pub validators: Option<Vec<RunCreateValidator>>,
    #[serde(default)]
    pub aggregations: Option<Vec<RunCreateAggregation>>,
    #[serde(default)]
    pub x_axis: Option<RunCreateAxis>,
    #[serde(default)]
    pub y_axis: Option<Vec<RunCreateAxis>>,
    #[serde(default)]
    pub docstring: Option<String>,
}

/// Units of a measurement: one string, or (older multi-dimensional form) one per
/// column, joined with `, `.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Units {
    One(String),
    Many(Vec<String>),
}

impl Units {
    fn joined(self) -> String {
        match self {
            Units::One(s) => s,
            Units::Many(v) => v.join(", "),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RunCreateValidator {
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub expected_value: Option<Value>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub outcome: Option<MeasurementOutcome>,
    #[serde(default)]
    pub is_decisive: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct RunCreateAggregation {
    pub r#type: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub outcome: Option<MeasurementOutcome>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub validators: Option<Vec<RunCreateValidator>>,
}

/// `x_axis` / `y_axis[]` of a multi-dimensional measurement.
#[derive(Debug, Deserialize)]
pub struct RunCreateAxis {
    #[serde(default)]
    pub data: Vec<Number>,
    #[serde(default)]
    pub units: Option<Units>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub validators: Option<Vec<RunCreateValidator>>,
    #[serde(default)]
    pub aggregations: Option<Vec<RunCreateAggregation>>,
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunCreateLog {
    pub level: LogLevel,
    pub timestamp: Ts,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub source_file: Option<String>,
    /// An integer, or a float with a zero fraction as the Python client sends (`1.0`).
    #[serde(default, deserialize_with = "opt_whole_number")]
    pub line_number: Option<i64>,
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunCreateSequence {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(length(min = 1, message = "Sequence path cannot be empty"))]
    pub path: String,
    pub name: String,
    pub outcome: SequenceOutcome,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub started_at: Option<Ts>,
    #[serde(default)]
    pub ended_at: Option<Ts>,
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunCreateConfig {
    pub key: String,
    #[validate(custom(function = "scalar_rule"))]
    pub value: Value,
    #[serde(default)]
    pub variable_id: Option<String>,
    #[serde(default, deserialize_with = "opt_whole_number")]
    pub version: Option<i64>,
    #[serde(default)]
    pub source: Option<VariableSource>,
}

#[derive(Debug, Deserialize, Validate)]
pub struct RunCreateSecret {
    pub key: String,
    #[serde(default)]
    pub variable_id: Option<String>,
    #[serde(default, deserialize_with = "opt_whole_number")]
    pub version: Option<i64>,
    #[serde(default)]
    pub source: Option<VariableSource>,
    /// Present (even `null`) when the caller sent a `value` key: refused.
    #[serde(default, deserialize_with = "present")]
    #[validate(custom(function = "no_secret_value"))]
    pub value: Option<Value>,
}

fn rule(message: String) -> ValidationError {
    ValidationError::new("invalid").with_message(message.into())
}

fn serial_rule(s: &str) -> Result<(), ValidationError> {
    text_rule("Serial number", s, 1, 60)
}

fn part_rule(s: &str) -> Result<(), ValidationError> {
    text_rule("Part number", s, 1, 60)
}

fn revision_rule(s: &str) -> Result<(), ValidationError> {
    text_rule("Revision number", s, 1, 60)
}

fn version_rule(s: &str) -> Result<(), ValidationError> {
    text_rule("Procedure version", s, 1, 60)
}

/// Batch numbers: 1..100 characters from `A-Z a-z 0-9 _ -`.
pub fn batch_rule(s: &str) -> Result<(), ValidationError> {
    text_rule("Batch number", s, 1, 100)?;
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(rule(format!(
            "Batch number may only contain letters, digits, `_` and `-` (found `{c}`)"
        )));
    }
    Ok(())
}

fn uuid_rule(s: &str) -> Result<(), ValidationError> {
    match Id::parse(s.trim()) {
        Some(_) => Ok(()),
        None => Err(rule("Invalid uuid".into())),
    }
}

fn email_rule(s: &str) -> Result<(), ValidationError> {
    if s.validate_email() {
        Ok(())
    } else {
        Err(rule(format!(
            "Invalid email: operated_by must be the email address of a member of the organization, got `{s}`"
        )))
    }
}

fn sub_units_rule(serials: &[String]) -> Result<(), ValidationError> {
    if serials.iter().any(|s| s.trim().is_empty()) {
        return Err(rule("Sub-unit serial number cannot be empty".into()));
    }
    if let Some(s) = serials.iter().find(|s| s.trim().chars().count() > 60) {
        return Err(rule(format!(
            "Sub-unit serial number must be at most 60 characters (`{}…`)",
            s.chars().take(20).collect::<String>()
        )));
    }
    Ok(())
}

/// Metadata: at most 50 keys, each value a string, number or boolean.
pub fn metadata_rule(m: &Map<String, Value>) -> Result<(), ValidationError> {
    if m.len() > MAX_METADATA_KEYS {
        return Err(rule(format!(
            "Metadata may have at most {MAX_METADATA_KEYS} keys, got {}",
            m.len()
        )));
    }
    if let Some((k, _)) = m
        .iter()
        .find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
    {
        return Err(rule(format!(
            "Metadata value of `{k}` must be a string, number or boolean"
        )));
    }
    Ok(())
}

fn scalar_rule(v: &Value) -> Result<(), ValidationError> {
    if v.is_string() || v.is_number() || v.is_boolean() {
        Ok(())
    } else {
        Err(rule(
            "Config value must be a string, number or boolean".into(),
        ))
    }
}

fn no_secret_value(_: &Value) -> Result<(), ValidationError> {
    Err(rule(
        "Secrets must not carry a value: send only their key, variable_id and version".into(),
    ))
}

/// `Some(value)` whenever the key is present, `Some(Null)` for an explicit `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Some(Value::deserialize(d)?))
}

/// An optional integer sent as `3` or `3.0`; a fractional part is dropped.
fn opt_whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<Number>::deserialize(d)?;
    match n {
        None => Ok(None),
        Some(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() && f.abs() < 9.0e18 => Ok(Some(f.trunc() as i64)),
            _ => Err(serde::de::Error::custom("expected an integer")),
        },
    }
}

fn issue(message: impl Into<String>, path: Vec<PathSegment>) -> Issue {
    Issue {
        message: message.into(),
        path,
    }
}

fn key(k: &str) -> PathSegment {
    PathSegment::Key(k.to_string())
}

impl RunCreateRequest {
    /// Cross-field rules, then the mapping into a `NewRun`.
    pub fn into_new_run(self) -> ApiResult<NewRun> {
        let mut issues = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        if !blank(&self.slot_key) && blank(&self.execution_id) {
            issues.push(issue(
                "slot_key requires execution_id",
                vec![key("slot_key")],
            ));
        }
        if !blank(&self.slot_name) && blank(&self.slot_key) {
            issues.push(issue("slot_name requires slot_key", vec![key("slot_name")]));
        }
        let sequences = self.sequences.unwrap_or_default();
        let paths: Vec<&str> = sequences.iter().map(|s| s.path.as_str()).collect();
        for (i, s) in sequences.iter().enumerate() {
            if paths[..i].contains(&s.path.as_str()) {
                issues.push(issue(
                    format!("Sequence path `{}` appears twice", s.path),
                    vec![key("sequences"), PathSegment::Index(i), key("path")],
                ));
            }
            if let Some((parent, _)) = s.path.rsplit_once('/') {
                if !paths.contains(&parent) {
                    issues.push(issue(
                        format!(
                            "Sequence `{}` needs its parent `{parent}` in sequences",
                            s.path
                        ),
                        vec![key("sequences"), PathSegment::Index(i), key("path")],
                    ));
                }
            }
        }
        let phases = self.phases.unwrap_or_default();
        for (i, p) in phases.iter().enumerate() {
            if let Some(sp) = p.sequence_path.as_deref() {
                if !paths.contains(&sp) {
                    issues.push(issue(
                        format!("sequence_path `{sp}` names no entry of sequences"),
                        vec![key("phases"), PathSegment::Index(i), key("sequence_path")],
                    ));
                }
            }
        }
        if !issues.is_empty() {
            return Err(ApiError::validation(issues));
        }

        let procedure_id = Id::parse(self.procedure_id.trim())
            .ok_or_else(|| ApiError::invalid("procedure_id", "Invalid uuid"))?;
        let mut run = NewRun::new(
            procedure_id,
            self.serial_number,
            self.outcome.as_str(),
            self.started_at,
            self.ended_at,
        );
        run.part_number = self.part_number;
        run.revision_number = self.revision_number;
        run.batch_number = self.batch_number;
        run.procedure_version = self.procedure_version;
        run.docstring = self.docstring;
        run.operated_by = self.operated_by;
        run.sub_units = self
            .sub_units
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_string())
            .collect();
        run.phases = phases.into_iter().map(new_phase).collect();
        run.logs = self
            .logs
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                NewLog::new(
                    l.level.as_str(),
                    l.timestamp,
                    l.message.as_deref().unwrap_or(""),
                    l.source_file.as_deref().unwrap_or(""),
                    l.line_number.unwrap_or(0),
                )
            })
            .collect();
        run.metadata = self.metadata;
        run.unit_metadata = self.unit_metadata;
        run.client_run_ref = self.client_run_ref.filter(|r| !r.is_empty());
        run.execution_id = self.execution_id;
        run.slot_key = self.slot_key;
        run.slot_name = self.slot_name;
        run.deployment_id = self.deployment_id;
        run.sequences = sequences
            .into_iter()
            .map(|s| {
                SequenceEntry::new(
                    &s.path,
                    s.name,
                    s.source,
                    s.outcome.as_str().to_string(),
                    s.started_at,
                    s.ended_at,
                )
            })
            .collect();
        run.config = self
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| ConfigEntry {
                key: c.key,
                value: c.value,
                variable_id: c.variable_id,
                version: c.version,
                source: c.source.map(|s| s.as_str().to_string()),
            })
            .collect();
        run.secrets = self
            .secrets
            .unwrap_or_default()
            .into_iter()
            .map(|s| SecretEntry {
                key: s.key,
                variable_id: s.variable_id,
                version: s.version,
                source: s.source.map(|s| s.as_str().to_string()),
            })
            .collect();
        Ok(run)
    }
}

fn new_phase(p: RunCreatePhase) -> NewPhase {
    NewPhase {
        name: p.name,
        outcome: p.outcome.as_str().to_string(),
        started_at: p.started_at,
        ended_at: p.ended_at,
        retry_count: p.retry_count.unwrap_or(0),
        docstring: p.docstring,
        sequence_path: p.sequence_path,
        measurements: p
            .measurements
            .unwrap_or_default()
            .into_iter()
            .map(new_measurement)
            .collect(),
    }
}

/// Legacy limits become validators after the explicit ones.
fn new_measurement(m: RunCreateMeasurement) -> NewMeasurement {
    let outcome = m.outcome.as_str();
    let mut validators = m.validators.map(new_validators);
    let limits = limit_validators(
        m.lower_limit,
        m.upper_limit,
        m.measured_value.as_ref(),
        outcome,
    );
    if !limits.is_empty() {
        validators.get_or_insert_with(Vec::new).extend(limits);
    }
    let mut series = Vec::new();
    series.extend(m.x_axis.map(new_series));
    series.extend(m.y_axis.unwrap_or_default().into_iter().map(new_series));
    NewMeasurement {
        name: m.name,
        outcome: outcome.to_string(),
        measured_value: m.measured_value,
        units: m.units.map(Units::joined),
        docstring: m.docstring,
        validators,
        aggregations: m.aggregations.map(new_aggregations),
        data_series: (!series.is_empty()).then_some(series),
    }
}

fn new_validators(vs: Vec<RunCreateValidator>) -> Vec<NewValidator> {
    vs.into_iter()
        .map(|v| NewValidator {
            operator: v.operator,
            expected_value: v.expected_value,
            expression: v.expression,
            outcome: v.outcome.map(|o| o.as_str().to_string()),
            is_decisive: v.is_decisive,
        })
        .collect()
}

fn new_aggregations(aggs: Vec<RunCreateAggregation>) -> Vec<NewAggregation> {
    aggs.into_iter()
        .map(|a| NewAggregation {
            kind: a.r#type,
            value: a.value,
            outcome: a.outcome.map(|o| o.as_str().to_string()),
            unit: a.unit,
            validators: a.validators.map(new_validators),
        })
        .collect()
}

fn new_series(a: RunCreateAxis) -> NewDataSeries {
    NewDataSeries {
        data: a.data,
        units: a.units.map(Units::joined),
        name: a.name,
        description: a.description,
        validators: a.validators.map(new_validators),
        aggregations: a.aggregations.map(new_aggregations),
    }
}
