//! The Unit page (`/units/{serial}`): the unit, its genealogy (ancestors above it, its
//! sub-units below, two levels deep), its run history and its attachments.

use axum::extract::{Path, State};
use maud::{html, Markup};

use super::run::attachment_list;
use super::runs::urlencode;
use super::{fmt, layout, outcome_badge, Nav, PageResult, Session};
use crate::db::runs::{RunFilter, RunSort};
use crate::db::units::RelatedUnitRow;
use crate::values::{Page, SortOrder};
use crate::AppState;

/// How many ancestors are followed up, and how many runs the history shows.
const MAX_ANCESTORS: usize = 16;
const HISTORY: i64 = 100;
/// Grandchildren are listed for at most this many children.
const MAX_EXPANDED_CHILDREN: usize = 50;

/// `GET /units/{serial}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(serial): Path<String>,
) -> PageResult {
    let org = session.org_id;
    let detail = state.db.unit(org, &serial).await?;
    let u = &detail.unit;

    // Ancestors, nearest first.
    let mut ancestors: Vec<RelatedUnitRow> = Vec::new();
    let mut next = detail.parent.clone();
    while let Some(p) = next.take() {
        if ancestors.len() >= MAX_ANCESTORS || ancestors.iter().any(|a| a.id == p.id) {
            break;
        }
        next = state.db.unit(org, &p.serial_number).await?.parent;
        ancestors.push(p);
    }
    // Children with their own children.
    let mut children = Vec::new();
    for (i, c) in detail.children.iter().enumerate() {
        let grand = if i < MAX_EXPANDED_CHILDREN {
            state.db.unit(org, &c.serial_number).await?.children
        } else {
            Vec::new()
        };
        children.push((c.clone(), grand));
    }

    let filter = RunFilter {
        serial_numbers: vec![u.serial_number.clone()],
        ..RunFilter::default()
    };
    let mut runs = state
        .db
        .list_runs(
            org,
            &filter,
            RunSort::StartedAt,
            SortOrder::Desc,
            Page {
                limit: HISTORY,
                offset: 0,
            },
        )
        .await?;
    let more_runs = runs.len() as i64 > HISTORY;
    runs.truncate(HISTORY as usize);
    let attachments = state.db.attachments_of_unit(u.id).await?;

    let body = html! {
        div.title-row {
            h1 { "Unit " (u.serial_number) }
            @if let Some(s) = &u.sample { span.tag { (s) " sample" } }
        }
        dl.facts {
            dt { "Part" } dd { (u.part_number) @if u.part_name != u.part_number { " — " (u.part_name) } }
            dt { "Revision" } dd { (u.revision_number) }
            dt { "Batch" } dd { (u.batch_number.as_deref().unwrap_or("—")) }
            dt { "Created" } dd { (fmt::time(u.created_at)) }
            @if let Some(r) = &detail.created_during {
                dt { "Created by run" } dd { a href={ "/runs/" (r.id) } { (r.procedure_name) " at " (fmt::time(r.started_at)) } }
            }
        }
        section {
            h2 { "Genealogy" }
            @if ancestors.is_empty() && children.is_empty() {
                p.empty { "This unit has no parent and no sub-units." }
            }
            (tree(&ancestors, &u.serial_number, &u.part_number, &u.revision_number, &children))
        }
        section {
            h2 { "Run history" }
            @if runs.is_empty() { p.empty { "No runs of this unit." } }
            @else {
                table.runs {
                    thead { tr { th { "Outcome" } th { "Started" } th { "Procedure" } th { "Version" } th { "Station" } th.num { "Duration" } } }
                    tbody {
                        @for r in &runs {
                            tr class={ "run o-" (r.outcome.to_ascii_lowercase()) } {
                                td { (outcome_badge(&r.outcome)) }
                                td { a href={ "/runs/" (r.id) } { (fmt::time(r.started_at)) } }
                                td { a href={ "/procedures/" (r.procedure_id) } { (r.procedure_name) } }
                                td { (r.version_tag.as_deref().unwrap_or("—")) }
                                td { (r.creator.cs_name.as_deref().unwrap_or("—")) }
                                td.num { (fmt::duration(r.duration_us)) }
                            }
                        }
                    }
                }
                @if more_runs {
                    p { a href={ "/?serial=" (urlencode(&u.serial_number)) } { "All runs of this unit →" } }
                }
            }
        }
        section {
            h2 { "Attachments" }
            (attachment_list(&attachments))
        }
    };
    Ok(layout(
        &session,
        Nav::Runs,
        &format!("Unit {}", u.serial_number),
        body,
    ))
}

fn unit_link(u: &RelatedUnitRow) -> Markup {
    html! {
        a href={ "/units/" (urlencode(&u.serial_number)) } { (u.serial_number) }
        span.muted { " " (u.part_number) " rev " (u.revision_number) }
    }
}

/// Ancestors as nested lists down to this unit, its children and grandchildren below.
fn tree(
    ancestors: &[RelatedUnitRow],
    serial: &str,
    part: &str,
    revision: &str,
    children: &[(RelatedUnitRow, Vec<RelatedUnitRow>)],
) -> Markup {
    let here = html! {
        li.here {
            strong { (serial) } span.muted { " " (part) " rev " (revision) " (this unit)" }
            @if !children.is_empty() {
                ul {
                    @for (c, grand) in children {
                        li {
                            (unit_link(c))
                            @if !grand.is_empty() {
                                ul { @for g in grand { li { (unit_link(g)) } } }
                            }
                        }
                    }
                }
            }
        }
    };
    // Wrap from the nearest ancestor outwards.
    let mut inner = here;
    for a in ancestors {
        inner = html! { li { (unit_link(a)) ul { (inner) } } };
    }
    html! { ul.tree { (inner) } }
}
