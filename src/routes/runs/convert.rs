//! Cross-field rules of `RunCreateRequest` and its mapping into the backend-neutral
//! `NewRun` (legacy limits into validators, axes into data series, log clipping).

use super::create::{
    RunCreateAggregation, RunCreateAxis, RunCreateMeasurement, RunCreatePhase, RunCreateRequest,
    RunCreateValidator, Units,
};
use crate::db::runs::model::limit_validators;
use crate::db::runs::{
    ConfigEntry, NewAggregation, NewDataSeries, NewLog, NewMeasurement, NewPhase, NewRun,
    NewValidator, SecretEntry, SequenceEntry,
};
use crate::db::Id;
use crate::error::{ApiError, ApiResult, Issue, PathSegment};

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
