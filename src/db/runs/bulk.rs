//! Writing run content in bulk: phases, measurements, logs and sub-unit links go in as
//! multi-row `INSERT … VALUES (…), (…)` statements, chunked to stay well under the bind
//! parameter limits of both backends (SQLite 32 766, Postgres 65 535) and, on SQLite,
//! small enough that binding stays cheap (see `MAX_PARAMS_SQLITE`).

use serde_json::Value;

use super::model::{NewLog, NewPhase};
use super::stored::{aggregations_json, classify_value, data_series_json, validators_json};
use crate::db::error::DbResult;
use crate::db::points::{self, PointDraft, RunFacts};
use crate::db::{Arg, Dialect, Id, Sql, Ts, Tx};

/// Bind parameters per statement, at most, on Postgres: fewer, larger statements save
/// round trips.
const MAX_PARAMS_POSTGRES: usize = 30_000;
/// The same on SQLite, much lower: SQLite finds a parameter's name by a linear scan of
/// the statement's parameter list (`sqlite3_bind_parameter_name`), which the driver
/// calls for every bind, so binding costs O(parameters²) per statement. At 500 rows of
/// 16 columns that scan took most of the writer's time (profiled while importing an
/// STDF file); at ~1 000 parameters per statement it is noise.
const MAX_PARAMS_SQLITE: usize = 256;
/// Rows per statement, at most: fixed-size chunks reuse one prepared statement.
const MAX_ROWS: usize = 500;

/// A run's content as rows ready to insert; built before the transaction starts so the
/// write lock is held only for the inserts themselves.
#[derive(Debug, Clone, Default)]
pub(super) struct ContentRows {
    pub phases: Vec<Vec<Arg>>,
    pub measurements: Vec<Vec<Arg>>,
    pub logs: Vec<Vec<Arg>>,
    /// The analytics records among the measurements (`db::points`).
    pub points: Vec<PointDraft>,
}

const PHASE_INSERT: &str = "INSERT INTO phases (id, run_id, position, name, outcome, started_at,
    ended_at, duration_us, retry_count, docstring, sequence_path) VALUES ";
const MEASUREMENT_INSERT: &str = "INSERT INTO measurements (id, run_id, phase_id, position, name,
    outcome, measured_value, units, docstring, validators, aggregations, data_series,
    measurement_type, value_number, value_bool, value_string) VALUES ";
const LOG_INSERT: &str = "INSERT INTO logs (id, run_id, position, level, timestamp, message,
    source_file, line_number, created_at) VALUES ";
const SUB_UNIT_INSERT: &str = "INSERT INTO run_sub_units (run_id, unit_id, position) VALUES ";

impl ContentRows {
    pub fn build(run_id: Id, phases: &[NewPhase], logs: &[NewLog]) -> ContentRows {
        let mut rows = ContentRows::default();
        let mut measurement_position = 0i64;
        let finals =
            points::final_attempts(phases.iter().map(|p| (p.name.as_str(), p.retry_count)));
        for ((position, p), is_final) in phases.iter().enumerate().zip(finals) {
            let phase_id = Id::new();
            rows.phases.push(vec![
                phase_id.into(),
                run_id.into(),
                (position as i64).into(),
                p.name.clone().into(),
                p.outcome.clone().into(),
                p.started_at.into(),
                p.ended_at.into(),
                (p.ended_at.micros() - p.started_at.micros()).into(),
                p.retry_count.into(),
                p.docstring.clone().into(),
                p.sequence_path.clone().into(),
            ]);
            for m in &p.measurements {
                let series = m.data_series.as_deref().filter(|s| !s.is_empty());
                let value = m.measured_value.as_ref().filter(|v| !v.is_null());
                let (kind, number, boolean, string) = classify_value(value, series.is_some());
                let measurement_id = Id::new();
                let validators = validators_json(&m.validators);
                if let Some((value, limits)) =
                    points::qualifies(kind, number, series.is_some(), &validators)
                {
                    rows.points.push(PointDraft {
                        measurement_id,
                        phase: p.name.clone(),
                        phase_started_at: p.started_at,
                        is_final,
                        measurement: m.name.clone(),
                        units: m.units.clone(),
                        value,
                        limits,
                    });
                }
                rows.measurements.push(vec![
                    measurement_id.into(),
                    run_id.into(),
                    phase_id.into(),
                    measurement_position.into(),
                    m.name.clone().into(),
                    m.outcome.clone().into(),
                    Arg::Json(value.cloned()),
                    m.units.clone().into(),
                    m.docstring.clone().into(),
                    json_or_null(validators),
                    json_or_null(aggregations_json(&m.aggregations)),
                    Arg::Json(series.map(data_series_json)),
                    kind.into(),
                    Arg::Float(number),
                    Arg::Bool(boolean),
                    Arg::Text(string),
                ]);
                measurement_position += 1;
            }
        }
        let now = Ts::now();
        for (position, l) in logs.iter().enumerate() {
            rows.logs.push(vec![
                Id::new().into(),
                run_id.into(),
                (position as i64).into(),
                l.level.clone().into(),
                l.timestamp.into(),
                l.message.clone().into(),
                l.source_file.clone().into(),
                l.line_number.into(),
                now.into(),
            ]);
        }
        rows
    }

    /// Inserts the content of `run` (whose row is already written).
    pub async fn insert(&self, tx: &mut Tx, run: &RunFacts) -> DbResult<()> {
        insert_rows(tx, PHASE_INSERT, &self.phases, "").await?;
        insert_rows(tx, MEASUREMENT_INSERT, &self.measurements, "").await?;
        points::insert(tx, run, &self.points).await?;
        insert_rows(tx, LOG_INSERT, &self.logs, "").await
    }
}

fn json_or_null(v: Value) -> Arg {
    Arg::Json(if v.is_null() { None } else { Some(v) })
}

/// Links the run to its sub-units, in request order.
pub(super) async fn insert_sub_unit_links(tx: &mut Tx, run_id: Id, units: &[Id]) -> DbResult<()> {
    let rows: Vec<Vec<Arg>> = units
        .iter()
        .enumerate()
        .map(|(i, u)| vec![run_id.into(), (*u).into(), (i as i64).into()])
        .collect();
    insert_rows(tx, SUB_UNIT_INSERT, &rows, "").await
}

/// Inserts `rows` (all of the same width) with as few statements as the limits allow;
/// `tail` ends each statement (an `ON CONFLICT` clause, or nothing).
pub(crate) async fn insert_rows(
    tx: &mut Tx,
    head: &'static str,
    rows: &[Vec<Arg>],
    tail: &'static str,
) -> DbResult<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let max_params = match tx.dialect() {
        Dialect::Sqlite => MAX_PARAMS_SQLITE,
        Dialect::Postgres => MAX_PARAMS_POSTGRES,
    };
    let per_statement = (max_params / width.max(1)).clamp(1, MAX_ROWS);
    for chunk in rows.chunks(per_statement) {
        let mut q = Sql::new(head);
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push_tuple(row.iter().cloned());
        }
        q.push(tail);
        tx.execute(q).await?;
    }
    Ok(())
}
