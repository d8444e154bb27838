//! The control API, `/_tofulab/…`: throw-away organizations, resets, setup tokens, fault
//! injection and the request journal, for tests that use tofulab as a fixture. Mounted
//! only when an admin token is configured; every call carries it as a bearer token
//! (API keys are refused here, and the admin token is no API key).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::attachments::public_base;
use crate::apikey::{self, KeyKind};
use crate::control::faults::{Fault, NewFault};
use crate::control::journal::{JournalEntry, JournalFilter};
use crate::db::cli::{ts_in, SETUP_TOKEN_TTL_SECS};
use crate::db::organizations::{CreatedOrganization, NamedRow};
use crate::db::seed::{SeedOrganization, SeedProcedure, SeedStation, SeedTeam, SeedUser};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query, ValidatedJson};
use crate::middleware::auth::bearer_key;
use crate::AppState;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/organizations", post(create_organization))
        .route("/organizations/{id}", delete(delete_organization))
        .route("/organizations/{id}/reset", post(reset_organization))
        .route("/organizations/{id}/export", get(export_organization))
        .route("/organizations/{id}/import", post(import_organization))
        .route("/reset", post(reset_all))
        .route("/stations/{id}/setup-tokens", post(create_setup_token))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/requests", get(list_requests).delete(clear_requests))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// Lets through requests bearing the admin token; `401` otherwise.
async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let accepted = match (&state.settings.control, bearer_key(&req)) {
        (Some(control), Some(token)) => control.accepts(&token),
        _ => false,
    };
    if !accepted {
        return ApiError::unauthorized(
            "The control API needs `Authorization: Bearer <admin token>` (--admin-token)",
        )
        .into_response();
    }
    next.run(req).await
}

