//! Procedures: the list (`/procedures`) and each one's analytics page
//! (`/procedures/{id}`): yield per day (optionally sliced), volume by outcome, mean
//! duration, failure Pareto, capability table, and a control chart and histogram of one
//! measurement. Every figure comes from `db::analytics` (SQL aggregates fed to the pure
//! `analytics` module) — the same calls as the `/api/lab/v1` endpoints, so the page and
//! the JSON always agree. Every chart and table downloads as CSV from
//! `/procedures/{id}/csv/{table}` with the page's query string.

use axum::extract::{Path, RawQuery, State};
use chrono::{Duration, NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::svg::{self, Reference};
use super::{csv as csvfile, fmt, layout, trusted, Nav, PageError, PageResult, Session};
use crate::analytics::days::format_day;
use crate::analytics::{DateRange, ParetoRow};
use crate::db::analytics::{
    CapabilityRow, FailureBy, HistogramReport, Scope, SeriesReport, YieldGroup, YieldReport,
    SERIES_PAGE_MAX,
};
use crate::db::dashboard::ProcedureSummary;
use crate::db::procedures::ProcedureFilter;
use crate::db::Id;
use crate::error::ApiError;
use crate::values::Page;
use crate::AppState;

/// Days shown when the query names none: the 30 days up to the latest run.
const DEFAULT_DAYS: i64 = 30;
/// Points drawn in the control chart (the CSV has them all).
const CHART_POINTS: i64 = 2_000;

/// `GET /procedures`: the organization's procedures, newest first.
pub async fn index(State(state): State<AppState>, session: Session) -> PageResult {
    let filter = ProcedureFilter {
        search_query: None,
        created_after: None,
        created_before: None,
    };
    let (rows, _) = state
        .db
        .list_procedures(
            session.org_id,
            &filter,
            Page {
                limit: 100,
                offset: 0,
            },
        )
        .await?;
    let body = html! {
        h1 { "Procedures" }
        @if rows.is_empty() { p.empty { "No procedures yet." } }
        @else {
            table.runs {
                thead { tr { th { "Procedure" } th { "Identifier" } th { "Created" } } }
                tbody {
                    @for p in rows.iter().take(100) {
                        tr {
                            td { a href={ "/procedures/" (p.id) } { (p.name) } }
                            td.mono { (p.identifier) }
                            td { (fmt::time(p.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&session, Nav::Procedures, "Procedures", body))
}

/// The page's query: the window, the yield slice, the measurement charted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnalyticsQuery {
    from: String,
    to: String,
    group_by: String,
    phase: String,
    measurement: String,
    units: String,
}

impl AnalyticsQuery {
    fn parse(raw: Option<&str>) -> AnalyticsQuery {
        serde_html_form::from_str(raw.unwrap_or("")).unwrap_or_default()
    }

    /// The window asked for; without one, the 30 days up to the latest run (or today).
    fn range(&self, summary: &ProcedureSummary) -> Result<DateRange, PageError> {
        let (from, to) = (self.from.trim(), self.to.trim());
        if !from.is_empty() || !to.is_empty() {
            let default_to = format_day(Utc::now().date_naive());
            let to = if to.is_empty() { &default_to } else { to };
            let from_default;
            let from = if from.is_empty() {
                from_default = NaiveDate::parse_from_str(to, "%Y-%m-%d")
                    .map(|d| format_day(d - Duration::days(DEFAULT_DAYS - 1)))
                    .unwrap_or_default();
                &from_default
            } else {
                from
            };
            return DateRange::parse(from, to)
                .map_err(|e| PageError::Other(ApiError::invalid(e.field, e.message)));
        }
        let last = summary
            .latest_run
            .map(|t| t.0.date_naive())
            .unwrap_or_else(|| Utc::now().date_naive());
        DateRange::new(last - Duration::days(DEFAULT_DAYS - 1), last)
            .map_err(|e| PageError::Other(ApiError::invalid(e.field, e.message)))
    }

    fn group(&self) -> Option<YieldGroup> {
        match self.group_by.trim() {
            "station" => Some(YieldGroup::Station),
            "revision" => Some(YieldGroup::Revision),
            "batch" => Some(YieldGroup::Batch),
            "version" => Some(YieldGroup::Version),
            _ => None,
        }
    }

    /// The query string of the page for `range`, with the measurement `m` if any.
    fn query(&self, range: &DateRange, m: Option<(&str, &str, Option<&str>)>) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("from", &format_day(range.from));
        s.append_pair("to", &format_day(range.to));
        if self.group().is_some() {
            s.append_pair("group_by", self.group_by.trim());
        }
        if let Some((phase, measurement, units)) = m {
            s.append_pair("phase", phase);
            s.append_pair("measurement", measurement);
            if let Some(u) = units {
                s.append_pair("units", u);
            }
        }
        s.finish()
    }
}

/// The procedure of the session's organization (404 otherwise) and its scope.
async fn scope_of(
    state: &AppState,
    session: &Session,
    id: &str,
    q: &AnalyticsQuery,
) -> PageResult<(ProcedureSummary, Scope)> {
    let not_found = || PageError::NotFound("Procedure not found".into());
    let id = Id::parse(id).ok_or_else(not_found)?;
    let summary = state
        .db
        .procedure_summary(session.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    let range = q.range(&summary)?;
    Ok((summary, Scope::new(id, range)))
}

/// The measurement charted: the one asked for, else the weakest of the capability table.
fn chosen<'a>(
    q: &'a AnalyticsQuery,
    capability: &'a [CapabilityRow],
) -> Option<(&'a str, &'a str, Option<&'a str>)> {
    if !q.phase.trim().is_empty() && !q.measurement.trim().is_empty() {
        let units = Some(q.units.trim()).filter(|u| !u.is_empty());
        return Some((q.phase.trim(), q.measurement.trim(), units));
    }
    capability
        .first()
        .map(|c| (c.phase.as_str(), c.measurement.as_str(), c.units.as_deref()))
}

/// `GET /procedures/{id}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let q = AnalyticsQuery::parse(raw.as_deref());
    let (summary, scope) = scope_of(&state, &session, &id, &q).await?;
    let org = session.org_id;
    let db = &state.db;
    // Independent aggregates run at once: each is one or two queries on its own pooled
    // connection, so the page costs about its slowest part rather than their sum.
    let sliced = async {
        match q.group() {
            Some(g) => db.analytics_yield(org, &scope, Some(g)).await.map(Some),
            None => Ok(None),
        }
    };
    let (yields, sliced, volume, by_phase, by_measurement, capability) = tokio::try_join!(
        db.analytics_yield(org, &scope, None),
        sliced,
        db.analytics_volume(org, &scope),
        db.analytics_failures(org, &scope, FailureBy::Phase),
        db.analytics_failures(org, &scope, FailureBy::Measurement),
        db.analytics_capability(org, &scope),
    )?;
    let measurement = chosen(&q, &capability);
    let charts = match measurement {
        Some((phase, m, units)) => Some(tokio::try_join!(
            db.analytics_control_chart(org, &scope, phase, m, units, 0, CHART_POINTS),
            db.analytics_histogram(org, &scope, phase, m, units),
        )?),
        None => None,
    };

    let range = &scope.range;
    let days: Vec<String> = range.days().into_iter().map(format_day).collect();
    let here = q.query(range, measurement);
    let csv_link = |table: &str| format!("/procedures/{}/csv/{table}?{here}", summary.id);
    let w = &yields.window;

    let body = html! {
        div.title-row {
            h1 { (summary.name) }
            a href={ "/?procedure=" (summary.id) } { "Runs of this procedure →" }
        }
        form.window method="get" {
            label { "From" input type="date" name="from" value=(format_day(range.from)); }
            label { "To" input type="date" name="to" value=(format_day(range.to)); }
            label { "Slice yield by"
                select name="group_by" {
                    option value="" { "—" }
                    @for g in ["station", "revision", "batch", "version"] {
                        option value=(g) selected[q.group_by.trim() == g] { (g) }
                    }
                }
            }
            @if let Some((phase, m, units)) = measurement {
                input type="hidden" name="phase" value=(phase);
                input type="hidden" name="measurement" value=(m);
                @if let Some(u) = units { input type="hidden" name="units" value=(u); }
            }
            button type="submit" { "Apply" }
            span.muted { "UTC days, both included. Reference samples excluded." }
        }

        section #yield {
            h2 { "Yield" a.csv href=(csv_link("yield")) download { "CSV" } }
            div.cards {
                div.card { div.k { "Units" } div.v data-metric="units" { (w.units) } }
                div.card { div.k { "First pass (FPY)" } div.v data-metric="fpy" { (fmt::percent(w.fpy)) } }
                div.card { div.k { "Second pass (SPY)" } div.v data-metric="spy" { (fmt::percent(w.spy)) } }
                div.card { div.k { "Third pass (TPY)" } div.v data-metric="tpy" { (fmt::percent(w.tpy)) } }
                div.card { div.k { "Last pass (LPY)" } div.v data-metric="lpy" { (fmt::percent(w.lpy)) } }
            }
            figure.chart {
                (trusted(yield_chart(&days, &yields)))
                figcaption { "Yield per day of the units first tested that day." }
            }
            @if let Some(sliced) = &sliced {
                h3 { "FPY by " (q.group_by.trim()) }
                figure.chart { (trusted(sliced_chart(&days, sliced))) }
            }
        }

        section #volume {
            h2 { "Runs and units per day" a.csv href=(csv_link("volume")) download { "CSV" } }
            figure.chart {
                (trusted(svg::stacked_bars(&days, &crate::analytics::OUTCOMES.iter().map(|o| {
                    (o.to_string(), svg::outcome_colour(o).to_string(), volume.iter().map(|v| match *o {
                        "PASS" => v.counts.pass, "FAIL" => v.counts.fail, "ERROR" => v.counts.error,
                        "TIMEOUT" => v.counts.timeout, _ => v.counts.aborted,
                    } as f64).collect())
                }).collect::<Vec<_>>())))
                figcaption { "Runs per day by outcome." }
            }
            figure.chart {
                (trusted(svg::daily_lines(&days, &[
                    ("units tested".to_string(), volume.iter().map(|v| Some(v.counts.units as f64)).collect()),
                ], false)))
                figcaption { "Distinct units tested per day." }
            }
            figure.chart {
                (trusted(svg::daily_lines(&days, &[
                    ("mean run duration (s)".to_string(), volume.iter().map(|v| v.mean_duration_s).collect()),
                ], false)))
                figcaption { "Mean run duration per day, in seconds." }
            }
        }

        section #failures {
            h2 { "Failure Pareto" }
            h3 { "By phase" a.csv href=(csv_link("failures-phases")) download { "CSV" } }
            (pareto_block(&by_phase))
            h3 { "By measurement" a.csv href=(csv_link("failures-measurements")) download { "CSV" } }
            (pareto_block(&by_measurement))
        }

        section #capability {
            h2 { "Capability" a.csv href=(csv_link("capability")) download { "CSV" } }
            @if capability.is_empty() { p.empty { "No numeric measurements in this window." } }
            @else {
                table.capability {
                    thead { tr {
                        th { "Phase" } th { "Measurement" } th { "Units" } th.num { "n" } th.num { "Mean" }
                        th.num { "σ" } th.num { "LSL" } th.num { "USL" } th.num { "Cp" } th.num { "Cpk" } th { "Status" }
                    } }
                    tbody {
                        @for c in &capability {
                            @let k = &c.capability;
                            @let link = format!("?{}#charts", q.query(range, Some((&c.phase, &c.measurement, c.units.as_deref()))));
                            tr {
                                td { (c.phase) }
                                td { a href=(link) { (c.measurement) } }
                                td { (c.units.as_deref().unwrap_or("")) }
                                td.num { (k.n) }
                                td.num { (fmt::num(k.mean)) }
                                td.num { (fmt::num(k.stdev)) }
                                td.num { (fmt::num(k.lsl)) }
                                td.num { (fmt::num(k.usl)) }
                                td.num { (fmt::num(k.cp)) }
                                td.num class=[cpk_class(k.cpk)] { (fmt::num(k.cpk)) }
                                td { (status_text(c)) }
                            }
                        }
                    }
                }
            }
        }

        section #charts {
            @match (&charts, measurement) {
                (Some((series, hist)), Some((phase, m, _))) => {
                    h2 { "Control chart: " (phase) " / " (m)
                        a.csv href=(csv_link("series")) download { "CSV" } }
                    (control_block(series))
                    h2 { "Histogram: " (phase) " / " (m)
                        a.csv href=(csv_link("histogram")) download { "CSV" } }
                    (histogram_block(hist))
                }
                _ => {
                    h2 { "Control chart" }
                    p.empty { "Pick a measurement in the capability table." }
                }
            }
        }
    };
    Ok(layout(&session, Nav::Procedures, &summary.name, body))
}

