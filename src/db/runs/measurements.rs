//! Measurements across runs: the measurement list (with typed value filters) and a
//! single measurement.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use super::filter::{limit_offset, order_by, push_run_filters, RunFilter};
use super::phases::IS_FINAL_ATTEMPT;
use super::read::{MeasurementRow, MEASUREMENT_COLUMNS};
use crate::db::error::{DbResult, StoreError};
use crate::db::{Db, Id, Sql, Ts};
use crate::values::{Page, SortOrder};

#[derive(Debug, Clone, FromRow)]
pub struct MeasurementListRow {
    pub id: Id,
    pub phase_name: String,
    pub measurement_name: String,
    pub started_at: Ts,
    pub value_number: Option<f64>,
    pub value_bool: Option<bool>,
    pub value_string: Option<String>,
    pub units: Option<String>,
    pub outcome: String,
    pub run_id: Id,
    pub serial_number: String,
    pub sample: Option<String>,
    pub measurement_type: String,
    pub retry_count: i64,
    pub is_final_attempt: bool,
    pub validators: Option<Json<Value>>,
}

/// Conditions of the measurement list. `run` holds the conditions on the run (its
/// `outcomes` are run outcomes; its duration bounds the run's duration).
#[derive(Debug, Clone, Default)]
pub struct MeasurementFilter {
    pub run: RunFilter,
    pub ids: Option<Vec<Id>>,
    pub phase_names: Vec<String>,
    pub measurement_names: Vec<String>,
    /// Bounds on the start of the measurement's phase.
    pub started_after: Option<Ts>,
    pub started_before: Option<Ts>,
    pub exclude_retries: bool,
    pub value_min: Option<f64>,
    pub value_max: Option<f64>,
    pub value_bool: Option<bool>,
    pub value_strings: Vec<String>,
    pub outcomes: Vec<String>,
    pub measurement_types: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementSort {
    #[default]
    StartedAt,
    Value,
    Outcome,
    SerialNumber,
    PhaseName,
    MeasurementName,
}

impl MeasurementSort {
    fn columns(self) -> &'static [&'static str] {
        match self {
            MeasurementSort::StartedAt => &["ph.started_at", "m.id"],
            // Measurements without a number come after all numbers ascending (and
            // before them descending), the same on both backends.
            MeasurementSort::Value => &["(m.value_number IS NULL)", "m.value_number", "m.id"],
            MeasurementSort::Outcome => &["m.outcome", "ph.started_at", "m.id"],
            MeasurementSort::SerialNumber => &["u.serial_key", "ph.started_at", "m.id"],
            MeasurementSort::PhaseName => &["ph.name", "ph.started_at", "m.id"],
            MeasurementSort::MeasurementName => &["m.name", "ph.started_at", "m.id"],
        }
    }
}

/// A measurement with its phase, run and procedure.
#[derive(Debug, Clone, FromRow)]
pub struct MeasurementDetail {
    #[sqlx(flatten)]
    pub measurement: MeasurementRow,
    pub phase_name: String,
    pub run_id: Id,
    pub run_outcome: String,
    pub serial_number: String,
    pub procedure_id: Id,
    pub procedure_name: String,
}

impl Db {
    pub async fn list_measurements(
        &self,
        org_id: Id,
        f: &MeasurementFilter,
        sort: MeasurementSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<Vec<MeasurementListRow>> {
        let keys = self.resolve_keys(org_id, &f.run).await?;
        if keys.matches_nothing() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(
            "SELECT m.id, ph.name AS phase_name, m.name AS measurement_name, ph.started_at,
                m.value_number, m.value_bool, m.value_string, m.units, m.outcome,
                r.id AS run_id, u.serial_number, u.sample, m.measurement_type,
                ph.retry_count, ",
        )
        .then(IS_FINAL_ATTEMPT)
        .then(
            " AS is_final_attempt, m.validators
             FROM measurements m
             JOIN phases ph ON ph.id = m.phase_id
             JOIN runs r ON r.id = m.run_id
             JOIN units u ON u.id = r.unit_id
             WHERE r.org_id = ",
        );
        q.push_bind(org_id);
        push_run_filters(&mut q, self.dialect(), &f.run, &keys);
        push_measurement_filters(&mut q, f);
        order_by(&mut q, sort.columns(), order);
        limit_offset(&mut q, page);
        self.read().fetch_all(q).await
    }

    /// Measurement `id` of the organization (404 "Measurement not found").
    pub async fn measurement(&self, org_id: Id, id: Id) -> DbResult<MeasurementDetail> {
        self.read()
            .fetch_optional(
                Sql::new("SELECT ")
                    .then(MEASUREMENT_COLUMNS)
                    .then(
                        ", ph.name AS phase_name, r.id AS run_id,
                        r.outcome AS run_outcome, u.serial_number, pr.id AS procedure_id,
                        pr.name AS procedure_name
                     FROM measurements m
                     JOIN phases ph ON ph.id = m.phase_id
                     JOIN runs r ON r.id = m.run_id
                     JOIN units u ON u.id = r.unit_id
                     JOIN procedures pr ON pr.id = r.procedure_id
                     WHERE r.org_id = $1 AND m.id = $2",
                    )
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Measurement not found"))
    }
}

fn push_measurement_filters(q: &mut Sql, f: &MeasurementFilter) {
    q.and_id_in("m.id", &f.ids);
    q.and_text_in("ph.name", &f.phase_names)
        .and_text_in("m.name", &f.measurement_names)
        .and_text_in("m.value_string", &f.value_strings)
        .and_text_in("m.outcome", &f.outcomes)
        .and_text_in("m.measurement_type", &f.measurement_types);
    if let Some(t) = f.started_after {
        q.push(" AND ph.started_at >= ").push_bind(t);
    }
    if let Some(t) = f.started_before {
        q.push(" AND ph.started_at <= ").push_bind(t);
    }
    if let Some(v) = f.value_min {
        q.push(" AND m.value_number >= ").push_bind(v);
    }
    if let Some(v) = f.value_max {
        q.push(" AND m.value_number <= ").push_bind(v);
    }
    if let Some(b) = f.value_bool {
        q.push(" AND m.value_bool = ").push_bind(b);
    }
    if f.exclude_retries {
        q.push(" AND ").push(IS_FINAL_ATTEMPT);
    }
}