/// An organization to create: the shape of one organization of a seed file, every part
/// optional. Missing parts get defaults so that `{}` gives a usable organization: one
/// user, one procedure, one station linked to every procedure, each key generated.
#[derive(Debug, Default, Deserialize, validator::Validate)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationRequest {
    name: Option<String>,
    slug: Option<String>,
    users: Option<Vec<UserRequest>>,
    teams: Option<Vec<TeamRequest>>,
    procedures: Option<Vec<ProcedureRequest>>,
    stations: Option<Vec<StationRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    #[serde(default)]
    id: Option<Id>,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureRequest {
    #[serde(default)]
    id: Option<Id>,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationRequest {
    #[serde(default)]
    id: Option<Id>,
    name: String,
    #[serde(default)]
    api_key: Option<String>,
    /// Linked procedures by id or name; absent = every procedure of the organization.
    #[serde(default)]
    procedures: Option<Vec<String>>,
    #[serde(default)]
    team: Option<String>,
}

impl OrganizationRequest {
    /// The seed-file description, with defaults and generated keys filled in.
    fn into_seed(self) -> SeedOrganization {
        let suffix = &Id::new().to_string()[..8];
        let name = self
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("CI {suffix}"));
        let slug_base = self
            .slug
            .clone()
            .unwrap_or_else(|| crate::db::identity::slugify(&name));
        let users = self.users.unwrap_or_else(|| {
            vec![UserRequest {
                email: format!("admin@{slug_base}.test"),
                name: Some("Admin".into()),
                api_key: None,
            }]
        });
        let procedures = self.procedures.unwrap_or_else(|| {
            vec![ProcedureRequest {
                id: None,
                name: "Functional Test".into(),
            }]
        });
        let procedure_names: Vec<String> = procedures.iter().map(|p| p.name.clone()).collect();
        let stations = self.stations.unwrap_or_else(|| {
            vec![StationRequest {
                id: None,
                name: "Station 1".into(),
                api_key: None,
                procedures: None,
                team: None,
            }]
        });
        SeedOrganization {
            name,
            slug: self.slug,
            users: users
                .into_iter()
                .map(|u| SeedUser {
                    email: u.email,
                    name: u.name,
                    api_key: Some(u.api_key.unwrap_or_else(|| apikey::generate(KeyKind::User))),
                })
                .collect(),
            teams: self
                .teams
                .unwrap_or_default()
                .into_iter()
                .map(|t| SeedTeam {
                    id: t.id,
                    name: t.name,
                })
                .collect(),
            procedures: procedures
                .into_iter()
                .map(|p| SeedProcedure {
                    id: p.id,
                    name: p.name,
                })
                .collect(),
            stations: stations
                .into_iter()
                .map(|s| SeedStation {
                    id: s.id,
                    name: s.name,
                    api_key: Some(
                        s.api_key
                            .unwrap_or_else(|| apikey::generate(KeyKind::Station)),
                    ),
                    procedures: s.procedures.unwrap_or_else(|| procedure_names.clone()),
                    team: s.team,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct CreatedUser {
    id: Id,
    email: String,
    name: Option<String>,
    api_key: Option<String>,
}

#[derive(Debug, Serialize)]
struct CreatedStation {
    id: Id,
    name: String,
    api_key: Option<String>,
    procedure_ids: Vec<Id>,
}

/// The organization as created, with the plain keys of its users and stations (shown
/// only in this answer).
#[derive(Debug, Serialize)]
struct OrganizationResponse {
    id: Id,
    name: String,
    slug: String,
    users: Vec<CreatedUser>,
    teams: Vec<NamedRow>,
    procedures: Vec<NamedRow>,
    stations: Vec<CreatedStation>,
}

fn organization_response(seed: &SeedOrganization, c: CreatedOrganization) -> OrganizationResponse {
    let user_key = |email: &str| {
        seed.users
            .iter()
            .find(|u| u.email.trim().eq_ignore_ascii_case(email))
            .and_then(|u| u.api_key.clone())
    };
    let station_key = |name: &str| {
        seed.stations
            .iter()
            .find(|s| s.name.trim() == name)
            .and_then(|s| s.api_key.clone())
    };
    OrganizationResponse {
        id: c.organization.id,
        name: c.organization.name,
        slug: c.organization.slug,
        users: c
            .users
            .into_iter()
            .map(|u| CreatedUser {
                api_key: user_key(&u.email),
                id: u.id,
                email: u.email,
                name: u.name,
            })
            .collect(),
        teams: c.teams,
        procedures: c.procedures,
        stations: c
            .stations
            .into_iter()
            .map(|s| CreatedStation {
                api_key: station_key(&s.name),
                id: s.id,
                name: s.name,
                procedure_ids: s.procedure_ids,
            })
            .collect(),
    }
}

/// `POST /_tofulab/organizations` → `201` with the organization as created.
async fn create_organization(
    State(state): State<AppState>,
    ValidatedJson(request): ValidatedJson<OrganizationRequest>,
) -> ApiResult<(StatusCode, Json<OrganizationResponse>)> {
    let seed = request.into_seed();
    let created = state.db.create_organization(&seed).await?;
    Ok((
        StatusCode::CREATED,
        Json(organization_response(&seed, created)),
    ))
}

/// `DELETE /_tofulab/organizations/{id}`: the organization and everything in it.
async fn delete_organization(
    State(state): State<AppState>,
    Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    state.db.delete_organization(id).await?;
    Ok(Json(json!({ "id": id })))
}

/// `POST /_tofulab/organizations/{id}/reset`: its test data goes; users, keys,
/// procedures and stations stay.
async fn reset_organization(
    State(state): State<AppState>,
    Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    state.db.reset_organization(id).await?;
    Ok(Json(json!({ "id": id })))
}

/// `GET /_tofulab/organizations/{id}/export`: the organization as JSON Lines (see
/// `db::export`), streamed as it is read.
async fn export_organization(
    State(state): State<AppState>,
    Path(id): Path<Id>,
) -> ApiResult<Response> {
    // Before the stream starts, while a 404 can still be answered.
    state.db.organization(id).await?;
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let db = state.db.clone();
    tokio::spawn(async move {
        // A failure ends the stream without its `end` line, which an import refuses.
        if let Err(e) = db.export_organization(id, &mut writer).await {
            tracing::warn!(organization = %id, error = %e, "export stopped");
        }
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], body).into_response())
}

/// `POST /_tofulab/organizations/{id}/import`: replaces the organization's content with
/// an export stream (the request body), all or nothing.
async fn import_organization(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let reader = tokio_util::io::StreamReader::new(stream);
    let (org, moved) = state.db.import_organization(Some(id), reader).await?;
    Ok(Json(json!({
        "id": org.id, "name": org.name, "slug": org.slug, "rows": moved.rows,
    })))
}

/// `POST /_tofulab/reset`: the whole database back to the seed file (no organization
/// when the server runs without one); faults and the journal are cleared too.
async fn reset_all(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let seed = state
        .settings
        .control
        .as_ref()
        .and_then(|c| c.seed.as_ref());
    let report = state.db.reset_all(seed).await?;
    state.faults.clear();
    state.journal.clear();
    Ok(Json(json!({
        "organizations": report.organizations,
        "users": report.users,
        "procedures": report.procedures,
        "stations": report.stations,
    })))
}

/// `POST /_tofulab/stations/{id}/setup-tokens` → `201 {"token", "station_id",
/// "expires_at", "command"}`: a single-use token for `tofupilot login`.
async fn create_setup_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<Id>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let token = state
        .db
        .create_setup_token(None, id, ts_in(SETUP_TOKEN_TTL_SECS))
        .await?
        .ok_or_else(|| ApiError::not_found("Station not found"))?;
    let command = format!(
        "tofupilot login --token {} --url {}",
        token.token,
        public_base(&state, &headers)
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token.token,
            "station_id": token.station_id,
            "organization_slug": token.organization_slug,
            "expires_at": token.expires_at,
            "command": command,
        })),
    ))
}

