//! The control API (`/_tofulab`): throw-away organizations, resets, setup tokens, fault
//! injection and the request journal, driven over HTTP with the official Rust client
//! where a client's behaviour is what is tested.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use tofulab::control::ControlConfig;
use tofulab::db::seed::SeedFile;
use tofulab::db::Sql;
use tofulab::Settings;
use tofupilot::types::*;

const TOKEN: &str = "admin-token-for-tests-0123456789";

async fn start(seed: Option<SeedFile>) -> TestServer {
    let settings = Settings {
        control: Some(Arc::new(ControlConfig::new(TOKEN, seed, 100))),
        ..Settings::default()
    };
    TestServer::start_with(settings, None).await
}

/// A control API call with the admin token.
async fn control(srv: &TestServer, method: Method, path: &str, body: Option<Value>) -> Resp {
    srv.call(method, &format!("/_tofulab{path}"), Some(TOKEN), body)
        .await
}

/// A throw-away organization from `body`; returns the created organization.
async fn new_org(srv: &TestServer, body: Value) -> Value {
    let r = control(srv, Method::POST, "/organizations", Some(body)).await;
    r.expect(201).clone()
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string: {v}"))
        .to_string()
}

/// The official client for `key` with its default retries.
fn retrying_client(srv: &TestServer, key: &str) -> tofupilot::TofuPilot {
    tofupilot::TofuPilot::with_config(
        tofupilot::config::ClientConfig::new(key).base_url(format!("{}/api", srv.url)),
    )
}

fn run_body(procedure_id: &str, serial: &str) -> Value {
    json!({"serial_number": serial, "procedure_id": procedure_id, "part_number": "P-1",
           "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:05Z",
           "outcome": "PASS"})
}

/// Every table's row count.
async fn table_counts(srv: &TestServer) -> BTreeMap<String, i64> {
    let sqlite = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
    let postgres = "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()";
    let tables: Vec<(String,)> = match srv.db.read().fetch_all(Sql::new(sqlite)).await {
        Ok(t) => t,
        Err(_) => srv.db.read().fetch_all(Sql::new(postgres)).await.unwrap(),
    };
    let mut counts = BTreeMap::new();
    for (table,) in tables {
        let table: &'static str = Box::leak(table.into_boxed_str());
        let (n,): (i64,) = srv
            .db
            .read()
            .fetch_one(Sql::new("SELECT COUNT(*) FROM ").then(table))
            .await
            .unwrap();
        counts.insert(table.to_string(), n);
    }
    counts
}

