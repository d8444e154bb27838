//! What the `tofulab` subcommands do. `main.rs` parses the command line and dispatches
//! here; each command returns `Err(message)` for `main` to print.

pub mod backup;
pub mod blobs;
pub mod cli_keys;
pub mod healthcheck;
pub mod keys;
pub mod migrate_data;
pub mod portable;
pub mod seed;
pub mod serve;

use crate::config::LogFormat;

/// Logs to stderr, filtered by `RUST_LOG` (default `info,sqlx=warn`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