fn yield_chart(days: &[String], y: &YieldReport) -> String {
    let pick = |f: fn(&crate::analytics::Yields) -> Option<f64>| -> Vec<Option<f64>> {
        y.data.iter().map(|r| f(&r.yields)).collect()
    };
    svg::daily_lines(
        days,
        &[
            ("FPY".into(), pick(|y| y.fpy)),
            ("SPY".into(), pick(|y| y.spy)),
            ("TPY".into(), pick(|y| y.tpy)),
            ("LPY".into(), pick(|y| y.lpy)),
        ],
        true,
    )
}

fn sliced_chart(days: &[String], y: &YieldReport) -> String {
    let mut groups: Vec<String> = Vec::new();
    for r in &y.data {
        let g = r.group.clone().unwrap_or_else(|| "(none)".into());
        if !groups.contains(&g) && r.yields.units > 0 {
            groups.push(g);
        }
    }
    groups.truncate(8);
    let series: Vec<(String, Vec<Option<f64>>)> = groups
        .iter()
        .map(|g| {
            let values = days
                .iter()
                .map(|d| {
                    y.data
                        .iter()
                        .find(|r| {
                            &r.date == d && r.group.as_deref().unwrap_or("(none)") == g.as_str()
                        })
                        .and_then(|r| r.yields.fpy)
                })
                .collect();
            (g.clone(), values)
        })
        .collect();
    svg::daily_lines(days, &series, true)
}