/// Uploads `bytes` as an attachment of run `run`.
async fn attach(srv: &TestServer, key: &str, run: &str, bytes: &'static [u8]) {
    let r = srv
        .post("/api/v2/attachments", key, json!({"name": "trace.bin"}))
        .await;
    let body = r.expect(200).clone();
    let put = reqwest::Client::new()
        .put(s(&body["upload_url"]))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    srv.patch(
        &format!("/api/v2/runs/{run}"),
        key,
        json!({"attachments": [s(&body["id"])]}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn the_control_api_is_off_without_a_token_and_needs_it_when_on() {
    let off = TestServer::start().await;
    let org = off.org("Lab").await;
    let r = off
        .call(Method::GET, "/_tofulab/faults", Some(TOKEN), None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    let srv = start(None).await;
    let org_on = srv.org("Lab").await;
    for key in [
        None,
        Some("wrong-token-0123456789"),
        Some(org_on.user_key.as_str()),
    ] {
        let r = srv.call(Method::GET, "/_tofulab/faults", key, None).await;
        assert_eq!(r.status, 401, "{key:?}: {}", r.text);
        assert_error_envelope(&r);
    }
    // The admin token is no API key.
    let r = srv.get("/api/v2/users/current", TOKEN).await;
    assert_eq!(r.status, 401);
    control(&srv, Method::GET, "/faults", None)
        .await
        .expect(200);
    drop(org);
}

#[tokio::test]
async fn a_throw_away_organization_works_with_the_official_client_and_resets() {
    let srv = start(None).await;
    let org = new_org(&srv, json!({})).await;
    let user_key = s(&org["users"][0]["api_key"]);
    let station_key = s(&org["stations"][0]["api_key"]);
    let procedure_id = s(&org["procedures"][0]["id"]);
    assert_eq!(
        org["stations"][0]["procedure_ids"],
        json!([procedure_id.clone()])
    );

    // The generated keys work with the official client, the station's too.
    let me = srv.client(&user_key).users().list().send().await.unwrap();
    assert_eq!(me.len(), 1);
    let station = srv
        .client(&station_key)
        .stations()
        .get_current()
        .send()
        .await
        .unwrap();
    assert_eq!(station.id, s(&org["stations"][0]["id"]));

    // Test data, then a reset: the data goes, users, keys, procedures, stations stay.
    let run = srv
        .post(
            "/api/v2/runs",
            &station_key,
            run_body(&procedure_id, "SN-1"),
        )
        .await
        .expect(200)["id"]
        .clone();
    attach(&srv, &user_key, &s(&run), b"bytes").await;
    let id = s(&org["id"]);
    control(
        &srv,
        Method::POST,
        &format!("/organizations/{id}/reset"),
        None,
    )
    .await
    .expect(200);
    for list in ["runs", "units", "parts", "batches"] {
        let r = srv.get(&format!("/api/v2/{list}"), &user_key).await;
        assert_eq!(r.expect(200)["data"], json!([]), "{list}");
    }
    let procedures = srv.get("/api/v2/procedures", &station_key).await;
    assert_eq!(procedures.expect(200)["data"][0]["id"], json!(procedure_id));
    let stations = srv.get("/api/v2/stations", &user_key).await;
    assert_eq!(stations.expect(200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(table_counts(&srv).await["blobs"], 0);

    // A described organization keeps the given keys and names; a taken slug is a 409.
    let described = new_org(
        &srv,
        json!({"name": "Bench Lab", "slug": "bench-lab",
               "users": [{"email": "ada@lab.test", "api_key": "tp_user_given_0123456789"}],
               "procedures": [{"name": "FCT"}, {"name": "EOL"}],
               "stations": [{"name": "S1", "procedures": ["EOL"]}]}),
    )
    .await;
    assert_eq!(described["slug"], "bench-lab");
    assert_eq!(described["users"][0]["api_key"], "tp_user_given_0123456789");
    let eol = described["procedures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "EOL")
        .unwrap()["id"]
        .clone();
    assert_eq!(described["stations"][0]["procedure_ids"], json!([eol]));
    srv.get("/api/v2/users/current", "tp_user_given_0123456789")
        .await
        .expect(200);
    let again = control(
        &srv,
        Method::POST,
        "/organizations",
        Some(json!({"slug": "bench-lab"})),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let bad = control(
        &srv,
        Method::POST,
        "/organizations",
        Some(json!({"users": [{"email": "no-at-sign"}]})),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.error_text().contains("no-at-sign"), "{}", bad.text);
    let unknown = control(
        &srv,
        Method::POST,
        "/organizations",
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
}

#[tokio::test]
async fn deleting_an_organization_leaves_no_row_and_no_blob_behind() {
    let srv = start(None).await;
    // Another organization with data of its own, which must stay whole.
    let kept = new_org(&srv, json!({"name": "Kept"})).await;
    let kept_key = s(&kept["users"][0]["api_key"]);
    let kept_run = srv
        .post(
            "/api/v2/runs",
            &kept_key,
            run_body(&s(&kept["procedures"][0]["id"]), "K-1"),
        )
        .await
        .expect(200)["id"]
        .clone();
    attach(&srv, &kept_key, &s(&kept_run), b"kept bytes").await;
    let before = table_counts(&srv).await;

    let gone = new_org(&srv, json!({"name": "Gone"})).await;
    let key = s(&gone["users"][0]["api_key"]);
    let station_key = s(&gone["stations"][0]["api_key"]);
    let procedure = s(&gone["procedures"][0]["id"]);
    let mut body = run_body(&procedure, "G-1");
    body["phases"] = json!([{"name": "p", "outcome": "PASS",
        "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z",
        "measurements": [{"name": "m", "outcome": "PASS", "measured_value": 1}]}]);
    body["logs"] = json!([{"level": "INFO", "timestamp": "2026-01-01T00:00:00Z",
        "message": "m", "source_file": "f.py", "line_number": 1}]);
    body["batch_number"] = json!("B-1");
    let run = srv
        .post("/api/v2/runs", &station_key, body)
        .await
        .expect(200)["id"]
        .clone();
    attach(&srv, &key, &s(&run), b"gone bytes").await;
    // A unit cannot be its own child: the link is refused, nothing is left of it.
    srv.call(
        Method::PUT,
        "/api/v2/units/G-1/children",
        Some(&key),
        Some(json!({"child_serial_number": "G-1"})),
    )
    .await
    .expect(400);
    let token = control(
        &srv,
        Method::POST,
        &format!("/stations/{}/setup-tokens", s(&gone["stations"][0]["id"])),
        None,
    )
    .await;
    token.expect(201);
    let during = table_counts(&srv).await;
    assert!(during["blob_chunks"] > before["blob_chunks"]);
    assert!(during["measurements"] > before["measurements"]);

    let id = s(&gone["id"]);
    control(&srv, Method::DELETE, &format!("/organizations/{id}"), None)
        .await
        .expect(200);
    assert_eq!(table_counts(&srv).await, before, "every table as before");
    assert_eq!(srv.get("/api/v2/users/current", &key).await.status, 401);
    let again = control(&srv, Method::DELETE, &format!("/organizations/{id}"), None).await;
    assert_eq!(again.status, 404);
    // The other organization's bytes are still there.
    let run = srv
        .get(&format!("/api/v2/runs/{}", s(&kept_run)), &kept_key)
        .await;
    let url = s(&run.expect(200)["attachments"][0]["download_url"]);
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"kept bytes");
}

#[tokio::test]
async fn reset_returns_the_database_to_the_seed_file() {
    let seed = SeedFile::parse(
        r#"{"organizations": [{"name": "Seeded", "slug": "seeded",
            "users": [{"email": "a@seeded.test", "api_key": "tp_user_seeded_0123456789"}],
            "procedures": [{"name": "FCT"}]}]}"#,
    )
    .unwrap();
    let srv = start(Some(seed)).await;
    // The seed is applied at start by `serve`; here, by the first reset.
    control(&srv, Method::POST, "/reset", None)
        .await
        .expect(200);
    let seeded = "tp_user_seeded_0123456789";
    let procedures = srv.get("/api/v2/procedures", seeded).await;
    let procedure = s(&procedures.expect(200)["data"][0]["id"]);
    srv.post("/api/v2/runs", seeded, run_body(&procedure, "SN-1"))
        .await
        .expect(200);
    let throwaway = new_org(&srv, json!({})).await;
    let key = s(&throwaway["users"][0]["api_key"]);
    control(
        &srv,
        Method::POST,
        "/faults",
        Some(json!({"method": "GET", "path": "/api/v2/runs", "status": 500, "when": "before"})),
    )
    .await
    .expect(201);

    let r = control(&srv, Method::POST, "/reset", None).await;
    assert_eq!(r.expect(200)["organizations"], 1);
    assert_eq!(srv.get("/api/v2/users/current", &key).await.status, 401);
    let runs = srv.get("/api/v2/runs", seeded).await;
    assert_eq!(
        runs.expect(200)["data"],
        json!([]),
        "faults are cleared too"
    );
    let faults = control(&srv, Method::GET, "/faults", None).await;
    assert_eq!(faults.expect(200)["data"], json!([]));
}

#[tokio::test]
async fn a_setup_token_from_the_control_api_logs_a_cli_station_in() {
    let srv = start(None).await;
    let org = new_org(&srv, json!({})).await;
    let station = s(&org["stations"][0]["id"]);
    let r = control(
        &srv,
        Method::POST,
        &format!("/stations/{station}/setup-tokens"),
        None,
    )
    .await;
    let minted = r.expect(201).clone();
    let token = s(&minted["token"]);
    assert!(s(&minted["command"]).contains(&format!("--token {token} --url {}", srv.url)));
    let redeem = srv
        .call(
            Method::POST,
            "/api/cli/login/redeem",
            None,
            Some(
                json!({"token": token, "hostname": "bench-01", "os": "Ubuntu 24.04",
                        "platform": "linux_x86_64", "mac_address": null,
                        "cli_version": "1.4.1"}),
            ),
        )
        .await;
    let key = s(&redeem.expect(200)["api_key"]);
    let me = srv.get("/api/v2/stations/current", &key).await;
    assert_eq!(me.expect(200)["id"], json!(station));
    let unknown = control(
        &srv,
        Method::POST,
        &format!("/stations/{}/setup-tokens", tofulab::db::Id::new()),
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_official_client_survives_two_injected_503s_and_the_journal_shows_three_requests() {
    let srv = start(None).await;
    let org = new_org(&srv, json!({})).await;
    let key = s(&org["users"][0]["api_key"]);
    let r = control(
        &srv,
        Method::POST,
        "/faults",
        Some(
            json!({"method": "GET", "path": "/api/v2/users", "status": 503,
                    "retry_after": 1, "when": "before", "times": 2}),
        ),
    )
    .await;
    let rule = s(&r.expect(201)["id"]);

    // A raw request sees the fault as the envelope with Retry-After.
    let other = new_org(&srv, json!({})).await;
    let raw = srv
        .get("/api/v2/users", &s(&other["users"][0]["api_key"]))
        .await;
    assert_eq!(raw.status, 503);
    assert_error_envelope(&raw);
    assert_eq!(raw.headers["retry-after"], "1");
    control(&srv, Method::DELETE, "/requests", None)
        .await
        .expect(200);
    control(&srv, Method::DELETE, &format!("/faults/{rule}"), None)
        .await
        .expect(200);
    control(
        &srv,
        Method::POST,
        "/faults",
        Some(
            json!({"method": "GET", "path": "/api/v2/users", "status": 503,
                    "retry_after": 1, "when": "before", "times": 2}),
        ),
    )
    .await
    .expect(201);

    let users = retrying_client(&srv, &key)
        .users()
        .list()
        .send()
        .await
        .expect("the third attempt succeeds");
    assert_eq!(users.len(), 1);

    let journal = control(
        &srv,
        Method::GET,
        &format!("/requests?organization_id={}", s(&org["id"])),
        None,
    )
    .await;
    let entries = journal.expect(200)["data"].as_array().unwrap().clone();
    let statuses: Vec<Value> = entries.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(
        statuses,
        vec![json!(200), json!(503), json!(503)],
        "newest first"
    );
    for e in &entries {
        assert_eq!(e["method"], "GET");
        assert_eq!(e["path"], "/api/v2/users");
        assert_eq!(e["caller"]["kind"], "user");
        assert_eq!(e["caller"]["id"], org["users"][0]["id"]);
    }
    let faults = control(&srv, Method::GET, "/faults", None).await;
    assert_eq!(faults.expect(200)["data"][0]["hits"], 2);
}

#[tokio::test]
async fn a_response_lost_after_commit_and_a_retry_make_one_run() {
    let srv = start(None).await;
    let org = new_org(&srv, json!({})).await;
    let key = s(&org["stations"][0]["api_key"]);
    control(
        &srv,
        Method::POST,
        "/faults",
        Some(
            json!({"method": "POST", "path": "/api/v2/runs", "drop_connection": true,
                    "when": "after", "times": 1}),
        ),
    )
    .await
    .expect(201);
    let now = chrono::Utc::now();
    let created = retrying_client(&srv, &key)
        .runs()
        .create()
        .serial_number("SN-LOST")
        .procedure_id(s(&org["procedures"][0]["id"]))
        .part_number("P-1")
        .started_at(now)
        .ended_at(now)
        .outcome(LogGetOutcome::Pass)
        .client_run_ref("cred-7_1")
        .send()
        .await
        .expect("the retry answers the run the first attempt created");
    let runs = srv.get("/api/v2/runs", &key).await;
    let data = runs.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1, "one run, not two");
    assert_eq!(data[0]["id"], json!(created.id));

    let journal = control(&srv, Method::GET, "/requests?method=POST", None).await;
    let entries = journal.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["status"], 200);
    assert_eq!(
        entries[1]["status"],
        Value::Null,
        "the first answer never left"
    );
    assert!(entries[1]["fault_id"].is_string());
    assert_eq!(entries[1]["request_body"]["client_run_ref"], "cred-7_1");
}

#[tokio::test]
async fn faults_match_paths_methods_and_organizations() {
    let srv = start(None).await;
    let a = new_org(&srv, json!({})).await;
    let b = new_org(&srv, json!({})).await;
    let (ka, kb) = (s(&a["users"][0]["api_key"]), s(&b["users"][0]["api_key"]));
    let run = srv
        .post(
            "/api/v2/runs",
            &ka,
            run_body(&s(&a["procedures"][0]["id"]), "SN-A"),
        )
        .await
        .expect(200)["id"]
        .clone();
    control(
        &srv,
        Method::POST,
        "/faults",
        Some(
            json!({"method": "get", "path": "/api/v2/runs/*", "status": 429,
                    "organization_id": a["id"], "when": "before"}),
        ),
    )
    .await
    .expect(201);
    let hit = srv.get(&format!("/api/v2/runs/{}", s(&run)), &ka).await;
    assert_eq!(hit.status, 429);
    // Another organization, another path shape, another method: untouched.
    let other_org = srv.get(&format!("/api/v2/runs/{}", s(&run)), &kb).await;
    assert_eq!(other_org.status, 404);
    srv.get("/api/v2/runs", &ka).await.expect(200);
    let del = srv
        .delete(&format!("/api/v2/runs?ids={}", s(&run)), &ka)
        .await;
    assert_eq!(del.status, 200);

    // A delay alone lets the request through.
    control(&srv, Method::DELETE, "/faults", None)
        .await
        .expect(200);
    control(
        &srv,
        Method::POST,
        "/faults",
        Some(json!({"method": "*", "path": "/api/v2/users", "delay_ms": 50, "when": "before"})),
    )
    .await
    .expect(201);
    srv.get("/api/v2/users", &kb).await.expect(200);

    // Bad rules name their field.
    for (rule, field) in [
        (
            json!({"method": "GET", "path": "api/v2", "status": 500, "when": "before"}),
            "path",
        ),
        (
            json!({"method": "GET", "path": "/api", "status": 99, "when": "before"}),
            "status",
        ),
        (
            json!({"method": "GET", "path": "/api", "when": "before"}),
            "status",
        ),
        (
            json!({"method": "GET", "path": "/api", "status": 500, "when": "later"}),
            "when",
        ),
        (
            json!({"method": "GET", "path": "/api", "status": 500, "when": "after", "probability": 2}),
            "probability",
        ),
    ] {
        let r = control(&srv, Method::POST, "/faults", Some(rule.clone())).await;
        assert_eq!(r.status, 400, "{rule}: {}", r.text);
        assert!(r.error_text().contains(field), "{rule}: {}", r.text);
    }
    let missing = control(
        &srv,
        Method::DELETE,
        &format!("/faults/{}", tofulab::db::Id::new()),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    // Never on the control API or the health checks.
    control(
        &srv,
        Method::POST,
        "/faults",
        Some(json!({"method": "*", "path": "/healthz", "status": 500, "when": "before"})),
    )
    .await
    .expect(201);
    let health = srv.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn the_journal_filters_redacts_and_forgets() {
    let srv = start(None).await;
    let org = new_org(&srv, json!({})).await;
    let key = s(&org["users"][0]["api_key"]);
    let mut body = run_body(&s(&org["procedures"][0]["id"]), "SN-J");
    // A secret's value is refused by runs.create, and never kept by the journal.
    body["secrets"] = json!([{"key": "DB_PASSWORD", "value": "hunter2"}]);
    srv.post("/api/v2/runs", &key, body).await.expect(400);
    srv.get("/api/v2/runs?outcomes=PASS", &key)
        .await
        .expect(200);
    srv.get("/api/v2/runs", "tp_user_not_a_key_0123456789")
        .await;

    let all = control(&srv, Method::GET, "/requests", None).await;
    let entries = all.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["status"], 401);
    assert_eq!(entries[0]["caller"], Value::Null);
    assert_eq!(entries[1]["query"], "outcomes=PASS");
    assert_eq!(
        entries[2]["request_body"]["secrets"],
        json!([{"key": "DB_PASSWORD", "value": "<redacted>"}])
    );
    assert_eq!(entries[2]["request_body"]["serial_number"], "SN-J");
    assert!(!all.text.contains("hunter2"));
    assert!(!all.text.contains(&key), "keys never appear");

    let by_status = control(&srv, Method::GET, "/requests?status=401", None).await;
    assert_eq!(by_status.expect(200)["data"].as_array().unwrap().len(), 1);
    let limited = control(&srv, Method::GET, "/requests?limit=1&method=get", None).await;
    assert_eq!(limited.expect(200)["data"][0]["status"], 401);
    let by_path = control(&srv, Method::GET, "/requests?path=/api/v2/runs", None).await;
    assert_eq!(by_path.expect(200)["data"].as_array().unwrap().len(), 3);

    // Bounded: at most the configured number of entries (100 here).
    for _ in 0..120 {
        srv.get("/api/v2/users", &key).await.expect(200);
    }
    let all = control(&srv, Method::GET, "/requests", None).await;
    assert_eq!(all.expect(200)["data"].as_array().unwrap().len(), 100);
    control(&srv, Method::DELETE, "/requests", None)
        .await
        .expect(200);
    let none = control(&srv, Method::GET, "/requests", None).await;
    assert_eq!(none.expect(200)["data"], json!([]));
}

#[tokio::test]
async fn sixteen_parallel_jobs_each_with_an_organization_see_only_their_own_runs() {
    let srv = Arc::new(start(None).await);
    let mut jobs = Vec::new();
    for job in 0..16 {
        let srv = srv.clone();
        jobs.push(tokio::spawn(async move {
            let org = new_org(&srv, json!({"name": format!("Job {job}")})).await;
            let key = s(&org["stations"][0]["api_key"]);
            let procedure = s(&org["procedures"][0]["id"]);
            let mut mine = Vec::new();
            for n in 0..5 {
                let serial = format!("SN-{n}");
                let r = srv
                    .post("/api/v2/runs", &key, run_body(&procedure, &serial))
                    .await;
                mine.push(s(&r.expect(200)["id"]));
            }
            let listed = srv.get("/api/v2/runs?limit=100", &key).await;
            let mut seen: Vec<String> = listed.expect(200)["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| s(&r["id"]))
                .collect();
            seen.sort();
            mine.sort();
            assert_eq!(seen, mine, "job {job} sees exactly its runs");
            let units = srv.get("/api/v2/units?limit=100", &key).await;
            assert_eq!(units.expect(200)["data"].as_array().unwrap().len(), 5);
            s(&org["id"])
        }));
    }
    let mut orgs = Vec::new();
    for job in jobs {
        orgs.push(job.await.unwrap());
    }
    for id in orgs {
        control(&srv, Method::DELETE, &format!("/organizations/{id}"), None)
            .await
            .expect(200);
    }
    let counts = table_counts(&srv).await;
    for table in ["runs", "units", "parts", "organizations", "api_keys"] {
        assert_eq!(counts[table], 0, "{table}");
    }
}
