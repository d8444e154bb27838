//! What a run is made of, as the storage layer receives it: plain structs, already
//! validated and normalised, shared by every way a run arrives (v2 `POST /runs`, the
//! legacy v1 API, OpenHTF and tabular imports). The normalisation rules every path must
//! apply live here too: legacy limits become validators, validators get their display
//! expression, log lines are clipped (BEHAVIOR.md §1.2).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Number, Value};

use crate::db::{Id, Ts};

/// Custom metadata: string, number or boolean values by key.
pub type Metadata = Map<String, Value>;

/// Most keys a metadata object may hold (runs, units; BEHAVIOR.md §1.7).
pub const MAX_METADATA_KEYS: usize = 50;

/// A run to create. `procedure_id` must name a procedure of the caller's organization;
/// everything else it names (unit, part, revision, batch, version) is found or created.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub procedure_id: Id,
    pub serial_number: String,
    pub part_number: Option<String>,
    pub revision_number: Option<String>,
    pub batch_number: Option<String>,
    pub procedure_version: Option<String>,
    /// `PASS`, `FAIL`, `ERROR`, `TIMEOUT` or `ABORTED`, stored as given.
    pub outcome: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub docstring: Option<String>,
    /// Email of a member of the organization.
    pub operated_by: Option<String>,
    /// Serial numbers of existing units that become children of this run's unit.
    pub sub_units: Vec<String>,
    pub phases: Vec<NewPhase>,
    pub logs: Vec<NewLog>,
    pub metadata: Option<Metadata>,
    /// Upserted onto the unit (keys not named here are kept).
    pub unit_metadata: Option<Metadata>,
    /// Idempotency key, unique per organization.
    pub client_run_ref: Option<String>,
    pub execution_id: Option<String>,
    pub slot_key: Option<String>,
    pub slot_name: Option<String>,
    pub deployment_id: Option<String>,
    pub sequences: Vec<SequenceEntry>,
    pub config: Vec<ConfigEntry>,
    pub secrets: Vec<SecretEntry>,
    /// Uploads to link to the run in the same transaction.
    pub attachments: Vec<Id>,
}

