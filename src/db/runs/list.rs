//! Listing runs (BEHAVIOR.md §1.4).
//!
//! Built for large tables (checked with `tests/runs_plans.rs` on a million runs). One
//! statement in two steps: the page's run ids first, from the runs table and only the
//! joins the filters and order need; then everything a row shows, for those ids only.
//! - Unfiltered pages walk the index of the sort key (`runs_org_started`,
//!   `runs_org_created`, `runs_org_duration`, `runs_org_outcome_started`) and stop after
//!   one page.
//! - Sorts on the unit, part or revision drive the join from those tables' unique
//!   indexes into `runs_unit_started` / `runs_revision`, which again streams in order.
//! - Filters on natural keys (serials, part, revision, batch numbers, version tags) are
//!   first resolved to ids (`filter::KeyIds`) and reach the runs through
//!   `runs_unit_started`, `runs_revision`, `runs_batch`, `runs_version` or
//!   `runs_procedure_started` (each `(key, started_at, id)`, so one value streams in
//!   start order): the cost is bounded by the runs that match, not by the table.

use super::filter::{limit_offset, order_by, push_run_filters, KeyIds, RunFilter};
use super::read::{RunRow, RUN_COLUMNS};
use crate::db::error::DbResult;
use crate::db::{Db, Dialect, Id, Sql};
use crate::values::{Page, SortOrder};

/// `sort_by` of the run list. Every order ends with the run id, in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunSort {
    #[default]
    StartedAt,
    CreatedAt,
    Duration,
    Outcome,
    SerialNumber,
    PartNumber,
    RevisionNumber,
}

impl RunSort {
    /// The order: the key, then keys that make it total, ending with the run id.
    fn columns(self) -> &'static [&'static str] {
        match self {
            RunSort::StartedAt => &["r.started_at", "r.id"],
            RunSort::CreatedAt => &["r.created_at", "r.id"],
            RunSort::Duration => &["r.duration_us", "r.id"],
            RunSort::Outcome => &["r.outcome", "r.started_at", "r.id"],
            // Serials are unique (ci) in an organization: each unit's runs by start.
            RunSort::SerialNumber => &["u.serial_key", "r.started_at", "r.id"],
            RunSort::PartNumber => &["p.number_key", "rev.number_key", "r.started_at", "r.id"],
            RunSort::RevisionNumber => &["rev.number_key", "rev.part_id", "r.started_at", "r.id"],
        }
    }

    /// The tables a page is read from for this order, and their join conditions. Sorts
    /// on a joined table start from that table's unique index: `CROSS JOIN` keeps
    /// SQLite from reordering the loops (Postgres plans it like any inner join), so
    /// that the rows come out already in order.
    /// Returns the tables before `runs r` and the join conditions.
    fn driving_tables(self) -> (&'static str, &'static str) {
        match self {
            RunSort::SerialNumber => (
                "units u CROSS JOIN ",
                " AND u.org_id = r.org_id AND r.unit_id = u.id",
            ),
            RunSort::PartNumber => (
                "parts p CROSS JOIN revisions rev CROSS JOIN ",
                " AND p.org_id = r.org_id AND rev.part_id = p.id AND r.revision_id = rev.id",
            ),
            RunSort::RevisionNumber => (
                "revisions rev CROSS JOIN ",
                " AND rev.org_id = r.org_id AND r.revision_id = rev.id",
            ),
            _ => ("", ""),
        }
    }
}

/// Everything a run row shows, joined onto the runs of one page (`r`).
const RUN_PAGE_JOINS: &str = " JOIN procedures pr ON pr.id = r.procedure_id
    LEFT JOIN procedure_versions v ON v.id = r.version_id
    JOIN units u ON u.id = r.unit_id
    JOIN revisions rev ON rev.id = r.revision_id
    JOIN parts p ON p.id = rev.part_id
    LEFT JOIN batches b ON b.id = r.batch_id
    LEFT JOIN users cu ON cu.id = r.created_by_user_id
    LEFT JOIN stations cs ON cs.id = r.created_by_station_id
    LEFT JOIN users op ON op.id = r.operated_by_user_id ";

/// DIALECT: SQLite plans without statistics (tofulab does not run ANALYZE) and, given a
/// filter on a key with its own index, still prefers walking the whole organization in
/// sort order. Name the index of the most selective filter instead, so that the cost is
/// bounded by the runs that match. Postgres chooses from its statistics.
fn sqlite_index_hint(f: &RunFilter, keys: &KeyIds, sort: RunSort) -> Option<&'static str> {
    if !matches!(
        sort,
        RunSort::StartedAt | RunSort::CreatedAt | RunSort::Duration | RunSort::Outcome
    ) || f.ids.is_some()
    {
        return None;
    }
    let given = |ids: &Option<Vec<Id>>| ids.as_ref().is_some_and(|v| !v.is_empty());
    if given(&keys.units) {
        Some("runs_unit_started")
    } else if given(&keys.batches) {
        Some("runs_batch")
    } else if given(&keys.revisions) {
        Some("runs_revision")
    } else if given(&keys.versions) {
        Some("runs_version")
    } else if given(&f.procedure_ids) {
        Some("runs_procedure_started")
    } else {
        None
    }
}

impl Db {
    /// One page of the organization's runs (one row more than the page, for
    /// `paginate`).
    pub async fn list_runs(
        &self,
        org_id: Id,
        filter: &RunFilter,
        sort: RunSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<Vec<RunRow>> {
        match self
            .list_runs_query(org_id, filter, sort, order, page)
            .await?
        {
            Some(q) => self.read().fetch_all(q).await,
            None => Ok(Vec::new()),
        }
    }

    /// The statement behind `list_runs` (public so that its plan can be checked), or
    /// `None` when a filter names only things that do not exist.
    pub async fn list_runs_query(
        &self,
        org_id: Id,
        filter: &RunFilter,
        sort: RunSort,
        order: SortOrder,
        page: Page,
    ) -> DbResult<Option<Sql>> {
        let keys = self.resolve_keys(org_id, filter).await?;
        if keys.matches_nothing() {
            return Ok(None);
        }
        let dialect = self.dialect();
        let (driving, join_conditions) = sort.driving_tables();
        let mut q = Sql::new("SELECT ")
            .then(RUN_COLUMNS)
            .then(" FROM (SELECT r.id FROM ")
            .then(driving)
            .then("runs r");
        if dialect == Dialect::Sqlite {
            if let Some(index) = sqlite_index_hint(filter, &keys, sort) {
                q.push(" INDEXED BY ").push(index);
            }
        }
        let search = filter
            .search_query
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        if (search || !filter.samples.is_empty()) && sort != RunSort::SerialNumber {
            q.push(" JOIN units u ON u.id = r.unit_id");
        }
        if search {
            if !matches!(sort, RunSort::PartNumber | RunSort::RevisionNumber) {
                q.push(" JOIN revisions rev ON rev.id = r.revision_id");
            }
            if sort != RunSort::PartNumber {
                q.push(" JOIN parts p ON p.id = rev.part_id");
            }
            q.push(" JOIN procedures pr ON pr.id = r.procedure_id");
        }
        q.push(" WHERE r.org_id = ");
        q.push_bind(org_id).push(join_conditions);
        push_run_filters(&mut q, dialect, filter, &keys);
        order_by(&mut q, sort.columns(), order);
        limit_offset(&mut q, page);
        q.push(") page JOIN runs r ON r.id = page.id")
            .push(RUN_PAGE_JOINS);
        order_by(&mut q, sort.columns(), order);
        Ok(Some(q))
    }
}
