//! The Run page (`/runs/{id}`): what ran on which unit and how it went; phases on a
//! timeline, every measurement with its limits (failed ones highlighted), plots of
//! multi-dimensional measurements, logs filtered by level, attachments, sub-units.

use axum::extract::{Path, RawQuery, State};
use maud::{html, Markup};
use serde_json::Value;

use super::runs::urlencode;
use super::svg::{self, Series};
use super::{fmt, layout, outcome_badge, trusted, Nav, PageError, PageResult, Session};
use crate::db::attachments::AttachmentRow;
use crate::db::runs::{MeasurementRow, RunDetail};
use crate::db::Id;
use crate::AppState;

/// Log levels, least severe first.
pub const LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// `GET /runs/{id}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = Id::parse(&id).ok_or_else(|| PageError::NotFound("Run not found".into()))?;
    let detail = state.db.run(session.org_id, id).await?;
    let attachments = state.db.attachments_of_runs(&[id]).await?;
    let min_level =
        serde_html_form::from_str::<Vec<(String, String)>>(raw.as_deref().unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "log")
            .map(|(_, v)| v.to_ascii_uppercase())
            .filter(|v| LEVELS.contains(&v.as_str()));
    let title = format!("Run of {}", detail.run.serial_number);
    Ok(layout(
        &session,
        Nav::Runs,
        &title,
        body(&detail, &attachments, min_level.as_deref()),
    ))
}

fn body(d: &RunDetail, attachments: &[AttachmentRow], min_level: Option<&str>) -> Markup {
    let r = &d.run;
    let operator = r.op_name.clone().or_else(|| r.op_email.clone());
    let failed = d
        .measurements
        .iter()
        .filter(|m| m.outcome == "FAIL")
        .count();
    html! {
        div.title-row {
            h1 { "Run " span.mono { (r.id.to_string()[..8]) } }
            (outcome_badge(&r.outcome))
        }
        dl.facts {
            dt { "Unit" } dd { a href={ "/units/" (urlencode(&r.serial_number)) } { (r.serial_number) } }
            dt { "Part" } dd { (r.part_number) @if r.part_name != r.part_number { " — " (r.part_name) } }
            dt { "Revision" } dd { (r.revision_number) }
            dt { "Batch" } dd { (r.batch_number.as_deref().unwrap_or("—")) }
            dt { "Procedure" } dd { a href={ "/procedures/" (r.procedure_id) } { (r.procedure_name) } }
            dt { "Version" } dd { (r.version_tag.as_deref().unwrap_or("—")) }
            dt { "Station" } dd { (r.creator.cs_name.as_deref().unwrap_or("—")) }
            dt { "Operator" } dd { (operator.as_deref().unwrap_or("—")) }
            dt { "Started" } dd { (fmt::time(r.started_at)) }
            dt { "Ended" } dd { (fmt::time(r.ended_at)) }
            dt { "Duration" } dd { (fmt::duration(r.duration_us)) }
            dt { "Outcome" } dd { (outcome_badge(&r.outcome)) }
            @if let Some(doc) = &r.docstring { dt { "Description" } dd { (doc) } }
        }

        section {
            h2 { "Phases" }
            @if d.phases.is_empty() { p.empty { "This run has no phases." } }
            @else {
                figure.chart {
                    (trusted(svg::timeline(r.started_at, r.ended_at, &d.phases)))
                    figcaption { "Each bar is a phase, placed at its start and as long as it ran." }
                }
            }
        }

        section {
            h2 { "Measurements"
                @if failed > 0 { " " span.count-fail { "(" (failed) " out of limits)" } }
            }
            @if d.measurements.is_empty() { p.empty { "This run recorded no measurements." } }
            @else {
                table.measurements {
                    thead { tr {
                        th { "Phase" } th { "Measurement" } th.num { "Value" } th { "Units" }
                        th { "Limits / validators" } th { "Outcome" }
                    } }
                    tbody {
                        @for ph in &d.phases {
                            @for m in d.measurements.iter().filter(|m| m.phase_id == ph.id) {
                                (measurement_row(&ph.name, m))
                            }
                        }
                    }
                }
                @for ph in &d.phases {
                    @for m in d.measurements.iter().filter(|m| m.phase_id == ph.id) {
                        @if let Some(plot) = plot(m) {
                            figure.chart {
                                (trusted(plot))
                                figcaption { (ph.name) " / " (m.name) }
                            }
                        }
                    }
                }
            }
        }

        section {
            h2 { "Logs" }
            nav.levels {
                "Show: "
                a href="?" class=[min_level.is_none().then_some("current")] { "all" }
                @for l in &LEVELS[1..] {
                    " · "
                    a href={ "?log=" (l) } class=[(min_level == Some(*l)).then_some("current")] { (l) "+" }
                }
            }
            @let logs: Vec<_> = d.logs.iter()
                .filter(|l| min_level.is_none_or(|m| level_rank(&l.level) >= level_rank(m)))
                .collect();
            @if logs.is_empty() { p.empty { "No log lines at this level." } }
            @else {
                table.logs {
                    thead { tr { th { "Time" } th { "Level" } th { "Message" } th { "Source" } } }
                    tbody {
                        @for l in logs {
                            tr class={ "lvl-" (l.level.to_ascii_lowercase()) } {
                                td.mono { (fmt::clock(l.timestamp)) }
                                td { span.level { (l.level) } }
                                td.msg { (l.message) }
                                td.mono { (l.source_file) ":" (l.line_number) }
                            }
                        }
                    }
                }
            }
        }

        section {
            h2 { "Attachments" }
            (attachment_list(attachments))
        }

        @if !d.sub_units.is_empty() {
            section {
                h2 { "Sub-units" }
                ul {
                    @for s in &d.sub_units {
                        li {
                            a href={ "/units/" (urlencode(&s.serial_number)) } { (s.serial_number) }
                            " — " (s.part_number)
                            @if s.part_name != s.part_number { " " (s.part_name) }
                        }
                    }
                }
            }
        }
    }
}

