//! `tofulab serve`: open the database, apply a seed or the first start, listen, and run
//! until SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use super::init_logging;
use super::seed::apply_seed_file;
use crate::config::ServeArgs;
use crate::control::ControlConfig;
use crate::db::Db;
use crate::middleware::rate_limit::RateLimiter;
use crate::{bootstrap, AppState, Settings};

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    init_logging(args.log_format);

    // --ephemeral: a fresh SQLite file in a temporary directory removed at exit.
    let (database_url, temp_dir) = if args.ephemeral {
        let dir = tempfile::Builder::new()
            .prefix("tofulab-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let url = format!("sqlite://{}", dir.path().join("tofulab.db").display());
        (url, Some(dir))
    } else {
        (args.database_url.clone(), None)
    };

    let db = Db::connect(&database_url).await?;
    // Replicas started together take turns at seeding and the first start.
    let startup = db
        .startup_lock()
        .await
        .map_err(|e| format!("cannot take the startup lock: {e}"))?;
    let mut seed = None;
    if let Some(seed_path) = &args.seed {
        let (file, report) = apply_seed_file(&db, seed_path).await?;
        seed = Some(file);
        tracing::info!(
            organizations = report.organizations,
            users = report.users,
            procedures = report.procedures,
            stations = report.stations,
            "seed applied"
        );
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let shown_url = args.public_url.clone().unwrap_or_else(|| {
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            local.ip().to_string()
        };
        format!("http://{host}:{}", local.port())
    });

    if args.seed.is_none() {
        if let Some(first) = bootstrap::first_start(&db)
            .await
            .map_err(|e| format!("first start failed: {e}"))?
        {
            println!("{}", bootstrap::first_start_message(&first, &shown_url));
        }
    }

    startup
        .release()
        .await
        .map_err(|e| format!("cannot release the startup lock: {e}"))?;

    let settings = Settings {
        public_url: args.public_url.clone(),
        max_body_size: args.max_body_size,
        max_upload_size: args.max_upload_size,
        signed_url_ttl: Duration::from_secs(args.signed_url_ttl),
        unlinked_upload_ttl: Duration::from_secs(args.unlinked_upload_ttl),
        auto_approve_devices: args.auto_approve_devices,
        control: args
            .admin_token
            .as_ref()
            .map(|token| Arc::new(ControlConfig::new(&token.0, seed, args.journal_size))),
    };
    let state = AppState::new(
        db.clone(),
        settings,
        RateLimiter::new(args.rate_limit.per_second()),
    )
    .await
    .map_err(|e| format!("startup failed: {e}"))?;

    tracing::info!(
        url = %shown_url,
        database = %crate::db::redact_url(&database_url),
        "tofulab listening on {local}"
    );
    crate::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    db.close().await;
    drop(temp_dir);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
