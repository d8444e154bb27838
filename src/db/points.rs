//! Measurement points (migration 0010): one narrow row per measurement record the
//! analytics read, written with its run. This module holds the rule for which records
//! qualify and what a point carries, the insert, and the backfill of points for rows
//! that were written without them (a database older than the table, an imported
//! organization).

use serde_json::Value;
use sqlx::FromRow;

use crate::analytics::{limits_from_validators, Limits};
use crate::db::runs::phases::IS_FINAL_ATTEMPT;
use crate::db::{Arg, Db, DbResult, Dialect, Id, Sql, Ts, Tx};

/// The columns of a point, in `insert` order.
const POINT_INSERT: &str = "INSERT INTO measurement_points (measurement_id, run_id, org_id,
    procedure_id, unit_id, run_started_at, run_created_at, phase_started_at, phase,
    measurement, units, value, lsl, usl, is_final) VALUES ";

/// Stored measurements (`m`) that may qualify: numeric, with a value, not a data series,
/// with a validator list. The list must also carry a limit (`qualifies`), which only
/// Rust can tell.
pub(crate) const NUMERIC_RECORDS: &str = " AND m.measurement_type = 'numeric'
    AND m.value_number IS NOT NULL AND m.data_series IS NULL AND m.validators IS NOT NULL";

/// Points per backfill transaction.
const BACKFILL_BATCH: i64 = 2_000;

/// The limits a record is analysed under, or `None` when it is not an analytics record:
/// not numeric, no value, a data series, or no limit among its validators.
pub(crate) fn qualifies(
    kind: &str,
    value: Option<f64>,
    has_series: bool,
    validators: &Value,
) -> Option<(f64, Limits)> {
    if kind != "numeric" || has_series {
        return None;
    }
    let value = value?;
    let limits = limits_from_validators(validators);
    (!limits.is_empty()).then_some((value, limits))
}

/// Whether each phase (name, retry count), in order, is its name's final attempt in the
/// run: no attempt of the same name with a higher retry count (`IS_FINAL_ATTEMPT`).
pub(crate) fn final_attempts<'a>(
    phases: impl Iterator<Item = (&'a str, i64)> + Clone,
) -> Vec<bool> {
    phases
        .clone()
        .map(|(name, retry)| {
            !phases
                .clone()
                .any(|(other, other_retry)| other == name && other_retry > retry)
        })
        .collect()
}

/// What a point takes from its run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunFacts {
    pub run_id: Id,
    pub org_id: Id,
    pub procedure_id: Id,
    pub unit_id: Id,
    pub started_at: Ts,
    pub created_at: Ts,
}

/// What a point takes from its phase and measurement.
#[derive(Debug, Clone)]
pub(crate) struct PointDraft {
    pub measurement_id: Id,
    pub phase: String,
    pub phase_started_at: Ts,
    pub is_final: bool,
    pub measurement: String,
    pub units: Option<String>,
    pub value: f64,
    pub limits: Limits,
}

impl PointDraft {
    fn row(&self, run: &RunFacts) -> Vec<Arg> {
        vec![
            self.measurement_id.into(),
            run.run_id.into(),
            run.org_id.into(),
            run.procedure_id.into(),
            run.unit_id.into(),
            run.started_at.into(),
            run.created_at.into(),
            self.phase_started_at.into(),
            self.phase.clone().into(),
            self.measurement.clone().into(),
            self.units.clone().into(),
            Arg::Float(Some(self.value)),
            Arg::Float(self.limits.lsl),
            Arg::Float(self.limits.usl),
            Arg::Bool(Some(self.is_final)),
        ]
    }
}

/// Inserts the points of one run.
pub(crate) async fn insert(tx: &mut Tx, run: &RunFacts, drafts: &[PointDraft]) -> DbResult<()> {
    let rows: Vec<Vec<Arg>> = drafts.iter().map(|d| d.row(run)).collect();
    crate::db::runs::insert_rows(tx, POINT_INSERT, &rows, "").await
}

#[derive(FromRow)]
struct StoredRecord {
    measurement_id: Id,
    run_id: Id,
    org_id: Id,
    procedure_id: Id,
    unit_id: Id,
    run_started_at: Ts,
    run_created_at: Ts,
    phase_started_at: Ts,
    phase: String,
    measurement: String,
    units: Option<String>,
    value: f64,
    validators: String,
    is_final: bool,
}

