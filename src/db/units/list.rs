//! The unit list: filters on the unit, its part, revision, batch, creator, metadata and
//! its runs; sorts including by last run.

use sqlx::FromRow;

use super::{unit_select, UnitRow, UNIT_JOINS};
use crate::db::error::DbResult;
use crate::db::metadata::push_filter;
use crate::db::{Db, Id, SortKey, Sql, Ts};
use crate::metadata::Condition;
use crate::values::{contains_pattern, Page, SortOrder};

/// How many children a list item shows.
pub const LIST_CHILDREN: i64 = 10;

/// A unit of the list with its last run (by start time).
#[derive(Debug, Clone, FromRow)]
pub struct ListedUnitRow {
    #[sqlx(flatten)]
    pub unit: UnitRow,
    pub lr_id: Option<Id>,
    pub lr_outcome: Option<String>,
    pub lr_started_at: Option<Ts>,
    pub lr_ended_at: Option<Ts>,
    pub lr_procedure_id: Option<Id>,
    pub lr_procedure_name: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct UnitChildRow {
    pub parent_id: Id,
    pub id: Id,
    pub serial_number: String,
}

/// `samples` filter values: `production` is a unit without a sample flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleFilter {
    Production,
    Flag(String),
}

/// Filters of `GET /v2/units`. `Some(empty)` id lists match nothing (no valid id given).
///
/// Run filters (`procedure_ids`, `outcomes`, `started_after`, `started_before`) select
/// the unit's *matching runs*: a unit is listed when it has at least one run meeting all
/// of them. `run_count_min`/`run_count_max` bound the number of matching runs (all of
/// the unit's runs when no run filter is given).
#[derive(Debug, Default)]
pub struct UnitFilter {
    pub ids: Option<Vec<Id>>,
    pub serial_numbers: Vec<String>,
    pub part_numbers: Vec<String>,
    pub revision_numbers: Vec<String>,
    pub batch_numbers: Vec<String>,
    pub procedure_ids: Option<Vec<Id>>,
    pub outcomes: Vec<String>,
    pub started_after: Option<Ts>,
    pub started_before: Option<Ts>,
    pub run_count_min: Option<i64>,
    pub run_count_max: Option<i64>,
    pub created_after: Option<Ts>,
    pub created_before: Option<Ts>,
    pub created_by_user_ids: Option<Vec<Id>>,
    pub created_by_station_ids: Option<Vec<Id>>,
    pub exclude_units_with_parent: bool,
    pub samples: Vec<SampleFilter>,
    pub search_query: Option<String>,
    pub metadata: Vec<Condition>,
}

impl UnitFilter {
    fn has_run_filter(&self) -> bool {
        self.procedure_ids.is_some()
            || !self.outcomes.is_empty()
            || self.started_after.is_some()
            || self.started_before.is_some()
    }

    /// ` AND …` conditions on the runs table under the alias whose columns `r` names.
    fn push_run_conditions(&self, q: &mut Sql, r: RunColumns) {
        q.and_id_in(r.procedure_id, &self.procedure_ids)
            .and_text_in(r.outcome, &self.outcomes);
        if let Some(t) = self.started_after {
            q.push(" AND ").push(r.started_at).push(" >= ").push_bind(t);
        }
        if let Some(t) = self.started_before {
            q.push(" AND ").push(r.started_at).push(" <= ").push_bind(t);
        }
    }
}

/// The run columns the unit list filters on, under one table alias.
#[derive(Debug, Clone, Copy)]
struct RunColumns {
    procedure_id: &'static str,
    outcome: &'static str,
    started_at: &'static str,
}

