//! The aggregates behind the lab analytics (ANALYTICS.md), each over one procedure of
//! one organization and a range of whole UTC days.
//!
//! - Yield, volume and the failure Pareto aggregate in SQL: what reaches the server is
//!   one row per day (and slice) or per failure category, never the runs themselves.
//!   Runs are read through `runs_procedure_started` (`procedure_id, started_at, id`), so
//!   the cost is bounded by the procedure's runs in the range.
//! - Capability, control charts and histograms read the measurement points
//!   (`db::points`: one narrow row per numeric record with limits) in time order, one
//!   index range, streamed: the server keeps running moments per series and limit
//!   segment, a control chart's page of points (at most `SERIES_PAGE_MAX`), or one
//!   series' values for its histogram. Nothing else per record stays in memory.
//!
//! The math on those figures is `crate::analytics`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::FromRow;

use crate::analytics::capability::table_order;
use crate::analytics::days::format_day;
use crate::analytics::{
    pareto, Capability, ControlLimits, DateRange, Histogram, Limits, Moments, ParetoInput,
    ParetoRow, VolumeCounts, YieldCounts, Yields,
};
use crate::db::runs::phases::IS_FINAL_ATTEMPT;
use crate::db::DbResult;
use crate::db::{Db, Dialect, Id, Sql, Ts};

/// The unit kinds `samples` may name: `production` (no sample flag) and the flags.
pub const SAMPLE_KINDS: [&str; 4] = ["production", "golden", "failing", "ignored"];

/// Most points one page of a control chart carries.
pub const SERIES_PAGE_MAX: i64 = 10_000;

/// What an analytics call looks at (§1.1): one procedure, whole UTC days, and the unit
/// kinds included (default: production units only; reference samples are excluded).
#[derive(Debug, Clone)]
pub struct Scope {
    pub procedure_id: Id,
    pub range: DateRange,
    /// Members of `SAMPLE_KINDS`.
    pub samples: Vec<String>,
}

impl Scope {
    /// Whether production units are included, and the sample flags that are.
    fn kinds(&self) -> (bool, Vec<&str>) {
        let production = self.samples.iter().any(|s| s == "production");
        let flags = self
            .samples
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "production")
            .collect();
        (production, flags)
    }

    /// Production units only.
    pub fn new(procedure_id: Id, range: DateRange) -> Scope {
        Scope {
            procedure_id,
            range,
            samples: vec!["production".into()],
        }
    }
}

/// Slices of the yield (§2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YieldGroup {
    Station,
    Revision,
    Batch,
    Version,
}

/// Categories of the failure Pareto (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureBy {
    #[default]
    Phase,
    Measurement,
}

/// One day (and slice) of the yield.
#[derive(Debug, Clone, Serialize)]
pub struct YieldRow {
    pub date: String,
    /// The slice's name (`null` without `group_by`, and for runs outside any slice:
    /// no station, no batch, no version).
    pub group: Option<String>,
    #[serde(flatten)]
    pub yields: Yields,
    /// The cumulative numerators behind the ratios (for CSV exports).
    #[serde(skip)]
    pub counts: YieldCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct YieldReport {
    pub data: Vec<YieldRow>,
    /// Pooled over every row (§2.3).
    pub window: Yields,
}

/// Runs and units of one day (§3).
#[derive(Debug, Clone, Serialize)]
pub struct VolumeDay {
    pub date: String,
    pub runs: u64,
    #[serde(flatten)]
    pub counts: VolumeCounts,
    pub retests: u64,
    /// Mean of `ended_at − started_at` over the day's runs, in seconds; `null` if none.
    pub mean_duration_s: Option<f64>,
}

/// One row of the capability table (§4.7).
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityRow {
    pub phase: String,
    pub measurement: String,
    pub units: Option<String>,
    #[serde(flatten)]
    pub capability: Capability,
    /// Records of the series under other limits than the latest, left out (§4.2).
    pub n_other_limits: u64,
    pub limits_changed: bool,
}

/// One point of a control chart.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    pub started_at: Ts,
    pub value: f64,
    pub run_id: Id,
    pub out_of_control: bool,
}

/// Spec limits of one day: those of the day's latest record (§5.1).
#[derive(Debug, Clone, Serialize)]
pub struct DayLimits {
    pub date: String,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
}

