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
use crate::db::{Db, Dialect, Id, Sql};
use crate::error::ApiResult;
use crate::values::{Page, SortOrder};

/// `sort_by` of the run list. Every order ends with the run id, in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
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
    fn driving_tables(self) -> (&'static str, &'static str) {
        match self {
            RunSort::SerialNumber => (
                "units u CROSS JOIN runs r",
                " AND u.org_id = r.org_id AND r.unit_id = u.id",
            ),
            RunSort::PartNumber => (
                "parts p CROSS JOIN revisions rev CROSS JOIN runs r",
                " AND p.org_id = r.org_id AND rev.part_id = p.id AND r.revision_id = rev.id",
            ),
            RunSort::RevisionNumber => (
                "revisions rev CROSS JOIN runs r",
                " AND rev.org_id = r.org_id AND r.revision_id = rev.id",
            ),
            _ => ("runs r", ""),
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

/// A key whose index (`(key, started_at, id)`, or `(org_id, outcome, started_at, id)`)
/// a SQLite plan can reach the runs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Units,
    Batches,
    Revisions,
    Versions,
    Procedures,
    Outcomes,
}

impl Key {
    fn index(self) -> &'static str {
        match self {
            Key::Units => "runs_unit_started",
            Key::Batches => "runs_batch",
            Key::Revisions => "runs_revision",
            Key::Versions => "runs_version",
            Key::Procedures => "runs_procedure_started",
            Key::Outcomes => "runs_org_outcome_started",
        }
    }

    /// How many values the filter gives for this key.
    fn count(self, f: &RunFilter, keys: &KeyIds) -> usize {
        let n = |ids: &Option<Vec<Id>>| ids.as_ref().map_or(0, Vec::len);
        match self {
            Key::Units => n(&keys.units),
            Key::Batches => n(&keys.batches),
            Key::Revisions => n(&keys.revisions),
            Key::Versions => n(&keys.versions),
            Key::Procedures => n(&f.procedure_ids),
            Key::Outcomes => f.outcomes.len(),
        }
    }

    /// The filter with only the `i`-th value of this key.
    fn only(self, f: &RunFilter, keys: &KeyIds, i: usize) -> (RunFilter, KeyIds) {
        let (mut f, mut keys) = (f.clone(), keys.clone());
        let pick = |ids: &mut Option<Vec<Id>>| {
            if let Some(v) = ids {
                *v = vec![v[i]];
            }
        };
        match self {
            Key::Units => pick(&mut keys.units),
            Key::Batches => pick(&mut keys.batches),
            Key::Revisions => pick(&mut keys.revisions),
            Key::Versions => pick(&mut keys.versions),
            Key::Procedures => pick(&mut f.procedure_ids),
            Key::Outcomes => f.outcomes = vec![f.outcomes[i].clone()],
        }
        (f, keys)
    }
}

/// DIALECT: SQLite plans without statistics (tofulab does not run ANALYZE) and, given a
/// filter on a key with its own index, still prefers walking the whole organization in
/// sort order. Name the index of the most selective filter instead, so that the cost is
/// bounded by the runs that match. Postgres chooses from its statistics.
fn sqlite_index_hint(f: &RunFilter, keys: &KeyIds, sort: RunSort) -> Option<Key> {
    if !matches!(
        sort,
        RunSort::StartedAt | RunSort::CreatedAt | RunSort::Duration | RunSort::Outcome
    ) || f.ids.is_some()
    {
        return None;
    }
    let given = |ids: &Option<Vec<Id>>| ids.as_ref().is_some_and(|v| !v.is_empty());
    if given(&keys.units) {
        Some(Key::Units)
    } else if given(&keys.batches) {
        Some(Key::Batches)
    } else if given(&keys.revisions) {
        Some(Key::Revisions)
    } else if given(&keys.versions) {
        Some(Key::Versions)
    } else if given(&f.procedure_ids) {
        Some(Key::Procedures)
    } else {
        None
    }
}

/// At most this many values of a key are read as one ordered branch each (below).
const MAX_BRANCHES: usize = 16;

