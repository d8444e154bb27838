//! The SQL aggregates behind the lab analytics (ANALYTICS.md), each over one procedure
//! of one organization and a range of whole UTC days. Everything is aggregated in the
//! database: what reaches the server is one row per day (and slice), per measurement
//! series or per failure category, never the runs themselves. The only per-record reads
//! are a control chart's page of points (at most `SERIES_PAGE_MAX`) and one measurement's
//! values for its histogram. The math on those figures is `crate::analytics`.
//!
//! Runs are read through `runs_procedure_started` (`procedure_id, started_at, id`), so
//! the cost is bounded by the procedure's runs in the range; their phases and
//! measurements through `phases_run` and `measurements_phase`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::FromRow;

use crate::analytics::capability::table_order;
use crate::analytics::days::format_day;
use crate::analytics::{
    limits_from_validators, pareto, Capability, ControlLimits, DateRange, Histogram, Limits,
    Moments, ParetoInput, ParetoRow, VolumeCounts, YieldCounts, Yields,
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

    /// The scope's runs and units, their phases (`ph`) and, with `measurements`,
    /// the phases' measurements (`m`).
    fn runs_phases(&self, measurements: bool) -> &'static str {
        // DIALECT: SQLite's CROSS JOIN fixes the loop order runs → phases →
        // measurements (each through its parent's index); Postgres plans it itself.
        match (self.dialect, measurements) {
            (Dialect::Sqlite, false) => {
                "runs r INDEXED BY runs_procedure_started CROSS JOIN units u
                 CROSS JOIN phases ph ON ph.run_id = r.id"
            }
            (Dialect::Sqlite, true) => {
                "runs r INDEXED BY runs_procedure_started CROSS JOIN units u
                 CROSS JOIN phases ph ON ph.run_id = r.id
                 CROSS JOIN measurements m ON m.phase_id = ph.id"
            }
            (Dialect::Postgres, false) => {
                "runs r CROSS JOIN units u JOIN phases ph ON ph.run_id = r.id"
            }
            (Dialect::Postgres, true) => {
                "runs r CROSS JOIN units u JOIN phases ph ON ph.run_id = r.id
                 JOIN measurements m ON m.phase_id = ph.id"
            }
        }
    }

    /// A validator list as comparable text.
    fn validators_text(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "m.validators",
            Dialect::Postgres => "CAST(m.validators AS TEXT)",
        }
    }

    fn null_id(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "NULL",
            Dialect::Postgres => "CAST(NULL AS UUID)",
        }
    }
}

/// ` WHERE` conditions selecting the qualifying records (§4.1, final attempts) of one
/// series — its phase, measurement and units — whose validator lists are `texts`.
fn push_series_records(
    q: &mut Sql,
    org_id: Id,
    scope: &Scope,
    series: &Series,
    validators_text: &'static str,
    texts: &[String],
) {
    push_scope(q, org_id, scope);
    q.push(NUMERIC_RECORDS);
    q.push(" AND ").push(IS_FINAL_ATTEMPT);
    q.push(" AND ph.name = ")
        .push_bind(series.phase.as_str())
        .push(" AND m.name = ")
        .push_bind(series.measurement.as_str());
    match &series.units {
        Some(u) => q.push(" AND m.units = ").push_bind(u.as_str()),
        None => q.push(" AND m.units IS NULL"),
    };
    q.push(" AND ")
        .push(validators_text)
        .push(" IN ")
        .push_tuple(texts.iter().map(String::as_str));
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
        .push_bind(scope.range.end())
        .push(" AND (");
    let production = scope.samples.iter().any(|s| s == "production");
    let flags: Vec<&String> = scope
        .samples
        .iter()
        .filter(|s| *s != "production")
        .collect();
    match (production, flags.is_empty()) {
        (true, true) => {
            q.push("u.sample IS NULL");
        }
        (true, false) => {
            q.push("u.sample IS NULL OR u.sample IN ").push_tuple(flags);
        }
        (false, false) => {
            q.push("u.sample IN ").push_tuple(flags);
        }
        (false, true) => {
            q.push("1 = 0");
        }
    }
    q.push(")");
}

/// Numeric, non-series measurement records with a validator list, on final attempts
/// (`ph`, `m` joined to the scope's runs).
const NUMERIC_RECORDS: &str = " AND m.measurement_type = 'numeric' AND m.value_number IS NOT NULL
    AND m.data_series IS NULL AND m.validators IS NOT NULL";

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
struct ValidatorGroupRow {
    phase: String,
    measurement: String,
    units: Option<String>,
    validators: String,
    n: i64,
    last_at: Ts,
}