/// A control chart (§5.1): one page of points in time order, the control limits over
/// every point of the range, and the spec limit history.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesReport {
    pub phase: String,
    pub measurement: String,
    pub units: Option<String>,
    pub data: Vec<SeriesPoint>,
    /// Points in the whole range.
    pub n: u64,
    pub cl: Option<f64>,
    pub ucl: Option<f64>,
    pub lcl: Option<f64>,
    pub limits: Vec<DayLimits>,
    pub meta: SeriesMeta,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesMeta {
    pub has_more: bool,
    /// Offset of the next page (pass as `cursor`), `null` on the last page.
    pub next_cursor: Option<i64>,
}

/// A histogram of one measurement series (§5.2), on the segment of its latest limits.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramReport {
    pub phase: String,
    pub measurement: String,
    pub units: Option<String>,
    pub n: u64,
    pub mean: Option<f64>,
    pub stdev: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
    /// k + 1 edges and k counts; empty without values.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// The SQL fragments of a scope on one backend.
struct Frag {
    dialect: Dialect,
}

impl Frag {
    /// The UTC calendar date of the run's start, `YYYY-MM-DD`.
    fn start_day(&self) -> &'static str {
        match self.dialect {
            // DIALECT: SQLite stores fixed-width RFC 3339 UTC text.
            Dialect::Sqlite => "substr(r.started_at, 1, 10)",
            Dialect::Postgres => "to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        }
    }

    /// Runs `r` of the scope and their units `u`.
    fn runs_and_units(&self) -> &'static str {
        match self.dialect {
            // DIALECT: without statistics SQLite may walk the organization's start
            // index (every procedure) or start from the units; name the procedure's
            // index and keep runs as the outer loop.
            Dialect::Sqlite => "runs r INDEXED BY runs_procedure_started CROSS JOIN units u",
            Dialect::Postgres => "runs r CROSS JOIN units u",
        }
    }

    /// The scope's runs and units and their phases (`ph`).
    fn runs_phases(&self) -> &'static str {
        // DIALECT: SQLite's CROSS JOIN fixes the loop order runs → phases (through the
        // run's index); Postgres plans it itself.
        match self.dialect {
            Dialect::Sqlite => {
                "runs r INDEXED BY runs_procedure_started CROSS JOIN units u
                 CROSS JOIN phases ph ON ph.run_id = r.id"
            }
            Dialect::Postgres => "runs r CROSS JOIN units u JOIN phases ph ON ph.run_id = r.id",
        }
    }

    /// The scope's runs and units, their failed measurements (`m`, through the partial
    /// index `measurements_failed`: failures are few) and those measurements' phases.
    fn runs_failed_measurements(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => {
                "runs r INDEXED BY runs_procedure_started CROSS JOIN units u
                 CROSS JOIN measurements m INDEXED BY measurements_failed ON m.run_id = r.id
                 CROSS JOIN phases ph ON ph.id = m.phase_id"
            }
            Dialect::Postgres => {
                "runs r CROSS JOIN units u JOIN measurements m ON m.run_id = r.id
                 JOIN phases ph ON ph.id = m.phase_id"
            }
        }
    }

    fn null_id(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "NULL",
            Dialect::Postgres => "CAST(NULL AS UUID)",
        }
    }
}

/// ` WHERE` conditions of the scope on `r` and `u` (after the FROM clause).
fn push_scope(q: &mut Sql, org_id: Id, scope: &Scope) {
    q.push(" WHERE u.id = r.unit_id AND r.org_id = ")
        .push_bind(org_id)
        .push(" AND r.procedure_id = ")
        .push_bind(scope.procedure_id)
        .push(" AND r.started_at >= ")
        .push_bind(scope.range.start())
        .push(" AND r.started_at < ")
        .push_bind(scope.range.end());
    push_samples(q, scope);
}

