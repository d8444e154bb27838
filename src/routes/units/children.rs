//! Parent/child links (BEHAVIOR.md §2.6): `units.add_child`, `units.remove_child`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::serial_number_rule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Path, Query, ValidatedJson};
use crate::routes::IdResponse;
use crate::values::{check_text, trimmed_required};
use crate::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct UnitAddChildRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "serial_number_rule"))]
    pub child_serial_number: String,
}

/// `units.add_child` — `PUT /v2/units/{serial_number}/children`. Moves the child from any
/// previous parent; refuses self-links and cycles (400). Stations may link units.
#[utoipa::path(
    put,
    path = "/v2/units/{serial_number}/children",
    tag = "units",
    operation_id = "unit-addChild",
    params(("serial_number" = String, Path)),
    request_body = UnitAddChildRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn add_child(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<UnitAddChildRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let id = state
        .db
        .add_child(caller.org_id, serial.trim(), &body.child_serial_number)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitRemoveChildQuery {
    #[param(required = true)]
    child_serial_number: Option<String>,
}

/// `units.remove_child` — `DELETE /v2/units/{serial_number}/children?child_serial_number=…`.
/// Removes only the link. Stations may unlink units.
#[utoipa::path(
    delete,
    path = "/v2/units/{serial_number}/children",
    tag = "units",
    operation_id = "unit-removeChild",
    params(("serial_number" = String, Path), UnitRemoveChildQuery),
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn remove_child(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    caller: Caller,
    Query(q): Query<UnitRemoveChildQuery>,
) -> ApiResult<axum::Json<IdResponse>> {
    let child = q.child_serial_number.unwrap_or_default();
    let child = child.trim();
    check_text("Child serial number", child, 1, 60)
        .map_err(|m| ApiError::invalid("child_serial_number", m))?;
    let id = state
        .db
        .remove_child(caller.org_id, serial.trim(), child)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

/// Any other method on the children route. The router matches an empty serial
/// (`/v2/units//children`): that names no unit, 404; otherwise the usual 405 (the
/// error backstop renders it as JSON).
pub(super) async fn other_method(Path(serial): Path<String>) -> Response {
    if serial.trim().is_empty() {
        return ApiError::not_found("Unit not found").into_response();
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "PUT,DELETE")],
    )
        .into_response()
}