fn pareto_block(rows: &[ParetoRow]) -> Markup {
    let label = |r: &ParetoRow| match &r.measurement {
        Some(m) => format!("{} / {m}", r.phase),
        None => r.phase.clone(),
    };
    html! {
        @if rows.is_empty() { p.empty { "No failures in this window." } }
        @else {
            figure.chart {
                (trusted(svg::hbars(&rows.iter().take(15).map(|r| {
                    (label(r), r.failed_runs as f64, format!("{} runs · {}", r.failed_runs, fmt::percent(Some(r.cumulative_share))))
                }).collect::<Vec<_>>())))
                figcaption { "Failed runs per category, most first; the percentage is cumulative." }
            }
        }
    }
}

fn cpk_class(cpk: Option<f64>) -> Option<&'static str> {
    cpk.filter(|c| *c < 1.0).map(|_| "status-bad")
}

fn status_text(c: &CapabilityRow) -> String {
    let k = &c.capability;
    let mut s = serde_json::to_value(k.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if let Some(cpk) = k.cpk {
        s = crate::analytics::capability::class(cpk).replace('_', " ");
    }
    if k.low_sample {
        s.push_str(" (few values)");
    }
    if c.limits_changed {
        s.push_str(" · limits changed");
    }
    s
}

/// Latest spec limits of a control chart report.
fn latest_limits(s: &SeriesReport) -> (Option<f64>, Option<f64>) {
    s.limits
        .iter()
        .rev()
        .find(|l| l.lsl.is_some() || l.usl.is_some())
        .map_or((None, None), |l| (l.lsl, l.usl))
}

fn control_block(s: &SeriesReport) -> Markup {
    let values: Vec<f64> = s.data.iter().map(|p| p.value).collect();
    let (lsl, usl) = latest_limits(s);
    let mut refs: Vec<Reference> = Vec::new();
    if let Some(v) = s.cl {
        refs.push(("CL".into(), v, "#1a7f37", "0"));
    }
    if let Some(v) = s.ucl {
        refs.push(("UCL".into(), v, "#bc4c00", "6 3"));
    }
    if let Some(v) = s.lcl {
        refs.push(("LCL".into(), v, "#bc4c00", "6 3"));
    }
    if let Some(v) = usl {
        refs.push(("USL".into(), v, "#cf222e", "2 2"));
    }
    if let Some(v) = lsl {
        refs.push(("LSL".into(), v, "#cf222e", "2 2"));
    }
    let out_of_control = s.data.iter().filter(|p| p.out_of_control).count();
    html! {
        @if values.is_empty() { p.empty { "No values in this window." } }
        @else {
            figure.chart {
                (trusted(svg::control_chart(&values, &refs, s.ucl, s.lcl)))
                figcaption {
                    (s.n) " values"
                    @if (s.n as usize) > values.len() { " (first " (values.len()) " drawn; the CSV has all)" }
                    "; " (out_of_control) " beyond the control limits (red squares). "
                    "CL " (fmt::num(s.cl)) ", UCL " (fmt::num(s.ucl)) ", LCL " (fmt::num(s.lcl)) "."
                }
            }
        }
    }
}

fn histogram_block(h: &HistogramReport) -> Markup {
    let mut refs: Vec<Reference> = Vec::new();
    if let Some(v) = h.lsl {
        refs.push(("LSL".into(), v, "#cf222e", "2 2"));
    }
    if let Some(v) = h.usl {
        refs.push(("USL".into(), v, "#cf222e", "2 2"));
    }
    if let Some(v) = h.mean {
        refs.push(("mean".into(), v, "#1a7f37", "0"));
    }
    html! {
        @if h.counts.is_empty() { p.empty { "No values in this window." } }
        @else {
            figure.chart {
                (trusted(svg::histogram(&h.edges, &h.counts, &refs)))
                figcaption {
                    "n " (h.n) ", mean " (fmt::num(h.mean)) ", σ " (fmt::num(h.stdev))
                    ", LSL " (fmt::num(h.lsl)) ", USL " (fmt::num(h.usl)) "."
                }
            }
        }
    }
}

/// `GET /procedures/{id}/csv/{table}`: `yield`, `volume`, `failures-phases`,
/// `failures-measurements`, `capability`, `series` (every point) or `histogram`.
pub async fn csv(
    State(state): State<AppState>,
    session: Session,
    Path((id, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let q = AnalyticsQuery::parse(raw.as_deref());
    let (summary, scope) = scope_of(&state, &session, &id, &q).await?;
    let org = session.org_id;
    let db = &state.db;
    let name = |t: &str| {
        format!(
            "{}-{t}-{}-{}.csv",
            summary.name,
            format_day(scope.range.from),
            format_day(scope.range.to)
        )
    };
    let o = csvfile::opt;
    let resp = match table.as_str() {
        "yield" => {
            let y = db.analytics_yield(org, &scope, q.group()).await?;
            let rows = y
                .data
                .iter()
                .map(|r| {
                    vec![
                        r.date.clone(),
                        r.group.clone().unwrap_or_default(),
                        r.yields.units.to_string(),
                        o(r.yields.fpy),
                        o(r.yields.spy),
                        o(r.yields.tpy),
                        o(r.yields.lpy),
                    ]
                })
                .collect();
            csvfile::download(
                &name("yield"),
                &["date", "group", "units", "fpy", "spy", "tpy", "lpy"],
                rows,
            )
        }
        "volume" => {
            let v = db.analytics_volume(org, &scope).await?;
            let rows = v
                .iter()
                .map(|d| {
                    vec![
                        d.date.clone(),
                        d.runs.to_string(),
                        d.counts.pass.to_string(),
                        d.counts.fail.to_string(),
                        d.counts.error.to_string(),
                        d.counts.timeout.to_string(),
                        d.counts.aborted.to_string(),
                        d.counts.units.to_string(),
                        d.retests.to_string(),
                        o(d.mean_duration_s),
                    ]
                })
                .collect();
            csvfile::download(
                &name("volume"),
                &[
                    "date",
                    "runs",
                    "pass",
                    "fail",
                    "error",
                    "timeout",
                    "aborted",
                    "units",
                    "retests",
                    "mean_duration_s",
                ],
                rows,
            )
        }
        "failures-phases" | "failures-measurements" => {
            let by = if table == "failures-phases" {
                FailureBy::Phase
            } else {
                FailureBy::Measurement
            };
            let f = db.analytics_failures(org, &scope, by).await?;
            let rows = f
                .iter()
                .map(|r| {
                    vec![
                        r.phase.clone(),
                        r.measurement.clone().unwrap_or_default(),
                        r.failed_runs.to_string(),
                        r.occurrences.to_string(),
                        r.share.to_string(),
                        r.cumulative_share.to_string(),
                    ]
                })
                .collect();
            csvfile::download(
                &name(&table),
                &[
                    "phase",
                    "measurement",
                    "failed_runs",
                    "occurrences",
                    "share",
                    "cumulative_share",
                ],
                rows,
            )
        }
        "capability" => {
            let c = db.analytics_capability(org, &scope).await?;
            let rows = c
                .iter()
                .map(|r| {
                    let k = &r.capability;
                    vec![
                        r.phase.clone(),
                        r.measurement.clone(),
                        r.units.clone().unwrap_or_default(),
                        k.n.to_string(),
                        o(k.mean),
                        o(k.stdev),
                        o(k.sigma_within),
                        o(k.lsl),
                        o(k.usl),
                        o(k.cp),
                        o(k.cpk),
                        o(k.pp),
                        o(k.ppk),
                        serde_json::to_value(k.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            csvfile::download(
                &name("capability"),
                &[
                    "phase",
                    "measurement",
                    "units",
                    "n",
                    "mean",
                    "stdev",
                    "sigma_within",
                    "lsl",
                    "usl",
                    "cp",
                    "cpk",
                    "pp",
                    "ppk",
                    "status",
                ],
                rows,
            )
        }
        "series" | "histogram" => {
            let capability;
            let m = if q.phase.trim().is_empty() {
                capability = db.analytics_capability(org, &scope).await?;
                chosen(&q, &capability)
            } else {
                chosen(&q, &[])
            };
            let Some((phase, measurement, units)) = m else {
                return Err(PageError::NotFound("No measurement to export".into()));
            };
            if table == "series" {
                let mut rows = Vec::new();
                let mut offset = 0;
                loop {
                    let s = db
                        .analytics_control_chart(
                            org,
                            &scope,
                            phase,
                            measurement,
                            units,
                            offset,
                            SERIES_PAGE_MAX,
                        )
                        .await?;
                    for p in &s.data {
                        rows.push(vec![
                            p.started_at
                                .0
                                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                            p.value.to_string(),
                            p.run_id.to_string(),
                            p.out_of_control.to_string(),
                            o(s.cl),
                            o(s.ucl),
                            o(s.lcl),
                        ]);
                    }
                    match s.meta.next_cursor {
                        Some(next) if s.meta.has_more => offset = next,
                        _ => break,
                    }
                }
                csvfile::download(
                    &name("series"),
                    &[
                        "started_at",
                        "value",
                        "run_id",
                        "out_of_control",
                        "cl",
                        "ucl",
                        "lcl",
                    ],
                    rows,
                )
            } else {
                let h = db
                    .analytics_histogram(org, &scope, phase, measurement, units)
                    .await?;
                let rows = h
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        vec![
                            h.edges.get(i).map(f64::to_string).unwrap_or_default(),
                            h.edges.get(i + 1).map(f64::to_string).unwrap_or_default(),
                            c.to_string(),
                        ]
                    })
                    .collect();
                csvfile::download(&name("histogram"), &["from", "to", "count"], rows)
            }
        }
        _ => return Err(PageError::NotFound("No such table".into())),
    };
    Ok(resp)
}
