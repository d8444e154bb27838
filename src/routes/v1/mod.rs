//! The legacy API (`/api/v1`, BEHAVIOR.md §11) that the Python package's
//! `TofuPilotClient` and its OpenHTF output callback still speak. Same API keys and
//! station permissions as v2; everything lands in the v2 data model.
//!
//! | Endpoint | Used by | Status |
//! |---|---|---|
//! | `POST /runs` | `TofuPilotClient.create_run` | served |
//! | `GET /runs?serial_number=` | `TofuPilotClient.get_runs` | served |
//! | `POST /uploads/initialize` + signed `PUT` | attachments, report uploads | served |
//! | `POST /uploads/sync` | links an attachment to a run | served |
//! | `POST /import` | OpenHTF report import (`importer: OPENHTF`) | served |
//! | `GET /streaming` | OpenHTF live streaming | credentials of an unreachable broker |
//!
//! Success bodies are `axum::Json` (`Content-Type: application/json` exactly, as the
//! legacy client requires) and never carry `error`/`errors` keys. Errors are
//! `ApiError`s: the JSON error backstop rewrites them under `/api/v1` into
//! `{"success": false, "error": {"message"}}` with the same exact content type.

mod import;
mod runs;
mod streaming;
mod uploads;

use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::db::Id;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(runs::list).post(runs::create))
        .route("/uploads/initialize", post(uploads::initialize))
        .route("/uploads/sync", post(uploads::sync))
        .route("/import", post(import::import))
        .route("/streaming", get(streaming::credentials))
}

/// `{"success": true, "id": …}`: a created (or imported) run.
#[derive(Debug, Serialize)]
pub struct V1Created {
    success: bool,
    id: Id,
}

impl V1Created {
    pub fn new(id: Id) -> Self {
        V1Created { success: true, id }
    }
}

/// `{"success": true}`.
#[derive(Debug, Serialize)]
pub struct V1Success {
    success: bool,
}

impl Default for V1Success {
    fn default() -> Self {
        V1Success { success: true }
    }
}