/// ` FROM` the scope's measurement points (`p`, final attempts only, §4.3) with the
/// ` WHERE` conditions of the scope. The unit kinds are tested against the few flagged
/// units (`units_flagged`), not by joining every point to its unit.
fn push_point_scope(q: &mut Sql, org_id: Id, scope: &Scope) {
    q.push(" FROM measurement_points p WHERE p.org_id = ")
        .push_bind(org_id)
        .push(" AND p.procedure_id = ")
        .push_bind(scope.procedure_id)
        .push(" AND p.run_started_at >= ")
        .push_bind(scope.range.start())
        .push(" AND p.run_started_at < ")
        .push_bind(scope.range.end())
        .push(" AND p.is_final AND (");
    let (production, flags) = scope.kinds();
    let none = !production && flags.is_empty();
    if production {
        q.push("p.unit_id NOT IN (SELECT id FROM units WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND sample IS NOT NULL)");
    }
    if !flags.is_empty() {
        if production {
            q.push(" OR ");
        }
        q.push("p.unit_id IN (SELECT id FROM units WHERE org_id = ")
            .push_bind(org_id)
            .push(" AND sample IN ")
            .push_tuple(flags.iter().copied())
            .push(")");
    }
    if none {
        q.push("1 = 0");
    }
    q.push(")");
}

/// ` AND` the unit kinds of the scope (§1.1) on `u`.
fn push_samples(q: &mut Sql, scope: &Scope) {
    q.push(" AND (");
    match scope.kinds() {
        (true, flags) if flags.is_empty() => {
            q.push("u.sample IS NULL");
        }
        (true, flags) => {
            q.push("u.sample IS NULL OR u.sample IN ").push_tuple(flags);
        }
        (false, flags) if !flags.is_empty() => {
            q.push("u.sample IN ").push_tuple(flags);
        }
        (false, _) => {
            q.push("1 = 0");
        }
    }
    q.push(")");
}

/// The order of a series' values (§4.4): phase start, run creation, record id.
const TIME_ORDER: &str = " ORDER BY p.phase_started_at, p.run_created_at, p.measurement_id";

#[derive(FromRow)]
struct YieldSqlRow {
    day: String,
    g: Option<Id>,
    group_name: Option<String>,
    units: i64,
    first: i64,
    second: i64,
    third: i64,
    last: i64,
}

#[derive(FromRow)]
struct VolumeSqlRow {
    day: String,
    pass: i64,
    fail: i64,
    error: i64,
    timeout: i64,
    aborted: i64,
    units: i64,
    duration_us: i64,
}

#[derive(FromRow)]
struct FailureSqlRow {
    phase: String,
    measurement: Option<String>,
    failed_runs: i64,
    occurrences: i64,
}

/// One point of the scope, for the capability table.
#[derive(FromRow)]
struct PointRecord {
    phase: String,
    measurement: String,
    units: Option<String>,
    value: f64,
    lsl: Option<f64>,
    usl: Option<f64>,
}

/// One point of a series, for its control chart.
#[derive(FromRow)]
struct ChartRecord {
    value: f64,
    lsl: Option<f64>,
    usl: Option<f64>,
    phase_started_at: Ts,
    run_started_at: Ts,
    run_id: Id,
}

/// One point of a series, for its histogram.
#[derive(FromRow)]
struct ValueRecord {
    value: f64,
    lsl: Option<f64>,
    usl: Option<f64>,
}

/// The units of a series and its latest record.
#[derive(FromRow)]
struct UnitsRow {
    units: Option<String>,
    last_at: Ts,
}

fn day_index(range: &DateRange, day: &str) -> Option<usize> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| range.index(d))
}