#[derive(FromRow)]
struct MomentsRow {
    phase: String,
    measurement: String,
    units: Option<String>,
    seg: i64,
    n: i64,
    mean: f64,
    ss: f64,
    mr: f64,
    mn: f64,
    mx: f64,
}

#[derive(FromRow)]
struct FailureSqlRow {
    phase: String,
    measurement: Option<String>,
    failed_runs: i64,
    occurrences: i64,
}

#[derive(FromRow)]
struct PointRow {
    started_at: Ts,
    value: f64,
    run_id: Id,
}

#[derive(FromRow)]
struct DayValidatorsRow {
    day: String,
    validators: String,
}

#[derive(FromRow)]
struct ValueRow {
    value: f64,
}

/// One measurement series (phase, measurement, units) and its limit segments.
struct Series {
    phase: String,
    measurement: String,
    units: Option<String>,
    /// Validator texts → limit segment key.
    texts: Vec<(String, Limits, i64, Ts)>,
}

impl Series {
    /// The limits of the most recent record, and the texts carrying them.
    fn latest(&self) -> (Limits, Vec<String>) {
        let latest = self
            .texts
            .iter()
            .max_by_key(|t| t.3)
            .map(|t| t.1)
            .unwrap_or_default();
        let texts = self
            .texts
            .iter()
            .filter(|t| t.1.key() == latest.key())
            .map(|t| t.0.clone())
            .collect();
        (latest, texts)
    }

    fn last_at(&self) -> Option<Ts> {
        self.texts.iter().map(|t| t.3).max()
    }
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

    /// The qualifying numeric series of the scope (§4.1) with their validator lists,
    /// optionally for one phase and measurement. Final attempts only (§4.3).
    async fn analytics_series(
        &self,
        org_id: Id,
        scope: &Scope,
        only: Option<(&str, &str)>,
    ) -> DbResult<Vec<Series>> {
        let f = Frag {
            dialect: self.dialect(),
        };
        let vt = f.validators_text();
        let mut q = Sql::new("SELECT ph.name AS phase, m.name AS measurement, m.units, ")
            .then(vt)
            .then(
                " AS validators, CAST(COUNT(*) AS BIGINT) AS n, MAX(ph.started_at) AS last_at
                 FROM ",
            )
            .then(f.runs_phases(true));
        push_scope(&mut q, org_id, scope);
        q.push(NUMERIC_RECORDS);
        q.push(" AND ").push(IS_FINAL_ATTEMPT);
        if let Some((phase, measurement)) = only {
            q.push(" AND ph.name = ")
                .push_bind(phase)
                .push(" AND m.name = ")
                .push_bind(measurement);
        }
        q.push(" GROUP BY ph.name, m.name, m.units, ").push(vt);
        let rows: Vec<ValidatorGroupRow> = self.read().fetch_all(q).await?;
        let mut series: BTreeMap<(String, String, Option<String>), Series> = BTreeMap::new();
        for r in rows {
            let parsed = serde_json::from_str(&r.validators).unwrap_or_default();
            let limits = limits_from_validators(&parsed);
            if limits.is_empty() {
                continue;
            }
            series
                .entry((r.phase.clone(), r.measurement.clone(), r.units.clone()))
                .or_insert_with(|| Series {
                    phase: r.phase,
                    measurement: r.measurement,
                    units: r.units,
                    texts: Vec::new(),
                })
                .texts
                .push((r.validators, limits, r.n, r.last_at));
        }
        Ok(series.into_values().collect())
    }

