//! Response shapes of runs (Appendix A `GET /v2/runs`, `GET /v2/runs/{id}`); phases
//! and measurements are in `content`.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::content::{phases_with_measurements, RunPhase};
use crate::db::attachments::AttachmentRow;
use crate::db::runs::{LogRow, RunDetail, RunRow, SubUnitRow};
use crate::db::{Id, Ts};
use crate::routes::{StationRef, UserRef};
use crate::values::iso_duration;

#[derive(Debug, Serialize, ToSchema)]
pub struct RunProcedureVersion {
    pub id: Id,
    pub tag: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunProcedure {
    pub id: Id,
    pub name: String,
    #[schema(required = true)]
    pub version: Option<RunProcedureVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunRevision {
    pub id: Id,
    pub number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPart {
    pub id: Id,
    pub number: String,
    pub name: String,
    pub revision: RunRevision,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunBatch {
    pub id: Id,
    pub number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunUnit {
    pub id: Id,
    pub serial_number: String,
    #[schema(required = true, value_type = Option<crate::routes::units::UnitSample>, inline)]
    pub sample: Option<String>,
    pub part: RunPart,
    #[schema(required = true)]
    pub batch: Option<RunBatch>,
}

/// What every run response carries (a `GET /v2/runs` item).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunListData {
    pub id: Id,
    pub created_at: Ts,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub duration: String,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    pub outcome: String,
    #[schema(required = true)]
    pub docstring: Option<String>,
    #[schema(required = true)]
    pub execution_id: Option<String>,
    #[schema(required = true)]
    pub slot_key: Option<String>,
    #[schema(required = true)]
    pub slot_name: Option<String>,
    pub procedure: RunProcedure,
    pub unit: RunUnit,
    #[schema(required = true)]
    pub created_by_user: Option<UserRef>,
    #[schema(required = true)]
    pub created_by_station: Option<StationRef>,
    #[schema(required = true)]
    pub operated_by: Option<UserRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequences: Option<Vec<RunSequence>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunSequence {
    pub id: Id,
    pub path: String,
    pub key: String,
    #[schema(required = true)]
    pub parent_path: Option<String>,
    pub name: String,
    #[schema(required = true)]
    pub source: Option<String>,
    #[schema(value_type = crate::routes::runs::enums::SequenceOutcome, inline)]
    pub outcome: String,
    #[schema(required = true)]
    pub started_at: Option<Ts>,
    #[schema(required = true)]
    pub ended_at: Option<Ts>,
    #[schema(required = true)]
    pub duration: Option<String>,
}

/// `GET /v2/runs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunGetResponse {
    #[serde(flatten)]
    pub summary: RunListData,
    pub phases: Vec<RunPhase>,
    pub attachments: Vec<RunAttachment>,
    pub logs: Vec<RunLog>,
    pub sub_units: Vec<RunSubUnit>,
    pub config: Vec<Value>,
    pub secrets: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunAttachment {
    pub id: Id,
    pub name: String,
    #[schema(required = true)]
    pub size: Option<i64>,
    #[schema(required = true)]
    pub content_type: Option<String>,
    pub is_report: bool,
    #[schema(required = true)]
    pub download_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunLog {
    pub id: Id,
    #[schema(value_type = crate::routes::runs::enums::LogLevel, inline)]
    pub level: String,
    pub timestamp: Ts,
    pub message: String,
    pub source_file: String,
    pub line_number: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunSubUnit {
    pub id: Id,
    pub serial_number: String,
    pub part_number: String,
    #[schema(required = true)]
    pub part_name: Option<String>,
}

/// Which optional parts of a list item to include.
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    pub metadata: bool,
    pub sequences: bool,
}

pub fn run_summary(r: RunRow, include: Include) -> RunListData {
    let metadata = include.metadata.then(|| object_or_empty(&r.metadata));
    let sequences = include.sequences.then(|| sequences(&r.sequences));
    RunListData {
        id: r.id,
        created_at: r.created_at,
        started_at: r.started_at,
        ended_at: r.ended_at,
        duration: iso_duration(r.duration_us),
        outcome: r.outcome,
        docstring: r.docstring,
        execution_id: r.execution_id,
        slot_key: r.slot_key,
        slot_name: r.slot_name,
        procedure: RunProcedure {
            id: r.procedure_id,
            name: r.procedure_name,
            version: match (r.version_id, r.version_tag) {
                (Some(id), Some(tag)) => Some(RunProcedureVersion { id, tag }),
                _ => None,
            },
        },
        unit: RunUnit {
            id: r.unit_id,
            serial_number: r.serial_number,
            sample: r.unit_sample,
            part: RunPart {
                id: r.part_id,
                number: r.part_number,
                name: r.part_name,
                revision: RunRevision {
                    id: r.revision_id,
                    number: r.revision_number,
                },
            },
            batch: match (r.batch_id, r.batch_number) {
                (Some(id), Some(number)) => Some(RunBatch { id, number }),
                _ => None,
            },
        },
        created_by_user: r.creator.user(),
        created_by_station: r.creator.station(),
        operated_by: r.op_id.map(|id| UserRef {
            id,
            name: r.op_name,
            email: r.op_email,
        }),
        metadata,
        sequences,
    }
}

/// The full run. `download_url` gives the URL of an attachment that has bytes.
pub fn run_detail(
    d: RunDetail,
    attachments: Vec<AttachmentRow>,
    download_url: impl Fn(Id) -> String,
) -> RunGetResponse {
    let config = array_items(&d.run.config);
    let secrets = array_items(&d.run.secrets);
    let phases = phases_with_measurements(d.phases, d.measurements);
    RunGetResponse {
        summary: run_summary(
            d.run,
            Include {
                metadata: true,
                sequences: true,
            },
        ),
        phases,
        attachments: attachments
            .into_iter()
            .map(|a| RunAttachment {
                id: a.id,
                name: a.name,
                size: a.size,
                content_type: a.content_type,
                is_report: a.is_report,
                download_url: a.has_bytes.then(|| download_url(a.id)),
            })
            .collect(),
        logs: d.logs.into_iter().map(log).collect(),
        sub_units: d.sub_units.into_iter().map(sub_unit).collect(),
        config,
        secrets,
    }
}

fn log(l: LogRow) -> RunLog {
    RunLog {
        id: l.id,
        level: l.level,
        timestamp: l.timestamp,
        message: l.message,
        source_file: l.source_file,
        line_number: l.line_number,
    }
}

fn sub_unit(s: SubUnitRow) -> RunSubUnit {
    RunSubUnit {
        id: s.id,
        serial_number: s.serial_number,
        part_number: s.part_number,
        part_name: Some(s.part_name),
    }
}

fn object_or_empty(v: &Option<sqlx::types::Json<Value>>) -> Value {
    match v.as_ref().map(|j| &j.0) {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => Value::Object(Map::new()),
    }
}

fn array_items(v: &Option<sqlx::types::Json<Value>>) -> Vec<Value> {
    match v.as_ref().map(|j| &j.0) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn sequences(v: &Option<sqlx::types::Json<Value>>) -> Vec<RunSequence> {
    let stored: Vec<crate::db::runs::SequenceEntry> = v
        .as_ref()
        .and_then(|j| serde_json::from_value(j.0.clone()).ok())
        .unwrap_or_default();
    stored
        .into_iter()
        .map(|s| RunSequence {
            duration: match (s.started_at, s.ended_at) {
                (Some(a), Some(b)) => Some(iso_duration(b.micros() - a.micros())),
                _ => None,
            },
            id: s.id,
            path: s.path,
            key: s.key,
            parent_path: s.parent_path,
            name: s.name,
            source: s.source,
            outcome: s.outcome,
            started_at: s.started_at,
            ended_at: s.ended_at,
        })
        .collect()
}