/// `POST /_tofulab/faults` → `201 {"id"}`.
async fn add_fault(
    State(state): State<AppState>,
    ValidatedJson(rule): ValidatedJson<NewFault>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some((field, message)) = rule.problem() {
        return Err(ApiError::invalid(field, message));
    }
    let id = state.faults.add(rule);
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// `GET /_tofulab/faults` → `{"data": [rules with their hits]}`.
async fn list_faults(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Fault> = state.faults.list();
    Json(json!({ "data": data }))
}

/// `DELETE /_tofulab/faults/{id}`.
async fn remove_fault(State(state): State<AppState>, Path(id): Path<Id>) -> ApiResult<Json<Value>> {
    if !state.faults.remove(id) {
        return Err(ApiError::not_found("Fault rule not found"));
    }
    Ok(Json(json!({ "id": id })))
}

/// `DELETE /_tofulab/faults`: every rule.
async fn clear_faults(State(state): State<AppState>) -> Json<Value> {
    state.faults.clear();
    Json(json!({ "data": [] }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RequestsQuery {
    organization_id: Option<Id>,
    method: Option<String>,
    path: Option<String>,
    status: Option<u16>,
    limit: Option<usize>,
}

/// `GET /_tofulab/requests` → `{"data": [requests, newest first]}`.
async fn list_requests(
    State(state): State<AppState>,
    Query(q): Query<RequestsQuery>,
) -> Json<Value> {
    let data: Vec<JournalEntry> = state.journal.list(&JournalFilter {
        organization_id: q.organization_id,
        method: q.method,
        path: q.path,
        status: q.status,
        limit: q.limit,
    });
    Json(json!({ "data": data, "at": Ts::now() }))
}

/// `DELETE /_tofulab/requests`: forgets every recorded request.
async fn clear_requests(State(state): State<AppState>) -> Json<Value> {
    state.journal.clear();
    Json(json!({ "data": [] }))
}
