//! Reading one run with all of its content in a fixed number of queries, whatever its
//! size: the run with its joins, then its phases, measurements, logs and sub-units.
//! (Attachments come from `Db::attachments_of_runs`.)

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use crate::db::common::CreatorRow;
use crate::db::error::{DbResult, StoreError};
use crate::db::{Db, Id, Sql, Ts};

/// A run with what it refers to: procedure and version, unit with the part revision and
/// batch recorded for this run, creator and operator.
#[derive(Debug, Clone, FromRow)]
pub struct RunRow {
    pub id: Id,
    pub created_at: Ts,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub duration_us: i64,
    pub outcome: String,
    pub docstring: Option<String>,
    pub execution_id: Option<String>,
    pub slot_key: Option<String>,
    pub slot_name: Option<String>,
    pub deployment_id: Option<String>,
    pub metadata: Option<Json<Value>>,
    pub config: Option<Json<Value>>,
    pub secrets: Option<Json<Value>>,
    pub sequences: Option<Json<Value>>,
    pub procedure_id: Id,
    pub procedure_name: String,
    pub version_id: Option<Id>,
    pub version_tag: Option<String>,
    pub unit_id: Id,
    pub serial_number: String,
    pub unit_sample: Option<String>,
    pub part_id: Id,
    pub part_number: String,
    pub part_name: String,
    pub revision_id: Id,
    pub revision_number: String,
    pub batch_id: Option<Id>,
    pub batch_number: Option<String>,
    #[sqlx(flatten)]
    pub creator: CreatorRow,
    pub op_id: Option<Id>,
    pub op_name: Option<String>,
    pub op_email: Option<String>,
}

/// Select list for `RunRow`, over the joins of `RUN_JOINS`.
pub(super) const RUN_COLUMNS: &str = "r.id, r.created_at, r.started_at, r.ended_at,
    r.duration_us, r.outcome, r.docstring, r.execution_id, r.slot_key, r.slot_name,
    r.deployment_id, r.metadata, r.config, r.secrets, r.sequences,
    pr.id AS procedure_id, pr.name AS procedure_name, v.id AS version_id, v.tag AS version_tag,
    u.id AS unit_id, u.serial_number, u.sample AS unit_sample,
    p.id AS part_id, p.number AS part_number, p.name AS part_name,
    rev.id AS revision_id, rev.number AS revision_number,
    b.id AS batch_id, b.number AS batch_number,
    cu.id AS cu_id, cu.name AS cu_name, cu.email AS cu_email, cs.id AS cs_id, cs.name AS cs_name,
    op.id AS op_id, op.name AS op_name, op.email AS op_email";

/// The run (`r`) with procedure `pr`, version `v`, unit `u`, the run's revision `rev`
/// and its part `p`, batch `b`, creator `cu`/`cs` and operator `op`.
pub(super) const RUN_JOINS: &str = " FROM runs r
    JOIN procedures pr ON pr.id = r.procedure_id
    LEFT JOIN procedure_versions v ON v.id = r.version_id
    JOIN units u ON u.id = r.unit_id
    JOIN revisions rev ON rev.id = r.revision_id
    JOIN parts p ON p.id = rev.part_id
    LEFT JOIN batches b ON b.id = r.batch_id
    LEFT JOIN users cu ON cu.id = r.created_by_user_id
    LEFT JOIN stations cs ON cs.id = r.created_by_station_id
    LEFT JOIN users op ON op.id = r.operated_by_user_id ";

#[derive(Debug, Clone, FromRow)]
pub struct PhaseRow {
    pub id: Id,
    pub run_id: Id,
    pub position: i64,
    pub name: String,
    pub outcome: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub duration_us: i64,
    pub retry_count: i64,
    pub docstring: Option<String>,
    pub sequence_path: Option<String>,
}