/// DIALECT: on SQLite, a start-ordered page filtered on several values of an indexed key
/// (a part's revisions, several serials, several outcomes) is read as one branch per
/// value, each streaming from `(key, started_at, id)` and stopping after
/// `offset + limit + 1` rows, merged by a `UNION ALL`. One index range per value, sorted
/// as a whole, would read and sort every matching run instead (a second at a million
/// runs for a part). Returns the key to split on, if that applies.
fn sqlite_split(f: &RunFilter, keys: &KeyIds, sort: RunSort) -> Option<Key> {
    if sort != RunSort::StartedAt {
        return None;
    }
    let key = match sqlite_index_hint(f, keys, sort) {
        Some(key) => key,
        // Several outcomes and no other key: their index is the one to split.
        None if f.ids.is_none() && f.outcomes.len() > 1 => Key::Outcomes,
        None => return None,
    };
    (2..=MAX_BRANCHES)
        .contains(&key.count(f, keys))
        .then_some(key)
}

/// `SELECT columns FROM … WHERE …` for the run ids of a page: the runs table (through
/// index `hint` on SQLite) and only the joins the filters and order need.
#[allow(clippy::too_many_arguments)]
fn push_page_select(
    q: &mut Sql,
    columns: &str,
    org_id: Id,
    dialect: Dialect,
    filter: &RunFilter,
    keys: &KeyIds,
    sort: RunSort,
    hint: Option<Key>,
) {
    let (driving, join_conditions) = sort.driving_tables();
    let mut from = driving.to_string();
    if let Some(key) = hint {
        from = from.replacen("runs r", &format!("runs r INDEXED BY {}", key.index()), 1);
    }
    let search = filter
        .search_query
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    if (search || !filter.samples.is_empty()) && sort != RunSort::SerialNumber {
        from.push_str(" JOIN units u ON u.id = r.unit_id");
    }
    if search {
        if !matches!(sort, RunSort::PartNumber | RunSort::RevisionNumber) {
            from.push_str(" JOIN revisions rev ON rev.id = r.revision_id");
        }
        if sort != RunSort::PartNumber {
            from.push_str(" JOIN parts p ON p.id = rev.part_id");
        }
        from.push_str(" JOIN procedures pr ON pr.id = r.procedure_id");
    }
    q.push(&format!("SELECT {columns} FROM {from} WHERE r.org_id = "))
        .push_bind(org_id)
        .push(join_conditions);
    push_run_filters(q, dialect, filter, keys);
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
    ) -> ApiResult<Vec<RunRow>> {
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
    ) -> ApiResult<Option<Sql>> {
        let keys = self.resolve_keys(org_id, filter).await?;
        if keys.matches_nothing() {
            return Ok(None);
        }
        let dialect = self.dialect();
        let split = match dialect {
            Dialect::Sqlite => sqlite_split(filter, &keys, sort),
            Dialect::Postgres => None,
        };
        let mut q = Sql::new(format!("SELECT {RUN_COLUMNS} FROM ("));
        match split {
            None => {
                let hint = match dialect {
                    Dialect::Sqlite => sqlite_index_hint(filter, &keys, sort),
                    Dialect::Postgres => None,
                };
                push_page_select(&mut q, "r.id", org_id, dialect, filter, &keys, sort, hint);
                order_by(&mut q, sort.columns(), order);
                limit_offset(&mut q, page);
            }
            Some(key) => {
                for i in 0..key.count(filter, &keys) {
                    if i > 0 {
                        q.push(" UNION ALL ");
                    }
                    let (f, k) = key.only(filter, &keys, i);
                    q.push("SELECT * FROM (");
                    let columns = "r.id, r.started_at";
                    push_page_select(&mut q, columns, org_id, dialect, &f, &k, sort, Some(key));
                    order_by(&mut q, sort.columns(), order);
                    q.push(" LIMIT ")
                        .push_bind(page.offset + page.fetch_limit())
                        .push(")");
                }
                order_by(&mut q, &["started_at", "id"], order);
                limit_offset(&mut q, page);
            }
        }
        q.push(") page JOIN runs r ON r.id = page.id")
            .push(RUN_PAGE_JOINS);
        order_by(&mut q, sort.columns(), order);
        Ok(Some(q))
    }
}
