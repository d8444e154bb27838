//! Who the CLI is logged in as (CLI.md §3.6) and the settings a station applies (§3.8).

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Serialize;

use super::StationCaller;
use crate::db::Id;
use crate::error::ApiResult;
use crate::extract::{Caller, Principal};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct CliWhoamiResponse {
    auth_type: &'static str,
    user_id: Option<Id>,
    user_name: Option<String>,
    user_email: Option<String>,
    station_id: Option<Id>,
    station_name: Option<String>,
    installation_id: Option<Id>,
    organization_id: Id,
    organization_name: String,
    organization_slug: String,
}

/// `GET /api/cli/whoami` — the key's owner. `auth_type` is `station` for every station
/// key (the daemon refuses anything else). A revoked or unknown key is 401 from the auth
/// layer — the one answer that makes a station daemon wipe its credentials — and a
/// database that cannot answer is a 503, never a 401.
pub async fn whoami(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<CliWhoamiResponse>> {
    let org = state.db.organization(caller.org_id).await?;
    let mut out = CliWhoamiResponse {
        auth_type: "user",
        user_id: None,
        user_name: None,
        user_email: None,
        station_id: None,
        station_name: None,
        installation_id: None,
        organization_id: org.id,
        organization_name: org.name,
        organization_slug: org.slug,
    };
    match caller.principal {
        Principal::User(id) => {
            let u = state.db.user(caller.org_id, id).await?;
            out.user_id = Some(u.id);
            out.user_name = u.name;
            out.user_email = Some(u.email);
        }
        Principal::Station(id) => {
            let (id, name) = state.db.station_name(caller.org_id, id).await?;
            out.auth_type = "station";
            out.station_id = Some(id);
            out.station_name = Some(name);
            out.installation_id = state
                .db
                .installation_of_key(caller.key_id)
                .await?
                .map(|i| i.id);
        }
    }
    Ok(axum::Json(out))
}

/// What a station gets for every setting the organization has not set: safe for a lab
/// without internet access. `auto_update` off: the CLI would otherwise call
/// tofupilot.sh at every boot and every 4 h. `launch_on_boot` and `desktop_icon` are
/// left out on purpose: the CLI applies them on every sync when present, so absent
/// means "leave the station as installed".
pub const CLI_DEFAULTS: [(&str, &str); 4] = [
    ("auto_update", "off"),
    ("kiosk_ui", "off"),
    ("system_packages", "off"),
    ("terminal_ui", "on"),
];

/// The defaults overlaid with the organization's own settings.
pub async fn effective_config(state: &AppState, org_id: Id) -> ApiResult<BTreeMap<String, String>> {
    let mut config: BTreeMap<String, String> = CLI_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config.extend(state.db.cli_settings(org_id).await?);
    Ok(config)
}

/// `GET /api/cli/config` (station keys) — a flat object of strings, `"on"` = enabled.
/// Set per organization with `PATCH /api/lab/v1/cli/config`.
pub async fn config(
    State(state): State<AppState>,
    caller: StationCaller,
) -> ApiResult<axum::Json<BTreeMap<String, String>>> {
    Ok(axum::Json(effective_config(&state, caller.0.org_id).await?))
}
