//! Test harness: a real tofulab server in-process on an ephemeral port with a fresh
//! database — a temporary SQLite file, or, when `TOFULAB_TEST_DATABASE_URL` names a
//! Postgres database, a fresh schema in it — plus helpers to seed organizations and to
//! talk to the server with the official client or raw HTTP.
#![allow(dead_code)]

use std::num::NonZeroU32;
use std::str::FromStr;

use reqwest::Method;
use serde_json::Value;
use tofulab::db::seed::{SeedFile, SeedOrganization, SeedProcedure, SeedStation, SeedUser};
use tofulab::db::{Db, Id};
use tofulab::middleware::rate_limit::RateLimiter;
use tofulab::{AppState, Settings};

pub struct TestServer {
    /// Origin without `/api`, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub db: Db,
    pub state: AppState,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Declared last: dropped after the pools above are closed.
    _storage: Option<TestStorage>,
}

/// An organization seeded for a test: a user key, a station key, and a procedure the
/// station is linked to.
#[derive(Clone, Debug)]
pub struct TestOrg {
    pub name: String,
    pub user_email: String,
    pub user_key: String,
    pub station_id: String,
    pub station_key: String,
    pub procedure_id: String,
}

/// What a test's database lives in, removed when the test ends: a temporary directory
/// (SQLite) or a schema of the Postgres test database.
pub enum TestStorage {
    Dir(tempfile::TempDir),
    Schema { url: String, schema: String },
}

