//! Phases and measurements as returned (run, phase and measurement endpoints), with the
//! stored validators, aggregations and data series rendered for the clients.

use std::collections::HashMap;
use utoipa::ToSchema;

use serde::Serialize;
use serde_json::Value;

use crate::db::runs::{MeasurementRow, PhaseRow};
use crate::db::{Id, Ts};
use crate::values::iso_duration;

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPhase {
    pub id: Id,
    pub name: String,
    #[schema(value_type = crate::routes::runs::enums::PhaseOutcome, inline)]
    pub outcome: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub duration: String,
    pub retry_count: i64,
    #[schema(required = true)]
    pub sequence_path: Option<String>,
    #[schema(required = true)]
    pub docstring: Option<String>,
    pub measurements: Vec<RunMeasurement>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunMeasurement {
    pub id: Id,
    pub name: String,
    #[schema(value_type = crate::routes::runs::enums::MeasurementOutcome, inline)]
    pub outcome: String,
    #[schema(required = true)]
    pub units: Option<String>,
    /// An array, or null when the measurement has none.
    pub validators: Value,
    pub aggregations: Value,
    pub measured_value: Value,
    /// One entry per axis (x first) for multi-dimensional measurements, else null.
    pub data_series: Value,
    #[schema(required = true)]
    pub docstring: Option<String>,
}

/// Phases (already in order) each with its measurements (in request order).
pub fn phases_with_measurements(
    phases: Vec<PhaseRow>,
    measurements: Vec<MeasurementRow>,
) -> Vec<RunPhase> {
    let mut by_phase: HashMap<Id, Vec<RunMeasurement>> = HashMap::new();
    for m in measurements {
        by_phase.entry(m.phase_id).or_default().push(measurement(m));
    }
    phases
        .into_iter()
        .map(|p| {
            let measurements = by_phase.remove(&p.id).unwrap_or_default();
            phase(p, measurements)
        })
        .collect()
}

pub fn phase(p: PhaseRow, measurements: Vec<RunMeasurement>) -> RunPhase {
    RunPhase {
        id: p.id,
        name: p.name,
        outcome: p.outcome,
        started_at: p.started_at,
        ended_at: p.ended_at,
        duration: iso_duration(p.duration_us),
        retry_count: p.retry_count,
        sequence_path: p.sequence_path,
        docstring: p.docstring,
        measurements,
    }
}

pub fn measurement(m: MeasurementRow) -> RunMeasurement {
    RunMeasurement {
        id: m.id,
        name: m.name,
        outcome: m.outcome,
        units: m.units,
        validators: validators(m.validators.map(|j| j.0)),
        aggregations: aggregations(m.aggregations.map(|j| j.0)),
        measured_value: m.measured_value.map(|j| j.0).unwrap_or(Value::Null),
        data_series: data_series(m.data_series.map(|j| j.0)),
        docstring: m.docstring,
    }
}

/// Stored validators as returned: an `expected_value` the clients cannot take (an
/// object, a nested or mixed array) becomes its compact JSON text.
pub fn validators(v: Option<Value>) -> Value {
    match v {
        Some(Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|mut item| {
                    if let Some(ev) = item.get_mut("expected_value") {
                        if !is_expected_value_shape(ev) {
                            *ev = Value::String(ev.to_string());
                        }
                    }
                    item
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Stored aggregations as returned: `value` must be a number, string, boolean or null
/// (other shapes become their JSON text); validators as above.
pub fn aggregations(v: Option<Value>) -> Value {
    match v {
        Some(Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|mut item| {
                    if let Some(value) = item.get_mut("value") {
                        if value.is_array() || value.is_object() {
                            *value = Value::String(value.to_string());
                        }
                    }
                    if let Some(vs) = item.get_mut("validators") {
                        *vs = validators(Some(vs.take()));
                    }
                    item
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn data_series(v: Option<Value>) -> Value {
    match v {
        Some(Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|mut item| {
                    if let Some(vs) = item.get_mut("validators") {
                        *vs = validators(Some(vs.take()));
                    }
                    if let Some(aggs) = item.get_mut("aggregations") {
                        *aggs = aggregations(Some(aggs.take()));
                    }
                    item
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Null, a number, string or boolean, or an array of only numbers or only strings.
fn is_expected_value_shape(v: &Value) -> bool {
    match v {
        Value::Array(items) => {
            items.iter().all(Value::is_number) || items.iter().all(Value::is_string)
        }
        Value::Object(_) => false,
        _ => true,
    }
}
