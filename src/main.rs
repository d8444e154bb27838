//! The `tofulab` command: parse options, set up logging, run.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tofulab::config::{Cli, Command, KeysCommand, LogFormat, ServeArgs};
use tofulab::db::seed::SeedFile;
use tofulab::db::{Db, Id};
use tofulab::extract::Principal;
use tofulab::middleware::rate_limit::RateLimiter;
use tofulab::{bootstrap, AppState, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Seed { file, db }) => {
            init_logging(LogFormat::Pretty);
            seed(&file, &db.database_url).await
        }
        Some(Command::Keys {
            command:
                KeysCommand::Create {
                    user,
                    station,
                    organization,
                    db,
                },
        }) => {
            init_logging(LogFormat::Pretty);
            create_key(user, station, organization, &db.database_url).await
        }
        Some(Command::Keys {
            command: KeysCommand::Cli(command),
        }) => {
            init_logging(LogFormat::Pretty);
            tofulab::commands::keys::run(command).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tofulab: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
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

async fn serve(args: ServeArgs) -> Result<(), String> {
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
    if let Some(seed_path) = &args.seed {
        let report = apply_seed_file(&db, seed_path).await?;
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

    let settings = Settings {
        public_url: args.public_url.clone(),
        max_body_size: args.max_body_size,
        max_upload_size: args.max_upload_size,
        signed_url_ttl: Duration::from_secs(args.signed_url_ttl),
        unlinked_upload_ttl: Duration::from_secs(args.unlinked_upload_ttl),
        auto_approve_devices: args.auto_approve_devices,
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
        database = %tofulab::db::redact_url(&database_url),
        "tofulab listening on {local}"
    );
    tofulab::serve(listener, state, shutdown_signal())
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

async fn apply_seed_file(db: &Db, path: &Path) -> Result<tofulab::db::seed::SeedReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
    let seed = SeedFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    db.apply_seed(&seed).await
}

async fn seed(path: &Path, database_url: &str) -> Result<(), String> {
    let db = Db::connect(database_url).await?;
    let report = apply_seed_file(&db, path).await?;
    println!(
        "seed applied: {} organization(s), {} user(s), {} procedure(s), {} station(s) created",
        report.organizations, report.users, report.procedures, report.stations
    );
    db.close().await;
    Ok(())
}

async fn create_key(
    user: Option<String>,
    station: Option<String>,
    organization: Option<String>,
    database_url: &str,
) -> Result<(), String> {
    let db = Db::connect(database_url).await?;
    let (org_id, principal, owner) = match (user, station) {
        (Some(email), None) => {
            let mut found = db.users_by_email(&email).await.map_err(|e| e.to_string())?;
            if let Some(org) = &organization {
                found.retain(|(_, o)| o.slug == *org || o.name == *org);
            }
            match found.len() {
                0 => return Err(format!("no user with email {email}")),
                1 => {
                    let (u, o) = found.remove(0);
                    (
                        o.id,
                        Principal::User(u.id),
                        format!("user {} ({})", u.email, o.name),
                    )
                }
                _ => {
                    let orgs: Vec<String> = found.iter().map(|(_, o)| o.slug.clone()).collect();
                    return Err(format!(
                        "{email} is a member of several organizations ({}); choose one with --organization",
                        orgs.join(", ")
                    ));
                }
            }
        }
        (None, Some(station)) => {
            let id = Id::parse(station.trim())
                .ok_or_else(|| format!("`{station}` is not a station id"))?;
            let org = db
                .station_org(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no station with id {id}"))?;
            (org, Principal::Station(id), format!("station {id}"))
        }
        _ => return Err("give exactly one of --user EMAIL or --station ID".into()),
    };
    let key = db
        .create_api_key(org_id, principal)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("Created an API key for {owner}. It is shown only this once:");
    println!("{key}");
    db.close().await;
    Ok(())
}