/// Runs of the `EXISTS` filter (`fr`) and of the run count (`cr`).
const FILTERED_RUN: RunColumns = RunColumns {
    procedure_id: "fr.procedure_id",
    outcome: "fr.outcome",
    started_at: "fr.started_at",
};
const COUNTED_RUN: RunColumns = RunColumns {
    procedure_id: "cr.procedure_id",
    outcome: "cr.outcome",
    started_at: "cr.started_at",
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnitSort {
    SerialNumber,
    #[default]
    CreatedAt,
    LastRunAt,
    PartNumber,
    LastRunProcedure,
}

impl Db {
    /// A page of units with each one's last run, and up to `LIST_CHILDREN` children of
    /// each.
    pub async fn list_units(
        &self,
        org_id: Id,
        f: &UnitFilter,
        sort: UnitSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<(Vec<ListedUnitRow>, Vec<UnitChildRow>)> {
        let dialect = self.dialect();
        let mut q = unit_select();
        q.push(
            ", lr.id AS lr_id, lr.outcome AS lr_outcome, lr.started_at AS lr_started_at,
               lr.ended_at AS lr_ended_at, lrp.id AS lr_procedure_id,
               lrp.name AS lr_procedure_name",
        );
        q.push(UNIT_JOINS);
        q.push(
            " LEFT JOIN runs lr ON lr.id = (SELECT r2.id FROM runs r2 WHERE r2.unit_id = u.id
                 ORDER BY r2.started_at DESC, r2.id DESC LIMIT 1)
              LEFT JOIN procedures lrp ON lrp.id = lr.procedure_id",
        );
        q.push(" WHERE u.org_id = ").push_bind(org_id);
        q.and_id_in("u.id", &f.ids);
        q.and_key_in("u.serial_key", &f.serial_numbers);
        q.and_key_in("p.number_key", &f.part_numbers);
        q.and_key_in("rv.number_key", &f.revision_numbers);
        q.and_key_in("b.number_key", &f.batch_numbers);
        q.and_id_in("u.created_by_user_id", &f.created_by_user_ids);
        q.and_id_in("u.created_by_station_id", &f.created_by_station_ids);
        if let Some(t) = f.created_after {
            q.push(" AND u.created_at >= ").push_bind(t);
        }
        if let Some(t) = f.created_before {
            q.push(" AND u.created_at <= ").push_bind(t);
        }
        if f.exclude_units_with_parent {
            q.push(" AND u.parent_id IS NULL");
        }
        if !f.samples.is_empty() {
            let flags: Vec<&str> = f
                .samples
                .iter()
                .filter_map(|s| match s {
                    SampleFilter::Flag(flag) => Some(flag.as_str()),
                    SampleFilter::Production => None,
                })
                .collect();
            q.push(" AND (");
            if f.samples.contains(&SampleFilter::Production) {
                q.push("u.sample IS NULL OR ");
            }
            if flags.is_empty() {
                q.push("1 = 0)");
            } else {
                q.push("u.sample IN ").push_tuple(flags).push(")");
            }
        }
        if let Some(s) = &f.search_query {
            let pat = contains_pattern(s);
            q.push(" AND (u.serial_key LIKE ")
                .push_bind(pat.as_str())
                .push(" ESCAPE '\\' OR p.number_key LIKE ")
                .push_bind(pat.as_str())
                .push(" ESCAPE '\\')");
        }
        if f.has_run_filter() {
            q.push(" AND EXISTS (SELECT 1 FROM runs fr WHERE fr.unit_id = u.id");
            f.push_run_conditions(&mut q, FILTERED_RUN);
            q.push(")");
        }
        for (bound, op) in [(f.run_count_min, ">="), (f.run_count_max, "<=")] {
            if let Some(n) = bound {
                q.push(" AND (SELECT COUNT(*) FROM runs cr WHERE cr.unit_id = u.id");
                f.push_run_conditions(&mut q, COUNTED_RUN);
                q.push(") ").push(op).push(" ").push_bind(n);
            }
        }
        push_filter(&mut q, dialect, "u.metadata", &f.metadata);

        // Units without runs sort as the oldest.
        let key = match sort {
            UnitSort::SerialNumber => SortKey::text("u.serial_key"),
            UnitSort::CreatedAt => SortKey::plain("u.created_at"),
            UnitSort::PartNumber => SortKey::text("p.number_key"),
            UnitSort::LastRunAt => SortKey::plain("lr.started_at").nulls_oldest(),
            UnitSort::LastRunProcedure => SortKey::text("lrp.name_key").nulls_oldest(),
        };
        q.order_and_page(dialect, key, "u.id", order, page);

        let mut r = self.read();
        let units: Vec<ListedUnitRow> = r.fetch_all(q).await?;
        let ids: Vec<Id> = units.iter().map(|u| u.unit.id).collect();
        let children = if ids.is_empty() {
            Vec::new()
        } else {
            let mut q = Sql::new(
                "SELECT parent_id, id, serial_number FROM (
                    SELECT c.parent_id, c.id, c.serial_number, c.created_at,
                        ROW_NUMBER() OVER (PARTITION BY c.parent_id
                                           ORDER BY c.created_at, c.id) AS rn
                    FROM units c WHERE c.parent_id IN ",
            );
            q.push_tuple(ids.iter().copied())
                .push(") ranked WHERE rn <= ")
                .push_bind(LIST_CHILDREN)
                .push(" ORDER BY created_at, id");
            r.fetch_all(q).await?
        };
        Ok((units, children))
    }
}
