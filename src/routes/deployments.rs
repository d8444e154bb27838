//! Deployments (`deployments.list`, `deployments.get`). On the hosted service a
//! deployment is a build of a procedure's git repository pushed to stations. tofulab has
//! no build pipeline, so there are never any: the list is an empty page and every id is
//! unknown. The query is still validated like every list (a bad `limit` or `cursor` is a
//! 400), so clients get the same answers they would for a filter that matches nothing.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::ListResponse;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query};
use crate::routes::params::{After, Before};
use crate::values::{paginate, Page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/deployments", get(list))
        .route("/deployments/{id}", get(get_one))
}

/// A deployment. tofulab builds nothing, so this type has no values: lists of it are
/// always empty, which the type system guarantees.
#[derive(Debug, Serialize)]
pub enum Deployment {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeploymentListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    // Parsed so that a malformed date is a 400 as on other lists; no deployment exists
    // for them to filter.
    #[allow(dead_code)]
    deployed_after: After,
    #[allow(dead_code)]
    deployed_before: Before,
    // `procedure_ids`, `environments`, `build_statuses`, `pushed`, `branch_names`,
    // `author_usernames` and `search_query` are accepted and match nothing more than
    // the empty set already does.
}

/// `deployments.list` — `GET /v2/deployments`: always an empty page.
async fn list(
    State(_): State<AppState>,
    _caller: Caller,
    Query(q): Query<DeploymentListQuery>,
) -> ApiResult<axum::Json<ListResponse<Deployment>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let (data, meta) = paginate(Vec::new(), page);
    Ok(axum::Json(ListResponse { data, meta }))
}

/// `deployments.get` — `GET /v2/deployments/{id}`: 404, there are no deployments.
async fn get_one(Path(_id): Path<String>, _caller: Caller) -> ApiError {
    ApiError::not_found(
        "Deployment not found: tofulab has no build pipeline, so it has no deployments",
    )
}
