//! Listing runs (BEHAVIOR.md §1.4) and the run filters that the phase, measurement and
//! log lists share.
//!
//! Built for large tables: filters on natural keys (serials, part, revision, batch
//! numbers, version tags) are resolved through their small tables in subqueries, so the
//! runs table is reached through `runs_unit_started`, `runs_revision`, `runs_batch`,
//! `runs_version` or `runs_procedure_started`; unfiltered pages walk the index of the
//! sort key (`runs_org_started`, `runs_org_created`, `runs_org_duration`,
//! `runs_org_outcome_started`) and stop after one page.

use super::read::{RunRow, RUN_COLUMNS, RUN_JOINS};
use crate::db::{ci_key, Db, Dialect, Id, Sql, Ts};
use crate::error::ApiResult;
use crate::values::{contains_pattern, like_escape, Page, SortOrder};

/// Conditions on the run (alias `r`) and its unit (`u`). Empty lists and `None` mean
/// "no condition"; an id list that held only malformed ids is `Some(vec![])` and
/// matches nothing.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub ids: Option<Vec<Id>>,
    pub outcomes: Vec<String>,
    pub procedure_ids: Option<Vec<Id>>,
    pub procedure_versions: Vec<String>,
    pub serial_numbers: Vec<String>,
    pub part_numbers: Vec<String>,
    pub revision_numbers: Vec<String>,
    pub batch_numbers: Vec<String>,
    pub duration_min_us: Option<i64>,
    pub duration_max_us: Option<i64>,
    pub started_after: Option<Ts>,
    pub started_before: Option<Ts>,
    pub ended_after: Option<Ts>,
    pub ended_before: Option<Ts>,
    pub created_after: Option<Ts>,
    pub created_before: Option<Ts>,
    pub created_by_user_ids: Option<Vec<Id>>,
    pub created_by_station_ids: Option<Vec<Id>>,
    pub operated_by_ids: Option<Vec<Id>>,
    pub operated_by_names: Vec<String>,
    pub execution_ids: Vec<String>,
    pub slot_keys: Vec<String>,
    pub slot_names: Vec<String>,
    pub deployment_ids: Vec<String>,
    /// Unit samples: `golden`, `failing`, `ignored`, or `production` for none.
    pub samples: Vec<String>,
    /// Substring of the serial, procedure name or part number, or prefix of the run id.
    pub search_query: Option<String>,
    pub metadata: Vec<MetadataCondition>,
}

/// One key of a metadata filter.
#[derive(Debug, Clone)]
pub struct MetadataCondition {
    pub key: String,
    pub test: MetadataTest,
}

#[derive(Debug, Clone)]
pub enum MetadataTest {
    /// A string value equal to one of these.
    In(Vec<String>),
    /// A string value containing this (ci).
    Contains(String),
    /// A numeric value compared with `op` (`>=`, `<=`, `>`, `<`, `=`).
    Number(&'static str, f64),
    /// A boolean value equal to this.
    Bool(bool),
}

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
    fn columns(self) -> &'static [&'static str] {
        match self {
            RunSort::StartedAt => &["r.started_at", "r.id"],
            RunSort::CreatedAt => &["r.created_at", "r.id"],
            RunSort::Duration => &["r.duration_us", "r.id"],
            RunSort::Outcome => &["r.outcome", "r.started_at", "r.id"],
            RunSort::SerialNumber => &["u.serial_key", "r.started_at", "r.id"],
            RunSort::PartNumber => &["p.number_key", "r.started_at", "r.id"],
            RunSort::RevisionNumber => &["rev.number_key", "r.started_at", "r.id"],
        }
    }
}

/// `ORDER BY` over `columns`, all in direction `order`.
pub(super) fn order_by(q: &mut Sql, columns: &[&str], order: SortOrder) {
    q.push(" ORDER BY ");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(c).push(" ").push(order.sql());
    }
}

pub(super) fn limit_offset(q: &mut Sql, page: Page) {
    q.push(" LIMIT ")
        .push_bind(page.fetch_limit())
        .push(" OFFSET ")
        .push_bind(page.offset);
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
        let q = list_runs_sql(self.dialect(), org_id, filter, sort, order, page);
        self.read().fetch_all(q).await
    }
}

