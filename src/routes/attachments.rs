//! Attachments and signed file transfer (BEHAVIOR.md §10). Not yet served.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// The unauthenticated, signed upload/download endpoints.
pub fn file_routes() -> Router<AppState> {
    Router::new()
}
