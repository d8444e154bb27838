//! Deployments (`deployments.list`, `deployments.get`). On the hosted service a
//! deployment is a build of a procedure's git repository pushed to stations. tofulab has
//! no build pipeline, so there are never any: the list is an empty page and every id is
//! unknown. The query is still validated like every list (a bad `limit` or `cursor` is a
//! 400), so clients get the same answers they would for a filter that matches nothing.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ListResponse;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query};
use crate::routes::params::{After, Before, Search, Texts};
use crate::routes::runs::enums::{BuildStatus, Environment};
use crate::values::{paginate, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/deployments", get(list))
        .route("/deployments/{id}", get(get_one))
}

/// A deployment. tofulab builds nothing, so this type has no values: lists of it are
/// always empty, which the type system guarantees.
#[derive(Debug, Serialize, ToSchema)]
pub enum Deployment {}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct DeploymentListQuery {
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    // Parsed so that a malformed date is a 400 as on other lists; no deployment exists
    // for them to filter.
    #[allow(dead_code)]
    #[param(inline)]
    deployed_after: After,
    #[allow(dead_code)]
    #[param(inline)]
    deployed_before: Before,
    // The filters of the hosted service: accepted, documented, and matching nothing
    // more than the empty set already does.
    #[allow(dead_code)]
    #[param(inline)]
    procedure_ids: Texts,
    #[allow(dead_code)]
    #[param(value_type = Option<Vec<Environment>>, inline)]
    environments: Texts,
    #[allow(dead_code)]
    #[param(value_type = Option<Vec<BuildStatus>>, inline)]
    build_statuses: Texts,
    #[allow(dead_code)]
    #[param(value_type = Option<bool>)]
    pushed: Texts,
    #[allow(dead_code)]
    #[param(inline)]
    branch_names: Texts,
    #[allow(dead_code)]
    #[param(inline)]
    author_usernames: Texts,
    #[allow(dead_code)]
    #[param(inline)]
    search_query: Search,
}

/// `deployments.list` — `GET /v2/deployments`: always an empty page.
#[utoipa::path(
    get,
    path = "/v2/deployments",
    tag = "deployments",
    operation_id = "deployment-list",
    params(DeploymentListQuery),
    responses((status = 200, body = ListResponse<Deployment>))
)]
pub(crate) async fn list(
    State(_): State<AppState>,
    _caller: Caller,
    Query(q): Query<DeploymentListQuery>,
) -> ApiResult<axum::Json<ListResponse<Deployment>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let (data, meta) = paginate(Vec::new(), page);
    Ok(axum::Json(ListResponse { data, meta }))
}

/// `deployments.get` — `GET /v2/deployments/{id}`: 404, there are no deployments.
#[utoipa::path(
    get,
    path = "/v2/deployments/{id}",
    tag = "deployments",
    operation_id = "deployment-get",
    params(("id" = String, Path)),
    responses((status = 200, body = Deployment))
)]
pub(crate) async fn get_one(Path(_id): Path<String>, _caller: Caller) -> ApiError {
    ApiError::not_found(
        "Deployment not found: tofulab has no build pipeline, so it has no deployments",
    )
}
