//! tofulab's own administration of CLI stations, under `/api/lab/v1` (user keys):
//! the installations of a station, and the settings `GET /api/cli/config` hands out.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use serde::Serialize;
use serde_json::Value;

use super::identity::effective_config;
use crate::db::cli::InstallationRow;
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult, Issue};
use crate::extract::{
    body_bytes, check_json_content_type, parse_json, require_object, Path, UserCaller,
};
use crate::routes::ListResponse;
use crate::values::ListMeta;
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct InstallationItem {
    id: Id,
    station_id: Id,
    hostname: String,
    os: Option<String>,
    platform: Option<String>,
    mac_address: Option<String>,
    cli_version: Option<String>,
    /// `active`, `replaced`, `logged_out` or `uninstalled`.
    status: String,
    created_at: Ts,
    ended_at: Option<Ts>,
    replaced_by: Option<Id>,
}

impl From<InstallationRow> for InstallationItem {
    fn from(r: InstallationRow) -> Self {
        InstallationItem {
            id: r.id,
            station_id: r.station_id,
            hostname: r.hostname,
            os: r.os,
            platform: r.platform,
            mac_address: r.mac_address,
            cli_version: r.cli_version,
            status: r.status,
            created_at: r.created_at,
            ended_at: r.ended_at,
            replaced_by: r.replaced_by,
        }
    }
}

/// `GET /api/lab/v1/stations/{id}/installations` — every CLI installation of a station,
/// newest first (at most one `active`). 404 for a station of another organization.
pub async fn installations(
    State(state): State<AppState>,
    Path(station_id): Path<Id>,
    caller: UserCaller,
) -> ApiResult<axum::Json<ListResponse<InstallationItem>>> {
    let rows = state
        .db
        .station_installations(caller.org_id, station_id)
        .await?;
    Ok(axum::Json(ListResponse {
        data: rows.into_iter().map(InstallationItem::from).collect(),
        meta: ListMeta {
            has_more: false,
            next_cursor: None,
        },
    }))
}

/// `GET /api/lab/v1/cli/config` — the settings stations of this organization get.
pub async fn get_config(
    State(state): State<AppState>,
    caller: UserCaller,
) -> ApiResult<axum::Json<BTreeMap<String, String>>> {
    Ok(axum::Json(effective_config(&state, caller.org_id).await?))
}

/// Longest setting name and value accepted.
const MAX_KEY_LEN: usize = 64;
const MAX_VALUE_LEN: usize = 255;

/// `PATCH /api/lab/v1/cli/config` — `{"auto_update": "on", "kiosk_ui": null}`: a string
/// sets a key, `null` returns it to tofulab's default. Answers the resulting settings.
/// Stations pick changes up at their next config sync (daemon start or login).
pub async fn patch_config(
    State(state): State<AppState>,
    caller: UserCaller,
    req: Request,
) -> ApiResult<axum::Json<BTreeMap<String, String>>> {
    check_json_content_type(req.headers())?;
    let bytes = body_bytes(req, &state).await?;
    require_object(&bytes)?;
    let body: serde_json::Map<String, Value> = parse_json(&bytes)?;
    let mut issues = Vec::new();
    let mut changes = Vec::new();
    for (key, value) in body {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            issues.push(Issue::at(
                format!("Invalid setting name `{key}`: use 1 to {MAX_KEY_LEN} of a-z, 0-9 and _"),
                &key,
            ));
            continue;
        }
        match value {
            Value::Null => changes.push((key, None)),
            Value::String(s) if !s.is_empty() && s.len() <= MAX_VALUE_LEN => {
                changes.push((key, Some(s)))
            }
            _ => issues.push(Issue::at(
                format!(
                    "Invalid {key}: a setting is a string of 1 to {MAX_VALUE_LEN} characters \
                     (\"on\" or \"off\"), or null for the default"
                ),
                &key,
            )),
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::validation(issues));
    }
    state.db.set_cli_settings(caller.org_id, &changes).await?;
    Ok(axum::Json(effective_config(&state, caller.org_id).await?))
}
