//! Cross-cutting layers: authentication (with per-key rate limiting), the JSON error
//! backstop, and panic handling.

pub mod auth;
pub mod connection;
pub mod json_errors;
pub mod rate_limit;
