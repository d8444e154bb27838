//! The internal tRPC endpoints the official Python suite uses (BEHAVIOR.md §12):
//! `POST /api/trpc/station.linkProcedure` and its counterpart `station.unlinkProcedure`.
//!
//! Bodies are tRPC's superjson form `{"json": {...}}` (a bare `{...}` is accepted too);
//! answers are `{"result": {"data": {"json": ...}}}`. Errors carry the v2 envelope
//! (`message`, `code`) and, for tRPC clients, the same in tRPC's
//! `{"error": {"json": {"message", "code", "data": {"code", "httpStatus", "path"}}}}`.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::db::Id;
use crate::error::ApiError;
use crate::extract::{body_bytes, check_json_content_type, parse_json, require_object, UserCaller};
use crate::AppState;

const LINK: &str = "station.linkProcedure";
const UNLINK: &str = "station.unlinkProcedure";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("/{LINK}"), post(link))
        .route(&format!("/{UNLINK}"), post(unlink))
}

/// An error rendered for tRPC callers (and v2 ones).
pub struct TrpcError {
    path: &'static str,
    error: ApiError,
}

impl IntoResponse for TrpcError {
    fn into_response(self) -> Response {
        let status = self.error.status;
        let mut body = self.error.body();
        body["error"] = json!({"json": {
            "message": self.error.message,
            "code": json_rpc_code(status.as_u16()),
            "data": {"code": self.error.code(), "httpStatus": status.as_u16(), "path": self.path},
        }});
        (status, axum::Json(body)).into_response()
    }
}

/// tRPC's JSON-RPC error numbers.
fn json_rpc_code(status: u16) -> i32 {
    match status {
        400 => -32600,
        401 => -32001,
        403 => -32003,
        404 => -32004,
        405 => -32005,
        408 => -32008,
        409 => -32009,
        413 => -32013,
        415 => -32015,
        429 => -32029,
        _ => -32603,
    }
}

#[derive(Debug, Deserialize)]
pub struct StationLinkProcedureInput {
    id: Id,
    procedure_id: Id,
}

#[derive(Debug, Serialize)]
pub struct StationLinkProcedureOutput {
    station_id: Id,
    procedure_id: Id,
}

/// Reads the input of a station–procedure call: `{"json": {"id", "procedure_id"}}`.
async fn input(req: Request, state: &AppState) -> Result<StationLinkProcedureInput, ApiError> {
    check_json_content_type(req.headers())?;
    let bytes = body_bytes(req, state).await?;
    require_object(&bytes)?;
    let value: Value = parse_json(&bytes)?;
    let inner = match value {
        Value::Object(mut o) if o.contains_key("json") => o.remove("json").unwrap_or_default(),
        other => other,
    };
    let inner = inner.to_string();
    require_object(inner.as_bytes())?;
    parse_json(inner.as_bytes())
}

fn output(station_id: Id, procedure_id: Id) -> axum::Json<Value> {
    let out = StationLinkProcedureOutput {
        station_id,
        procedure_id,
    };
    axum::Json(json!({"result": {"data": {"json": out}}}))
}

/// `station.linkProcedure`: links a station to a procedure of the caller's organization.
/// Idempotent. User keys only.
async fn link(
    State(state): State<AppState>,
    caller: Result<UserCaller, ApiError>,
    req: Request,
) -> Result<axum::Json<Value>, TrpcError> {
    let err = |error| TrpcError { path: LINK, error };
    let caller = caller.map_err(err)?;
    let i = input(req, &state).await.map_err(err)?;
    state
        .db
        .link_station_procedure(caller.org_id, i.id, i.procedure_id)
        .await
        .map_err(|e| err(e.into()))?;
    Ok(output(i.id, i.procedure_id))
}

/// `station.unlinkProcedure`: removes a station–procedure link. Idempotent. User keys only.
async fn unlink(
    State(state): State<AppState>,
    caller: Result<UserCaller, ApiError>,
    req: Request,
) -> Result<axum::Json<Value>, TrpcError> {
    let err = |error| TrpcError {
        path: UNLINK,
        error,
    };
    let caller = caller.map_err(err)?;
    let i = input(req, &state).await.map_err(err)?;
    state
        .db
        .unlink_station_procedure(caller.org_id, i.id, i.procedure_id)
        .await
        .map_err(|e| err(e.into()))?;
    Ok(output(i.id, i.procedure_id))
}
