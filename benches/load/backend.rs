//! Fresh databases: a new SQLite file in the scratch directory, or a new Postgres
//! database on `TOFULAB_BENCH_PG_URL` (dropped again by `Database::drop_now`).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection, Executor, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "Postgres",
        }
    }
}

/// The Postgres server the benchmark creates its databases on.
pub fn pg_base() -> String {
    std::env::var("TOFULAB_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

/// A database created for one measurement.
pub struct Database {
    pub url: String,
    /// Postgres: the database to drop afterwards.
    pg_name: Option<String>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Database {
    /// A new, empty database named after `tag` (tofulab creates the schema on connect).
    pub async fn fresh(backend: Backend, scratch: &Path, tag: &str) -> Database {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        match backend {
            Backend::Sqlite => Database {
                url: format!(
                    "sqlite://{}",
                    scratch.join(format!("{tag}-{n}.db")).display()
                ),
                pg_name: None,
            },
            Backend::Postgres => {
                let name = format!("tofulab_bench_{}_{tag}_{n}", std::process::id());
                admin(&format!("CREATE DATABASE {name}")).await;
                Database {
                    url: format!("{}/{name}", pg_base()),
                    pg_name: Some(name),
                }
            }
        }
    }

    /// Drops a Postgres database (SQLite files go with the scratch directory).
    pub async fn drop_now(self) {
        if let Some(name) = self.pg_name {
            admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// Runs one statement on the `postgres` maintenance database.
async fn admin(statement: &str) {
    let url = format!("{}/postgres", pg_base());
    let mut c = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    c.execute(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let _ = c.close().await;
}
