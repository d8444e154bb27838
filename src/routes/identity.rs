//! Who is calling: users list and current (BEHAVIOR.md §9) and `whoami`.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Serialize)]
pub struct UserListItem {
    id: Id,
    email: String,
    name: Option<String>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UserListQuery {
    current: Flag,
}

/// `users.list` — `GET /v2/users`: a bare array, not paginated. With `current=true` a
/// user key gets itself only and a station key an empty array.
async fn list_users(
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
async fn current_user(
    State(state): State<AppState>,
    caller: UserCaller,
) -> ApiResult<axum::Json<UserListItem>> {
    let user = state.db.user(caller.org_id, caller.user_id()).await?;
    Ok(axum::Json(user.into()))
}

#[derive(Debug, Serialize)]
pub struct WhoamiUser {
    id: Id,
    email: String,
    name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WhoamiStation {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct WhoamiOrganization {
    id: Id,
    slug: String,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct WhoamiResponse {
    #[serde(rename = "type")]
    kind: &'static str,
    user: Option<WhoamiUser>,
    station: Option<WhoamiStation>,
    organization: WhoamiOrganization,
}

/// `identity.whoami` — `GET /v2/whoami`: the key's owner and organization.
async fn whoami(
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
            ("user", Some(user), None)
        }
        Principal::Station(id) => {
            let (id, name) = state.db.station_name(caller.org_id, id).await?;
            ("station", None, Some(WhoamiStation { id, name }))
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
