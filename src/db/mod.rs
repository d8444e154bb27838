//! Storage. One `Db` over SQLite or Postgres with every query written once: SQL text with
//! `$1..$n` placeholders (both backends accept them) plus a list of typed arguments,
//! executed by a small dispatch on the backend. Row structs derive `FromRow` and decode
//! from either backend. Where the dialects really differ the code says `// DIALECT:`.
//!
//! SQLite runs in WAL mode with one writer connection (write transactions queue in the
//! pool instead of failing with "database is locked") and a pool of readers. Write
//! transactions start with `BEGIN IMMEDIATE`.

pub mod error;

pub mod analytics;
pub mod attachments;
pub mod backup;
pub mod batches;
pub mod blobs;
pub mod cli;
pub mod common;
pub mod dashboard;
pub mod device;
pub mod export;
pub mod file_imports;
pub mod identity;
pub mod imports;
pub mod metadata;
pub mod names;
pub mod objects;
pub mod organizations;
pub mod parts;
pub mod points;
pub mod procedures;
pub mod revisions;
pub mod runs;
pub mod seed;
pub mod sessions;
pub mod settings;
pub mod stations;
pub mod units;
pub mod versions;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments, FromRow, PgPool, Postgres, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::values::{Page, SortOrder};

pub use crate::types::{ci_key, Id, Ts};
pub use error::{retry, retry_write, DbResult, StoreError, WRITE_ATTEMPTS};

/// A typed SQL argument. Nulls carry their type: Postgres needs it to bind them.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Id(Option<Id>),
    Ts(Option<Ts>),
    Json(Option<Value>),
    Bytes(Option<Vec<u8>>),
}

