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
use crate::monitoring::MetricsMode;
use crate::tls::TlsFiles;
use crate::{bootstrap, AppState, Settings};

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    init_logging(args.log_format);
    // First of all: a SIGTERM during startup then stops the server as soon as it serves.
    let shutdown = shutdown_signal()?;

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

    // Certificate problems are reported before anything else starts.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles::load(cert, key)?),
        _ => None,
    };

    let blob_store = crate::db::objects::parse_blob_store(&args.blob_store)?;
    let mut db = Db::connect(&database_url).await?;
    if let Some(objects) = blob_store {
        tracing::info!(store = %objects.url(), redirect = args.blob_redirect, "attachment bytes go to an object store");
        db = db.with_objects(objects.with_redirect(args.blob_redirect));
    }
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}:{}", local.port())
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
        metrics: args.metrics,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        tls: tls.is_some(),
    };
    let state = AppState::new(
        db.clone(),
        settings,
        RateLimiter::new(args.rate_limit.per_second()),
    )
    .await
    .map_err(|e| format!("startup failed: {e}"))?;

    if let MetricsMode::Listen(addr) = args.metrics {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(crate::monitoring::http::scrape),
            )
            .with_state(state.clone());
        tracing::info!("metrics on http://{addr}/metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, app).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    tracing::info!(
        url = %shown_url,
        database = %crate::db::redact_url(&database_url),
        "tofulab listening on {local}"
    );
    // The shutdown signal, seen by the server (stop accepting, finish in-flight work)
    // and by the grace period's clock.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    };
    let served = async {
        match &tls {
            Some(files) => {
                reload_on_sighup(files.clone())?;
                crate::serve(files.listen(listener)?, state, shutdown).await
            }
            None => crate::serve(listener, state, shutdown).await,
        }
        .map_err(|e| format!("server error: {e}"))
    };
    let grace = Duration::from_secs(args.shutdown_timeout);
    let finished = tokio::select! {
        served = served => { served?; true }
        _ = grace_over(stopping_rx, grace) => false,
    };
    if finished {
        tracing::info!("stopped");
    } else {
        tracing::warn!(
            "stopped after the {}s shutdown timeout: some connections were still open",
            grace.as_secs()
        );
    }
    // Handlers cut off by the timeout may still hold database connections.
    let _ = tokio::time::timeout(Duration::from_secs(5), db.close()).await;
    drop(temp_dir);
    Ok(())
}

/// Resolves `grace` after the shutdown signal.
async fn grace_over(mut stopping: tokio::sync::watch::Receiver<bool>, grace: Duration) {
    if stopping.wait_for(|s| *s).await.is_err() {
        // The server ended on its own before any signal.
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(grace).await;
}

/// Reloads the TLS certificate and key on each SIGHUP (after a renewal); open
/// connections keep the certificate they started with.
fn reload_on_sighup(files: TlsFiles) -> Result<(), String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup =
            signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match files.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = files;
    Ok(())
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed now, before
/// the server announces itself: a supervisor may send SIGTERM as soon as it sees the
/// server ready, and until a handler is installed that signal would kill the process
/// without letting in-flight requests finish.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
}
