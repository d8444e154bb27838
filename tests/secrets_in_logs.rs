//! Secrets never reach the logs (issue 6): the real binary runs with `RUST_LOG=trace`
//! (JSON logs for `serve`, the default format for `seed` and `keys create`) while it is
//! seeded with keys, creates a key, and serves requests with valid keys, near misses of
//! them, keys in the wrong places, and signed upload/download URLs with good and
//! tampered signatures. No API key (whole, or any 12 characters of its secret part), no
//! URL signature and no signing secret (read from the `settings` table afterwards) may
//! appear in anything it logged.
//!
//! By design two commands print a key on stdout, once, as their result rather than as a
//! log line: the first start of an empty database (the generated admin key, in the
//! welcome banner) and `keys create`. Those stdout texts are checked to be exactly that,
//! and the logs of the same runs still never contain the key.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tofulab::db::{Db, Sql};

const BIN: &str = env!("CARGO_BIN_EXE_tofulab");
const LOG_LEVEL: &str = "trace";

/// A database URL for one run of the binary (SQLite file or a fresh Postgres schema).
/// Postgres URLs get a password when they have none (the test server trusts local
/// connections and ignores it): a database password is a secret too.
struct TestDb {
    url: String,
    password: Option<String>,
    _dir: tempfile::TempDir,
}

async fn test_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("TOFULAB_TEST_DATABASE_URL") {
        Ok(base) if base.starts_with("postgres") => {
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let mut url =
                reqwest::Url::parse(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
                    .unwrap();
            let password = match url.password() {
                Some(p) => p.to_string(),
                None => {
                    let p = format!("pw{}", uuid::Uuid::new_v4().simple());
                    url.set_password(Some(&p)).unwrap();
                    p
                }
            };
            return TestDb {
                url: url.to_string(),
                password: Some(password),
                _dir: dir,
            };
        }
        _ => format!("sqlite://{}", dir.path().join("tofulab.db").display()),
    };
    TestDb {
        url,
        password: None,
        _dir: dir,
    }
}

/// Lines a child process wrote, collected by a reader thread.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(
        stream: impl std::io::Read + Send + 'static,
    ) -> (Lines, std::thread::JoinHandle<()>) {
        let lines = Lines::default();
        let out = lines.clone();
        let t = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                out.0.lock().unwrap().push(line);
            }
        });
        (lines, t)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// `tofulab serve ARGS` with JSON logs at `LOG_LEVEL`.