impl Db {
    /// FPY/SPY/TPY/LPY per day (and slice), every day of the range present, sorted by
    /// date then slice name; plus the pooled window figures (§2).
    pub async fn analytics_yield(
        &self,
        org_id: Id,
        scope: &Scope,
        group: Option<YieldGroup>,
    ) -> DbResult<YieldReport> {
        let f = Frag {
            dialect: self.dialect(),
        };
        let day = f.start_day();
        let (gkey, gname, gjoin) = match group {
            None => (f.null_id(), "CAST(NULL AS TEXT)", ""),
            Some(YieldGroup::Station) => (
                "r.created_by_station_id",
                "s.name",
                " LEFT JOIN stations s ON s.id = ud.g",
            ),
            Some(YieldGroup::Version) => (
                "r.version_id",
                "v.tag",
                " LEFT JOIN procedure_versions v ON v.id = ud.g",
            ),
            Some(YieldGroup::Batch) => (
                "u.batch_id",
                "b.number",
                " LEFT JOIN batches b ON b.id = ud.g",
            ),
            Some(YieldGroup::Revision) => (
                "u.revision_id",
                "pt.number || '/' || rv.number",
                " LEFT JOIN revisions rv ON rv.id = ud.g LEFT JOIN parts pt ON pt.id = rv.part_id",
            ),
        };
        let mut q = Sql::new("WITH counted AS (SELECT ")
            .then(day)
            .then(" AS day, ")
            .then(gkey)
            .then(" AS g, r.unit_id, r.outcome, ROW_NUMBER() OVER (PARTITION BY ")
            .then(day)
            .then(", ")
            .then(gkey)
            .then(
                ", r.unit_id ORDER BY r.started_at, r.created_at, r.id) AS attempt
                 FROM ",
            )
            .then(f.runs_and_units());
        push_scope(&mut q, org_id, scope);
        q.push(
            " AND r.outcome <> 'ABORTED'
            ), unit_days AS (
                SELECT day, g, MIN(CASE WHEN outcome = 'PASS' THEN attempt END) AS a
                FROM counted GROUP BY day, g, unit_id
            )
            SELECT ud.day, ud.g, MIN(",
        )
        .push(gname)
        .push(
            ") AS group_name,
                CAST(COUNT(*) AS BIGINT) AS units,
                CAST(SUM(CASE WHEN ud.a <= 1 THEN 1 ELSE 0 END) AS BIGINT) AS first,
                CAST(SUM(CASE WHEN ud.a <= 2 THEN 1 ELSE 0 END) AS BIGINT) AS second,
                CAST(SUM(CASE WHEN ud.a <= 3 THEN 1 ELSE 0 END) AS BIGINT) AS third,
                CAST(SUM(CASE WHEN ud.a IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS last
            FROM unit_days ud",
        )
        .push(gjoin)
        .push(" GROUP BY ud.day, ud.g");
        let rows: Vec<YieldSqlRow> = self.read().fetch_all(q).await?;

        // Slices seen in the range, by name (then id), `null` first.
        let mut groups: BTreeMap<(Option<String>, Option<Id>), Vec<YieldCounts>> = BTreeMap::new();
        let days = scope.range.len();
        for row in rows {
            let Some(i) = day_index(&scope.range, &row.day) else {
                continue;
            };
            let counts = groups
                .entry((row.group_name, row.g))
                .or_insert_with(|| vec![YieldCounts::default(); days]);
            counts[i] = YieldCounts {
                units: row.units as u64,
                first: row.first as u64,
                second: row.second as u64,
                third: row.third as u64,
                last: row.last as u64,
            };
        }
        if groups.is_empty() {
            groups.insert((None, None), vec![YieldCounts::default(); days]);
        }
        let window = YieldCounts::pooled(groups.values().flatten()).yields();
        let mut data = Vec::with_capacity(days * groups.len());
        for (i, d) in scope.range.days().into_iter().enumerate() {
            for ((name, _), counts) in &groups {
                data.push(YieldRow {
                    date: format_day(d),
                    group: name.clone(),
                    yields: counts[i].yields(),
                    counts: counts[i],
                });
            }
        }
        Ok(YieldReport { data, window })
    }

    /// Runs by outcome, distinct units and mean duration per day, every day present
    /// (§3). ABORTED runs count here.
    pub async fn analytics_volume(&self, org_id: Id, scope: &Scope) -> DbResult<Vec<VolumeDay>> {
        let f = Frag {
            dialect: self.dialect(),
        };
        let day = f.start_day();
        let mut q = Sql::new("SELECT ")
            .then(day)
            .then(
                " AS day,
                CAST(SUM(CASE WHEN r.outcome = 'PASS' THEN 1 ELSE 0 END) AS BIGINT) AS pass,
                CAST(SUM(CASE WHEN r.outcome = 'FAIL' THEN 1 ELSE 0 END) AS BIGINT) AS fail,
                CAST(SUM(CASE WHEN r.outcome = 'ERROR' THEN 1 ELSE 0 END) AS BIGINT) AS error,
                CAST(SUM(CASE WHEN r.outcome = 'TIMEOUT' THEN 1 ELSE 0 END) AS BIGINT) AS timeout,
                CAST(SUM(CASE WHEN r.outcome = 'ABORTED' THEN 1 ELSE 0 END) AS BIGINT) AS aborted,
                CAST(COUNT(DISTINCT r.unit_id) AS BIGINT) AS units,
                CAST(SUM(r.duration_us) AS BIGINT) AS duration_us
             FROM ",
            )
            .then(f.runs_and_units());
        push_scope(&mut q, org_id, scope);
        q.push(" GROUP BY ").push(day);
        let rows: Vec<VolumeSqlRow> = self.read().fetch_all(q).await?;
        let mut counts = vec![VolumeCounts::default(); scope.range.len()];
        for r in rows {
            if let Some(i) = day_index(&scope.range, &r.day) {
                counts[i] = VolumeCounts {
                    pass: r.pass as u64,
                    fail: r.fail as u64,
                    error: r.error as u64,
                    timeout: r.timeout as u64,
                    aborted: r.aborted as u64,
                    units: r.units as u64,
                    duration_us_sum: r.duration_us,
                };
            }
        }
        Ok(scope
            .range
            .days()
            .into_iter()
            .zip(counts)
            .map(|(d, c)| VolumeDay {
                date: format_day(d),
                runs: c.runs(),
                retests: c.retests(),
                mean_duration_s: c.mean_duration_s(),
                counts: c,
            })
            .collect())
    }

    /// The capability table (§4.7): one row per qualifying series, indices on the
    /// segment of its latest limits, sorted by Cpk ascending (`null` last), then phase
    /// and measurement name.
    ///
    /// One pass over the scope's points in time order: each series keeps running
    /// moments per limit segment (constant memory per series and segment), so nothing
    /// is sorted by series and nothing per record stays in memory.
    pub async fn analytics_capability(
        &self,
        org_id: Id,
        scope: &Scope,
    ) -> DbResult<Vec<CapabilityRow>> {
        let mut q = Sql::new("SELECT p.phase, p.measurement, p.units, p.value, p.lsl, p.usl");
        push_point_scope(&mut q, org_id, scope);
        q.push(TIME_ORDER);
        let mut series: HashMap<SeriesKey, SeriesMoments> = HashMap::new();
        self.stream_points(q, |r: PointRecord| {
            let limits = Limits {
                lsl: r.lsl,
                usl: r.usl,
            };
            series
                .entry((r.phase, r.measurement, r.units))
                .or_default()
                .push(limits, r.value);
        })
        .await?;
        let mut out: Vec<CapabilityRow> = series
            .into_iter()
            .map(|((phase, measurement, units), s)| {
                let m = s.latest_moments();
                CapabilityRow {
                    phase,
                    measurement,
                    units,
                    capability: Capability::from_moments(&m, s.latest),
                    n_other_limits: s.total.saturating_sub(m.n),
                    limits_changed: s.segments.len() > 1,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            table_order(
                (a.capability.cpk, &a.phase, &a.measurement),
                (b.capability.cpk, &b.phase, &b.measurement),
            )
            .then_with(|| a.units.cmp(&b.units))
        });
        Ok(out)
    }

    /// The failure Pareto (§6.1) by phase (name and sequence path) or by measurement
    /// (phase and measurement name), final attempts only, every run outcome.
    pub async fn analytics_failures(
        &self,
        org_id: Id,
        scope: &Scope,
        by: FailureBy,
    ) -> DbResult<Vec<ParetoRow>> {
        let f = Frag {
            dialect: self.dialect(),
        };
        let (select, from, fail, group) = match by {
            FailureBy::Phase => (
                "ph.name AS phase, CAST(NULL AS TEXT) AS measurement",
                f.runs_phases(),
                "ph.outcome = 'FAIL'",
                "ph.name",
            ),
            FailureBy::Measurement => (
                "ph.name AS phase, m.name AS measurement",
                f.runs_failed_measurements(),
                "m.outcome = 'FAIL'",
                "ph.name, m.name",
            ),
        };
        let mut q = Sql::new("SELECT ")
            .then(select)
            .then(
                ", CAST(COUNT(DISTINCT r.id) AS BIGINT) AS failed_runs,
                CAST(COUNT(*) AS BIGINT) AS occurrences
             FROM ",
            )
            .then(from);
        push_scope(&mut q, org_id, scope);
        q.push(" AND ")
            .push(fail)
            .push(" AND ")
            .push(IS_FINAL_ATTEMPT);
        q.push(" GROUP BY ").push(group);
        let rows: Vec<FailureSqlRow> = self.read().fetch_all(q).await?;
        Ok(pareto(
            rows.into_iter()
                .map(|r| ParetoInput {
                    phase: r.phase,
                    measurement: r.measurement,
                    failed_runs: r.failed_runs as u64,
                    occurrences: r.occurrences as u64,
                })
                .collect(),
        ))
    }

    /// Streams the rows of a points statement (sorted in time order) into `f`.
    async fn stream_points<T: crate::db::Row>(
        &self,
        q: Sql,
        f: impl FnMut(T) + Send,
    ) -> DbResult<()> {
        match self.dialect() {
            Dialect::Sqlite => self.read().for_each(q, f).await,
            Dialect::Postgres => {
                // A month of a busy procedure is a few hundred thousand points: sort them
                // in memory rather than in temporary files (the default is 4 MB).
                let mut tx = self.begin().await?;
                tx.execute(Sql::new("SET LOCAL work_mem = '64MB'")).await?;
                tx.for_each(q, f).await?;
                tx.commit().await
            }
        }
    }

    /// The series a chart of one measurement shows: its units, given or those of the
    /// series with the latest record. `None` if the measurement has no qualifying
    /// record in the scope.
    async fn chart_units(
        &self,
        org_id: Id,
        scope: &Scope,
        phase: &str,
        measurement: &str,
        units: Option<&str>,
    ) -> DbResult<Option<Option<String>>> {
        let mut q = Sql::new("SELECT p.units, MAX(p.phase_started_at) AS last_at");
        push_point_scope(&mut q, org_id, scope);
        q.push(" AND p.phase = ")
            .push_bind(phase)
            .push(" AND p.measurement = ")
            .push_bind(measurement)
            .push(" GROUP BY p.units");
        let found: Vec<UnitsRow> = self.read().fetch_all(q).await?;
        Ok(found
            .into_iter()
            .filter(|s| units.is_none() || s.units.as_deref() == units)
            .max_by_key(|s| s.last_at)
            .map(|s| s.units))
    }

    /// ` AND` conditions selecting one series of the scope's points.
    fn push_series(q: &mut Sql, phase: &str, measurement: &str, units: Option<&str>) {
        q.push(" AND p.phase = ")
            .push_bind(phase)
            .push(" AND p.measurement = ")
            .push_bind(measurement);
        match units {
            Some(u) => q.push(" AND p.units = ").push_bind(u),
            None => q.push(" AND p.units IS NULL"),
        };
    }

    /// A control chart of one measurement (§5.1): `limit` points from offset `offset`
    /// (at most `SERIES_PAGE_MAX`) in time order; CL/UCL/LCL over every point of the
    /// range (all limit segments); the spec limits of each day with data. `units`
    /// picks one series when a measurement was recorded in several units.
    ///
    /// One pass over the series' points in time order: the moments over all of them,
    /// the page's points, and each day's latest limits; only the page stays in memory.
    #[allow(clippy::too_many_arguments)]
    pub async fn analytics_control_chart(
        &self,
        org_id: Id,
        scope: &Scope,
        phase: &str,
        measurement: &str,
        units: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> DbResult<SeriesReport> {
        let empty = || SeriesReport {
            phase: phase.into(),
            measurement: measurement.into(),
            units: units.map(str::to_string),
            data: Vec::new(),
            n: 0,
            cl: None,
            ucl: None,
            lcl: None,
            limits: Vec::new(),
            meta: SeriesMeta {
                has_more: false,
                next_cursor: None,
            },
        };
        let Some(units) = self
            .chart_units(org_id, scope, phase, measurement, units)
            .await?
        else {
            return Ok(empty());
        };
        let limit = limit.clamp(1, SERIES_PAGE_MAX) as u64;
        let offset = offset.max(0) as u64;
        let mut q = Sql::new(
            "SELECT p.value, p.lsl, p.usl, p.phase_started_at, p.run_started_at, p.run_id",
        );
        push_point_scope(&mut q, org_id, scope);
        Self::push_series(&mut q, phase, measurement, units.as_deref());
        q.push(TIME_ORDER);
        let mut moments = Moments::default();
        let mut page: Vec<ChartRecord> = Vec::new();
        let mut days: BTreeMap<NaiveDate, Limits> = BTreeMap::new();
        self.stream_points(q, |r: ChartRecord| {
            moments.push(r.value);
            days.insert(
                r.run_started_at.0.date_naive(),
                Limits {
                    lsl: r.lsl,
                    usl: r.usl,
                },
            );
            if moments.n > offset && moments.n <= offset + limit {
                page.push(r);
            }
        })
        .await?;
        let control = ControlLimits::from_moments(&moments);
        let has_more = moments.n > offset + limit;
        Ok(SeriesReport {
            phase: phase.into(),
            measurement: measurement.into(),
            units,
            data: page
                .into_iter()
                .map(|p| SeriesPoint {
                    out_of_control: control.is_some_and(|c| c.out_of_control(p.value)),
                    started_at: p.phase_started_at,
                    value: p.value,
                    run_id: p.run_id,
                })
                .collect(),
            n: moments.n,
            cl: control.map(|c| c.cl),
            ucl: control.map(|c| c.ucl),
            lcl: control.map(|c| c.lcl),
            limits: days
                .into_iter()
                .map(|(d, l)| DayLimits {
                    date: format_day(d),
                    lsl: l.lsl,
                    usl: l.usl,
                })
                .collect(),
            meta: SeriesMeta {
                has_more,
                next_cursor: has_more.then_some((offset + limit) as i64),
            },
        })
    }

    /// The histogram of one measurement (§5.2) on the segment of its latest limits,
    /// with n, mean, overall σ and the limits for the marks and the Gaussian overlay.
    pub async fn analytics_histogram(
        &self,
        org_id: Id,
        scope: &Scope,
        phase: &str,
        measurement: &str,
        units: Option<&str>,
    ) -> DbResult<HistogramReport> {
        let Some(units) = self
            .chart_units(org_id, scope, phase, measurement, units)
            .await?
        else {
            return Ok(HistogramReport {
                phase: phase.into(),
                measurement: measurement.into(),
                units: units.map(str::to_string),
                n: 0,
                mean: None,
                stdev: None,
                lsl: None,
                usl: None,
                edges: Vec::new(),
                counts: Vec::new(),
            });
        };
        let mut q = Sql::new("SELECT p.value, p.lsl, p.usl");
        push_point_scope(&mut q, org_id, scope);
        Self::push_series(&mut q, phase, measurement, units.as_deref());
        q.push(TIME_ORDER);
        // Values per limit segment; the latest record names the segment shown.
        let mut segments: HashMap<(Option<u64>, Option<u64>), Vec<f64>> = HashMap::new();
        let mut latest = Limits::default();
        self.stream_points(q, |r: ValueRecord| {
            latest = Limits {
                lsl: r.lsl,
                usl: r.usl,
            };
            segments.entry(latest.key()).or_default().push(r.value);
        })
        .await?;
        let values = segments.remove(&latest.key()).unwrap_or_default();
        let m = Moments::of(&values);
        let h = Histogram::of(&values);
        Ok(HistogramReport {
            phase: phase.into(),
            measurement: measurement.into(),
            units,
            n: m.n,
            mean: m.mean(),
            stdev: m.stdev(),
            lsl: latest.lsl,
            usl: latest.usl,
            edges: h.as_ref().map(|h| h.edges.clone()).unwrap_or_default(),
            counts: h.map(|h| h.counts).unwrap_or_default(),
        })
    }
}

/// A series: phase, measurement and units.
type SeriesKey = (String, String, Option<String>);

/// One series' running moments per limit segment, fed in time order.
#[derive(Default)]
struct SeriesMoments {
    segments: Vec<(Limits, Moments)>,
    /// The limits of the latest record.
    latest: Limits,
    total: u64,
}

impl SeriesMoments {
    fn push(&mut self, limits: Limits, x: f64) {
        self.total += 1;
        self.latest = limits;
        let key = limits.key();
        match self.segments.iter_mut().find(|(l, _)| l.key() == key) {
            Some((_, m)) => m.push(x),
            None => {
                let mut m = Moments::default();
                m.push(x);
                self.segments.push((limits, m));
            }
        }
    }

    /// The moments of the segment of the latest limits (§4.2).
    fn latest_moments(&self) -> Moments {
        let key = self.latest.key();
        self.segments
            .iter()
            .find(|(l, _)| l.key() == key)
            .map(|(_, m)| *m)
            .unwrap_or_default()
    }
}
