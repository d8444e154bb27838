//! What a run is made of, as the storage layer receives it: plain structs, already
//! validated and normalised, shared by every way a run arrives (v2 `POST /runs`, the
//! legacy v1 API, OpenHTF and tabular imports). The normalisation rules every path must
//! apply live here too: legacy limits become validators, log lines are clipped
//! (BEHAVIOR.md §1.2); `stored` gives validators their display expression.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::db::{Id, Ts};

pub use crate::metadata::Metadata;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
