//! Helpers for tests that run the real `tofulab` binary: a database of its own that
//! outlives server restarts (a SQLite file in a temporary directory, or a fresh Postgres
//! database on the server of `TOFULAB_TEST_DATABASE_URL`, dropped at the end), the
//! server process itself, a seed file with known keys, and integrity checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

pub const BIN: &str = env!("CARGO_BIN_EXE_tofulab");

/// The keys and procedure of `seed_file`.
pub const USER_KEY: &str = "tp_user_durability000000000000000000";
pub const STATION_KEY: &str = "tp_station_durability0000000000000000";
pub const PROCEDURE_ID: &str = "11111111-1111-4111-8111-111111111111";

/// True when `TOFULAB_LONG_TESTS=1`: tests then run more rounds, clients and requests.
pub fn long_tests() -> bool {
    std::env::var("TOFULAB_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// `short` in CI, `long` with `TOFULAB_LONG_TESTS=1`.
pub fn budget(short: usize, long: usize) -> usize {
    if long_tests() {
        long
    } else {
        short
    }
}

/// A database that survives server restarts, removed when dropped.
pub struct ProcessDb {
    pub url: String,
    /// Postgres: (server URL for administration, database name).
    pg: Option<(String, String)>,
    /// SQLite: the file; also holds the seed file.
    pub dir: tempfile::TempDir,
}

impl ProcessDb {
    pub async fn new() -> ProcessDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match std::env::var("TOFULAB_TEST_DATABASE_URL") {
            Ok(base) if base.starts_with("postgres") => {
                let name = format!("tl_dur_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("connect to TOFULAB_TEST_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                ProcessDb {
                    url: with_database(&base, &name),
                    pg: Some((base, name)),
                    dir,
                }
            }
            _ => ProcessDb {
                url: format!("sqlite://{}", dir.path().join("tofulab.db").display()),
                pg: None,
                dir,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Checks the database as the last server left it (call with no server running):
    /// SQLite `PRAGMA integrity_check` is `ok` and `PRAGMA foreign_key_check` finds
    /// nothing; on Postgres no row points at a missing row through any foreign key.
    pub async fn assert_integrity(&self) {
        if self.is_postgres() {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let fks: Vec<(String, String, String, String)> = sqlx::query_as(
                "SELECT c.conrelid::regclass::text, a.attname::text,
                        c.confrelid::regclass::text, af.attname::text
                 FROM pg_constraint c
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                 JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
                 WHERE c.contype = 'f' AND array_length(c.conkey, 1) = 1",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            // Measurements → phases → runs → units is the chain a crash could break.
            for table in ["measurements", "phases", "runs", "units"] {
                assert!(
                    fks.iter().any(|(t, ..)| t == table),
                    "no foreign keys found on {table}: {fks:?}"
                );
            }
            for (table, column, parent, key) in &fks {
                let (orphans,): (i64,) = sqlx::query_as(&format!(
                    "SELECT COUNT(*) FROM {table} x WHERE x.{column} IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = x.{column})"
                ))
                .fetch_one(&mut c)
                .await
                .unwrap();
                assert_eq!(orphans, 0, "{table}.{column} → {parent}.{key}: orphan rows");
            }
            c.close().await.ok();
        } else {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(self.dir.path().join("tofulab.db"))
                .foreign_keys(true);
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
                .fetch_all(&mut c)
                .await
                .unwrap();
            assert_eq!(rows, vec![("ok".to_string(),)], "PRAGMA integrity_check");
            let bad = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut c)
                .await
                .unwrap();
            assert!(
                bad.is_empty(),
                "PRAGMA foreign_key_check: {} rows",
                bad.len()
            );
            c.close().await.ok();
        }
    }

    /// `SELECT COUNT(*) …` on the database (no server needed).
    pub async fn count(&self, sql: &str) -> i64 {
        if self.is_postgres() {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
            c.close().await.ok();
            n
        } else {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(self.dir.path().join("tofulab.db"));
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
            c.close().await.ok();
            n
        }
    }

    /// Writes `seed_file()` next to the database and returns its path.
    pub fn seed(&self) -> PathBuf {
        let path = self.dir.path().join("seed.json");
        std::fs::write(&path, serde_json::to_string_pretty(&seed_file()).unwrap()).unwrap();
        path
    }
}

impl Drop for ProcessDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg.take() else {
            return;
        };
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// `base` (a Postgres URL) naming database `name` instead, query string kept.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = head[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(head.len());
    let mut url = format!("{}/{name}", &head[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// One organization with a user key, a station key and one procedure the station is
/// linked to.
pub fn seed_file() -> Value {
    json!({"organizations": [
        {"name": "Lab",
         "users": [{"email": "a@lab.test", "name": "A", "api_key": USER_KEY}],
         "procedures": [{"id": PROCEDURE_ID, "name": "Functional"}],
         "stations": [{"id": "22222222-2222-4222-8222-222222222222", "name": "Bench 1",
                       "api_key": STATION_KEY, "procedures": [PROCEDURE_ID]}]}
    ]})
}

/// Lines a child process wrote, collected by a reader thread.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    pub fn collect(stream: impl std::io::Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let out = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                out.0.lock().unwrap().push(line);
            }
        });
        lines
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// A running `tofulab serve`; killed if the test ends early.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Server {
    /// Starts `tofulab serve ARGS --listen 127.0.0.1:0 --log-format json` and waits for it
    /// to announce its address.
    pub fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    /// `start` with more environment variables (an object store's `AWS_*` settings).
    pub fn start_env(args: &[&str], env: &[(String, String)]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env_remove("TOFULAB_DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tofulab");
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = stderr.text();
            if let Some(i) = log.find("listening on ") {
                let rest = &log[i + "listening on ".len()..];
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return Server {
                    child,
                    url: format!("http://{addr}"),
                    stdout,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tofulab exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "no address announced: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts serving `db` with its seed file and no rate limit.
    pub fn start_on(db: &ProcessDb) -> Server {
        Server::start_on_with(db, &[])
    }

    /// `start_on` with more options.
    pub fn start_on_with(db: &ProcessDb, extra: &[&str]) -> Server {
        let seed = db.seed();
        let mut args = vec![
            "--database-url",
            &db.url,
            "--seed",
            seed.to_str().unwrap(),
            "--rate-limit",
            "off",
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Waits until stdout contains `needle` (the reader thread may lag behind stderr).
    pub fn wait_stdout(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.stdout.text();
            if out.contains(needle) {
                return out;
            }
            assert!(Instant::now() < deadline, "stdout lacks {needle:?}: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`TERM`, `INT`, …) with `kill`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the process to exit and returns its exit code (-1 when killed by a
    /// signal).
    pub fn wait_exit(mut self, what: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "did not exit after {what}: {}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits for the exit code.
    pub fn stop_with(self, signal: &str) -> i32 {
        self.signal(signal);
        self.wait_exit(signal)
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the killed server");
    }

    pub fn client(&self, key: &str) -> tofupilot::TofuPilot {
        tofupilot::TofuPilot::with_config(
            tofupilot::config::ClientConfig::new(key)
                .base_url(format!("{}/api", self.url))
                .max_retries(0),
        )
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `2026-03-01T10:00:00Z` plus `secs` seconds, RFC 3339 with microseconds.
pub fn at(secs: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap();
    (base + chrono::Duration::seconds(secs))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A run body with `phases` phases of `measurements` measurements each, every value
/// derived from `n` so that no two runs look alike.
pub fn run_body(
    serial: &str,
    part: &str,
    batch: Option<&str>,
    n: u64,
    phases: usize,
    measurements: usize,
) -> Value {
    let start = (n % 100_000) as i64 * 10;
    let phases: Vec<Value> = (0..phases)
        .map(|p| {
            let ms: Vec<Value> = (0..measurements)
                .map(|m| {
                    let value = match m % 4 {
                        0 => json!(n as f64 + p as f64 / 10.0 + m as f64 / 1000.0 + 0.25),
                        1 => json!(format!("v-{n}-{p}-{m}")),
                        2 => json!(n.is_multiple_of(2)),
                        _ => json!(n * 1000 + (p * 100 + m) as u64),
                    };
                    json!({
                        "name": format!("m{m}"),
                        "outcome": if (n + m as u64).is_multiple_of(5) { "FAIL" } else { "PASS" },
                        "measured_value": value,
                        "units": format!("u{}", m % 3),
                    })
                })
                .collect();
            json!({
                "name": format!("phase-{p:02}"),
                "outcome": if (n + p as u64).is_multiple_of(7) { "FAIL" } else { "PASS" },
                "started_at": at(start + p as i64),
                "ended_at": at(start + p as i64 + 1),
                "measurements": ms,
            })
        })
        .collect();
    let mut body = json!({
        "serial_number": serial,
        "procedure_id": PROCEDURE_ID,
        "part_number": part,
        "started_at": at(start),
        "ended_at": at(start + 300),
        "outcome": if n.is_multiple_of(3) { "FAIL" } else { "PASS" },
        "docstring": format!("run {n}"),
        "phases": phases,
    });
    if let Some(b) = batch {
        body["batch_number"] = json!(b);
    }
    body
}

fn same_instant(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    parse(a).is_some() && parse(a) == parse(b)
}

/// Asserts that `got` (a `GET /api/v2/runs/{id}` body) holds everything `sent` (a body
/// made by `run_body`): the run's fields, and every phase and measurement, in order.
#[track_caller]
pub fn assert_run_matches(id: &str, sent: &Value, got: &Value) {
    let ctx = || format!("run {id}\nsent {sent}\ngot {got}");
    assert_eq!(got["id"], json!(id), "{}", ctx());
    assert_eq!(
        got["unit"]["serial_number"].as_str().map(str::to_lowercase),
        sent["serial_number"].as_str().map(str::to_lowercase),
        "{}",
        ctx()
    );
    assert_eq!(got["outcome"], sent["outcome"], "{}", ctx());
    assert_eq!(got["docstring"], sent["docstring"], "{}", ctx());
    for k in ["started_at", "ended_at"] {
        assert!(same_instant(&got[k], &sent[k]), "{k}: {}", ctx());
    }
    let sent_phases = sent["phases"].as_array().unwrap();
    let got_phases = got["phases"].as_array().expect("phases array");
    assert_eq!(got_phases.len(), sent_phases.len(), "phases: {}", ctx());
    for (s, g) in sent_phases.iter().zip(got_phases) {
        assert_eq!(g["name"], s["name"], "{}", ctx());
        assert_eq!(g["outcome"], s["outcome"], "{}", ctx());
        for k in ["started_at", "ended_at"] {
            assert!(same_instant(&g[k], &s[k]), "phase {k}: {}", ctx());
        }
        let sm = s["measurements"].as_array().unwrap();
        let gm = g["measurements"].as_array().expect("measurements array");
        assert_eq!(gm.len(), sm.len(), "measurements: {}", ctx());
        for (s, g) in sm.iter().zip(gm) {
            for k in ["name", "outcome", "measured_value", "units"] {
                assert_eq!(g[k], s[k], "measurement {k}: {}", ctx());
            }
        }
    }
}

/// Reads every accepted run back and compares it with what was sent.
pub async fn assert_runs_present(url: &str, key: &str, accepted: &[(String, Value)]) {
    let http = reqwest::Client::new();
    for (id, sent) in accepted {
        let r = http
            .get(format!("{url}/api/v2/runs/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET run");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "run {id} answered 200 but is gone: {body}");
        assert_run_matches(id, sent, &body);
    }
}

/// A client with a generous timeout: a request to a dead server must fail, not hang.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}
