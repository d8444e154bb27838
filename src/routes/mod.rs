//! HTTP routes, one module per resource of the TofuPilot API. Handlers are thin:
//! extract → call `db` → map rows to the response DTOs named after the vendor SDK.

pub mod attachments;
pub mod batches;
pub mod cli;
pub mod control;
pub mod deployments;
pub mod health;
pub mod identity;
pub mod imports;
pub mod lab;
pub mod logs;
pub mod measurements;
pub mod params;
pub mod parts;
pub mod phases;
pub mod procedures;
pub mod revisions;
pub mod runs;
pub mod stations;
pub mod trpc;
pub mod units;
pub mod v1;
pub mod versions;

use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::common::CreatorRow;
use crate::db::Id;
use crate::error::ApiError;
use crate::values::ListMeta;
use crate::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let v2 = Router::new()
        .merge(identity::routes())
        .merge(procedures::routes())
        .merge(versions::routes())
        .merge(stations::routes())
        .merge(parts::routes())
        .merge(revisions::routes())
        .merge(batches::routes())
        .merge(units::routes())
        .merge(runs::routes())
        .merge(phases::routes())
        .merge(measurements::routes())
        .merge(logs::routes())
        .merge(attachments::routes())
        .merge(deployments::routes())
        .merge(imports::routes());
    let api = Router::new()
        .nest("/v2", v2)
        .nest("/v1", v1::routes())
        .nest("/trpc", trpc::routes())
        .merge(cli::keyed_routes())
        .nest("/lab/v1", lab::routes())
        // Inside auth: a fault rule may name the caller's organization.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::control::faults::inject,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::auth::authenticate,
        ))
        // After the auth layer: these carry a setup token, a device code or an access
        // token instead of an API key.
        .merge(cli::open_routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::control::journal::record,
        ));
    let mut router = match state.settings.control {
        Some(_) => Router::new().nest("/_tofulab", control::routes(state.clone())),
        None => Router::new(),
    };
    if state.settings.metrics == crate::monitoring::MetricsMode::On {
        router = router.route("/metrics", get(crate::monitoring::http::scrape));
    }
    router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(crate::openapi::routes())
        .nest("/api", api)
        .merge(attachments::file_routes())
        .merge(crate::web::routes())
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such endpoint")
}

/// `{"id": …}`: the answer of creates, updates and single deletes.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdResponse {
    pub id: Id,
}

/// `{"id": [...]}`: the answer of bulk deletes.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdsResponse {
    pub id: Vec<Id>,
}

/// `{"data": [...], "meta": {"has_more", "next_cursor"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub meta: ListMeta,
}

/// `{id, name, email}` of a user (creator, operator).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRef {
    pub id: Id,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub email: Option<String>,
}

/// `{id, name}` of a station (creator).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StationRef {
    pub id: Id,
    pub name: String,
}

impl CreatorRow {
    pub fn user(&self) -> Option<UserRef> {
        self.cu_id.map(|id| UserRef {
            id,
            name: self.cu_name.clone(),
            email: self.cu_email.clone(),
        })
    }

    pub fn station(&self) -> Option<StationRef> {
        self.cs_id.map(|id| StationRef {
            id,
            name: self.cs_name.clone().unwrap_or_default(),
        })
    }
}