pub(super) const PHASE_COLUMNS: &str = "ph.id, ph.run_id, ph.position, ph.name, ph.outcome,
    ph.started_at, ph.ended_at, ph.duration_us, ph.retry_count, ph.docstring, ph.sequence_path";

#[derive(Debug, Clone, FromRow)]
pub struct MeasurementRow {
    pub id: Id,
    pub phase_id: Id,
    pub position: i64,
    pub name: String,
    pub outcome: String,
    pub measured_value: Option<Json<Value>>,
    pub units: Option<String>,
    pub docstring: Option<String>,
    pub validators: Option<Json<Value>>,
    pub aggregations: Option<Json<Value>>,
    pub data_series: Option<Json<Value>>,
}

pub(super) const MEASUREMENT_COLUMNS: &str = "m.id, m.phase_id, m.position, m.name, m.outcome,
    m.measured_value, m.units, m.docstring, m.validators, m.aggregations, m.data_series";

#[derive(Debug, Clone, FromRow)]
pub struct LogRow {
    pub id: Id,
    pub level: String,
    pub timestamp: Ts,
    pub message: String,
    pub source_file: String,
    pub line_number: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct SubUnitRow {
    pub id: Id,
    pub serial_number: String,
    pub part_number: String,
    pub part_name: String,
}

/// A run and all of its content.
pub struct RunDetail {
    pub run: RunRow,
    /// In the order clients expect: start time, then name, then attempt.
    pub phases: Vec<PhaseRow>,
    /// In request order.
    pub measurements: Vec<MeasurementRow>,
    /// By timestamp, then request order.
    pub logs: Vec<LogRow>,
    pub sub_units: Vec<SubUnitRow>,
}

impl Db {
    /// The run `id` of the organization with all of its content (404 "Run not found").
    pub async fn run(&self, org_id: Id, id: Id) -> DbResult<RunDetail> {
        let mut r = self.read();
        let run: RunRow = r
            .fetch_optional(
                Sql::new("SELECT ")
                    .then(RUN_COLUMNS)
                    .then(" ")
                    .then(RUN_JOINS)
                    .then(" WHERE r.org_id = $1 AND r.id = $2")
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Run not found"))?;
        let mut phases: Vec<PhaseRow> = r
            .fetch_all(
                Sql::new("SELECT ")
                    .then(PHASE_COLUMNS)
                    .then(" FROM phases ph WHERE ph.run_id = $1")
                    .bind(id),
            )
            .await?;
        sort_phases(&mut phases);
        let measurements = r
            .fetch_all(
                Sql::new("SELECT ")
                    .then(MEASUREMENT_COLUMNS)
                    .then(
                        " FROM measurements m
                     WHERE m.run_id = $1 ORDER BY m.position",
                    )
                    .bind(id),
            )
            .await?;
        let logs = r
            .fetch_all(
                Sql::new(
                    "SELECT id, level, timestamp, message, source_file, line_number FROM logs
                     WHERE run_id = $1 ORDER BY timestamp, position",
                )
                .bind(id),
            )
            .await?;
        let sub_units = r
            .fetch_all(
                Sql::new(
                    "SELECT u.id, u.serial_number, p.number AS part_number, p.name AS part_name
                     FROM run_sub_units s
                     JOIN units u ON u.id = s.unit_id
                     JOIN parts p ON p.id = u.part_id
                     WHERE s.run_id = $1 ORDER BY s.position",
                )
                .bind(id),
            )
            .await?;
        Ok(RunDetail {
            run,
            phases,
            measurements,
            logs,
            sub_units,
        })
    }
}

/// Phase order of a run: start time, then name, then retry attempt (request order
/// last). Sorted here rather than in SQL so that names compare by code point on both
/// backends, whatever the database collation.
pub(super) fn sort_phases(phases: &mut [PhaseRow]) {
    phases.sort_by(|a, b| {
        (a.started_at, &a.name, a.retry_count, a.position).cmp(&(
            b.started_at,
            &b.name,
            b.retry_count,
            b.position,
        ))
    });
}
