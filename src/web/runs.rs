//! The Runs page (`/`): newest first, filtered by the query string (so a filtered view
//! is a link), paginated, with its first page refreshed by the script from
//! `/runs/rows` while it is open.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::NaiveDate;
use maud::{html, Markup};
use serde::Deserialize;

use super::{fmt, html_response, layout, outcome_badge, Nav, PageResult, Session};
use crate::db::runs::{RunFilter, RunRow, RunSort};
use crate::db::{Id, Ts};
use crate::values::{Page, SortOrder};
use crate::AppState;

/// Runs per page.
pub const PAGE_SIZE: i64 = 50;

/// The run outcomes a filter offers.
pub const OUTCOMES: [&str; 5] = ["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"];

/// The filters, as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunsQuery {
    procedure: String,
    outcome: String,
    serial: String,
    part: String,
    revision: String,
    batch: String,
    station: String,
    from: String,
    to: String,
    q: String,
    page: String,
}

impl RunsQuery {
    fn parse(raw: Option<&str>) -> RunsQuery {
        serde_html_form::from_str(raw.unwrap_or("")).unwrap_or_default()
    }

    fn page_number(&self) -> i64 {
        self.page
            .trim()
            .parse::<i64>()
            .unwrap_or(1)
            .clamp(1, 100_000)
    }

    fn filter(&self) -> RunFilter {
        let text = |s: &str| {
            let s = s.trim();
            if s.is_empty() {
                Vec::new()
            } else {
                vec![s.to_string()]
            }
        };
        // An id that does not parse matches nothing rather than everything.
        let id = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| Id::parse(s).into_iter().collect::<Vec<_>>())
        };
        let day = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
        RunFilter {
            procedure_ids: id(&self.procedure),
            created_by_station_ids: id(&self.station),
            outcomes: text(&self.outcome.to_ascii_uppercase()),
            serial_numbers: text(&self.serial),
            part_numbers: text(&self.part),
            revision_numbers: text(&self.revision),
            batch_numbers: text(&self.batch),
            started_after: day(&self.from)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Ts::from(t.and_utc())),
            started_before: day(&self.to)
                .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
                .map(|t| Ts::from(t.and_utc())),
            search_query: Some(self.q.trim().to_string()).filter(|s| !s.is_empty()),
            ..RunFilter::default()
        }
    }

    /// The query string of these filters on page `n` (the page left out for 1).
    fn with_page(&self, n: i64) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("procedure", &self.procedure),
            ("outcome", &self.outcome),
            ("serial", &self.serial),
            ("part", &self.part),
            ("revision", &self.revision),
            ("batch", &self.batch),
            ("station", &self.station),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        if n > 1 {
            s.append_pair("page", &n.to_string());
        }
        s.finish()
    }
}

/// One page of runs and whether another follows.
async fn load(
    state: &AppState,
    session: &Session,
    q: &RunsQuery,
) -> PageResult<(Vec<RunRow>, bool)> {
    let n = q.page_number();
    let page = Page {
        limit: PAGE_SIZE,
        offset: (n - 1) * PAGE_SIZE,
    };
    let mut rows = state
        .db
        .list_runs(
            session.org_id,
            &q.filter(),
            RunSort::StartedAt,
            SortOrder::Desc,
            page,
        )
        .await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok((rows, more))
}

/// `GET /`: the Runs page.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let q = RunsQuery::parse(raw.as_deref());
    let (rows, more) = load(&state, &session, &q).await?;
    let procedures = state.db.procedure_names(session.org_id).await?;
    let stations = state.db.station_names(session.org_id).await?;
    let n = q.page_number();
    let filtered = !q.with_page(1).is_empty();
    let body = html! {
        div.title-row {
            h1 { "Runs" }
            @if n == 1 {
                span #live.live data-refresh={ "/runs/rows?" (q.with_page(1)) } {
                    "● Live — new runs appear as they arrive"
                }
            }
        }
        form.filters method="get" action="/" {
            label { "Procedure"
                select name="procedure" {
                    option value="" { "Any" }
                    @for p in &procedures {
                        @let id = p.id.to_string();
                        option value=(id) selected[q.procedure.trim() == id] { (p.name) }
                    }
                }
            }
            label { "Outcome"
                select name="outcome" {
                    option value="" { "Any" }
                    @for o in OUTCOMES {
                        option value=(o) selected[q.outcome.eq_ignore_ascii_case(o)] { (o) }
                    }
                }
            }
            label { "Serial" input type="text" name="serial" value=(q.serial); }
            label { "Part" input type="text" name="part" value=(q.part); }
            label { "Revision" input type="text" name="revision" value=(q.revision); }
            label { "Batch" input type="text" name="batch" value=(q.batch); }
            label { "Station"
                select name="station" {
                    option value="" { "Any" }
                    @for s in &stations {
                        @let id = s.id.to_string();
                        option value=(id) selected[q.station.trim() == id] { (s.name) }
                    }
                }
            }
            label { "From" input type="date" name="from" value=(q.from); }
            label { "To" input type="date" name="to" value=(q.to); }
            label.wide { "Search" input type="search" name="q" value=(q.q) placeholder="serial, part, procedure or run id"; }
            div.actions {
                button type="submit" { "Filter" }
                @if filtered { a href="/" { "Clear" } }
            }
        }
        table.runs {
            thead { tr {
                th { "Outcome" } th { "Started" } th { "Serial" } th { "Part / revision" }
                th { "Batch" } th { "Procedure" } th { "Version" } th { "Station" } th.num { "Duration" }
            } }
            tbody #runs-body { (row_markup(&rows)) }
        }
        @if rows.is_empty() {
            p.empty { @if filtered { "No run matches these filters." } @else { "No runs yet. Runs appear here as stations upload them." } }
        }
        nav.pager {
            @if n > 1 { a rel="prev" href={ "/?" (q.with_page(n - 1)) } { "← Newer" } }
            span { "Page " (n) }
            @if more { a rel="next" href={ "/?" (q.with_page(n + 1)) } { "Older →" } }
        }
    };
    Ok(page_response(&session, body))
}

fn page_response(session: &Session, body: Markup) -> Response {
    layout(session, Nav::Runs, "Runs", body)
}

/// `GET /runs/rows`: the table rows of the first page, for the live refresh.
pub async fn rows(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let mut q = RunsQuery::parse(raw.as_deref());
    q.page = String::new();
    let (rows, _) = load(&state, &session, &q).await?;
    Ok(html_response(row_markup(&rows)))
}

fn row_markup(rows: &[RunRow]) -> Markup {
    html! {
        @for r in rows {
            tr data-run-id=(r.id) class={ "run o-" (r.outcome.to_ascii_lowercase()) } {
                td { (outcome_badge(&r.outcome)) }
                td { a href={ "/runs/" (r.id) } { (fmt::time(r.started_at)) } }
                td { a href={ "/units/" (urlencode(&r.serial_number)) } { (r.serial_number) } }
                td { (r.part_number) " / " (r.revision_number) }
                td { (r.batch_number.as_deref().unwrap_or("—")) }
                td { a href={ "/procedures/" (r.procedure_id) } { (r.procedure_name) } }
                td { (r.version_tag.as_deref().unwrap_or("—")) }
                td { (r.creator.cs_name.as_deref().unwrap_or("—")) }
                td.num { (fmt::duration(r.duration_us)) }
            }
        }
    }
}

/// A path segment: serials may hold `/`, `?`, spaces.
pub fn urlencode(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}
