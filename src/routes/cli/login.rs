//! Logging in and out: a station redeems a setup token (CLI.md §3.5), a developer
//! exchanges the device login's access token for a user key (§3.3–3.4), and either
//! logs out (§3.7).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::{limit_failures, ClientIp};
use crate::db::cli::Hardware;
use crate::db::{ci_key, Id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, ValidatedJson};
use crate::AppState;

/// `tofupilot login --token` body. The hardware fields are recorded as sent.
#[derive(Debug, Deserialize, Validate)]
pub struct RedeemRequest {
    #[validate(length(min = 1, max = 200, message = "Setup token cannot be empty"))]
    token: String,
    #[validate(length(max = 255))]
    hostname: Option<String>,
    #[validate(length(max = 255))]
    os: Option<String>,
    #[validate(length(max = 64))]
    platform: Option<String>,
    #[validate(length(max = 64))]
    mac_address: Option<String>,
    #[validate(length(max = 64))]
    cli_version: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RedeemResponse {
    api_key: String,
    organization_slug: String,
    installation_id: Id,
    replaced_installations: i64,
}

/// `POST /api/cli/login/redeem` — a setup token becomes a station key and an
/// installation; the station's previous installation is replaced and its key revoked.
/// A refused token is a 400 whose message carries the words the CLI turns into its
/// hints (`invalid`/`already` → single use; `expired` → one hour).
pub async fn redeem(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(body): ValidatedJson<RedeemRequest>,
) -> ApiResult<axum::Json<RedeemResponse>> {
    let hardware = Hardware {
        hostname: body.hostname.unwrap_or_default(),
        os: body.os,
        platform: body.platform,
        mac_address: body.mac_address,
        cli_version: body.cli_version,
    };
    match state
        .db
        .redeem_setup_token(body.token.trim(), &hardware)
        .await?
    {
        Ok(r) => Ok(axum::Json(RedeemResponse {
            api_key: r.api_key,
            organization_slug: r.organization_slug,
            installation_id: r.installation_id,
            replaced_installations: r.replaced_installations,
        })),
        Err(refusal) => {
            limit_failures(&state, ip)?;
            Err(ApiError::bad_request(refusal.message()))
        }
    }
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// The email behind the request's access token; 401 (after counting the failure
/// against the client address) when there is none.
async fn access_email(state: &AppState, headers: &HeaderMap, ip: ClientIp) -> ApiResult<String> {
    let email = match bearer(headers) {
        Some(token) => state.db.access_token_email(&token).await?,
        None => None,
    };
    match email {
        Some(e) => Ok(e),
        None => {
            limit_failures(state, ip.0)?;
            Err(ApiError::unauthorized(
                "Invalid or expired login: run `tofupilot login` again (a login lasts ten \
                 minutes and makes one key)",
            ))
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CliOrganization {
    id: Id,
    name: String,
    slug: String,
}

/// `GET /api/cli/login` (access token) — the organizations the approved user belongs to.
pub async fn organizations(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<CliOrganization>>> {
    let email = access_email(&state, &headers, ip).await?;
    let orgs = state.db.organizations_of_email(&ci_key(&email)).await?;
    Ok(axum::Json(
        orgs.into_iter()
            .map(|o| CliOrganization {
                id: o.id,
                name: o.name,
                slug: o.slug,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, Validate)]
pub struct CliLoginRequest {
    organization_id: Id,
}

#[derive(Debug, Serialize)]
pub struct CliLoginResponse {
    api_key: String,
    /// Always null: a non-null id would make the CLI install this key as a station.
    installation_id: Option<Id>,
    organization_id: Id,
    organization_slug: String,
}

/// `POST /api/cli/login` (access token) — a user key in the chosen organization. The
/// access token is spent.
pub async fn create_key(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ValidatedJson(body): ValidatedJson<CliLoginRequest>,
) -> ApiResult<axum::Json<CliLoginResponse>> {
    access_email(&state, &headers, ip).await?;
    let token = bearer(&headers).unwrap_or_default();
    let (api_key, org) = state
        .db
        .device_login(&token, body.organization_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization not found"))?;
    Ok(axum::Json(CliLoginResponse {
        api_key,
        installation_id: None,
        organization_id: org.id,
        organization_slug: org.slug,
    }))
}

#[derive(Debug, Deserialize, Validate)]
pub struct CliLogoutRequest {
    #[allow(dead_code)]
    installation_id: Option<String>,
    #[serde(default)]
    uninstalled: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct CliLogoutResponse {
    revoked: bool,
}

/// `POST /api/cli/logout` — `tofupilot logout` (`uninstalled: false`) and `uninstall`
/// (`true`). A key the CLI flows minted (a station installation's, a developer login's)
/// is revoked, and its installation ends as `logged_out` or `uninstalled`. Keys from a
/// seed file or `tofulab keys create` stay valid: the answer says `revoked: false`. The
/// `installation_id` sent is informational: what is logged out is the calling key.
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<CliLogoutRequest>,
) -> ApiResult<axum::Json<CliLogoutResponse>> {
    let revoked = state
        .db
        .cli_logout(caller.key_id, body.uninstalled.unwrap_or(false))
        .await?;
    Ok(axum::Json(CliLogoutResponse { revoked }))
}
