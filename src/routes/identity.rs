//! Who is calling: users list and current (BEHAVIOR.md §9) and `whoami`.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::identity::UserRow;
use crate::db::Id;
use crate::error::ApiResult;
use crate::extract::{Caller, Principal, Query, UserCaller};
use crate::routes::params::Flag;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/current", get(current_user))
        .route("/whoami", get(whoami))
}

/// A member of the organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserListItem {
    id: Id,
    email: String,
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true)]
    image: Option<String>,
    banned: bool,
}

impl From<UserRow> for UserListItem {
    fn from(u: UserRow) -> Self {
        UserListItem {
            id: u.id,
            email: u.email,
            name: u.name,
            image: u.image,
            banned: u.banned,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    #[param(inline)]
    current: Flag,
}

/// `users.list` — `GET /v2/users`: a bare array, not paginated. With `current=true` a
/// user key gets itself only and a station key an empty array.
#[utoipa::path(
    get,
    path = "/v2/users",
    tag = "users",
    operation_id = "user-list",
    params(UserListQuery),
    responses((status = 200, body = Vec<UserListItem>))
)]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UserListQuery>,
) -> ApiResult<axum::Json<Vec<UserListItem>>> {
    let current = q.current.on();
    let users = state.db.list_users(caller.org_id).await?;
    let users = users
        .into_iter()
        .filter(|u| !current || Some(u.id) == caller.user_id())
        .map(UserListItem::from)
        .collect();
    Ok(axum::Json(users))
}

/// `users.get_current` — `GET /v2/users/current`. Station keys: 403.
#[utoipa::path(
    get,
    path = "/v2/users/current",
    tag = "users",
    operation_id = "user-getCurrent",
    responses((status = 200, body = UserListItem))
)]
pub(crate) async fn current_user(
    State(state): State<AppState>,
    caller: UserCaller,
) -> ApiResult<axum::Json<UserListItem>> {
    let user = state.db.user(caller.org_id, caller.user_id()).await?;
    Ok(axum::Json(user.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiUser {
    id: Id,
    email: String,
    #[schema(required = true)]
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiStation {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiOrganization {
    id: Id,
    slug: String,
    name: String,
}

/// Whose key it is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WhoamiType {
    User,
    Station,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiResponse {
    #[serde(rename = "type")]
    kind: WhoamiType,
    #[schema(required = true)]
    user: Option<WhoamiUser>,
    #[schema(required = true)]
    station: Option<WhoamiStation>,
    organization: WhoamiOrganization,
}

/// `identity.whoami` — `GET /v2/whoami`: the key's owner and organization.
#[utoipa::path(
    get,
    path = "/v2/whoami",
    tag = "whoami",
    operation_id = "identity-whoami",
    responses((status = 200, body = WhoamiResponse))
)]
pub(crate) async fn whoami(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<WhoamiResponse>> {
    let org = state.db.organization(caller.org_id).await?;
    let (kind, user, station) = match caller.principal {
        Principal::User(id) => {
            let u = state.db.user(caller.org_id, id).await?;
            let user = WhoamiUser {
                id: u.id,
                email: u.email,
                name: u.name,
            };
            (WhoamiType::User, Some(user), None)
        }
        Principal::Station(id) => {
            let (id, name) = state.db.station_name(caller.org_id, id).await?;
            (WhoamiType::Station, None, Some(WhoamiStation { id, name }))
        }
    };
    Ok(axum::Json(WhoamiResponse {
        kind,
        user,
        station,
        organization: WhoamiOrganization {
            id: org.id,
            slug: org.slug,
            name: org.name,
        },
    }))
}
