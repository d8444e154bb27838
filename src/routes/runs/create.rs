//! The body of `POST /v2/runs` (`RunCreateRequest`) and its field rules (BEHAVIOR.md
//! §1.1, §1.2, §1.7). Cross-field rules and the mapping to `NewRun`: `convert`.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};
use utoipa::ToSchema;
use validator::{Validate, ValidateEmail, ValidationError};

use super::enums::{
    LogLevel, MeasurementOutcome, PhaseOutcome, RunOutcome, SequenceOutcome, VariableSource,
};
use crate::db::{Id, Ts};
use crate::metadata;
use crate::rules;
use crate::values::{trimmed, trimmed_required};

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RunCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "rules::validate::serial"))]
    pub serial_number: String,
    #[validate(custom(function = "uuid_rule"))]
    pub procedure_id: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub outcome: RunOutcome,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "rules::validate::part"))]
    pub part_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "rules::validate::revision"))]
    pub revision_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "rules::validate::batch"))]
    pub batch_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "rules::validate::version"))]
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
    #[validate(custom(function = "metadata::rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    #[validate(custom(function = "metadata::rule"))]
    #[schema(value_type = Option<Object>)]
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
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

#[derive(Debug, Deserialize, ToSchema)]
pub struct RunCreateMeasurement {
    pub name: String,
    pub outcome: MeasurementOutcome,
    #[serde(default)]
    pub measured_value: Option<Value>,
    #[serde(default)]
    pub units: Option<Units>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub lower_limit: Option<Number>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Units {
    One(String),
    Many(Vec<String>),
}

impl Units {
    pub fn joined(self) -> String {
        match self {
            Units::One(s) => s,
            Units::Many(v) => v.join(", "),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
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

#[derive(Debug, Deserialize, ToSchema)]
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
#[derive(Debug, Deserialize, ToSchema)]
pub struct RunCreateAxis {
    #[serde(default)]
    #[schema(value_type = Vec<f64>)]
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
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
