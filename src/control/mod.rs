//! The fixture controls behind `/_tofulab` (off unless an admin token is configured):
//! the admin token itself, the seed the whole database resets to, fault injection rules
//! and the request journal. The HTTP side is `routes::control`.

pub mod faults;
pub mod journal;

use std::fmt;

use axum::extract::{OriginalUri, Request};
use axum::http::Uri;

use crate::apikey;
use crate::db::seed::SeedFile;

/// The control API's configuration. `Debug` shows neither the token nor the seed's keys.
pub struct ControlConfig {
    token_digest: String,
    /// What `POST /_tofulab/reset` returns the database to (`None`: no organization).
    pub seed: Option<SeedFile>,
    /// How many requests the journal keeps.
    pub journal_size: usize,
}

impl ControlConfig {
    pub fn new(admin_token: &str, seed: Option<SeedFile>, journal_size: usize) -> Self {
        ControlConfig {
            token_digest: apikey::digest(admin_token),
            seed,
            journal_size,
        }
    }

    /// Whether `token` is the admin token, compared in constant time.
    pub fn accepts(&self, token: &str) -> bool {
        apikey::digests_match(&apikey::digest(token), &self.token_digest)
    }
}

impl fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlConfig")
            .field("token", &"<redacted>")
            .field("seed", &self.seed.as_ref().map(|_| "<seed file>"))
            .field("journal_size", &self.journal_size)
            .finish()
    }
}

/// The URI as the client sent it: inside a nested router `req.uri()` has lost the
/// prefix (`/api`), and rules and the journal speak in full paths.
fn original_uri(req: &Request) -> &Uri {
    req.extensions()
        .get::<OriginalUri>()
        .map_or(req.uri(), |o| &o.0)
}