macro_rules! arg_from {
    ($t:ty, $variant:ident, $conv:expr) => {
        impl From<$t> for Arg {
            fn from(v: $t) -> Arg {
                Arg::$variant(Some($conv(v)))
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Arg {
                Arg::$variant(v.map($conv))
            }
        }
    };
}
arg_from!(String, Text, |v| v);
arg_from!(&str, Text, |v: &str| v.to_string());
arg_from!(&String, Text, |v: &String| v.clone());
arg_from!(i64, Int, |v| v);
arg_from!(f64, Float, |v| v);
arg_from!(bool, Bool, |v| v);
arg_from!(Id, Id, |v| v);
arg_from!(&Id, Id, |v: &Id| *v);
arg_from!(Ts, Ts, |v| v);
arg_from!(Value, Json, |v| v);
arg_from!(Vec<u8>, Bytes, |v| v);

/// SQL text and its arguments. Either write `$1..$n` in the text and `bind` in order, or
/// build dynamically with `push` / `push_bind` (which numbers placeholders itself).
///
/// Text only ever comes from `&'static str`: string literals and constants of the
/// program. Anything a request carries is a bound argument, so no caller can splice user
/// text into a statement, whatever it builds.
#[derive(Debug, Clone)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &'static str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    pub fn bind(mut self, arg: impl Into<Arg>) -> Sql {
        self.args.push(arg.into());
        self
    }

    /// `push` by value, for statements assembled from constant fragments in one
    /// expression: `Sql::new(SELECT_RUN).then(" WHERE r.id = $1").bind(id)`.
    pub fn then(mut self, text: &'static str) -> Sql {
        self.text.push_str(text);
        self
    }

    pub fn push(&mut self, text: &'static str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder and binds `arg` to it.
    pub fn push_bind(&mut self, arg: impl Into<Arg>) -> &mut Sql {
        self.args.push(arg.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `(p1, p2, …)` binding every value: for `IN` lists and multi-row inserts.
    pub fn push_tuple<A: Into<Arg>>(&mut self, values: impl IntoIterator<Item = A>) -> &mut Sql {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_bind(v);
        }
        self.text.push(')');
        self
    }

    /// ` AND column IN (…)` for an id filter: nothing for `None` (no filter), a condition
    /// matching nothing for `Some([])` (every id given was unknown or malformed), and an
    /// equality for one id, which lets an index on `(column, started_at, id)` return the
    /// rows already in start order.
    pub fn and_id_in(&mut self, column: &'static str, ids: &Option<Vec<Id>>) -> &mut Sql {
        match ids.as_deref() {
            None => self,
            Some([]) => self.push(" AND 1 = 0"),
            Some([id]) => self.push(" AND ").push(column).push(" = ").push_bind(*id),
            Some(ids) => self
                .push(" AND ")
                .push(column)
                .push(" IN ")
                .push_tuple(ids.iter().copied()),
        }
    }

    /// ` AND column IN (…)` for a list of exact values; an empty list is no filter.
    pub fn and_text_in(&mut self, column: &'static str, values: &[String]) -> &mut Sql {
        if !values.is_empty() {
            self.push(" AND ")
                .push(column)
                .push(" IN ")
                .push_tuple(values.iter().map(String::as_str));
        }
        self
    }

    /// ` AND column IN (…)` for natural keys compared case-insensitively (`column` holds
    /// `ci_key` values); an empty list is no filter.
    pub fn and_key_in(&mut self, column: &'static str, values: &[String]) -> &mut Sql {
        if !values.is_empty() {
            self.push(" AND ")
                .push(column)
                .push(" IN ")
                .push_tuple(values.iter().map(|v| ci_key(v)));
        }
        self
    }

    /// ` ORDER BY key dir, tiebreak dir LIMIT … OFFSET …` for one page of a list (one row
    /// more than the page, for `paginate`).
    pub fn order_and_page(
        &mut self,
        dialect: Dialect,
        key: SortKey,
        tiebreak: &'static str,
        order: SortOrder,
        page: Page,
    ) -> &mut Sql {
        let dir = order.sql();
        self.push(" ORDER BY ").push(key.expr);
        if key.text {
            self.push(dialect.code_point_order());
        }
        self.push(" ").push(dir);
        if key.nulls_oldest {
            // Rows without a value sort as the oldest: first ascending, last descending,
            // so the two directions stay exact mirrors.
            self.push(match order {
                SortOrder::Asc => " NULLS FIRST",
                SortOrder::Desc => " NULLS LAST",
            });
        }
        self.push(", ").push(tiebreak).push(" ").push(dir);
        self.push(" LIMIT ")
            .push_bind(page.fetch_limit())
            .push(" OFFSET ")
            .push_bind(page.offset)
    }

    /// The same statement with `prefix` in front (e.g. `EXPLAIN QUERY PLAN `).
    pub fn prefixed(mut self, prefix: &'static str) -> Sql {
        self.text.insert_str(0, prefix);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn arg_count(&self) -> usize {
        self.args.len()
    }

    fn sqlite_args(self) -> DbResult<(String, SqliteArguments<'static>)> {
        let mut out = SqliteArguments::default();
        for a in self.args {
            match a {
                Arg::Text(v) => out.add(v),
                Arg::Int(v) => out.add(v),
                Arg::Float(v) => out.add(v),
                Arg::Bool(v) => out.add(v),
                Arg::Id(v) => out.add(v.map(|id| id.to_string())),
                Arg::Ts(v) => out.add(v.map(|t| t.to_db_text())),
                Arg::Json(v) => out.add(v.map(|j| j.to_string())),
                Arg::Bytes(v) => out.add(v),
            }
            .map_err(StoreError::Other)?;
        }
        Ok((self.text, out))
    }

    fn pg_args(self) -> DbResult<(String, PgArguments)> {
        let mut out = PgArguments::default();
        for a in self.args {
            match a {
                Arg::Text(v) => out.add(v),
                Arg::Int(v) => out.add(v),
                Arg::Float(v) => out.add(v),
                Arg::Bool(v) => out.add(v),
                Arg::Id(v) => out.add(v.map(|id| id.0)),
                Arg::Ts(v) => out.add(v.map(|t| t.0)),
                Arg::Json(v) => out.add(v.map(sqlx::types::Json)),
                Arg::Bytes(v) => out.add(v),
            }
            .map_err(StoreError::Other)?;
        }
        Ok((self.text, out))
    }
}

/// The sort key of a list: an expression, whether it is text (compared by code point on
/// both backends), and whether rows without a value sort as the oldest.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    pub expr: &'static str,
    pub text: bool,
    pub nulls_oldest: bool,
}

impl SortKey {
    pub const fn plain(expr: &'static str) -> SortKey {
        SortKey {
            expr,
            text: false,
            nulls_oldest: false,
        }
    }

    pub const fn text(expr: &'static str) -> SortKey {
        SortKey {
            expr,
            text: true,
            nulls_oldest: false,
        }
    }

    pub const fn nulls_oldest(self) -> SortKey {
        SortKey {
            nulls_oldest: true,
            ..self
        }
    }
}

/// A row type that decodes from both backends.
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// ` FOR UPDATE` where the backend has row locks, for a write transaction that reads
    /// a row it is about to change: Postgres locks it so concurrent writers queue;
    /// SQLite's write transactions are already exclusive (`BEGIN IMMEDIATE`).
    /// What follows a text sort key so that both backends order by code point (SQLite's
    /// BINARY collation compares UTF-8 bytes, which is code point order).
    pub fn code_point_order(self) -> &'static str {
        // DIALECT: Postgres would sort by the database's locale collation.
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    pub fn row_lock(self) -> &'static str {
        // DIALECT: SQLite has no row locks.
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// The advisory lock key of `Db::startup_lock` ("tofulab" in ASCII).
const STARTUP_LOCK_KEY: i64 = 0x0074_6f66_756c_6162;

/// A held startup lock. Postgres: a session-level advisory lock on its own connection.
/// SQLite: an exclusive lock on `<database file>.lock` (the file stays; the lock goes
/// with the process).
pub struct StartupLock {
    pg: Option<sqlx::pool::PoolConnection<Postgres>>,
    file: Option<std::fs::File>,
}

impl StartupLock {
    async fn sqlite(db_path: &Path) -> DbResult<StartupLock> {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let file = tokio::task::spawn_blocking(move || {
            if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(StoreError::other)?
        .map_err(|e| StoreError::other(format!("startup lock file: {e}")))?;
        Ok(StartupLock {
            pg: None,
            file: Some(file),
        })
    }

    pub async fn release(mut self) -> DbResult<()> {
        self.file = None;
        if let Some(mut conn) = self.pg.take() {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(STARTUP_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for StartupLock {
    /// Not released (an error on the way): the connection is closed rather than returned
    /// to the pool, which ends its session and with it the lock.
    fn drop(&mut self) {
        if let Some(conn) = self.pg.take() {
            drop(conn.detach());
        }
    }
}

/// The storage: the database's pools, and the object store that holds attachment bytes
/// when one is configured (`--blob-store s3://…`; otherwise bytes are rows too). `Db` is
/// cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pools: Pools,
    objects: Option<objects::ObjectBlobs>,
}

/// A pool per backend.
#[derive(Clone, Debug)]
enum Pools {
    Sqlite {
        /// Exactly one connection: SQLite has one writer at a time anyway, and queueing
        /// here is fairer and cheaper than spinning on the file lock.
        write: SqlitePool,
        read: SqlitePool,
        path: PathBuf,
    },
    Postgres(PgPool),
}

/// A write transaction.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Something a query runs on: a pool or a transaction's connection, of either backend.
enum Exec<'a> {
    SqlitePool(&'a SqlitePool),
    SqliteConn(&'a mut sqlx::SqliteConnection),
    PgPool(&'a PgPool),
    PgConn(&'a mut sqlx::PgConnection),
}

/// Runs one sqlx call on whichever executor `$exec` is, with the arguments converted for
/// its backend. `$q` builds the query from (text, args); `$run` finishes it on `e`.
macro_rules! dispatch {
    ($exec:expr, $sql:expr, |$t:ident, $a:ident| $q:expr, |$query:ident, $e:ident| $run:expr) => {
        match $exec {
            Exec::SqlitePool($e) => {
                let ($t, $a) = $sql.sqlite_args()?;
                let $query = $q;
                $run
            }
            Exec::SqliteConn($e) => {
                let ($t, $a) = $sql.sqlite_args()?;
                let $query = $q;
                $run
            }
            Exec::PgPool($e) => {
                let ($t, $a) = $sql.pg_args()?;
                let $query = $q;
                $run
            }
            Exec::PgConn($e) => {
                let ($t, $a) = $sql.pg_args()?;
                let $query = $q;
                $run
            }
        }
    };
}

impl Exec<'_> {
    async fn fetch_all<T: Row>(self, sql: Sql) -> DbResult<Vec<T>> {
        Ok(dispatch!(
            self,
            sql,
            |t, a| sqlx::query_as_with::<_, T, _>(&t, a),
            |q, e| q.fetch_all(e).await?
        ))
    }

    async fn fetch_optional<T: Row>(self, sql: Sql) -> DbResult<Option<T>> {
        Ok(dispatch!(
            self,
            sql,
            |t, a| sqlx::query_as_with::<_, T, _>(&t, a),
            |q, e| q.fetch_optional(e).await?
        ))
    }

    async fn for_each<T: Row>(self, sql: Sql, mut f: impl FnMut(T) + Send) -> DbResult<()> {
        use futures_util::TryStreamExt;
        dispatch!(
            self,
            sql,
            |t, a| sqlx::query_as_with::<_, T, _>(&t, a),
            |q, e| {
                let mut rows = q.fetch(e);
                while let Some(row) = rows.try_next().await? {
                    f(row);
                }
            }
        );
        Ok(())
    }

    async fn execute(self, sql: Sql) -> DbResult<u64> {
        Ok(dispatch!(
            self,
            sql,
            |t, a| sqlx::query_with(&t, a),
            |q, e| q.execute(e).await?.rows_affected()
        ))
    }
}

/// The query methods shared by `Db` (autocommit) and `Tx`.
macro_rules! query_methods {
    () => {
        pub async fn fetch_all<T: Row>(&mut self, sql: Sql) -> DbResult<Vec<T>> {
            self.exec().fetch_all(sql).await
        }

        pub async fn fetch_optional<T: Row>(&mut self, sql: Sql) -> DbResult<Option<T>> {
            self.exec().fetch_optional(sql).await
        }

        /// Like `fetch_optional`, but a missing row is an internal error.
        pub async fn fetch_one<T: Row>(&mut self, sql: Sql) -> DbResult<T> {
            self.exec()
                .fetch_optional(sql)
                .await?
                .ok_or_else(|| StoreError::other("expected a row"))
        }

        /// Streams the rows into `f`, one at a time: memory stays bounded however many
        /// rows the statement yields.
        pub async fn for_each<T: Row>(
            &mut self,
            sql: Sql,
            f: impl FnMut(T) + Send,
        ) -> DbResult<()> {
            self.exec().for_each(sql, f).await
        }

        /// Runs a statement; returns the number of rows it changed.
        pub async fn execute(&mut self, sql: Sql) -> DbResult<u64> {
            self.exec().execute(sql).await
        }
    };
}

impl Tx {
    fn exec(&mut self) -> Exec<'_> {
        match self {
            Tx::Sqlite(tx) => Exec::SqliteConn(&mut *tx),
            Tx::Postgres(tx) => Exec::PgConn(&mut *tx),
        }
    }

    query_methods!();

    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn commit(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// Read access through the pool (SQLite: the reader pool). `Db` is cheap to clone.
pub struct Reader<'a>(&'a Db);

impl Reader<'_> {
    fn exec(&mut self) -> Exec<'_> {
        match &self.0.pools {
            Pools::Sqlite { read, .. } => Exec::SqlitePool(read),
            Pools::Postgres(pool) => Exec::PgPool(pool),
        }
    }

    query_methods!();
}

impl Db {
    /// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`), creating
    /// the SQLite file and its directory if needed, and runs the migrations.
    pub async fn connect(url: &str) -> Result<Db, String> {
        let db = if let Some(path) = sqlite_path(url) {
            // Before opening: switching a new file to WAL needs it alone.
            let lock = StartupLock::sqlite(&path)
                .await
                .map_err(|e| format!("cannot take the startup lock: {e}"))?;
            let db = Db::open_sqlite(&path).await?;
            db.migrate()
                .await
                .map_err(|e| format!("migrations failed: {e}"))?;
            drop(lock);
            return Ok(db);
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::open_postgres(url).await?
        } else {
            return Err(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(url)
            ));
        };
        let lock = db
            .startup_lock()
            .await
            .map_err(|e| format!("cannot take the startup lock: {e}"))?;
        db.migrate()
            .await
            .map_err(|e| format!("migrations failed: {e}"))?;
        lock.release()
            .await
            .map_err(|e| format!("cannot release the startup lock: {e}"))?;
        Ok(db)
    }

    /// Takes the database's startup lock: processes started together on one database
    /// take turns at opening, migrating, seeding and the first start instead of racing
    /// each other into duplicate keys. Release it with `StartupLock::release`.
    pub async fn startup_lock(&self) -> DbResult<StartupLock> {
        match &self.pools {
            Pools::Sqlite { path, .. } => StartupLock::sqlite(path).await,
            Pools::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(STARTUP_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                Ok(StartupLock {
                    pg: Some(conn),
                    file: None,
                })
            }
        }
    }

    async fn open_sqlite(path: &Path) -> Result<Db, String> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(120))
            .connect_with(opts.clone())
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(60))
            // Rows cross from the connection's thread in batches rather than nearly one
            // at a time (the default buffer is 50): a long streamed read (analytics)
            // otherwise spends most of its time switching threads.
            .connect_with(opts.row_buffer_size(4096))
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Db {
            pools: Pools::Sqlite {
                write,
                read,
                path: path.to_path_buf(),
            },
            objects: None,
        })
    }

    /// Connects to Postgres without migrating: `connect` migrates once, under the
    /// startup lock.
    async fn open_postgres(url: &str) -> Result<Db, String> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| format!("bad Postgres URL {}: {e}", redact_url(url)))?;
        Db::postgres_pool(opts).await
    }

    async fn postgres_pool(opts: PgConnectOptions) -> Result<Db, String> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts)
            .await
            .map_err(|e| format!("cannot connect to Postgres: {e}"))?;
        Ok(Db {
            pools: Pools::Postgres(pool),
            objects: None,
        })
    }

    /// Opens Postgres with explicit options and migrates (tests use a per-test schema).
    pub async fn open_postgres_with(opts: PgConnectOptions) -> Result<Db, String> {
        let db = Db::postgres_pool(opts).await?;
        db.migrate()
            .await
            .map_err(|e| format!("migrations failed: {e}"))?;
        Ok(db)
    }

    async fn migrate(&self) -> DbResult<()> {
        match &self.pools {
            Pools::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite").run(write).await?,
            Pools::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        self.fold_names().await?;
        self.backfill_measurement_points().await?;
        Ok(())
    }

    /// Keeps attachment bytes written from now on in `objects` (`--blob-store s3://…`).
    /// Bytes already in the database stay readable there (`tofulab blobs migrate` moves
    /// them).
    pub fn with_objects(mut self, objects: objects::ObjectBlobs) -> Db {
        self.objects = Some(objects);
        self
    }

    /// The object store attachment bytes are written to, if any.
    pub fn objects(&self) -> Option<&objects::ObjectBlobs> {
        self.objects.as_ref()
    }

    pub fn dialect(&self) -> Dialect {
        match &self.pools {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Autocommit reads.
    pub fn read(&self) -> Reader<'_> {
        Reader(self)
    }

    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE` on the writer connection).
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match &self.pools {
            Pools::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.read()
            // BIGINT on both: Postgres types a bare `1` as INT4, which does not decode as i64.
            .fetch_optional::<(i64,)>(Sql::new("SELECT CAST(1 AS BIGINT)"))
            .await
            .is_ok()
    }

    /// Checks the database for corruption (SQLite `PRAGMA integrity_check`; Postgres has
    /// no equivalent and reports reachability).
    pub async fn integrity_check(&self) -> DbResult<String> {
        match &self.pools {
            // DIALECT: SQLite only.
            Pools::Sqlite { read, .. } => {
                let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
                    .fetch_all(read)
                    .await?;
                Ok(rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("; "))
            }
            Pools::Postgres(_) => Ok(if self.ping().await {
                "ok"
            } else {
                "unreachable"
            }
            .into()),
        }
    }

    /// Connections of the pools: (in use, idle).
    pub fn pool_stats(&self) -> (u32, u32) {
        let of = |size: u32, idle: usize| (size.saturating_sub(idle as u32), idle as u32);
        match &self.pools {
            Pools::Sqlite { write, read, .. } => {
                let (wu, wi) = of(write.size(), write.num_idle());
                let (ru, ri) = of(read.size(), read.num_idle());
                (wu + ru, wi + ri)
            }
            Pools::Postgres(pool) => of(pool.size(), pool.num_idle()),
        }
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

/// `column` contains `text`, in any case of all of Unicode, on both backends: Postgres
/// compares `lower(column)` (a UTF-8 database's `lower` folds all of Unicode) with the
/// lower-cased text; SQLite, whose `lower` folds ASCII only, matches a `GLOB` whose
/// letter classes Rust folded (`values::glob_contains_pattern`).
pub fn push_contains(q: &mut Sql, dialect: Dialect, column: &'static str, text: &str) {
    match dialect {
        Dialect::Sqlite => {
            q.push(column)
                .push(" GLOB ")
                .push_bind(crate::values::glob_contains_pattern(text));
        }
        Dialect::Postgres => {
            q.push("lower(")
                .push(column)
                .push(") LIKE ")
                .push_bind(crate::values::contains_pattern(text))
                .push(" ESCAPE '\\'");
        }
    }
}

/// `sqlite://PATH`, `sqlite:PATH` → PATH (`sqlite:///tmp/x.db` is `/tmp/x.db`).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest == ":memory:" {
        return None;
    }
    Some(PathBuf::from(rest))
}

/// A URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Binds a UUID for a query that compares against an id column.
pub fn uuid_arg(u: Uuid) -> Arg {
    Arg::Id(Some(Id(u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite:///tmp/x.db"), Some("/tmp/x.db".into()));
        assert_eq!(sqlite_path("sqlite://data/x.db"), Some("data/x.db".into()));
        assert_eq!(sqlite_path("sqlite:x.db?mode=rwc"), Some("x.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn push_bind_numbers_placeholders() {
        let mut q = Sql::new("SELECT 1 WHERE a = ").bind(1i64);
        q.push("$1 AND b IN ").push_tuple(["x", "y"]);
        assert_eq!(q.text(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(q.arg_count(), 3);
    }
}