impl NewRun {
    /// A run with the required fields and nothing else.
    pub fn new(
        procedure_id: Id,
        serial_number: impl Into<String>,
        outcome: impl Into<String>,
        started_at: Ts,
        ended_at: Ts,
    ) -> NewRun {
        NewRun {
            procedure_id,
            serial_number: serial_number.into(),
            part_number: None,
            revision_number: None,
            batch_number: None,
            procedure_version: None,
            outcome: outcome.into(),
            started_at,
            ended_at,
            docstring: None,
            operated_by: None,
            sub_units: Vec::new(),
            phases: Vec::new(),
            logs: Vec::new(),
            metadata: None,
            unit_metadata: None,
            client_run_ref: None,
            execution_id: None,
            slot_key: None,
            slot_name: None,
            deployment_id: None,
            sequences: Vec::new(),
            config: Vec::new(),
            secrets: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// `current` with `patch` applied: keys in `patch` are set, a `null` value removes the
/// key, other keys stay.
pub fn merge_metadata(current: Option<Metadata>, patch: &Metadata) -> Metadata {
    let mut out = current.unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct NewPhase {
    pub name: String,
    /// `PASS`, `FAIL`, `SKIP` or `ERROR`.
    pub outcome: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub retry_count: i64,
    pub docstring: Option<String>,
    pub sequence_path: Option<String>,
    pub measurements: Vec<NewMeasurement>,
}

#[derive(Debug, Clone)]
pub struct NewMeasurement {
    pub name: String,
    /// `PASS`, `FAIL` or `UNSET`, stored as given (never recomputed).
    pub outcome: String,
    /// Any JSON value, returned unchanged; `None` for no value.
    pub measured_value: Option<Value>,
    pub units: Option<String>,
    pub docstring: Option<String>,
    pub validators: Option<Vec<NewValidator>>,
    pub aggregations: Option<Vec<NewAggregation>>,
    /// Multi-dimensional data: the x axis first, then each y axis.
    pub data_series: Option<Vec<NewDataSeries>>,
}

/// A validator as given (on a measurement, an aggregation or an axis).
#[derive(Debug, Clone, Default)]
pub struct NewValidator {
    pub operator: Option<String>,
    pub expected_value: Option<Value>,
    pub expression: Option<String>,
    /// `PASS`, `FAIL` or `UNSET`; `UNSET` when absent.
    pub outcome: Option<String>,
    pub is_decisive: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewAggregation {
    pub kind: String,
    pub value: Option<Value>,
    pub outcome: Option<String>,
    pub unit: Option<String>,
    pub validators: Option<Vec<NewValidator>>,
}

#[derive(Debug, Clone)]
pub struct NewDataSeries {
    /// The numbers exactly as sent (integers stay integers).
    pub data: Vec<Number>,
    pub units: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub validators: Option<Vec<NewValidator>>,
    pub aggregations: Option<Vec<NewAggregation>>,
}

#[derive(Debug, Clone)]
pub struct NewLog {
    /// `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.
    pub level: String,
    pub timestamp: Ts,
    pub message: String,
    pub source_file: String,
    pub line_number: i64,
}

/// Longest log message kept; longer ones are truncated.
pub const MAX_LOG_MESSAGE: usize = 10_000;
/// Longest log source file kept; longer paths keep their end.
pub const MAX_LOG_SOURCE_FILE: usize = 200;

impl NewLog {
    /// A log line with the storage rules applied: a message is clipped to 10 000
    /// characters and an empty one reads `(empty)`; a source file keeps its last 200
    /// characters and an empty one reads `unknown`.
    pub fn new(
        level: impl Into<String>,
        timestamp: Ts,
        message: &str,
        source_file: &str,
        line_number: i64,
    ) -> NewLog {
        let message = if message.is_empty() {
            "(empty)".to_string()
        } else {
            message.chars().take(MAX_LOG_MESSAGE).collect()
        };
        let n = source_file.chars().count();
        let source_file = if source_file.is_empty() {
            "unknown".to_string()
        } else if n > MAX_LOG_SOURCE_FILE {
            source_file.chars().skip(n - MAX_LOG_SOURCE_FILE).collect()
        } else {
            source_file.to_string()
        };
        NewLog {
            level: level.into(),
            timestamp,
            message,
            source_file,
            line_number,
        }
    }
}

/// A sequence call of a run (a group of phases composed with `uses:`), as stored and
/// returned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequenceEntry {
    pub id: Id,
    pub path: String,
    pub key: String,
    pub parent_path: Option<String>,
    pub name: String,
    pub source: Option<String>,
    pub outcome: String,
    pub started_at: Option<Ts>,
    pub ended_at: Option<Ts>,
}

impl SequenceEntry {
    /// A sequence call; `key` and `parent_path` are derived from the `/`-joined path.
    pub fn new(
        path: &str,
        name: String,
        source: Option<String>,
        outcome: String,
        started_at: Option<Ts>,
        ended_at: Option<Ts>,
    ) -> SequenceEntry {
        let (parent_path, key) = match path.rsplit_once('/') {
            Some((parent, key)) => (Some(parent.to_string()), key.to_string()),
            None => (None, path.to_string()),
        };
        SequenceEntry {
            id: Id::new(),
            path: path.to_string(),
            key,
            parent_path,
            name,
            source,
            outcome,
            started_at,
            ended_at,
        }
    }
}

/// A config value a run used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub key: String,
    pub value: Value,
    pub variable_id: Option<String>,
    pub version: Option<i64>,
    pub source: Option<String>,
}

/// A secret a run used, by reference only (never its value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretEntry {
    pub key: String,
    pub variable_id: Option<String>,
    pub version: Option<i64>,
    pub source: Option<String>,
}

/// The validators legacy `lower_limit` / `upper_limit` stand for: `>=` lower and `<=`
/// upper, each with its generated expression. Their outcome is computed against a
/// numeric `measured_value`, else it is the measurement's outcome.
pub fn limit_validators(
    lower: Option<Number>,
    upper: Option<Number>,
    measured_value: Option<&Value>,
    measurement_outcome: &str,
) -> Vec<NewValidator> {
    let measured = measured_value.and_then(Value::as_f64);
    let mut out = Vec::new();
    for (operator, limit) in [(">=", lower), ("<=", upper)] {
        let Some(limit) = limit else { continue };
        let outcome = match (measured, limit.as_f64()) {
            (Some(m), Some(l)) => {
                let ok = if operator == ">=" { m >= l } else { m <= l };
                if ok {
                    "PASS"
                } else {
                    "FAIL"
                }
            }
            _ => measurement_outcome,
        };
        out.push(NewValidator {
            operator: Some(operator.to_string()),
            expected_value: Some(Value::Number(limit)),
            expression: None,
            outcome: Some(outcome.to_string()),
            is_decisive: None,
        });
    }
    out
}

/// The stored (and returned) form of a validator: every key of the response shape,
/// with the display expression generated when the caller gave none. `expected_value`
/// is kept as sent; readers render shapes the clients cannot take as text.
pub fn validator_json(v: &NewValidator) -> Value {
    let generated = v
        .operator
        .as_deref()
        .map(|op| generated_expression(op, v.expected_value.as_ref()));
    let expression = match (&v.expression, &generated) {
        (Some(e), _) => e.clone(),
        (None, Some(g)) => g.clone(),
        // Neither an operator nor an expression: show the expected value, if any.
        (None, None) => v.expected_value.as_ref().map(display).unwrap_or_default(),
    };
    json!({
        "outcome": v.outcome.as_deref().unwrap_or("UNSET"),
        "operator": v.operator,
        "expected_value": v.expected_value,
        "expression": expression,
        "is_decisive": v.is_decisive,
        "is_expression_only": v.expression.is_some() && v.operator.is_none(),
        "has_custom_expression": v.expression.is_some(),
        "analytics_expression": generated,
    })
}

pub fn validators_json(vs: &Option<Vec<NewValidator>>) -> Value {
    match vs {
        Some(vs) => Value::Array(vs.iter().map(validator_json).collect()),
        None => Value::Null,
    }
}

/// The stored form of an aggregation; each gets an id.
pub fn aggregation_json(a: &NewAggregation) -> Value {
    json!({
        "id": Id::new(),
        "type": a.kind,
        "outcome": a.outcome,
        "value": a.value,
        "unit": a.unit,
        "validators": validators_json(&a.validators),
    })
}

pub fn aggregations_json(aggs: &Option<Vec<NewAggregation>>) -> Value {
    match aggs {
        Some(aggs) => Value::Array(aggs.iter().map(aggregation_json).collect()),
        None => Value::Null,
    }
}

pub fn data_series_json(series: &[NewDataSeries]) -> Value {
    Value::Array(
        series
            .iter()
            .map(|s| {
                json!({
                    "data": s.data,
                    "units": s.units,
                    "name": s.name,
                    "description": s.description,
                    "validators": validators_json(&s.validators),
                    "aggregations": aggregations_json(&s.aggregations),
                })
            })
            .collect(),
    )
}

/// The human expression for an operator and expected value: `x >= 3.0`,
/// `x in ["A", "B"]`, `3.0 <= x <= 3.6`, `x matches /^A/`.
pub fn generated_expression(operator: &str, expected: Option<&Value>) -> String {
    let shown = expected.map(display).unwrap_or_else(|| "null".into());
    match (operator, expected) {
        ("range", Some(Value::Array(b))) if b.len() == 2 => {
            format!("{} <= x <= {}", display(&b[0]), display(&b[1]))
        }
        ("matches", Some(Value::String(re))) => format!("x matches /{re}/"),
        _ => format!("x {operator} {shown}"),
    }
}

/// A JSON value as it reads in an expression: numbers as sent, strings quoted, lists
/// with `, ` between items, objects as compact JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// How a measured value is classified for the measurement list filters, with its typed
/// copy: (`measurement_type`, number, bool, string).
pub fn classify_value(
    value: Option<&Value>,
    has_series: bool,
) -> (&'static str, Option<f64>, Option<bool>, Option<String>) {
    match value {
        Some(Value::Number(n)) => ("numeric", n.as_f64(), None, None),
        Some(Value::Bool(b)) => ("boolean", None, Some(*b), None),
        Some(Value::String(s)) => ("string", None, None, Some(s.clone())),
        Some(Value::Array(rows)) if rows.iter().all(Value::is_array) && !rows.is_empty() => {
            ("multidimensional", None, None, None)
        }
        _ if has_series => ("multidimensional", None, None, None),
        Some(Value::Array(_)) | Some(Value::Object(_)) => ("json", None, None, None),
        Some(Value::Null) | None => ("empty", None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(op: Option<&str>, expected: Option<Value>, expression: Option<&str>) -> Value {
        validator_json(&NewValidator {
            operator: op.map(str::to_string),
            expected_value: expected,
            expression: expression.map(str::to_string),
            outcome: None,
            is_decisive: None,
        })
    }

    #[test]
    fn expressions_are_generated() {
        assert_eq!(
            v(Some(">="), Some(json!(3.0)), None)["expression"],
            "x >= 3.0"
        );
        assert_eq!(
            v(Some("<="), Some(json!(10)), None)["expression"],
            "x <= 10"
        );
        assert_eq!(
            v(Some("in"), Some(json!(["A", "B"])), None)["expression"],
            "x in [\"A\", \"B\"]"
        );
        assert_eq!(
            v(Some("range"), Some(json!([3.0, 3.6])), None)["expression"],
            "3.0 <= x <= 3.6"
        );
        assert_eq!(
            v(Some("matches"), Some(json!("^SN")), None)["expression"],
            "x matches /^SN/"
        );
        assert_eq!(
            v(Some("=="), Some(json!(true)), None)["expression"],
            "x == true"
        );
        let full = v(Some(">="), Some(json!(1)), None);
        assert_eq!(full["outcome"], "UNSET");
        assert_eq!(full["is_expression_only"], false);
        assert_eq!(full["has_custom_expression"], false);
        assert_eq!(full["analytics_expression"], "x >= 1");
        assert_eq!(full["is_decisive"], Value::Null);
    }

    #[test]
    fn custom_and_expression_only_validators() {
        let only = v(None, None, Some("value > threshold"));
        assert_eq!(only["expression"], "value > threshold");
        assert_eq!(only["is_expression_only"], true);
        assert_eq!(only["has_custom_expression"], true);
        assert_eq!(only["analytics_expression"], Value::Null);
        let custom = v(Some(">="), Some(json!(0)), Some("safe"));
        assert_eq!(custom["expression"], "safe");
        assert_eq!(custom["is_expression_only"], false);
        assert_eq!(custom["has_custom_expression"], true);
        assert_eq!(custom["analytics_expression"], "x >= 0");
    }

    #[test]
    fn limits_become_validators() {
        let n = |f: f64| Number::from_f64(f);
        let both = limit_validators(n(10.0), n(40.0), Some(&json!(50.0)), "FAIL");
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].operator.as_deref(), Some(">="));
        assert_eq!(both[0].outcome.as_deref(), Some("PASS"));
        assert_eq!(both[1].outcome.as_deref(), Some("FAIL"));
        let text = limit_validators(None, n(1.0), Some(&json!("abc")), "UNSET");
        assert_eq!(text.len(), 1);
        assert_eq!(text[0].outcome.as_deref(), Some("UNSET"));
        assert!(limit_validators(None, None, None, "PASS").is_empty());
    }

    #[test]
    fn log_lines_are_clipped() {
        let t = Ts::now();
        let l = NewLog::new("INFO", t, "", "", 1);
        assert_eq!(l.message, "(empty)");
        assert_eq!(l.source_file, "unknown");
        let long = "m".repeat(10_001);
        let path = format!("{}end.py", "d/".repeat(150));
        let l = NewLog::new("INFO", t, &long, &path, 1);
        assert_eq!(l.message.chars().count(), 10_000);
        assert_eq!(l.source_file.chars().count(), 200);
        assert!(l.source_file.ends_with("end.py"));
    }

    #[test]
    fn values_are_classified() {
        assert_eq!(classify_value(Some(&json!(1.5)), false).0, "numeric");
        assert_eq!(classify_value(Some(&json!(true)), false).0, "boolean");
        assert_eq!(classify_value(Some(&json!("x")), false).0, "string");
        assert_eq!(
            classify_value(Some(&json!([[1, 2]])), false).0,
            "multidimensional"
        );
        assert_eq!(classify_value(None, true).0, "multidimensional");
        assert_eq!(classify_value(Some(&json!([1, 2])), false).0, "json");
        assert_eq!(classify_value(Some(&json!({"a": 1})), false).0, "json");
        assert_eq!(classify_value(None, false).0, "empty");
    }
}
