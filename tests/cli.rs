//! The `tofulab` binary: first start, seed files, key creation, startup errors, signals
//! and `--help`. Each test runs the built binary on its own database (a temporary SQLite
//! file, or a fresh schema when `TOFULAB_TEST_DATABASE_URL` names a Postgres database).

mod process_support;

use std::process::Command;
use std::time::Duration;

use process_support::{Server, BIN};
use serde_json::{json, Value};
use tofulab::db::{Db, Sql};

/// A database URL for one test, with the guard that keeps it alive.
struct TestDb {
    url: String,
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
            format!("{base}{sep}options=-c%20search_path%3D{schema}")
        }
        _ => format!("sqlite://{}", dir.path().join("tofulab.db").display()),
    };
    TestDb { url, _dir: dir }
}

/// Runs a non-serving command to completion: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("TOFULAB_DATABASE_URL")
        .output()
        .expect("run tofulab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first `tp_user_…` / `tp_station_…` token of some text.
fn find_key(text: &str, prefix: &str) -> Option<String> {
    let i = text.find(prefix)?;
    Some(
        text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
    )
}

#[tokio::test]
async fn first_start_prints_a_working_key_once() {
    let db = test_db().await;

    let srv = Server::start(&["--database-url", &db.url]);
    let out = srv.wait_stdout("TOFUPILOT_API_KEY=");
    let key = find_key(&out, "tp_user_").unwrap_or_else(|| panic!("no key in: {out}"));
    assert_eq!(key.len(), 40, "{key}");
    let api = format!("{}/api", srv.url);
    assert!(out.contains("from tofupilot.v2 import TofuPilot"), "{out}");
    assert!(
        out.contains(&format!(
            "TofuPilot(api_key=\"{key}\", server_url=\"{api}\")"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("ClientConfig::new(\"{key}\").base_url(\"{api}\")")),
        "{out}"
    );
    assert_eq!(
        out.matches(&key).count(),
        4,
        "key, Python, Rust, env: {out}"
    );

    // The printed key works with the official client.
    let me = srv.client(&key).identity().whoami().send().await.unwrap();
    assert_eq!(me.user.unwrap().email, "admin@tofulab.local");
    assert_eq!(srv.stop_with("TERM"), 0);

    // A restart prints no key; the first one still works. SIGINT also exits 0.
    let srv = Server::start(&["--database-url", &db.url]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        find_key(&srv.stdout.text(), "tp_").is_none(),
        "{}",
        srv.stdout.text()
    );
    let (status, _) = srv.get("/api/v2/users/current", &key).await;
    assert_eq!(status, 200);
    let log = srv.stderr.text();
    assert!(!log.contains(&key), "keys never reach the log");
    assert_eq!(srv.stop_with("INT"), 0);
}

/// The issue's seed shape, with several organizations.
fn seed_file(dir: &std::path::Path) -> std::path::PathBuf {
    let seed = json!({"organizations": [
        {"name": "Lab", "users": [{"email": "a@lab.test", "name": "A", "api_key": "tp_user_lab00000000000000000000000"}],
         "procedures": [{"id": "11111111-1111-4111-8111-111111111111", "name": "Functional"}],
         "stations": [{"id": "22222222-2222-4222-8222-222222222222", "name": "Bench 1",
                       "api_key": "tp_station_lab000000000000000000000",
                       "procedures": ["11111111-1111-4111-8111-111111111111"]}]},
        {"name": "Factory", "users": [{"email": "b@factory.test", "name": "B", "api_key": "tp_user_factory000000000000000000000"},
                                      {"email": "a@lab.test", "name": "A at the factory"}],
         "procedures": [{"name": "Burn-in"}, {"name": "Functional"}],
         "stations": [{"name": "Bench 1", "api_key": "tp_station_factory00000000000000000",
                       "procedures": ["Burn-in"]}]},
        {"name": "Empty"}
    ]});
    let path = dir.join("seed.json");
    std::fs::write(&path, serde_json::to_string_pretty(&seed).unwrap()).unwrap();
    path
}

async fn row_counts(url: &str) -> Vec<(String, i64)> {
    let db = Db::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in [
        "organizations",
        "users",
        "api_keys",
        "procedures",
        "stations",
        "station_procedures",
        "teams",
    ] {
        let (n,): (i64,) = db
            .read()
            .fetch_one(Sql::new("SELECT COUNT(*) FROM ").then(table))
            .await
            .unwrap();
        out.push((table.to_string(), n));
    }
    db.close().await;
    out
}

#[tokio::test]
async fn seed_is_idempotent_and_organizations_never_mix() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let seed = seed.to_str().unwrap();

    let (code, out, err) = run(&["seed", seed, "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 organization(s)"), "{out}");
    let first = row_counts(&db.url).await;
    assert_eq!(first[0], ("organizations".to_string(), 3));
    assert_eq!(first[1], ("users".to_string(), 3));
    let (code, out, err) = run(&["seed", seed, "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("0 organization(s), 0 user(s), 0 procedure(s), 0 station(s)"),
        "{out}"
    );
    assert_eq!(row_counts(&db.url).await, first);

    // `serve --seed` applies it a third time, still changing nothing, and prints no key.
    let srv = Server::start(&["--database-url", &db.url, "--seed", seed]);
    assert_eq!(row_counts(&db.url).await, first);
    assert!(find_key(&srv.stdout.text(), "tp_").is_none());

    // Each organization sees only its own data.
    let lab = "tp_user_lab00000000000000000000000";
    let factory = "tp_user_factory000000000000000000000";
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let (_, p) = srv.get("/api/v2/procedures", lab).await;
    assert_eq!(names(&p), vec!["Functional"]);
    assert_eq!(
        p["data"][0]["id"],
        json!("11111111-1111-4111-8111-111111111111")
    );
    let (_, p) = srv.get("/api/v2/procedures", factory).await;
    assert_eq!(names(&p), vec!["Burn-in", "Functional"]);
    let (_, s) = srv.get("/api/v2/stations", factory).await;
    assert_eq!(names(&s), vec!["Bench 1"]);
    assert_ne!(
        s["data"][0]["id"],
        json!("22222222-2222-4222-8222-222222222222")
    );
    assert_eq!(s["data"][0]["procedures"][0]["name"], json!("Burn-in"));
    let (status, _) = srv
        .get(
            "/api/v2/stations/22222222-2222-4222-8222-222222222222",
            factory,
        )
        .await;
    assert_eq!(status, 404);
    let (_, users) = srv.get("/api/v2/users", lab).await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    let (_, users) = srv.get("/api/v2/users", factory).await;
    assert_eq!(
        users.as_array().unwrap().len(),
        2,
        "a@lab.test is a member of both"
    );

    // Station keys work and see their links.
    let bench = srv.client("tp_station_lab000000000000000000000");
    let me = bench.stations().get_current().send().await.unwrap();
    assert_eq!(me.id, "22222222-2222-4222-8222-222222222222");
    assert_eq!(me.organization_slug, "lab");
    assert_eq!(me.procedures[0].name, "Functional");
    let me = srv
        .client("tp_station_factory00000000000000000")
        .identity()
        .whoami()
        .send()
        .await
        .unwrap();
    assert_eq!(me.organization.name, "Factory");
    assert_eq!(srv.stop_with("TERM"), 0);

    // A bad seed file is a clear error, and changes nothing.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"organizations": [{"name": "X", "users": [{"email": "nope"}]}]}"#,
    )
    .unwrap();
    let (code, _, err) = run(&["seed", bad.to_str().unwrap(), "--database-url", &db.url]);
    assert_ne!(code, 0);
    assert!(err.contains("email"), "{err}");
    assert_eq!(row_counts(&db.url).await, first);
}

#[tokio::test]
async fn keys_create_prints_working_keys() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let (code, _, err) = run(&["seed", seed.to_str().unwrap(), "--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&[
        "keys",
        "create",
        "--user",
        "B@Factory.test",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    let user_key = out.trim().to_string();
    assert!(
        user_key.starts_with("tp_user_") && !user_key.contains('\n'),
        "{out}"
    );
    assert!(err.contains("shown only this once"), "{err}");

    let station = "22222222-2222-4222-8222-222222222222";
    let (code, out, err) = run(&[
        "keys",
        "create",
        "--station",
        station,
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    let station_key = out.trim().to_string();
    assert!(station_key.starts_with("tp_station_"), "{out}");

    // A user in two organizations needs --organization.
    let (code, _, err) = run(&[
        "keys",
        "create",
        "--user",
        "a@lab.test",
        "--database-url",
        &db.url,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--organization"), "{err}");
    let (code, out, err) = run(&[
        "keys",
        "create",
        "--user",
        "a@lab.test",
        "--organization",
        "factory",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    let a_key = out.trim().to_string();
    // Unknown owners are errors.
    for args in [
        vec!["keys", "create", "--user", "nobody@x.test"],
        vec![
            "keys",
            "create",
            "--station",
            "33333333-3333-4333-8333-333333333333",
        ],
        vec!["keys", "create", "--station", "not-an-id"],
        vec!["keys", "create"],
    ] {
        let mut args = args.clone();
        args.extend(["--database-url", &db.url]);
        let (code, out, _) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(out.trim().is_empty(), "no key printed: {out}");
    }

    let srv = Server::start(&["--database-url", &db.url]);
    let me = srv
        .client(&user_key)
        .identity()
        .whoami()
        .send()
        .await
        .unwrap();
    assert_eq!(me.user.unwrap().email, "b@factory.test");
    let me = srv.client(&a_key).identity().whoami().send().await.unwrap();
    assert_eq!(me.organization.name, "Factory");
    let me = srv
        .client(&station_key)
        .stations()
        .get_current()
        .send()
        .await
        .unwrap();
    assert_eq!(me.id, station);
    // The station's newest key is the one shown (masked).
    assert_eq!(me.api_key.unwrap(), tofulab::apikey::masked(&station_key));
    assert_eq!(srv.stop_with("TERM"), 0);
}

#[tokio::test]
async fn bad_database_urls_are_clear_startup_errors() {
    for args in [
        vec![
            "serve",
            "--database-url",
            "ftp://x",
            "--listen",
            "127.0.0.1:0",
        ],
        vec![
            "--database-url",
            "mysql://root@localhost/db",
            "--listen",
            "127.0.0.1:0",
        ],
        vec!["seed", "/dev/null", "--database-url", "ftp://x"],
        vec![
            "keys",
            "create",
            "--user",
            "a@b.c",
            "--database-url",
            "ftp://x",
        ],
    ] {
        let (code, _, err) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains("unsupported database URL"), "{args:?}: {err}");
        assert!(
            err.contains("sqlite://") && err.contains("postgres://"),
            "{err}"
        );
    }
    // Other startup mistakes are refused before anything runs.
    for args in [
        vec!["serve", "--rate-limit", "fast"],
        vec!["serve", "--listen", "nowhere"],
        vec!["serve", "--max-body-size", "lots"],
        vec!["serve", "--log-format", "xml"],
    ] {
        let (code, _, err) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(!err.is_empty());
    }
}

#[tokio::test]
async fn ephemeral_serves_seeded_keys_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let srv = Server::start(&[
        "--ephemeral",
        "--seed",
        seed.to_str().unwrap(),
        "--rate-limit",
        "off",
    ]);
    let (status, body) = srv
        .get("/api/v2/whoami", "tp_user_lab00000000000000000000000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["organization"]["name"], json!("Lab"));
    let log = srv.stderr.text();
    let temp = log
        .split("sqlite://")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no database path in the log: {log}"));
    assert!(temp.exists(), "{}", temp.display());
    assert_eq!(srv.stop_with("TERM"), 0);
    assert!(!temp.exists(), "ephemeral database removed at exit");
}

#[test]
fn help_lists_every_option() {
    let (code, top, _) = run(&["--help"]);
    assert_eq!(code, 0);
    let (_, serve, _) = run(&["serve", "--help"]);
    for (option, env) in [
        ("--listen", "TOFULAB_LISTEN"),
        ("--database-url", "TOFULAB_DATABASE_URL"),
        ("--ephemeral", "TOFULAB_EPHEMERAL"),
        ("--public-url", "TOFULAB_PUBLIC_URL"),
        ("--seed", "TOFULAB_SEED"),
        ("--rate-limit", "TOFULAB_RATE_LIMIT"),
        ("--log-format", "TOFULAB_LOG_FORMAT"),
        ("--max-body-size", "TOFULAB_MAX_BODY_SIZE"),
        ("--max-upload-size", "TOFULAB_MAX_UPLOAD_SIZE"),
        ("--signed-url-ttl", "TOFULAB_SIGNED_URL_TTL"),
        ("--unlinked-upload-ttl", "TOFULAB_UNLINKED_UPLOAD_TTL"),
        ("--admin-token", "TOFULAB_ADMIN_TOKEN"),
        ("--journal-size", "TOFULAB_JOURNAL_SIZE"),
        ("--metrics", "TOFULAB_METRICS"),
        ("--request-timeout", "TOFULAB_REQUEST_TIMEOUT"),
    ] {
        for (name, text) in [("tofulab --help", &top), ("tofulab serve --help", &serve)] {
            assert!(text.contains(option), "{name} lacks {option}");
            assert!(text.contains(env), "{name} lacks {env}");
        }
    }
    for command in ["serve", "seed", "keys", "healthcheck", "export", "import"] {
        assert!(top.contains(command), "tofulab --help lacks {command}");
    }
    let (_, seed, _) = run(&["seed", "--help"]);
    assert!(
        seed.contains("--database-url") && seed.contains("<FILE>"),
        "{seed}"
    );
    let (_, keys, _) = run(&["keys", "create", "--help"]);
    for option in ["--user", "--station", "--organization", "--database-url"] {
        assert!(keys.contains(option), "keys create --help lacks {option}");
    }
}

#[tokio::test]
async fn healthcheck_and_the_control_api_of_a_served_binary() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let token = "binary-admin-token-0123456789";
    let srv = Server::start(&[
        "--ephemeral",
        "--seed",
        seed.to_str().unwrap(),
        "--admin-token",
        token,
    ]);
    let (code, _, err) = run(&["healthcheck", "--url", &srv.url]);
    assert_eq!(code, 0, "{err}");

    // POST /_tofulab/reset returns to the seed given on the command line.
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/_tofulab/organizations", srv.url))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let throwaway = created["users"][0]["api_key"].as_str().unwrap().to_string();
    let (status, _) = srv.get("/api/v2/whoami", &throwaway).await;
    assert_eq!(status, 200);
    let reset = http
        .post(format!("{}/_tofulab/reset", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let (status, _) = srv.get("/api/v2/whoami", &throwaway).await;
    assert_eq!(status, 401);
    let (status, _) = srv
        .get("/api/v2/whoami", "tp_user_lab00000000000000000000000")
        .await;
    assert_eq!(status, 200);
    let log = srv.stderr.text();
    assert!(!log.contains(token), "the admin token is never logged");
    assert!(!log.contains(&throwaway), "keys are never logged");

    let url = srv.url.clone();
    assert_eq!(srv.stop_with("TERM"), 0);
    let (code, _, err) = run(&["healthcheck", "--url", &url, "--timeout", "2"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot connect"), "{err}");
    let (code, _, err) = run(&["serve", "--admin-token", "short"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 16"), "{err}");
}

#[tokio::test]
async fn export_and_import_move_an_organization_between_databases_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let from = test_db().await;
    let (code, _, err) = run(&["seed", seed.to_str().unwrap(), "--database-url", &from.url]);
    assert_eq!(code, 0, "{err}");
    let srv = Server::start(&["--database-url", &from.url, "--rate-limit", "off"]);
    let key = "tp_station_lab000000000000000000000";
    let (_, me) = srv.get("/api/v2/whoami", key).await;
    let org = me["organization"]["id"].as_str().unwrap().to_string();
    let created = reqwest::Client::new()
        .post(format!("{}/api/v2/runs", srv.url))
        .bearer_auth(key)
        .json(&json!({"serial_number": "SN-X", "part_number": "P", "outcome": "PASS",
                      "procedure_id": "11111111-1111-4111-8111-111111111111",
                      "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z",
                      "phases": [{"name": "p", "outcome": "PASS", "started_at": "2026-01-01T00:00:00Z",
                                  "ended_at": "2026-01-01T00:00:01Z",
                                  "measurements": [{"name": "v", "outcome": "PASS", "measured_value": 0.1}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(srv.stop_with("TERM"), 0);

    // Out of the first database (SQLite or Postgres), into a fresh SQLite file, and out again.
    let first = dir.path().join("first.jsonl");
    let (code, _, err) = run(&[
        "export",
        "--organization",
        &org,
        first.to_str().unwrap(),
        "--database-url",
        &from.url,
    ]);
    assert_eq!(code, 0, "{err}");
    let to = format!("sqlite://{}", dir.path().join("to.db").display());
    let (code, _, err) = run(&["import", first.to_str().unwrap(), "--database-url", &to]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("imported organization Lab"), "{err}");
    let second = dir.path().join("second.jsonl");
    let (code, _, err) = run(&[
        "export",
        "--organization",
        &org,
        second.to_str().unwrap(),
        "--database-url",
        &to,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
        "the same bytes out of both databases"
    );

    // A cut file is refused and leaves the target as it was.
    let text = std::fs::read_to_string(&first).unwrap();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let (code, _, err) = run(&["import", cut.to_str().unwrap(), "--database-url", &to]);
    assert_eq!(code, 1);
    assert!(err.contains("line"), "{err}");
    let (code, out, err) = run(&["export", "--organization", &org, "-", "--database-url", &to]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.as_bytes(), text.as_bytes(), "to stdout, the same bytes");
}

/// The JSON of every read a client would make of the organization of `key`, with the
/// signed download URLs (host, port and expiry differ between servers) replaced by the
/// bytes they serve.
async fn reads(srv: &Server, key: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", srv.url);
        async move {
            let r = http.get(url).bearer_auth(key).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let mut out = Vec::new();
    let runs = get("/api/v2/runs?limit=100&include_metadata=true".into()).await;
    for run in runs["data"].as_array().unwrap() {
        let mut full = get(format!("/api/v2/runs/{}", run["id"].as_str().unwrap())).await;
        for a in full["attachments"].as_array_mut().unwrap() {
            let url = a["download_url"].as_str().unwrap().to_string();
            let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
            a["download_url"] = json!(bytes.iter().map(|b| *b as u64).sum::<u64>());
            a["size_checked"] = json!(bytes.len());
        }
        out.push(full);
    }
    out.push(runs);
    out.push(get("/api/v2/units?limit=100&include_metadata=true".into()).await);
    out.push(get("/api/v2/units/SN-P".into()).await);
    out.push(get("/api/v2/procedures".into()).await);
    out.push(get("/api/v2/parts".into()).await);
    out.push(get("/api/v2/batches".into()).await);
    out.push(get("/api/v2/measurements?limit=100".into()).await);
    out
}

#[tokio::test]
async fn migrate_data_copies_every_organization_and_reads_stay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let from = format!("sqlite://{}", dir.path().join("from.db").display());
    let (code, _, err) = run(&["seed", seed.to_str().unwrap(), "--database-url", &from]);
    assert_eq!(code, 0, "{err}");
    let key = "tp_user_lab00000000000000000000000";
    let station = "tp_station_lab000000000000000000000";
    let srv = Server::start(&["--database-url", &from, "--rate-limit", "off"]);
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", srv.url))
            .bearer_auth(station)
            .json(&body)
            .send()
    };
    let t = |s: u32| format!("2026-01-01T00:00:{s:02}.250Z");
    for (serial, outcome) in [("SN-C", "PASS"), ("SN-P", "FAIL")] {
        let r = post(
            "/api/v2/runs",
            json!({"serial_number": serial, "part_number": "PCB", "revision_number": "B",
                   "batch_number": "LOT-9", "outcome": outcome, "procedure_version": "2.0",
                   "procedure_id": "11111111-1111-4111-8111-111111111111",
                   "started_at": t(0), "ended_at": t(9), "metadata": {"k": 1.5, "s": "x"},
                   "sub_units": if serial == "SN-P" { json!(["SN-C"]) } else { json!([]) },
                   "phases": [{"name": "p", "outcome": outcome, "started_at": t(0), "ended_at": t(5),
                               "measurements": [
                                   {"name": "v", "outcome": "PASS", "measured_value": 3.3, "units": "V",
                                    "validators": [{"operator": ">=", "expected_value": 3.0, "outcome": "PASS"}]},
                                   {"name": "curve", "outcome": "PASS",
                                    "x_axis": {"data": [1, 2]}, "y_axis": [{"data": [3, 4]}]},
                                   {"name": "flag", "outcome": "FAIL", "measured_value": false}]}],
                   "logs": [{"level": "WARNING", "timestamp": t(1), "message": "ü",
                             "source_file": "a.py", "line_number": 7}]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http
        .put(format!("{}/api/v2/units/SN-P/children", srv.url))
        .bearer_auth(key)
        .json(&json!({"child_serial_number": "SN-C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let runs: Value = http
        .get(format!("{}/api/v2/runs", srv.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = runs["data"][0]["id"].as_str().unwrap().to_string();
    let upload: Value = post("/api/v2/attachments", json!({"name": "trace.bin"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes: Vec<u8> = (0..2_200_000u32).map(|i| (i % 253) as u8).collect();
    let put = http
        .put(upload["upload_url"].as_str().unwrap())
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let link = http
        .patch(format!("{}/api/v2/runs/{run_id}", srv.url))
        .bearer_auth(station)
        .json(&json!({"attachments": [upload["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), 200);
    let before = reads(&srv, key).await;
    assert_eq!(srv.stop_with("TERM"), 0);

    // Into Postgres when the tests run on it, else into another SQLite file.
    let to = test_db().await;
    let (code, _, err) = run(&["migrate-data", "--from", &from, "--to", &to.url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.matches("verified").count(),
        3,
        "three organizations: {err}"
    );
    let srv = Server::start(&["--database-url", &to.url, "--rate-limit", "off"]);
    let after = reads(&srv, key).await;
    assert_eq!(before, after, "the same reads from the copy");
    let (status, me) = srv
        .get("/api/v2/whoami", "tp_user_factory000000000000000000000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["organization"]["name"], json!("Factory"));
    assert_eq!(srv.stop_with("TERM"), 0);

    let (code, _, err) = run(&["migrate-data", "--from", &from, "--to", &to.url]);
    assert_eq!(code, 1);
    assert!(err.contains("already holds"), "{err}");
    let (code, _, err) = run(&["migrate-data", "--from", &from, "--to", &to.url, "--force"]);
    assert_eq!(code, 0, "{err}");
    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let (code, _, err) = run(&["migrate-data", "--from", &missing, "--to", &to.url]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn a_backup_taken_during_ingest_restores_every_acknowledged_run() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path());
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    let srv = Server::start(&[
        "--database-url",
        &db,
        "--seed",
        seed.to_str().unwrap(),
        "--rate-limit",
        "off",
    ]);
    let key = "tp_station_lab000000000000000000000";
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (url, acked, stop) = (srv.url.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post(format!("{url}/api/v2/runs"))
                    .bearer_auth(key)
                    .json(
                        &json!({"serial_number": format!("W{w}-{n}"), "part_number": "P",
                                  "procedure_id": "11111111-1111-4111-8111-111111111111",
                                  "outcome": "PASS", "started_at": "2026-01-01T00:00:00Z",
                                  "ended_at": "2026-01-01T00:00:01Z",
                                  "phases": [{"name": "p", "outcome": "PASS",
                                              "started_at": "2026-01-01T00:00:00Z",
                                              "ended_at": "2026-01-01T00:00:01Z",
                                              "measurements": [{"name": "m", "outcome": "PASS",
                                                                "measured_value": n}]}]}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                acked.lock().unwrap().push(id);
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before: Vec<String> = acked.lock().unwrap().clone();
    assert!(!before.is_empty());
    let backup = dir.path().join("backup.db");
    let (code, _, err) = {
        let (backup, db) = (backup.clone(), db.clone());
        tokio::task::spawn_blocking(move || {
            run(&["backup", backup.to_str().unwrap(), "--database-url", &db])
        })
        .await
        .unwrap()
    };
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        acked.lock().unwrap().len() > before.len(),
        "ingest went on during the backup"
    );
    assert_eq!(srv.stop_with("TERM"), 0);

    // The copy is a sound SQLite file.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", backup.display()))
        .await
        .unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    pool.close().await;
    // Restored (served from the copy), it has every run acknowledged before it began.
    let restored = Server::start(&[
        "--database-url",
        &format!("sqlite://{}", backup.display()),
        "--rate-limit",
        "off",
    ]);
    for id in &before {
        let (status, run) = restored.get(&format!("/api/v2/runs/{id}"), key).await;
        assert_eq!(status, 200, "{id}");
        assert_eq!(
            run["phases"][0]["measurements"].as_array().unwrap().len(),
            1
        );
    }
    assert_eq!(restored.stop_with("TERM"), 0);

    let (code, _, err) = run(&["backup", backup.to_str().unwrap(), "--database-url", &db]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    if let Ok(pg) = std::env::var("TOFULAB_TEST_DATABASE_URL") {
        if pg.starts_with("postgres") {
            let other = dir.path().join("pg.db");
            let (code, _, err) = run(&["backup", other.to_str().unwrap(), "--database-url", &pg]);
            assert_eq!(code, 1);
            assert!(err.contains("pg_dump"), "{err}");
        }
    }
}
