//! Conditions on runs, shared by the run list and the phase, measurement and log
//! lists: the filter, the lookup of natural keys (serials, part, revision and batch
//! numbers, version tags, operator names) into ids, and the SQL they become.

use crate::db::error::DbResult;
use crate::db::{ci_key, Db, Dialect, Id, Sql, Ts};
use crate::metadata::Condition;
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
    pub metadata: Vec<Condition>,
}

/// The ids that the natural-key filters of a `RunFilter` name (units for serials,
/// revisions for part and revision numbers, batches, versions, operators by name),
/// looked up before the list query so that it reaches the runs through the indexes of
/// those ids. `None`: no such filter; `Some(empty)`: the filter matches nothing.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyIds {
    pub(super) units: Option<Vec<Id>>,
    pub(super) revisions: Option<Vec<Id>>,
    pub(super) batches: Option<Vec<Id>>,
    pub(super) versions: Option<Vec<Id>>,
    pub(super) operators: Option<Vec<Id>>,
}

impl KeyIds {
    /// True when some filter named only things that do not exist.
    pub fn matches_nothing(&self) -> bool {
        [
            &self.units,
            &self.revisions,
            &self.batches,
            &self.versions,
            &self.operators,
        ]
        .iter()
        .any(|ids| ids.as_ref().is_some_and(Vec::is_empty))
    }
}

impl Db {
    /// Looks up the ids behind the natural-key filters of `f` (one small indexed query
    /// per filter given).
    pub(super) async fn resolve_keys(&self, org_id: Id, f: &RunFilter) -> DbResult<KeyIds> {
        let mut r = self.read();
        let keys = |values: &[String]| values.iter().map(|s| ci_key(s)).collect::<Vec<_>>();
        let mut out = KeyIds::default();
        let lookups = [
            (
                f.serial_numbers.as_slice(),
                "SELECT id FROM units WHERE org_id = $1 AND serial_key IN ",
                &mut out.units,
            ),
            (
                f.batch_numbers.as_slice(),
                "SELECT id FROM batches WHERE org_id = $1 AND number_key IN ",
                &mut out.batches,
            ),
            (
                f.procedure_versions.as_slice(),
                "SELECT id FROM procedure_versions WHERE org_id = $1 AND tag_key IN ",
                &mut out.versions,
            ),
            (
                f.revision_numbers.as_slice(),
                "SELECT id FROM revisions WHERE org_id = $1 AND number_key IN ",
                &mut out.revisions,
            ),
        ];
        for (values, select, slot) in lookups {
            if values.is_empty() {
                continue;
            }
            let mut q = Sql::new(select).bind(org_id);
            q.push_tuple(keys(values));
            let rows: Vec<(Id,)> = r.fetch_all(q).await?;
            *slot = Some(rows.into_iter().map(|r| r.0).collect());
        }
        if !f.part_numbers.is_empty() {
            let mut q = Sql::new(
                "SELECT rv.id FROM parts pp JOIN revisions rv ON rv.part_id = pp.id
                 WHERE pp.org_id = $1 AND pp.number_key IN ",
            )
            .bind(org_id);
            q.push_tuple(keys(&f.part_numbers));
            let rows: Vec<(Id,)> = r.fetch_all(q).await?;
            let of_parts: Vec<Id> = rows.into_iter().map(|r| r.0).collect();
            // Part and revision numbers together: the revisions with both.
            out.revisions = Some(match out.revisions.take() {
                Some(named) => of_parts
                    .into_iter()
                    .filter(|id| named.contains(id))
                    .collect(),
                None => of_parts,
            });
        }
        if !f.operated_by_names.is_empty() {
            let mut q =
                Sql::new("SELECT id FROM users WHERE org_id = $1 AND name_key IN ").bind(org_id);
            q.push_tuple(f.operated_by_names.iter().map(|s| ci_key(s)));
            let rows: Vec<(Id,)> = r.fetch_all(q).await?;
            out.operators = Some(rows.into_iter().map(|r| r.0).collect());
        }
        Ok(out)
    }
}

/// Appends `AND …` for every condition of `filter` (with its natural keys resolved to
/// `keys`), on run alias `r`, unit `u`, part `p` and procedure `pr` (the last two only
/// for `search_query`, which lists that need it must join).
pub(super) fn push_run_filters(q: &mut Sql, dialect: Dialect, f: &RunFilter, keys: &KeyIds) {
    q.and_id_in("r.id", &f.ids);
    q.and_text_in("r.outcome", &f.outcomes);
    q.and_id_in("r.procedure_id", &f.procedure_ids);
    q.and_id_in("r.version_id", &keys.versions);
    q.and_id_in("r.unit_id", &keys.units);
    q.and_id_in("r.revision_id", &keys.revisions);
    q.and_id_in("r.batch_id", &keys.batches);
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
    q.and_id_in("r.created_by_user_id", &f.created_by_user_ids);
    q.and_id_in("r.created_by_station_id", &f.created_by_station_ids);
    q.and_id_in("r.operated_by_user_id", &f.operated_by_ids);
    q.and_id_in("r.operated_by_user_id", &keys.operators);
    q.and_text_in("r.execution_id", &f.execution_ids);
    q.and_text_in("r.slot_key", &f.slot_keys);
    q.and_text_in("r.slot_name", &f.slot_names);
    q.and_text_in("r.deployment_id", &f.deployment_ids);
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
            .push(" ESCAPE '\\' OR pr.name_key LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR p.number_key LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    crate::db::metadata::push_filter(q, dialect, "r.metadata", &f.metadata);
}

/// `ORDER BY` over `columns`, all in direction `order`.
pub(super) fn order_by(q: &mut Sql, columns: &[&'static str], order: SortOrder) {
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