impl Drop for TestStorage {
    fn drop(&mut self) {
        let TestStorage::Schema { url, schema } = self else {
            return;
        };
        // Drop runs inside the test's runtime: use a thread with its own runtime.
        let (url, name) = (url.clone(), schema.clone());
        let dropped = std::thread::spawn(move || {
            let schema = name;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&url).await?;
                // Never hang a test run on a lock a leftover connection holds.
                sqlx::raw_sql(&format!(
                    "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                ))
                .execute(&mut admin)
                .await?;
                admin.close().await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {schema}: {e}");
        }
    }
}

/// A fresh database for one test. With `TOFULAB_TEST_BLOB_STORE=s3://BUCKET` (and the
/// `AWS_*` settings of that store), attachment bytes go to a fresh prefix of that bucket.
pub async fn fresh_db() -> (Db, Option<TestStorage>) {
    let (db, storage) = fresh_rows_db().await;
    match std::env::var("TOFULAB_TEST_BLOB_STORE") {
        Ok(base) if base.starts_with("s3://") => {
            let url = format!(
                "{}/{}",
                base.trim_end_matches('/'),
                uuid::Uuid::new_v4().simple()
            );
            let objects = tofulab::db::objects::ObjectBlobs::from_url(&url).expect("blob store");
            (db.with_objects(objects), storage)
        }
        _ => (db, storage),
    }
}

async fn fresh_rows_db() -> (Db, Option<TestStorage>) {
    match std::env::var("TOFULAB_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let admin = sqlx::PgPool::connect(&url)
                .await
                .expect("connect to TOFULAB_TEST_DATABASE_URL");
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .expect("create test schema");
            admin.close().await;
            let opts = sqlx::postgres::PgConnectOptions::from_str(&url)
                .expect("parse TOFULAB_TEST_DATABASE_URL")
                .options([("search_path", schema.as_str())]);
            let storage = TestStorage::Schema {
                url: url.clone(),
                schema: schema.clone(),
            };
            let db = Db::open_postgres_with(opts).await.expect("open Postgres");
            (db, Some(storage))
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            let db = Db::connect(&url).await.expect("open SQLite");
            (db, Some(TestStorage::Dir(dir)))
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Settings::default(), None).await
    }

    /// Starts with explicit settings and an optional per-key rate limit.
    pub async fn start_with(settings: Settings, rate_limit: Option<u32>) -> TestServer {
        let (db, dir) = fresh_db().await;
        Self::start_on(db, dir, settings, rate_limit).await
    }

    pub async fn start_on(
        db: Db,
        dir: Option<TestStorage>,
        settings: Settings,
        rate_limit: Option<u32>,
    ) -> TestServer {
        let limiter = RateLimiter::new(rate_limit.and_then(NonZeroU32::new));
        let state = AppState::new(db.clone(), settings, limiter)
            .await
            .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tofulab::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        TestServer {
            url,
            db,
            state,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
            _storage: dir,
        }
    }

    /// Stops accepting, waits for in-flight requests, returns the serve result.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await.expect("server task"),
            None => Ok(()),
        }
    }

    /// Seeds an organization named `name` (unique per test is enough: each test has
    /// its own database).
    pub async fn org(&self, name: &str) -> TestOrg {
        let slug = name.to_lowercase().replace(' ', "-");
        let user_key = format!("tp_user_{}", uuid::Uuid::new_v4().simple());
        let station_key = format!("tp_station_{}", uuid::Uuid::new_v4().simple());
        let station_id = Id::new();
        let procedure_id = Id::new();
        let user_email = format!("admin@{slug}.test");
        let seed = SeedFile {
            organizations: vec![SeedOrganization {
                name: name.to_string(),
                slug: Some(slug),
                users: vec![SeedUser {
                    email: user_email.clone(),
                    name: Some(format!("{name} Admin")),
                    api_key: Some(user_key.clone()),
                }],
                teams: vec![],
                procedures: vec![SeedProcedure {
                    id: Some(procedure_id),
                    name: format!("{name} Functional"),
                }],
                stations: vec![SeedStation {
                    id: Some(station_id),
                    name: format!("{name} Bench"),
                    api_key: Some(station_key.clone()),
                    procedures: vec![procedure_id.to_string()],
                    team: None,
                }],
            }],
        };
        self.db.apply_seed(&seed).await.expect("seed");
        TestOrg {
            name: name.to_string(),
            user_email,
            user_key,
            station_id: station_id.to_string(),
            station_key,
            procedure_id: procedure_id.to_string(),
        }
    }

    /// The official Rust client for `key`, without retries (tests want the first answer).
    pub fn client(&self, key: &str) -> tofupilot::TofuPilot {
        tofupilot::TofuPilot::with_config(
            tofupilot::config::ClientConfig::new(key)
                .base_url(format!("{}/api", self.url))
                .max_retries(0),
        )
    }

    /// Raw HTTP: `method path` (path starting with `/api/...`), optional key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// A raw request builder for cases the helpers do not cover.
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response: status, headers, and the body parsed as JSON (`Value::Null` if not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
            text,
        }
    }

    /// Asserts the status and, for errors, the v2 envelope with the matching code.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if status >= 400 {
            assert_error_envelope(self);
        }
        &self.json
    }

    /// The `code` of an error body.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or("")
    }

    /// All error text: message and issue messages, lower-cased.
    pub fn error_text(&self) -> String {
        let mut t = self.message().to_string();
        if let Some(issues) = self.json["issues"].as_array() {
            for i in issues {
                t.push(' ');
                t.push_str(i["message"].as_str().unwrap_or(""));
            }
        }
        t.to_lowercase()
    }
}

/// Every error is `{"message": str, "code": <code for the status>, "issues"?: [...]}` JSON.
#[track_caller]
pub fn assert_error_envelope(r: &Resp) {
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content type {ct:?}, body {}",
        r.text
    );
    assert!(r.json["message"].is_string(), "no message in {}", r.text);
    let expected = match r.status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_SUPPORTED",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        422 => "UNPROCESSABLE_CONTENT",
        429 => "TOO_MANY_REQUESTS",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    };
    assert_eq!(r.code(), expected, "code for {}: {}", r.status, r.text);
    if let Some(issues) = r.json.get("issues") {
        for i in issues.as_array().expect("issues is an array") {
            assert!(
                i["message"].is_string(),
                "issue without message: {}",
                r.text
            );
        }
    }
}

/// A random well-formed id nothing has.
pub fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Waits until `cond` holds (for what background work does: sweeps, queued deletes),
/// polling every 50 ms; fails the test naming `what` after a generous 60 s (not a timing
/// assertion: only "eventually").
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
