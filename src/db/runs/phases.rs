//! Phases across runs: the phase list and a single phase with its measurements.

use sqlx::FromRow;

use super::filter::{limit_offset, order_by, push_run_filters, RunFilter};
use super::read::{MeasurementRow, PhaseRow, MEASUREMENT_COLUMNS, PHASE_COLUMNS};
use crate::db::error::{DbResult, StoreError};
use crate::db::{Db, Id, Sql, Ts};
use crate::values::{Page, SortOrder};

/// True when no later attempt (higher `retry_count`) of the same phase name exists in
/// the run of phase `ph`.
pub(crate) const IS_FINAL_ATTEMPT: &str = "NOT EXISTS (SELECT 1 FROM phases later
    WHERE later.run_id = ph.run_id AND later.name = ph.name
      AND later.retry_count > ph.retry_count)";

#[derive(Debug, Clone, FromRow)]
pub struct PhaseListRow {
    pub id: Id,
    pub name: String,
    pub outcome: String,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub duration_us: i64,
    pub retry_count: i64,
    pub sequence_path: Option<String>,
    pub is_final_attempt: bool,
    pub run_id: Id,
    pub run_outcome: String,
    pub serial_number: String,
    pub sample: Option<String>,
}

/// Conditions of the phase list. `run` holds the conditions on the phase's run (its
/// `outcomes` are run outcomes, its `ids` run ids).
#[derive(Debug, Clone, Default)]
pub struct PhaseFilter {
    pub run: RunFilter,
    pub ids: Option<Vec<Id>>,
    pub names: Vec<String>,
    pub outcomes: Vec<String>,
    pub sequence_paths: Vec<String>,
    pub started_after: Option<Ts>,
    pub started_before: Option<Ts>,
    pub duration_min_us: Option<i64>,
    pub duration_max_us: Option<i64>,
    pub exclude_retries: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseSort {
    #[default]
    StartedAt,
    Duration,
    Outcome,
    SerialNumber,
    PhaseName,
}

impl PhaseSort {
    fn columns(self) -> &'static [&'static str] {
        match self {
            PhaseSort::StartedAt => &["ph.started_at", "ph.id"],
            PhaseSort::Duration => &["ph.duration_us", "ph.id"],
            PhaseSort::Outcome => &["ph.outcome", "ph.started_at", "ph.id"],
            PhaseSort::SerialNumber => &["u.serial_key", "ph.started_at", "ph.id"],
            PhaseSort::PhaseName => &["ph.name", "ph.started_at", "ph.id"],
        }
    }
}

/// A phase with its run's serial and procedure, and its measurements in request order.
pub struct PhaseDetail {
    pub phase: PhaseRow,
    pub serial_number: String,
    pub procedure_id: Id,
    pub procedure_name: String,
    pub measurements: Vec<MeasurementRow>,
}

#[derive(FromRow)]
struct PhaseHead {
    #[sqlx(flatten)]
    phase: PhaseRow,
    serial_number: String,
    procedure_id: Id,
    procedure_name: String,
}

impl Db {
    pub async fn list_phases(
        &self,
        org_id: Id,
        f: &PhaseFilter,
        sort: PhaseSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<Vec<PhaseListRow>> {
        let keys = self.resolve_keys(org_id, &f.run).await?;
        if keys.matches_nothing() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(
            "SELECT ph.id, ph.name, ph.outcome, ph.started_at, ph.ended_at, ph.duration_us,
                ph.retry_count, ph.sequence_path, ",
        )
        .then(IS_FINAL_ATTEMPT)
        .then(
            " AS is_final_attempt,
                r.id AS run_id, r.outcome AS run_outcome, u.serial_number, u.sample
             FROM phases ph
             JOIN runs r ON r.id = ph.run_id
             JOIN units u ON u.id = r.unit_id
             WHERE r.org_id = ",
        );
        q.push_bind(org_id);
        push_run_filters(&mut q, self.dialect(), &f.run, &keys);
        push_phase_filters(&mut q, f);
        order_by(&mut q, sort.columns(), order);
        limit_offset(&mut q, page);
        self.read().fetch_all(q).await
    }

    /// Phase `id` of the organization (404 "Phase not found").
    pub async fn phase(&self, org_id: Id, id: Id) -> DbResult<PhaseDetail> {
        let mut r = self.read();
        let head: PhaseHead = r
            .fetch_optional(
                Sql::new("SELECT ")
                    .then(PHASE_COLUMNS)
                    .then(
                        ", u.serial_number, pr.id AS procedure_id,
                        pr.name AS procedure_name
                     FROM phases ph
                     JOIN runs r ON r.id = ph.run_id
                     JOIN units u ON u.id = r.unit_id
                     JOIN procedures pr ON pr.id = r.procedure_id
                     WHERE r.org_id = $1 AND ph.id = $2",
                    )
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Phase not found"))?;
        let measurements = r
            .fetch_all(
                Sql::new("SELECT ")
                    .then(MEASUREMENT_COLUMNS)
                    .then(
                        " FROM measurements m
                     WHERE m.phase_id = $1 ORDER BY m.position",
                    )
                    .bind(id),
            )
            .await?;
        Ok(PhaseDetail {
            phase: head.phase,
            serial_number: head.serial_number,
            procedure_id: head.procedure_id,
            procedure_name: head.procedure_name,
            measurements,
        })
    }
}

fn push_phase_filters(q: &mut Sql, f: &PhaseFilter) {
    q.and_id_in("ph.id", &f.ids);
    q.and_text_in("ph.name", &f.names)
        .and_text_in("ph.outcome", &f.outcomes)
        .and_text_in("ph.sequence_path", &f.sequence_paths);
    if let Some(t) = f.started_after {
        q.push(" AND ph.started_at >= ").push_bind(t);
    }
    if let Some(t) = f.started_before {
        q.push(" AND ph.started_at <= ").push_bind(t);
    }
    if let Some(us) = f.duration_min_us {
        q.push(" AND ph.duration_us >= ").push_bind(us);
    }
    if let Some(us) = f.duration_max_us {
        q.push(" AND ph.duration_us <= ").push_bind(us);
    }
    if f.exclude_retries {
        q.push(" AND ").push(IS_FINAL_ATTEMPT);
    }
}