struct Server {
    child: Child,
    url: String,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env_remove("TOFULAB_DATABASE_URL")
            .env("RUST_LOG", LOG_LEVEL)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tofulab");
        let (stdout, t1) = Lines::collect(child.stdout.take().unwrap());
        let (stderr, t2) = Lines::collect(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = stderr.text();
            if let Some(i) = log.find("listening on ") {
                let addr: String = log[i + "listening on ".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return Server {
                    child,
                    url: format!("http://{addr}"),
                    stdout,
                    stderr,
                    readers: vec![t1, t2],
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tofulab exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "no address announced: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait for the exit and for the output to be read: (stdout, logs).
    fn stop(mut self) -> (String, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not exit on TERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        for t in self.readers.drain(..) {
            t.join().unwrap();
        }
        (self.stdout.text(), self.stderr.text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion with `RUST_LOG` set: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("TOFULAB_DATABASE_URL")
        .env("RUST_LOG", LOG_LEVEL)
        .output()
        .expect("run tofulab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What must never be logged: each secret whole and every 12-character window of it.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    /// A secret value; `label` says what it is in failure messages.
    fn add(&mut self, label: &str, secret: &str) {
        let chars: Vec<char> = secret.chars().collect();
        self.0.push((label.to_string(), secret.to_string()));
        for w in chars.windows(12) {
            self.0.push((format!("{label} (part)"), w.iter().collect()));
        }
    }

    /// An API key: whole, and its secret part after the `tp_user_`/`tp_station_` prefix.
    fn key(&mut self, key: &str) {
        self.0.push(("API key".into(), key.to_string()));
        let secret = &key[key.rfind('_').map_or(0, |i| i + 1)..];
        self.add("API key secret", secret);
    }

    #[track_caller]
    fn assert_absent(&self, what: &str, text: &str) {
        for (label, s) in &self.0 {
            assert!(
                !text.contains(s.as_str()),
                "{label} `{s}` found in {what}:\n{}",
                text.lines()
                    .filter(|l| l.contains(s.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

fn random_key(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The `expires`/`signature` query of a signed URL, and the URL with its signature
/// tampered (last hex digit flipped).
fn signature_of(url: &str) -> String {
    url.split("signature=").nth(1).unwrap().to_string()
}

fn tampered(url: &str) -> String {
    let sig = signature_of(url);
    let (head, last) = sig.split_at(sig.len() - 1);
    let bad = format!("{head}{}", if last == "0" { "1" } else { "0" });
    url.replace(&sig, &bad)
}

async fn signing_secret(url: &str) -> String {
    let db = Db::connect(url).await.unwrap();
    let (value,): (String,) = db
        .read()
        .fetch_one(Sql::new(
            "SELECT value FROM settings WHERE key = 'url_signing_key'",
        ))
        .await
        .unwrap();
    db.close().await;
    value
}

/// Sends `method path` with the given `Authorization` values; returns the status.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    auth: &[String],
    body: Option<Value>,
) -> (u16, Value) {
    let mut b = http.request(method, format!("{base}{path}"));
    for a in auth {
        b = b.header(reqwest::header::AUTHORIZATION, a);
    }
    if let Some(body) = body {
        b = b.json(&body);
    }
    let r = b.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn keys_signatures_and_the_signing_secret_never_reach_the_logs() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let user_key = random_key("tp_user_");
    let station_key = random_key("tp_station_");
    let procedure = "11111111-1111-4111-8111-111111111111";
    let station = "22222222-2222-4222-8222-222222222222";
    let seed = json!({"organizations": [{
        "name": "Logs", "users": [{"email": "admin@logs.test", "api_key": user_key}],
        "procedures": [{"id": procedure, "name": "Functional"}],
        "stations": [{"id": station, "name": "Bench", "api_key": station_key,
                      "procedures": [procedure]}],
    }]});
    let seed_path = dir.path().join("seed.json");
    std::fs::write(&seed_path, seed.to_string()).unwrap();
    let seed_path = seed_path.to_str().unwrap();

    let mut secrets = Secrets::default();
    secrets.key(&user_key);
    secrets.key(&station_key);
    if let Some(pw) = &db.password {
        secrets.add("database password", pw);
    }

    // `seed` and `keys create` (default log format).
    let (code, out, seed_log) = run(&["seed", seed_path, "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}{seed_log}");
    secrets.assert_absent("the output of `seed`", &format!("{out}\n{seed_log}"));
    let (code, out, keys_log) = run(&[
        "keys",
        "create",
        "--user",
        "admin@logs.test",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{out}{keys_log}");
    // By design the new key is the whole of stdout, once; the log (stderr) lacks it.
    let created = out.trim().to_string();
    assert!(
        created.starts_with("tp_user_") && created.len() >= 40,
        "{out}"
    );
    assert_eq!(out.matches(&created).count(), 1);
    secrets.key(&created);
    secrets.assert_absent("the log of `keys create`", &keys_log);
    let mut others = Secrets::default();
    others.key(&user_key);
    others.key(&station_key);
    others.assert_absent("the stdout of `keys create`", &out);
    let (code, out, keys_log) = run(&[
        "keys",
        "create",
        "--station",
        station,
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{out}{keys_log}");
    let created_station = out.trim().to_string();
    assert!(created_station.starts_with("tp_station_"), "{out}");
    secrets.key(&created_station);
    secrets.assert_absent("the log of `keys create --station`", &keys_log);

    // `serve --seed` with JSON logs at trace level, under traffic.
    let srv = Server::start(&["--database-url", &db.url, "--seed", seed_path]);
    let http = reqwest::Client::new();
    let base = srv.url.clone();
    let bearer = |k: &str| vec![format!("Bearer {k}")];
    use reqwest::Method as M;

    for key in [&user_key, &station_key, &created, &created_station] {
        let (s, _) = call(&http, &base, M::GET, "/api/v2/whoami", &bearer(key), None).await;
        assert_eq!(s, 200);
    }
    let run = |started: &str, ended: &str| {
        json!({"serial_number": "SN-LOG", "procedure_id": procedure, "part_number": "P",
               "started_at": started, "ended_at": ended, "outcome": "PASS"})
    };
    let (s, _) = call(
        &http,
        &base,
        M::POST,
        "/api/v2/runs",
        &bearer(&station_key),
        Some(run("2026-03-01T10:00:00Z", "2026-03-01T10:05:00Z")),
    )
    .await;
    assert_eq!(s, 200);
    // The deliberate 500 of the timing rule is logged as an error.
    let (s, _) = call(
        &http,
        &base,
        M::POST,
        "/api/v2/runs",
        &bearer(&user_key),
        Some(run("2026-03-01T10:05:00Z", "2026-03-01T10:00:00Z")),
    )
    .await;
    assert_eq!(s, 500);

    // Near misses, keys in the wrong place, unauthenticated 401s.
    for key in [&user_key, &station_key] {
        let cut = key.rfind('_').unwrap() + 1;
        for auth in [
            bearer(&key[..key.len() - 1]),
            bearer(&format!("{key}x")),
            bearer(&format!("{}{}", &key[..cut], key[cut..].to_uppercase())),
            bearer(&random_key(&key[..cut])),
            vec![key.to_string()],
            vec![format!("Basic {key}")],
            vec![format!("Bearer {key}"), format!("Bearer {key}x")],
        ] {
            let (s, _) = call(&http, &base, M::GET, "/api/v2/runs", &auth, None).await;
            assert_eq!(s, 401, "{auth:?}");
        }
        let (s, _) = call(
            &http,
            &base,
            M::GET,
            &format!("/api/v2/whoami?api_key={key}&token={key}"),
            &[],
            None,
        )
        .await;
        assert_eq!(s, 401);
        // A key as a value in a body that fails validation, and in a body that is not
        // JSON at all.
        let (s, _) = call(
            &http,
            &base,
            M::POST,
            "/api/v2/procedures",
            &bearer(&user_key),
            Some(json!({"name": 7, "note": key})),
        )
        .await;
        assert_eq!(s, 400);
        let r = http
            .post(format!("{base}/api/v2/procedures"))
            .bearer_auth(&user_key)
            .header("content-type", "application/json")
            .body(format!("{{\"name\": \"{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // The legacy API's 401s.
        let (s, _) = call(
            &http,
            &base,
            M::POST,
            "/api/v1/runs",
            &bearer(&format!("{key}x")),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, 401);
    }

    // Signed URLs: upload and download with good and tampered signatures.
    let (s, init) = call(
        &http,
        &base,
        M::POST,
        "/api/v2/attachments",
        &bearer(&user_key),
        Some(json!({"name": "log.txt"})),
    )
    .await;
    assert_eq!(s, 200);
    let upload_url = init["upload_url"].as_str().unwrap().to_string();
    let id = init["id"].as_str().unwrap().to_string();
    let r = http
        .put(tampered(&upload_url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http.put(&upload_url).body("bytes").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, fin) = call(
        &http,
        &base,
        M::POST,
        &format!("/api/v2/attachments/{id}/finalize"),
        &bearer(&station_key),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let download_url = fin["url"].as_str().unwrap().to_string();
    let r = http.get(&download_url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(tampered(&download_url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .get(download_url.replace("expires=", "expires=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // The legacy upload flow too.
    let (s, v1) = call(
        &http,
        &base,
        M::POST,
        "/api/v1/uploads/initialize",
        &bearer(&station_key),
        Some(json!({"name": "legacy.txt"})),
    )
    .await;
    assert_eq!(s, 200);
    let legacy_url = v1["uploadUrl"].as_str().unwrap().to_string();
    let r = http.put(&legacy_url).body("legacy").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for url in [&upload_url, &download_url, &legacy_url] {
        secrets.add("URL signature", &signature_of(url));
        secrets.add("tampered URL signature", &signature_of(&tampered(url)));
    }

    let (stdout, log) = srv.stop();
    secrets.add("URL signing secret", &signing_secret(&db.url).await);

    // The capture is real: trace-level JSON lines that name the requests (method and
    // path, never the query).
    assert!(log.contains("\"level\":\"TRACE\""), "{log}");
    assert!(log.contains("\"level\":\"DEBUG\""), "{log}");
    assert!(log.contains(&format!("/files/{id}")), "{log}");
    assert!(log.contains("request failed"), "the 500 is logged: {log}");
    for line in log.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    if db.password.is_some() {
        assert!(
            log.contains(":***@"),
            "the database URL is logged redacted: {log}"
        );
    }
    secrets.assert_absent("the logs of `serve`", &log);
    // A seeded start prints no key at all.
    secrets.assert_absent("the stdout of `serve --seed`", &stdout);
}

#[tokio::test]
async fn the_first_start_key_is_printed_once_on_stdout_and_never_logged() {
    let db = test_db().await;
    let srv = Server::start(&["--database-url", &db.url]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let key = loop {
        let out = srv.stdout.text();
        if let Some(i) = out.find("tp_user_") {
            break out[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>();
        }
        assert!(Instant::now() < deadline, "no key printed: {out}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = reqwest::Client::new()
        .get(format!("{}/api/v2/whoami", srv.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (stdout, log) = srv.stop();
    // The banner is stdout and not a log line: no line of it is JSON.
    assert!(stdout.contains(&key));
    assert!(stdout
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_err() || !l.contains(&key)));
    let mut secrets = Secrets::default();
    secrets.key(&key);
    if let Some(pw) = &db.password {
        secrets.add("database password", pw);
    }
    secrets.add("URL signing secret", &signing_secret(&db.url).await);
    secrets.assert_absent("the logs of the first start", &log);
}

#[test]
fn the_check_finds_keys_and_any_twelve_characters_of_them() {
    let key = random_key("tp_user_");
    let mut secrets = Secrets::default();
    secrets.key(&key);
    secrets.assert_absent("a clean text", &format!("tp_user_ {}", &key[8..19]));
    for text in [
        format!("x{key}x"),
        format!("{{\"k\":\"{}\"}}", &key[8..20]),
        format!("..{}..", &key[key.len() - 12..]),
    ] {
        let caught = std::panic::catch_unwind(|| secrets.assert_absent("a text", &text));
        assert!(caught.is_err(), "{text}");
    }
}