    /// The capability table (§4.7): one row per qualifying series, indices on the
    /// segment of its latest limits, sorted by Cpk ascending (`null` last), then phase
    /// and measurement name.
    pub async fn analytics_capability(
        &self,
        org_id: Id,
        scope: &Scope,
    ) -> DbResult<Vec<CapabilityRow>> {
        let series = self.analytics_series(org_id, scope, None).await?;
        if series.is_empty() {
            return Ok(Vec::new());
        }
        // Every distinct validator text → the number of its limit pair.
        let mut segment_of: HashMap<(Option<u64>, Option<u64>), i64> = HashMap::new();
        let mut text_seg: BTreeMap<&str, i64> = BTreeMap::new();
        for s in &series {
            for (text, limits, _, _) in &s.texts {
                let next = segment_of.len() as i64;
                let seg = *segment_of.entry(limits.key()).or_insert(next);
                text_seg.insert(text.as_str(), seg);
            }
        }
        let f = Frag {
            dialect: self.dialect(),
        };
        let vt = f.validators_text();
        let mut q = Sql::new(
            "WITH v AS (SELECT ph.name AS phase, m.name AS measurement, m.units AS units,
                m.value_number AS x, ph.started_at AS t1, r.created_at AS t2, m.id AS t3, CASE ",
        )
        .then(vt);
        for (text, seg) in &text_seg {
            q.push(" WHEN ")
                .push_bind(*text)
                .push(" THEN ")
                .push_bind(*seg);
        }
        q.push(" END AS seg FROM ").push(f.runs_phases(true));
        push_scope(&mut q, org_id, scope);
        q.push(NUMERIC_RECORDS);
        q.push(" AND ").push(IS_FINAL_ATTEMPT);
        q.push(
            "), w AS (
                SELECT phase, measurement, units, seg, x,
                    x - LAG(x) OVER (PARTITION BY phase, measurement, units, seg
                                     ORDER BY t1, t2, t3) AS d,
                    AVG(x) OVER (PARTITION BY phase, measurement, units, seg) AS mean
                FROM v WHERE seg IS NOT NULL
            )
            SELECT phase, measurement, units, CAST(seg AS BIGINT) AS seg,
                CAST(COUNT(*) AS BIGINT) AS n, AVG(x) AS mean,
                CAST(SUM((x - mean) * (x - mean)) AS DOUBLE PRECISION) AS ss,
                CAST(COALESCE(SUM(ABS(d)), 0) AS DOUBLE PRECISION) AS mr,
                MIN(x) AS mn, MAX(x) AS mx
            FROM w GROUP BY phase, measurement, units, seg",
        );
        let rows: Vec<MomentsRow> = self.read().fetch_all(q).await?;
        let mut moments: HashMap<(String, String, Option<String>, i64), Moments> = HashMap::new();
        for r in rows {
            moments.insert(
                (r.phase, r.measurement, r.units, r.seg),
                Moments::from_sums(r.n as u64, r.mean, r.ss, r.mr, r.mn, r.mx),
            );
        }
        let mut out: Vec<CapabilityRow> = series
            .iter()
            .map(|s| {
                let (limits, _) = s.latest();
                let seg = segment_of[&limits.key()];
                let key = |seg| (s.phase.clone(), s.measurement.clone(), s.units.clone(), seg);
                let m = moments.get(&key(seg)).copied().unwrap_or_default();
                let total: i64 = s.texts.iter().map(|t| t.2).sum();
                let segments: std::collections::HashSet<_> =
                    s.texts.iter().map(|t| t.1.key()).collect();
                CapabilityRow {
                    phase: s.phase.clone(),
                    measurement: s.measurement.clone(),
                    units: s.units.clone(),
                    capability: Capability::from_moments(&m, limits),
                    n_other_limits: (total as u64).saturating_sub(m.n),
                    limits_changed: segments.len() > 1,
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
        let (select, fail, group) = match by {
            FailureBy::Phase => (
                "ph.name AS phase, CAST(NULL AS TEXT) AS measurement",
                "ph.outcome = 'FAIL'",
                "ph.name",
            ),
            FailureBy::Measurement => (
                "ph.name AS phase, m.name AS measurement",
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
            .then(f.runs_phases(by == FailureBy::Measurement));
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

    /// The series (phase, measurement, units) a chart of one measurement shows: the
    /// one given, or the one with the latest record. `None` if the measurement has no
    /// qualifying record in the scope.
    async fn chart_series(
        &self,
        org_id: Id,
        scope: &Scope,
        phase: &str,
        measurement: &str,
        units: Option<&str>,
    ) -> DbResult<Option<Series>> {
        let all = self
            .analytics_series(org_id, scope, Some((phase, measurement)))
            .await?;
        Ok(all
            .into_iter()
            .filter(|s| units.is_none() || s.units.as_deref() == units)
            .max_by_key(|s| s.last_at()))
    }

    /// A control chart of one measurement (§5.1): `limit` points from offset `offset`
    /// (at most `SERIES_PAGE_MAX`) in time order; CL/UCL/LCL over every point of the
    /// range (all limit segments); the spec limits of each day with data. `units`
    /// picks one series when a measurement was recorded in several units.
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
        let series = self
            .chart_series(org_id, scope, phase, measurement, units)
            .await?;
        let Some(series) = series else {
            return Ok(SeriesReport {
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
            });
        };
        let f = Frag {
            dialect: self.dialect(),
        };
        let vt = f.validators_text();
        let texts: Vec<String> = series.texts.iter().map(|t| t.0.clone()).collect();
        let base = |prefix: &'static str, select: &[&'static str]| {
            let mut q = Sql::new(prefix);
            for piece in select {
                q.push(piece);
            }
            q.push(" FROM ").push(f.runs_phases(true));
            push_series_records(&mut q, org_id, scope, &series, vt, &texts);
            q
        };
        // Control limits over every point of the range.
        let mut q = base(
            "WITH w AS (SELECT x, x - LAG(x) OVER (ORDER BY t1, t2, t3) AS d,
                AVG(x) OVER () AS mean FROM (",
            &["SELECT m.value_number AS x, ph.started_at AS t1, r.created_at AS t2, m.id AS t3"],
        );
        q.push(
            ") v)
            SELECT '' AS phase, '' AS measurement, CAST(NULL AS TEXT) AS units,
                CAST(0 AS BIGINT) AS seg, CAST(COUNT(*) AS BIGINT) AS n,
                CAST(COALESCE(AVG(x), 0) AS DOUBLE PRECISION) AS mean,
                CAST(COALESCE(SUM((x - mean) * (x - mean)), 0) AS DOUBLE PRECISION) AS ss,
                CAST(COALESCE(SUM(ABS(d)), 0) AS DOUBLE PRECISION) AS mr,
                CAST(COALESCE(MIN(x), 0) AS DOUBLE PRECISION) AS mn,
                CAST(COALESCE(MAX(x), 0) AS DOUBLE PRECISION) AS mx
            FROM w",
        );
        let m: MomentsRow = self.read().fetch_one(q).await?;
        let moments = Moments::from_sums(m.n as u64, m.mean, m.ss, m.mr, m.mn, m.mx);
        let control = ControlLimits::from_moments(&moments);

        let limit = limit.clamp(1, SERIES_PAGE_MAX);
        let offset = offset.max(0);
        let mut q = base(
            "",
            &["SELECT ph.started_at, m.value_number AS value, r.id AS run_id"],
        );
        q.push(" ORDER BY ph.started_at, r.created_at, m.id LIMIT ")
            .push_bind(limit + 1)
            .push(" OFFSET ")
            .push_bind(offset);
        let mut points: Vec<PointRow> = self.read().fetch_all(q).await?;
        let has_more = points.len() as i64 > limit;
        points.truncate(limit as usize);

        // The limits of each day's latest record (days of the runs' start, §1.2.3).
        let day = f.start_day();
        let mut q = base(
            "SELECT day, validators FROM (",
            &[
                "SELECT ",
                day,
                " AS day, ",
                vt,
                " AS validators, ROW_NUMBER() OVER (PARTITION BY ",
                day,
                " ORDER BY ph.started_at DESC, r.created_at DESC, m.id DESC) AS rn",
            ],
        );
        q.push(") v WHERE rn = 1 ORDER BY day");
        let days: Vec<DayValidatorsRow> = self.read().fetch_all(q).await?;
        let limits = days
            .into_iter()
            .map(|d| {
                let l = limits_from_validators(
                    &serde_json::from_str(&d.validators).unwrap_or_default(),
                );
                DayLimits {
                    date: d.day,
                    lsl: l.lsl,
                    usl: l.usl,
                }
            })
            .collect();
        Ok(SeriesReport {
            phase: series.phase.clone(),
            measurement: series.measurement.clone(),
            units: series.units.clone(),
            data: points
                .into_iter()
                .map(|p| SeriesPoint {
                    out_of_control: control.is_some_and(|c| c.out_of_control(p.value)),
                    started_at: p.started_at,
                    value: p.value,
                    run_id: p.run_id,
                })
                .collect(),
            n: moments.n,
            cl: control.map(|c| c.cl),
            ucl: control.map(|c| c.ucl),
            lcl: control.map(|c| c.lcl),
            limits,
            meta: SeriesMeta {
                has_more,
                next_cursor: has_more.then_some(offset + limit),
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
        let series = self
            .chart_series(org_id, scope, phase, measurement, units)
            .await?;
        let Some(series) = series else {
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
        let (limits, texts) = series.latest();
        let f = Frag {
            dialect: self.dialect(),
        };
        let vt = f.validators_text();
        let mut q = Sql::new("SELECT m.value_number AS value FROM ").then(f.runs_phases(true));
        push_series_records(&mut q, org_id, scope, &series, vt, &texts);
        let values: Vec<f64> = self
            .read()
            .fetch_all::<ValueRow>(q)
            .await?
            .into_iter()
            .map(|r| r.value)
            .collect();
        let m = Moments::of(&values);
        let h = Histogram::of(&values);
        Ok(HistogramReport {
            phase: series.phase.clone(),
            measurement: series.measurement.clone(),
            units: series.units.clone(),
            n: m.n,
            mean: m.mean(),
            stdev: m.stdev(),
            lsl: limits.lsl,
            usl: limits.usl,
            edges: h.as_ref().map(|h| h.edges.clone()).unwrap_or_default(),
            counts: h.map(|h| h.counts).unwrap_or_default(),
        })
    }
}
