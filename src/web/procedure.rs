//! Procedures: the list (`/procedures`) and each one's analytics page.

use axum::extract::{Path, State};
use maud::html;

use super::{layout, Nav, PageError, PageResult, Session};
use crate::db::procedures::ProcedureFilter;
use crate::db::Id;
use crate::values::Page;
use crate::AppState;

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
                            td { (super::fmt::time(p.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&session, Nav::Procedures, "Procedures", body))
}

/// `GET /procedures/{id}`: yield, volume, failures and capability of one procedure.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = Id::parse(&id).ok_or_else(|| PageError::NotFound("Procedure not found".into()))?;
    let detail = state.db.procedure(session.org_id, id).await?;
    let body = html! { h1 { (detail.procedure.name) } };
    Ok(layout(
        &session,
        Nav::Procedures,
        &detail.procedure.name,
        body,
    ))
}

/// `GET /procedures/{id}/csv/{table}`.
pub async fn csv(
    State(_state): State<AppState>,
    _session: Session,
    Path((_id, _table)): Path<(String, String)>,
) -> PageResult {
    Err(PageError::NotFound("No such table".into()))
}