fn measurement_row(phase: &str, m: &MeasurementRow) -> Markup {
    let limits = fmt::limits(m.validators.as_ref().map(|j| &j.0));
    let mut class = format!("m o-{}", m.outcome.to_ascii_lowercase());
    if m.outcome == "FAIL" {
        class.push_str(" out-of-limit");
    }
    html! {
        tr class=(class) data-outcome=(m.outcome) {
            td { (phase) }
            td { (m.name) }
            td.num.value {
                @if m.measured_value.is_none() && m.data_series.is_some() { "plotted below" }
                @else { (fmt::value(m.measured_value.as_ref().map(|j| &j.0))) }
            }
            td { (m.units.as_deref().unwrap_or("")) }
            td {
                @for (expr, outcome) in &limits {
                    span class={ "limit o-" (outcome.to_ascii_lowercase()) } { (expr) } " "
                }
            }
            td { (outcome_badge(&m.outcome)) }
        }
    }
}

/// A line plot of a multi-dimensional measurement: its data series (x axis first), or a
/// measured value that is a list of rows `[x, y1, y2, …]`.
fn plot(m: &MeasurementRow) -> Option<String> {
    let as_numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    if let Some(Value::Array(series)) = m.data_series.as_ref().map(|j| &j.0) {
        if series.len() >= 2 {
            let x = as_numbers(&series[0]["data"]);
            let ys: Vec<Series> = series[1..]
                .iter()
                .enumerate()
                .map(|(i, s)| Series {
                    name: s["name"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("y{}", i + 1)),
                    points: x.iter().copied().zip(as_numbers(&s["data"])).collect(),
                })
                .collect();
            let x_label = series[0]["units"].as_str().unwrap_or("x").to_string();
            return Some(svg::lines(&ys, &x_label, m.units.as_deref().unwrap_or("")));
        }
    }
    if let Some(Value::Array(rows)) = m.measured_value.as_ref().map(|j| &j.0) {
        if !rows.is_empty()
            && rows
                .iter()
                .all(|r| r.as_array().is_some_and(|a| a.len() >= 2))
        {
            let width = rows
                .iter()
                .map(|r| r.as_array().map_or(0, Vec::len))
                .min()?;
            let ys: Vec<Series> = (1..width)
                .map(|col| Series {
                    name: format!("y{col}"),
                    points: rows
                        .iter()
                        .filter_map(|r| Some((r[0].as_f64()?, r[col].as_f64()?)))
                        .collect(),
                })
                .collect();
            return Some(svg::lines(&ys, "x", m.units.as_deref().unwrap_or("")));
        }
    }
    None
}

/// Attachments with a download link each; images and PDFs previewed inline.
pub fn attachment_list(attachments: &[AttachmentRow]) -> Markup {
    html! {
        @if attachments.is_empty() { p.empty { "No attachments." } }
        @else {
            ul.attachments {
                @for a in attachments {
                    li {
                        @if a.has_bytes {
                            a href={ "/attachments/" (a.id) "?download=1" } download { (a.name) }
                        } @else {
                            (a.name) " (upload not completed)"
                        }
                        @if let Some(size) = a.size { span.muted { " " (human_size(size)) } }
                        @if a.has_bytes {
                            @match super::files::preview_kind(a.content_type.as_deref()) {
                                Some(super::files::Preview::Image) => {
                                    div.preview { img src={ "/attachments/" (a.id) } alt=(a.name); }
                                }
                                Some(super::files::Preview::Pdf) => {
                                    div.preview { iframe src={ "/attachments/" (a.id) } title=(a.name) {} }
                                }
                                None => {}
                            }
                        }
                    }
                }
            }
        }
    }
}

fn human_size(n: i64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    }
}
