//! Command line. Every option is also an environment variable `TOFULAB_*`;
//! `tofulab` with no arguments is `tofulab serve` with the defaults.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default database: a SQLite file under ./tofulab-data (created if missing).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./tofulab-data/tofulab.db";

#[derive(Parser, Debug)]
#[command(
    name = "tofulab",
    version,
    about = "A self-hostable server that speaks the TofuPilot REST API v2.",
    long_about = "A self-hostable server that speaks the TofuPilot REST API v2 (and the legacy \
                  /api/v1 endpoints the Python client's OpenHTF integration uses). Point the \
                  official TofuPilot clients at it and they work unchanged.\n\n\
                  Without a subcommand, `tofulab` runs `tofulab serve` with the options given.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Apply a seed file to the database and exit. Idempotent.
    Seed {
        /// The seed file (JSON, see README).
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write an organization, every row and attachment byte, to FILE as JSON Lines
    /// (the format of `GET /_tofulab/organizations/{id}/export`).
    Export {
        /// Id of the organization.
        #[arg(long)]
        organization: String,
        /// Where to write; `-` for stdout.
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Load an export FILE: replaces the organization it names (created when missing),
    /// or the one given with --organization. All or nothing.
    Import {
        /// The export to load; `-` for stdin.
        file: PathBuf,
        /// Id of the organization to replace instead of the one the file names.
        #[arg(long)]
        organization: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Copy every organization (rows and attachment bytes) and the server settings from
    /// one database to another (typically SQLite to Postgres), verifying each by SHA-256.
    MigrateData {
        /// The database to read: sqlite://PATH or postgres://…
        #[arg(long)]
        from: String,
        /// The database to write; refused when it already holds organizations.
        #[arg(long)]
        to: String,
        /// Copy into a database that already holds organizations.
        #[arg(long)]
        force: bool,
    },
    /// Write a consistent copy of a SQLite database to FILE while the server keeps
    /// serving (restore: stop the server and put FILE in place of the database).
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Exit 0 when the server at URL answers `GET /readyz` with 200 (for container
    /// health checks), 1 otherwise.
    Healthcheck {
        /// The server's base URL (http:// or https://).
        #[arg(
            long,
            env = "TOFULAB_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// For an https:// URL: the PEM file of the CA that signed the server's
        /// certificate (the certificate must name the URL's host).
        #[arg(long, env = "TOFULAB_HEALTHCHECK_CA_CERT")]
        ca_cert: Option<PathBuf>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage where attachment bytes are kept.
    Blobs {
        #[command(subcommand)]
        command: BlobsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlobsCommand {
    /// Move attachment bytes kept in the database to an object store, verifying each by
    /// SHA-256. Resumable (run it again after an interruption); the server may keep
    /// running. Start the server with the same --blob-store afterwards.
    Migrate {
        /// The object store: s3://BUCKET/PREFIX (configured by the AWS_* variables).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a new API key for a user (by email) or a station (by id) and print it once.
    Create {
        /// Email of the user who will own the key.
        #[arg(long, conflicts_with = "station", required_unless_present = "station")]
        user: Option<String>,
        /// Id of the station that will own the key.
        #[arg(long)]
        station: Option<String>,
        /// Organization (name or slug) when the email exists in several.
        #[arg(long, env = "TOFULAB_ORGANIZATION")]
        organization: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    #[command(flatten)]
    Cli(crate::commands::cli_keys::CliKeysCommand),
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "TOFULAB_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TOFULAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "TOFULAB_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        conflicts_with = "ephemeral"
    )]
    pub database_url: String,

    /// Use a fresh temporary SQLite database, deleted when the server exits (for CI).
    #[arg(long, env = "TOFULAB_EPHEMERAL")]
    pub ephemeral: bool,

    /// Base URL clients reach this server at, used in upload and download URLs
    /// (e.g. https://tofulab.example.com). Default: the Host header of each request.
    #[arg(long, env = "TOFULAB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (server certificate first). Needs
    /// --tls-key. Both files are read again on SIGHUP.
    #[arg(long, env = "TOFULAB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TOFULAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Seed file applied at startup (JSON, see README). Idempotent.
    #[arg(long, env = "TOFULAB_SEED")]
    pub seed: Option<PathBuf>,

    /// Requests per second allowed per API key (and failed authentications per client
    /// IP), with bursts of twice that; `off` disables limiting.
    #[arg(long, env = "TOFULAB_RATE_LIMIT", default_value = "1000", value_parser = parse_rate_limit)]
    pub rate_limit: RateLimit,

    /// Log format.
    #[arg(long, env = "TOFULAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Largest JSON request body accepted (bytes; suffixes KiB, MiB, GiB allowed).
    #[arg(long, env = "TOFULAB_MAX_BODY_SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_body_size: u64,

    /// Largest attachment upload accepted (bytes; suffixes KiB, MiB, GiB allowed).
    #[arg(long, env = "TOFULAB_MAX_UPLOAD_SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_upload_size: u64,

    /// Seconds a request body may stall (no bytes arriving) before the request ends with
    /// 408; a large upload that is still moving is never cut.
    #[arg(long, env = "TOFULAB_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,

    /// After SIGTERM/SIGINT, seconds in-flight requests get to finish before the
    /// server exits anyway (an HTTP/2 client that never answers the closing handshake,
    /// a transfer that would not end in time).
    #[arg(long, env = "TOFULAB_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,

    /// Lifetime of signed upload and download URLs, in seconds.
    #[arg(long, env = "TOFULAB_SIGNED_URL_TTL", default_value_t = 3600)]
    pub signed_url_ttl: u64,

    /// Uploads never finalized nor linked to anything are deleted after this many seconds.
    #[arg(long, env = "TOFULAB_UNLINKED_UPLOAD_TTL", default_value_t = 86400)]
    pub unlinked_upload_ttl: u64,

    /// Where attachment bytes are written: `db` (rows of the database) or
    /// `s3://BUCKET/PREFIX` (any S3-compatible store, configured by the AWS_* variables:
    /// AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Bytes
    /// written before a switch stay readable; `tofulab blobs migrate` moves them.
    #[arg(long, env = "TOFULAB_BLOB_STORE", default_value = "db")]
    pub blob_store: String,

    /// With an object store: downloads answer 307 to a presigned store URL (valid for the
    /// signed URL's lifetime) instead of streaming the bytes through tofulab.
    #[arg(long, env = "TOFULAB_BLOB_REDIRECT")]
    pub blob_redirect: bool,

    /// Approve every device login of the TofuPilot CLI (`tofupilot login --url …`) for
    /// the only user of the database, without `tofulab keys approve-device`. For a
    /// single-user install on a trusted machine only.
    #[arg(long, env = "TOFULAB_AUTO_APPROVE_DEVICES")]
    pub auto_approve_devices: bool,

    /// Turns on the control API under `/_tofulab` (throw-away organizations, resets,
    /// fault injection, the request journal), for callers bearing this token. Off when
    /// unset. Treat it like a password.
    #[arg(long, env = "TOFULAB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<AdminToken>,

    /// Prometheus metrics: `off`, `on` (`GET /metrics` next to the API, no key needed), or
    /// an address to serve `GET /metrics` on a listener of its own.
    #[arg(long, env = "TOFULAB_METRICS", default_value = "off")]
    pub metrics: crate::monitoring::MetricsMode,

    /// How many `/api` requests the journal of the control API keeps.
    #[arg(long, env = "TOFULAB_JOURNAL_SIZE", default_value_t = 1000)]
    pub journal_size: usize,
}

/// The admin token as given on the command line; `Debug` does not show it.
#[derive(Clone)]
pub struct AdminToken(pub String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl std::str::FromStr for AdminToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().len() < 16 {
            return Err("the admin token must be at least 16 characters".into());
        }
        Ok(AdminToken(s.trim().to_string()))
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        // Parsing an empty command line applies every default (and the environment).
        match Cli::try_parse_from(["tofulab"]) {
            Ok(cli) => cli.serve,
            Err(e) => e.exit(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    PerSecond(NonZeroU32),
    Off,
}

impl RateLimit {
    pub fn per_second(self) -> Option<NonZeroU32> {
        match self {
            RateLimit::PerSecond(n) => Some(n),
            RateLimit::Off => None,
        }
    }
}

fn parse_rate_limit(s: &str) -> Result<RateLimit, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::Off);
    }
    s.parse::<NonZeroU32>()
        .map(RateLimit::PerSecond)
        .map_err(|_| format!("`{s}` is not a positive number of requests per second or `off`"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `1048576`, `512KiB`, `64MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 1048576, 64MiB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}` (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn no_arguments_is_serve_with_defaults() {
        let cli = Cli::try_parse_from(["tofulab"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8080");
        let cli = Cli::try_parse_from(["tofulab", "serve", "--rate-limit", "off", "--ephemeral"])
            .unwrap();
        match cli.command {
            Some(Command::Serve(a)) => {
                assert_eq!(a.rate_limit, RateLimit::Off);
                assert!(a.ephemeral);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