/// Writes the missing points of stored measurements with ids after `after` (of
/// organization `org`, or all), at most `limit` records looked at; returns the last id
/// looked at, `None` when there were none.
async fn fill_batch(
    tx: &mut Tx,
    org: Option<Id>,
    after: Option<Id>,
    limit: i64,
) -> DbResult<Option<Id>> {
    let validators = match tx.dialect() {
        Dialect::Sqlite => "m.validators",
        Dialect::Postgres => "CAST(m.validators AS TEXT)",
    };
    let mut q = Sql::new(
        "SELECT m.id AS measurement_id, r.id AS run_id, r.org_id, r.procedure_id, r.unit_id,
            r.started_at AS run_started_at, r.created_at AS run_created_at,
            ph.started_at AS phase_started_at, ph.name AS phase, m.name AS measurement,
            m.units, m.value_number AS value, ",
    )
    .then(validators)
    .then(" AS validators, ")
    .then(IS_FINAL_ATTEMPT)
    .then(
        " AS is_final
         FROM measurements m JOIN phases ph ON ph.id = m.phase_id JOIN runs r ON r.id = m.run_id
         WHERE 1 = 1",
    )
    .then(NUMERIC_RECORDS);
    if let Some(after) = after {
        q.push(" AND m.id > ").push_bind(after);
    }
    if let Some(org) = org {
        q.push(" AND r.org_id = ").push_bind(org);
    }
    q.push(" ORDER BY m.id LIMIT ").push_bind(limit);
    let records: Vec<StoredRecord> = tx.fetch_all(q).await?;
    let Some(last) = records.last().map(|r| r.measurement_id) else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    for r in records {
        let parsed: Value = serde_json::from_str(&r.validators).unwrap_or_default();
        let Some((value, limits)) = qualifies("numeric", Some(r.value), false, &parsed) else {
            continue;
        };
        let run = RunFacts {
            run_id: r.run_id,
            org_id: r.org_id,
            procedure_id: r.procedure_id,
            unit_id: r.unit_id,
            started_at: r.run_started_at,
            created_at: r.run_created_at,
        };
        let draft = PointDraft {
            measurement_id: r.measurement_id,
            phase: r.phase,
            phase_started_at: r.phase_started_at,
            is_final: r.is_final,
            measurement: r.measurement,
            units: r.units,
            value,
            limits,
        };
        rows.push(draft.row(&run));
    }
    crate::db::runs::insert_rows(
        tx,
        POINT_INSERT,
        &rows,
        " ON CONFLICT (measurement_id) DO NOTHING",
    )
    .await?;
    Ok(Some(last))
}

/// Writes the points of every stored measurement of `org` that lacks one, inside `tx`
/// (an organization import: its rows and their points commit together).
pub(crate) async fn fill_org(tx: &mut Tx, org: Id) -> DbResult<()> {
    let mut after = None;
    while let Some(last) = fill_batch(tx, Some(org), after, BACKFILL_BATCH).await? {
        after = Some(last);
    }
    Ok(())
}

impl Db {
    /// Writes the points of every stored measurement that lacks one, a batch per
    /// transaction (idempotent: a crash halfway is finished by the next call).
    pub async fn fill_measurement_points(&self) -> DbResult<()> {
        let mut after = None;
        loop {
            let mut tx = self.begin().await?;
            let last = fill_batch(&mut tx, None, after, BACKFILL_BATCH).await?;
            tx.commit().await?;
            match last {
                Some(last) => after = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// At start, once after migration 0010: the points of rows written before it.
    pub async fn backfill_measurement_points(&self) -> DbResult<()> {
        let pending: Option<(String,)> = self
            .read()
            .fetch_optional(Sql::new(
                "SELECT name FROM pending_backfills WHERE name = 'measurement_points'",
            ))
            .await?;
        if pending.is_none() {
            return Ok(());
        }
        self.fill_measurement_points().await?;
        if self.dialect() == Dialect::Postgres {
            // Planner statistics for the rows just written, before the first analytics
            // call rather than whenever autovacuum gets to it.
            self.read()
                .execute(Sql::new("ANALYZE measurement_points"))
                .await?;
        }
        let mut tx = self.begin().await?;
        tx.execute(Sql::new(
            "DELETE FROM pending_backfills WHERE name = 'measurement_points'",
        ))
        .await?;
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_qualifies_with_a_number_and_a_limit() {
        let limits = json!([{"operator": ">=", "expected_value": 1.0}]);
        let (x, l) = qualifies("numeric", Some(2.0), false, &limits).expect("qualifies");
        assert_eq!((x, l.lsl, l.usl), (2.0, Some(1.0), None));
        assert!(qualifies("numeric", None, false, &limits).is_none());
        assert!(qualifies("string", Some(2.0), false, &limits).is_none());
        assert!(qualifies("numeric", Some(2.0), true, &limits).is_none());
        let no_limit = json!([{"operator": "==", "expected_value": 1.0}]);
        assert!(qualifies("numeric", Some(2.0), false, &no_limit).is_none());
        assert!(qualifies("numeric", Some(2.0), false, &Value::Null).is_none());
    }

    #[test]
    fn only_the_highest_retry_of_a_name_is_final() {
        let phases = [("a", 0), ("b", 0), ("a", 1), ("a", 1), ("c", 2)];
        let finals = final_attempts(phases.iter().map(|(n, r)| (*n, *r)));
        assert_eq!(finals, vec![false, true, true, true, true]);
    }
}
