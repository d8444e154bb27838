//! Stations and the official TofuPilot CLI: the station list (`/stations`), a station's
//! page with its CLI installations and the button that mints a setup token
//! (`/stations/{id}`), and the page where a signed-in user approves a developer's device
//! login (`/device`, the `verification_uri` the CLI prints).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::auth::check_origin;
use super::{fmt, layout, Nav, PageError, PageResult, Session};
use crate::db::cli::{ts_in, SETUP_TOKEN_TTL_SECS};
use crate::db::stations::StationFilter;
use crate::db::Id;
use crate::routes::attachments::public_base;
use crate::values::Page;
use crate::AppState;

/// `GET /stations`: the organization's live stations and the procedures each may run.
pub async fn index(State(state): State<AppState>, session: Session) -> PageResult {
    let page = Page::parse(Some("100"), None)?;
    let (stations, links) = state
        .db
        .list_stations(session.org_id, &StationFilter::default(), page)
        .await?;
    let body = html! {
        h1 { "Stations" }
        @if stations.is_empty() {
            p.muted { "No stations yet." }
        } @else {
            table.grid {
                thead { tr { th { "Station" } th { "Procedures" } th { "Created" } } }
                tbody {
                    @for s in &stations {
                        tr {
                            td { a href={ "/stations/" (s.id) } { (s.name) } }
                            td {
                                @for (i, l) in links.iter().filter(|l| l.station_id == s.id).enumerate() {
                                    @if i > 0 { ", " }
                                    a href={ "/procedures/" (l.id) } { (l.name) }
                                }
                            }
                            td { (fmt::time(s.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&session, Nav::Stations, "Stations", body))
}

/// `GET /stations/{id}`: the station, its linked procedures, its CLI installations and
/// the button that mints a setup token.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id(&id)?;
    let detail = state.db.station(session.org_id, id).await?;
    let installations = state.db.station_installations(session.org_id, id).await?;
    let s = &detail.station;
    let body = html! {
        h1 { "Station " (s.name) }
        section.card {
            h2 { "Procedures it may run" }
            @if detail.procedures.is_empty() {
                p.muted { "None linked: the station's key cannot create runs yet." }
            } @else {
                ul { @for p in &detail.procedures { li { a href={ "/procedures/" (p.id) } { (p.name) } } } }
            }
        }
        section.card {
            h2 { "TofuPilot CLI" }
            p {
                "Install the official TofuPilot CLI on this station with a setup token: it is "
                "valid for one hour and can be used once. Installing again replaces the "
                "station's earlier installation and revokes its key."
            }
            form method="post" action={ "/stations/" (s.id) "/setup-token" } {
                button type="submit" id="setup-token" { "Create a setup token" }
            }
            h3 { "Installations" }
            @if installations.is_empty() {
                p.muted { "None yet." }
            } @else {
                table.grid {
                    thead { tr { th { "Host" } th { "System" } th { "CLI" } th { "Installed" } th { "Status" } } }
                    tbody {
                        @for i in &installations {
                            tr {
                                td { (i.hostname) }
                                td { (i.os.as_deref().unwrap_or("")) " " (i.platform.as_deref().unwrap_or("")) }
                                td { (i.cli_version.as_deref().unwrap_or("")) }
                                td { (fmt::time(i.created_at)) }
                                td { (i.status) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&session, Nav::Stations, &s.name, body))
}

/// `POST /stations/{id}/setup-token`: mints a setup token for the station and shows it,
/// once, with the command to paste on the station.
pub async fn setup_token(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    check_origin(&state, &headers)?;
    let id = parse_id(&id)?;
    let token = state
        .db
        .create_setup_token(Some(session.org_id), id, ts_in(SETUP_TOKEN_TTL_SECS))
        .await?
        .ok_or_else(|| PageError::NotFound("Station not found".into()))?;
    let command = format!(
        "tofupilot login --token {} --url {}",
        token.token,
        public_base(&state, &headers)
    );
    let body = html! {
        h1 { "Setup token for " (token.station_name) }
        section.card {
            p { "Run this on the station. The token is shown only now; it can be used once, until "
                (fmt::time(token.expires_at)) "." }
            pre.command id="install-command" { (command) }
            p.muted { "With a private certificate authority, add " code { "--ca-cert ca.pem" } "." }
            p { a href={ "/stations/" (id) } { "Back to the station" } }
        }
    };
    Ok(layout(&session, Nav::Stations, "Setup token", body))
}

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

/// `GET /device[?user_code=…]`: where a developer's `tofupilot login` sends them to
/// approve its code.
pub async fn device_form(session: Session, Query(q): Query<DeviceQuery>) -> PageResult {
    Ok(device_page(
        &session,
        q.user_code.as_deref().unwrap_or(""),
        None,
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeviceDecision {
    user_code: String,
    decision: String,
}

/// `POST /device`: approves the code for the signed-in user's email (the CLI may then
/// pick any organization where that email has a user), or denies it.
pub async fn device_decide(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(d): Form<DeviceDecision>,
) -> PageResult {
    check_origin(&state, &headers)?;
    let approve = d.decision == "approve";
    let email = approve.then_some(session.user_email.as_str());
    let outcome = state.db.decide_device_code(&d.user_code, email).await?;
    let message = match outcome {
        Ok(()) if approve => "Approved: the CLI signs in as you in a moment.".to_string(),
        Ok(()) => "Denied: the CLI will not sign in.".to_string(),
        Err(refusal) => format!("{}: {}", d.user_code.trim(), refusal.message()),
    };
    Ok(device_page(&session, &d.user_code, Some(message)))
}

fn device_page(session: &Session, code: &str, message: Option<String>) -> axum::response::Response {
    let body = html! {
        h1 { "Sign in the TofuPilot CLI" }
        section.card.narrow {
            @if let Some(m) = &message {
                p.notice id="device-result" { (m) }
            }
            p { "Approve only a code that your own " code { "tofupilot login" } " shows." }
            form method="post" action="/device" {
                label { "Code " input type="text" name="user_code" value=(code) required autocomplete="off"; }
                " "
                button type="submit" name="decision" value="approve" { "Approve" }
                " "
                button type="submit" name="decision" value="deny" { "Deny" }
            }
        }
    };
    layout(session, Nav::Stations, "Device login", body)
}

fn parse_id(raw: &str) -> Result<Id, PageError> {
    Id::parse(raw.trim()).ok_or_else(|| PageError::NotFound("Station not found".into()))
}
