//! Stations (BEHAVIOR.md §8): create, list, get, get current, update, remove.

use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Deserializer, Serialize};
use validator::Validate;

use super::{IdResponse, ListResponse};
use crate::db::stations::{
    LinkedProcedureRow, NewStation, StationChanges, StationDetail, StationFilter, StationRow,
};
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::metadata::{self, Metadata};
use crate::routes::params::{Flag, Ids, Search};
use crate::values::{paginate, text_rule, trimmed, trimmed_required, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stations", get(list).post(create))
        // Before `/stations/{id}`: `current` is a route, not a malformed id.
        .route("/stations/current", get(get_current))
        .route("/stations/{id}", get(get_one).patch(update).delete(remove))
}

fn station_name(name: &str) -> Result<(), validator::ValidationError> {
    text_rule("Name", name, 1, 255)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct StationCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "station_name"))]
    pub name: String,
    #[serde(default)]
    pub procedure_id: Option<Id>,
    #[serde(default)]
    pub team_id: Option<Id>,
    #[serde(default)]
    #[validate(custom(function = "metadata::rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// `stations.create` — `POST /v2/stations`. User keys only. Names are not unique; the
/// new station has no key and no procedures unless `procedure_id` links one.
#[utoipa::path(
    post,
    path = "/v2/stations",
    tag = "stations",
    operation_id = "station-create",
    request_body = StationCreateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<StationCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let new = NewStation {
        name: body.name,
        procedure_id: body.procedure_id,
        team_id: body.team_id,
        metadata: body.metadata,
    };
    let id = state.db.create_station(caller.org_id, new).await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct StationListQuery {
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    procedure_ids: Ids,
    metadata: Option<String>,
    #[param(inline)]
    include_metadata: Flag,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationListProcedures {
    id: Id,
    identifier: String,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationTeam {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationListData {
    id: Id,
    name: String,
    procedures: Vec<StationListProcedures>,
    procedures_count: usize,
    #[schema(required = true)]
    team: Option<StationTeam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Metadata>,
}

/// `stations.list` — `GET /v2/stations`, newest first, removed stations excluded.
/// User keys only.
#[utoipa::path(
    get,
    path = "/v2/stations",
    tag = "stations",
    operation_id = "station-list",
    params(StationListQuery),
    responses((status = 200, body = ListResponse<StationListData>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(q): Query<StationListQuery>,
) -> ApiResult<axum::Json<ListResponse<StationListData>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = StationFilter {
        search_query: q.search_query.0,
        procedure_ids: q.procedure_ids.0,
        metadata: metadata::parse_filter(q.metadata.as_deref())?,
    };
    let with_metadata = q.include_metadata.on();
    let (rows, links) = state.db.list_stations(caller.org_id, &filter, page).await?;
    let mut by_station: HashMap<Id, Vec<LinkedProcedureRow>> = HashMap::new();
    for l in links {
        by_station.entry(l.station_id).or_default().push(l);
    }
    let (rows, meta) = paginate(rows, page);
    let data = rows
        .into_iter()
        .map(|s| {
            let procedures: Vec<StationListProcedures> = by_station
                .remove(&s.id)
                .unwrap_or_default()
                .into_iter()
                .map(|p| StationListProcedures {
                    id: p.id,
                    identifier: p.identifier,
                    name: p.name,
                })
                .collect();
            StationListData {
                id: s.id,
                metadata: with_metadata.then(|| s.metadata()),
                team: team(&s),
                name: s.name,
                procedures_count: procedures.len(),
                procedures,
            }
        })
        .collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

fn team(s: &StationRow) -> Option<StationTeam> {
    s.team_id.map(|id| StationTeam {
        id,
        name: s.team_name.clone().unwrap_or_default(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationGetProcedures {
    id: Id,
    identifier: String,
    name: String,
    runs_count: i64,
    /// tofulab has no deployment pipeline: always null.
    #[schema(required = true)]
    deployment: Option<()>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationGetResponse {
    id: Id,
    name: String,
    #[schema(required = true)]
    api_key: Option<String>,
    procedures: Vec<StationGetProcedures>,
    organization_slug: String,
    /// tofulab does not track live station connections: always null.
    #[schema(required = true)]
    connection_status: Option<()>,
    #[schema(required = true)]
    team: Option<StationTeam>,
    #[schema(value_type = Object)]
    metadata: Metadata,
}

impl From<StationDetail> for StationGetResponse {
    fn from(d: StationDetail) -> Self {
        StationGetResponse {
            id: d.station.id,
            name: d.station.name.clone(),
            api_key: d.api_key,
            procedures: d
                .procedures
                .into_iter()
                .map(|p| StationGetProcedures {
                    id: p.id,
                    identifier: p.identifier,
                    name: p.name,
                    runs_count: p.runs_count,
                    deployment: None,
                })
                .collect(),
            organization_slug: d.organization_slug,
            connection_status: None,
            team: team(&d.station),
            metadata: d.station.metadata(),
        }
    }
}

/// `stations.get` — `GET /v2/stations/{id}`; user and station keys. `api_key` is the
/// masked prefix of the station's newest live key (never the secret) or null;
/// `procedures[].runs_count` counts the runs this station created for that procedure in
/// the last 7 days, as the vendor documents it.
#[utoipa::path(
    get,
    path = "/v2/stations/{id}",
    tag = "stations",
    operation_id = "station-get",
    params(("id" = Id, Path)),
    responses((status = 200, body = StationGetResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: Caller,
) -> ApiResult<axum::Json<StationGetResponse>> {
    let detail = state.db.station(caller.org_id, id).await?;
    Ok(axum::Json(detail.into()))
}

/// `stations.get_current` — `GET /v2/stations/current`: the calling station. User keys
/// get 403 (they are not a station).
#[utoipa::path(
    get,
    path = "/v2/stations/current",
    tag = "stations",
    operation_id = "station-getCurrent",
    responses((status = 200, body = StationGetResponse))
)]
pub(crate) async fn get_current(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<StationGetResponse>> {
    let Some(id) = caller.station_id() else {
        return Err(ApiError::forbidden(
            "Only station API keys have a current station: this is a user key",
        ));
    };
    let detail = state.db.station(caller.org_id, id).await?;
    Ok(axum::Json(detail.into()))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct StationUpdateRequestBody {
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "station_name"))]
    pub name: Option<String>,
    /// An upload id; `""` removes the image.
    #[serde(default, deserialize_with = "trimmed")]
    pub image_id: Option<String>,
    /// `null` unassigns the team; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    pub team_id: Option<Option<Id>>,
    #[serde(default)]
    #[validate(custom(function = "metadata::patch_rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// Distinguishes an absent field (`None`, via `#[serde(default)]`) from `null`
/// (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationUpdateResponse {
    id: Id,
    name: String,
}

/// `stations.update` — `PATCH /v2/stations/{id}`. User keys only. Fields not sent are
/// unchanged; metadata is patched (a `null` value deletes that key).
#[utoipa::path(
    patch,
    path = "/v2/stations/{id}",
    tag = "stations",
    operation_id = "station-update",
    params(("id" = Id, Path)),
    request_body = StationUpdateRequestBody,
    responses((status = 200, body = StationUpdateResponse))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: UserCaller,
    ValidatedJson(body): ValidatedJson<StationUpdateRequestBody>,
) -> ApiResult<axum::Json<StationUpdateResponse>> {
    let image_id = match body.image_id.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(s) => Some(Some(Id::parse(s).ok_or_else(|| {
            ApiError::invalid("image_id", "image_id must be an upload id or \"\"")
        })?)),
    };
    let changes = StationChanges {
        name: body.name,
        image_id,
        team_id: body.team_id,
        metadata: body.metadata,
    };
    let name = state.db.update_station(caller.org_id, id, changes).await?;
    Ok(axum::Json(StationUpdateResponse { id, name }))
}

/// `stations.remove` — `DELETE /v2/stations/{id}`. User keys only. Archives the station:
/// it disappears from reads, its keys stop working, its runs stay readable.
#[utoipa::path(
    delete,
    path = "/v2/stations/{id}",
    tag = "stations",
    operation_id = "station-remove",
    params(("id" = Id, Path)),
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    caller: UserCaller,
) -> ApiResult<axum::Json<IdResponse>> {
    state.db.remove_station(caller.org_id, id).await?;
    Ok(axum::Json(IdResponse { id }))
}
