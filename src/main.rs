//! The `tofulab` command: parse options and run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use tofulab::commands::{
    backup, blobs, cli_keys, healthcheck, init_logging, keys, migrate_data, portable, seed, serve,
};
use tofulab::config::{BlobsCommand, Cli, Command, KeysCommand, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve::serve(cli.serve).await,
        Some(Command::Serve(args)) => serve::serve(args).await,
        Some(Command::Seed { file, db }) => {
            init_logging(LogFormat::Pretty);
            seed::seed(&file, &db.database_url).await
        }
        Some(Command::Healthcheck {
            url,
            timeout,
            ca_cert,
        }) => healthcheck::check(&url, timeout, ca_cert.as_deref()).await,
        Some(Command::MigrateData { from, to, force }) => {
            init_logging(LogFormat::Pretty);
            migrate_data::migrate(&from, &to, force).await
        }
        Some(Command::Backup { file, db }) => {
            init_logging(LogFormat::Pretty);
            backup::backup(&file, &db.database_url).await
        }
        Some(Command::Export {
            organization,
            file,
            db,
        }) => {
            init_logging(LogFormat::Pretty);
            portable::export(&organization, &file, &db.database_url).await
        }
        Some(Command::Import {
            file,
            organization,
            db,
        }) => {
            init_logging(LogFormat::Pretty);
            portable::import(&file, organization.as_deref(), &db.database_url).await
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
            keys::create_key(user, station, organization, &db.database_url).await
        }
        Some(Command::Blobs {
            command: BlobsCommand::Migrate { to, db },
        }) => {
            init_logging(LogFormat::Pretty);
            blobs::migrate(&to, &db.database_url).await
        }
        Some(Command::Keys {
            command: KeysCommand::Cli(command),
        }) => {
            init_logging(LogFormat::Pretty);
            cli_keys::run(command).await
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
