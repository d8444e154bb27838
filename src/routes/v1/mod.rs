//! v1. Being built.

use axum::Router;

use crate::AppState;

pub mod streaming;

pub fn routes() -> Router<AppState> {
    Router::new().route("/streaming", axum::routing::get(streaming::credentials))
}