/// The statement behind `Db::list_runs` (public so that its query plan can be checked).
pub fn list_runs_sql(
    dialect: Dialect,
    org_id: Id,
    filter: &RunFilter,
    sort: RunSort,
    order: SortOrder,
    page: Page,
) -> Sql {
    let mut q = Sql::new(format!(
        "SELECT {RUN_COLUMNS} {RUN_JOINS} WHERE r.org_id = "
    ));
    q.push_bind(org_id);
    push_run_filters(&mut q, dialect, org_id, filter);
    order_by(&mut q, sort.columns(), order);
    limit_offset(&mut q, page);
    q
}

/// Appends `AND …` for every condition of `filter`, on run alias `r`, unit `u`, part
/// `p` and procedure `pr` (the last two only for `search_query`, which lists that need
/// it must join).
pub(super) fn push_run_filters(q: &mut Sql, dialect: Dialect, org_id: Id, f: &RunFilter) {
    id_in(q, "r.id", &f.ids);
    text_in(q, "r.outcome", &f.outcomes);
    id_in(q, "r.procedure_id", &f.procedure_ids);
    if !f.procedure_versions.is_empty() {
        q.push(" AND r.version_id IN (SELECT id FROM procedure_versions WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND tag_key IN ")
            .push_tuple(f.procedure_versions.iter().map(|s| ci_key(s)))
            .push(")");
    }
    if !f.serial_numbers.is_empty() {
        q.push(" AND r.unit_id IN (SELECT id FROM units WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND serial_key IN ")
            .push_tuple(f.serial_numbers.iter().map(|s| ci_key(s)))
            .push(")");
    }
    if !f.part_numbers.is_empty() {
        q.push(
            " AND r.revision_id IN (SELECT rv.id FROM revisions rv
              JOIN parts pp ON pp.id = rv.part_id WHERE pp.org_id = ",
        )
        .push_bind(org_id)
        .push(" AND pp.number_key IN ")
        .push_tuple(f.part_numbers.iter().map(|s| ci_key(s)))
        .push(")");
    }
    if !f.revision_numbers.is_empty() {
        q.push(" AND r.revision_id IN (SELECT id FROM revisions WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND number_key IN ")
            .push_tuple(f.revision_numbers.iter().map(|s| ci_key(s)))
            .push(")");
    }
    if !f.batch_numbers.is_empty() {
        q.push(" AND r.batch_id IN (SELECT id FROM batches WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND number_key IN ")
            .push_tuple(f.batch_numbers.iter().map(|s| ci_key(s)))
            .push(")");
    }
    if let Some(us) = f.duration_min_us {
        q.push(" AND r.duration_us >= ").push_bind(us);
    }
    if let Some(us) = f.duration_max_us {
        q.push(" AND r.duration_us <= ").push_bind(us);
    }
    for (col, op, t) in [
        ("r.started_at", ">=", f.started_after),
        ("r.started_at", "<=", f.started_before),
        ("r.ended_at", ">=", f.ended_after),
        ("r.ended_at", "<=", f.ended_before),
        ("r.created_at", ">=", f.created_after),
        ("r.created_at", "<=", f.created_before),
    ] {
        if let Some(t) = t {
            q.push(" AND ")
                .push(col)
                .push(" ")
                .push(op)
                .push(" ")
                .push_bind(t);
        }
    }
    id_in(q, "r.created_by_user_id", &f.created_by_user_ids);
    id_in(q, "r.created_by_station_id", &f.created_by_station_ids);
    id_in(q, "r.operated_by_user_id", &f.operated_by_ids);
    if !f.operated_by_names.is_empty() {
        q.push(" AND r.operated_by_user_id IN (SELECT id FROM users WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND lower(name) IN ")
            .push_tuple(f.operated_by_names.iter().map(|s| s.to_lowercase()))
            .push(")");
    }
    text_in(q, "r.execution_id", &f.execution_ids);
    text_in(q, "r.slot_key", &f.slot_keys);
    text_in(q, "r.slot_name", &f.slot_names);
    text_in(q, "r.deployment_id", &f.deployment_ids);
    if !f.samples.is_empty() {
        let production = f.samples.iter().any(|s| s == "production");
        let named: Vec<&String> = f.samples.iter().filter(|s| *s != "production").collect();
        q.push(" AND (");
        if production {
            q.push("u.sample IS NULL");
        } else {
            q.push("1 = 0");
        }
        if !named.is_empty() {
            q.push(" OR u.sample IN ")
                .push_tuple(named.into_iter().cloned());
        }
        q.push(")");
    }
    if let Some(s) = f.search_query.as_deref().filter(|s| !s.is_empty()) {
        let pattern = contains_pattern(s);
        q.push(" AND (u.serial_key LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR CAST(r.id AS TEXT) LIKE ")
            .push_bind(format!("{}%", like_escape(&s.trim().to_lowercase())))
            .push(" ESCAPE '\\' OR lower(pr.name) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR p.number_key LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    for c in &f.metadata {
        push_metadata_condition(q, dialect, c);
    }
}

fn id_in(q: &mut Sql, col: &str, ids: &Option<Vec<Id>>) {
    match ids {
        None => {}
        Some(ids) if ids.is_empty() => {
            q.push(" AND 1 = 0");
        }
        Some(ids) => {
            q.push(" AND ")
                .push(col)
                .push(" IN ")
                .push_tuple(ids.iter().copied());
        }
    }
}

fn text_in(q: &mut Sql, col: &str, values: &[String]) {
    if !values.is_empty() {
        q.push(" AND ")
            .push(col)
            .push(" IN ")
            .push_tuple(values.iter().cloned());
    }
}

/// One metadata condition on `r.metadata`. Values of another JSON type never match.
fn push_metadata_condition(q: &mut Sql, dialect: Dialect, c: &MetadataCondition) {
    // DIALECT: SQLite reads JSON text with json_type/json_extract and a path; Postgres
    // uses the jsonb operators with the key as text.
    match dialect {
        Dialect::Sqlite => {
            let path = format!("$.\"{}\"", c.key);
            let ty = |q: &mut Sql, types: &str| {
                q.push(" AND json_type(r.metadata, ")
                    .push_bind(path.clone())
                    .push(") IN ")
                    .push(types);
            };
            match &c.test {
                MetadataTest::In(values) => {
                    ty(q, "('text')");
                    q.push(" AND json_extract(r.metadata, ")
                        .push_bind(path.clone())
                        .push(") IN ")
                        .push_tuple(values.iter().cloned());
                }
                MetadataTest::Contains(s) => {
                    ty(q, "('text')");
                    q.push(" AND lower(json_extract(r.metadata, ")
                        .push_bind(path.clone())
                        .push(")) LIKE ")
                        .push_bind(contains_pattern(s))
                        .push(" ESCAPE '\\'");
                }
                MetadataTest::Number(op, v) => {
                    ty(q, "('integer', 'real')");
                    q.push(" AND json_extract(r.metadata, ")
                        .push_bind(path.clone())
                        .push(") ")
                        .push(op)
                        .push(" ")
                        .push_bind(*v);
                }
                MetadataTest::Bool(b) => ty(q, if *b { "('true')" } else { "('false')" }),
            }
        }
        Dialect::Postgres => {
            let key = c.key.clone();
            let ty = |q: &mut Sql, ty: &str| {
                q.push(" AND jsonb_typeof(r.metadata -> ")
                    .push_bind(key.clone())
                    .push(") = '")
                    .push(ty)
                    .push("'");
            };
            match &c.test {
                MetadataTest::In(values) => {
                    ty(q, "string");
                    q.push(" AND (r.metadata ->> ")
                        .push_bind(key.clone())
                        .push(") IN ")
                        .push_tuple(values.iter().cloned());
                }
                MetadataTest::Contains(s) => {
                    ty(q, "string");
                    q.push(" AND lower(r.metadata ->> ")
                        .push_bind(key.clone())
                        .push(") LIKE ")
                        .push_bind(contains_pattern(s))
                        .push(" ESCAPE '\\'");
                }
                MetadataTest::Number(op, v) => {
                    // The CASE keeps the cast away from non-numeric values (Postgres does
                    // not promise to evaluate AND left to right).
                    q.push(" AND (CASE WHEN jsonb_typeof(r.metadata -> ")
                        .push_bind(key.clone())
                        .push(") = 'number' THEN (r.metadata ->> ")
                        .push_bind(key.clone())
                        .push(")::double precision END) ")
                        .push(op)
                        .push(" ")
                        .push_bind(*v);
                }
                MetadataTest::Bool(b) => {
                    ty(q, "boolean");
                    q.push(" AND (r.metadata ->> ")
                        .push_bind(key.clone())
                        .push(") = ")
                        .push_bind(if *b { "true" } else { "false" });
                }
            }
        }
    }
}
