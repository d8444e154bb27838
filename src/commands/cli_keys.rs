//! `tofulab keys setup-token` and `tofulab keys approve-device`: the administrator's side
//! of putting the official TofuPilot CLI on a station or a developer's machine.

use clap::{Args, Subcommand};

use crate::config::DbArgs;
use crate::db::cli::{ts_in, SETUP_TOKEN_TTL_SECS};
use crate::db::{Db, Id};

#[derive(Subcommand, Debug)]
pub enum CliKeysCommand {
    /// Mint a single-use setup token (valid one hour) that installs the TofuPilot CLI on
    /// a station: prints the token alone on stdout and the install command on stderr.
    SetupToken(SetupTokenArgs),
    /// Approve (or deny) the login code `tofupilot login --url …` shows a developer.
    ApproveDevice(ApproveDeviceArgs),
}

#[derive(Args, Debug)]
pub struct SetupTokenArgs {
    /// Id of the station to install.
    #[arg(long)]
    pub station: String,
    /// URL the station reaches this server at, shown in the install command.
    #[arg(long, env = "TOFULAB_PUBLIC_URL")]
    pub url: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Args, Debug)]
pub struct ApproveDeviceArgs {
    /// The code the CLI shows (`ABCD-EFGH`; case and dash do not matter).
    pub code: String,
    /// Email of the user logging in: the CLI may then pick any organization where a user
    /// with this email exists.
    #[arg(long, required_unless_present = "deny")]
    pub user: Option<String>,
    /// Deny the login instead.
    #[arg(long, conflicts_with = "user")]
    pub deny: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

pub async fn run(command: CliKeysCommand) -> Result<(), String> {
    match command {
        CliKeysCommand::SetupToken(args) => setup_token(args).await,
        CliKeysCommand::ApproveDevice(args) => approve_device(args).await,
    }
}

async fn setup_token(args: SetupTokenArgs) -> Result<(), String> {
    let station = Id::parse(args.station.trim())
        .ok_or_else(|| format!("`{}` is not a station id", args.station))?;
    let db = Db::connect(&args.db.database_url).await?;
    let minted = db
        .create_setup_token(None, station, ts_in(SETUP_TOKEN_TTL_SECS))
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    let token = minted.ok_or_else(|| format!("no station with id {station}"))?;
    let url = args
        .url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string());
    eprintln!(
        "Setup token for station \"{}\" ({}), single use, valid until {}.",
        token.station_name, token.organization_slug, token.expires_at
    );
    eprintln!("On the station, run:\n");
    eprintln!(
        "    tofupilot login --token {} --url {}\n",
        token.token,
        url.as_deref().unwrap_or("URL")
    );
    if url.is_none() {
        eprintln!(
            "(URL: the address the station reaches this server at; pass --url to fill it in.)"
        );
    }
    println!("{}", token.token);
    Ok(())
}

async fn approve_device(args: ApproveDeviceArgs) -> Result<(), String> {
    let db = Db::connect(&args.db.database_url).await?;
    let email = if args.deny {
        None
    } else {
        args.user.as_deref()
    };
    let decided = db
        .decide_device_code(&args.code, email)
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    decided.map_err(|r| format!("{}: {}", args.code.trim(), r.message()))?;
    match email {
        Some(e) => eprintln!("Approved: the CLI now logs in as {e}."),
        None => eprintln!("Denied."),
    }
    Ok(())
}
