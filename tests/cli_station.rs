//! The official TofuPilot CLI (1.4.1) against tofulab, replayed with raw HTTP exactly as
//! spec/CLI.md says the CLI sends it: CLI-native calls without `User-Agent` and with
//! `Content-Type: application/json` bodies, SDK calls with the Rust SDK's headers, the
//! upload `PUT` without `Authorization`, finalize with no body and no `Content-Type`.
//! Each flow of CLI.md §9 (T1–T5) on a fresh database, SQLite or Postgres.

mod common;

use common::{Resp, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use tofulab::db::cli::ts_in;
use tofulab::db::{Id, Sql};
use tofulab::Settings;

const SDK_UA: &str = "tofupilot-rust/2.15.1";

/// A CLI-native request (`src/http.rs`): bearer when given, JSON body, no User-Agent.
async fn cli(
    srv: &TestServer,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = srv.raw(method, path);
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    Resp::from(req.send().await.unwrap()).await
}

/// An SDK request (`crates/tofupilot-sdk`): bearer, the SDK's identification headers.
async fn sdk(srv: &TestServer, method: Method, path: &str, key: &str, body: Option<Value>) -> Resp {
    let mut req = srv
        .raw(method, path)
        .header("Authorization", format!("Bearer {key}"))
        .header("User-Agent", SDK_UA)
        .header("x-client-type", "rust")
        .header("x-client-version", "2.15.1");
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    Resp::from(req.send().await.unwrap()).await
}

/// The redeem body of `collect_hardware` (§3.5).
fn redeem_body(token: &str, hostname: &str) -> Value {
    json!({"token": token, "hostname": hostname, "os": "Ubuntu 24.04",
           "platform": "linux_x86_64", "mac_address": null, "cli_version": "1.4.1"})
}

/// A setup token for `station`, minted the way `tofulab keys setup-token` does.
async fn setup_token(srv: &TestServer, station: &str) -> String {
    srv.db
        .create_setup_token(None, Id::parse(station).unwrap(), ts_in(3600))
        .await
        .unwrap()
        .expect("station exists")
        .token
}

/// A new station (linked to nothing) created with a user key; returns its id.
async fn setup_station(srv: &TestServer, user_key: &str) -> String {
    let r = srv
        .post("/api/v2/stations", user_key, json!({"name": "Bench 2"}))
        .await;
    r.expect(200)["id"].as_str().unwrap().to_string()
}

/// `POST /api/cli/login/redeem` → 200; returns (key, installation id, body).
async fn redeem(srv: &TestServer, token: &str, hostname: &str) -> (String, String, Value) {
    let r = cli(
        srv,
        Method::POST,
        "/api/cli/login/redeem",
        None,
        Some(redeem_body(token, hostname)),
    )
    .await;
    let body = r.expect(200).clone();
    let key = body["api_key"].as_str().expect("api_key").to_string();
    let installation = body["installation_id"]
        .as_str()
        .expect("installation_id")
        .to_string();
    assert!(!installation.is_empty());
    (key, installation, body)
}

/// The run body of the CLI's queue (§4.2).
fn queued_run(procedure_id: &str) -> Value {
    json!({
        "outcome": "PASS",
        "procedure_id": procedure_id,
        "serial_number": "SN-CLI-0001",
        "started_at": "2026-03-01T10:00:00.000000000Z",
        "ended_at": "2026-03-01T10:00:05.000000000Z",
        "part_number": "PCB-CLI",
        "phases": [{"name": "power_on", "outcome": "PASS",
                    "started_at": "2026-03-01T10:00:00.000000000Z",
                    "ended_at": "2026-03-01T10:00:01.000000000Z",
                    "docstring": null, "retry_count": 0,
                    "measurements": [{"name": "vcc", "outcome": "PASS", "measured_value": 3.3,
                                      "units": "V"}]}],
        "logs": [{"level": "INFO", "timestamp": "2026-03-01T10:00:00.500000000Z",
                  "message": "booted", "source_file": "main.py", "line_number": 3}]
    })
}

#[tokio::test]
async fn station_installs_with_a_setup_token_then_uploads_a_run() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let token = setup_token(&srv, &org.station_id).await;
    assert!(token.starts_with("tp_setup_"), "{token}");

    // §5.1 step 1: redeem.
    let (key, installation, body) = redeem(&srv, &token, "bench-01").await;
    assert_eq!(body["organization_slug"], "acme");
    assert_eq!(body["replaced_installations"], 0);
    assert!(key.starts_with("tp_station_"));

    // Step 2: whoami.
    let me = cli(&srv, Method::GET, "/api/cli/whoami", Some(&key), None).await;
    let me = me.expect(200);
    assert_eq!(me["auth_type"], "station");
    assert_eq!(me["station_id"], org.station_id.as_str());
    assert_eq!(me["station_name"], "Acme Bench");
    assert_eq!(me["organization_slug"], "acme");
    assert_eq!(me["organization_name"], "Acme");
    assert_eq!(me["installation_id"], installation.as_str());
    assert_eq!(me["user_id"], Value::Null);

    // Step 4: config — every value a string, offline-safe.
    let config = cli(&srv, Method::GET, "/api/cli/config", Some(&key), None).await;
    let config = config.expect(200).as_object().unwrap().clone();
    assert!(config.values().all(Value::is_string), "{config:?}");
    assert_eq!(config["auto_update"], "off");
    assert_eq!(config["kiosk_ui"], "off");

    // Step 5: stream (503, realtime off), then pull (nothing deployed).
    let stream = cli(&srv, Method::GET, "/api/cli/stream", Some(&key), None).await;
    assert_eq!(stream.status, 503, "{}", stream.text);
    assert!(stream.message().contains("disabled"), "{}", stream.text);
    assert_eq!(stream.json["code"], "SERVICE_UNAVAILABLE");
    let pull = cli(&srv, Method::GET, "/api/cli/pull", Some(&key), None).await;
    let pull = pull.expect(200);
    assert_eq!(pull["station"]["name"], "Acme Bench");
    assert_eq!(
        pull["procedures"],
        json!([{"id": org.procedure_id, "name": "Acme Functional", "deployment": null}])
    );
    // A descriptor is "not built" (409) for a linked procedure, 404 otherwise.
    let desc = srv
        .raw(Method::GET, &format!("/api/cli/pull/{}", org.procedure_id))
        .header("Authorization", format!("Bearer {key}"))
        .header("User-Agent", "tofupilot-cli")
        .send()
        .await
        .unwrap();
    let desc = Resp::from(desc).await;
    desc.expect(409);
    assert_eq!(desc.json["error"], "not_built");
    let other = cli(
        &srv,
        Method::GET,
        &format!("/api/cli/pull/{}", common::random_id()),
        Some(&key),
        None,
    )
    .await;
    other.expect(404);

    // The legacy streaming endpoint still answers 200 (BEHAVIOR.md §11.5).
    let legacy = cli(&srv, Method::GET, "/api/v1/streaming", Some(&key), None).await;
    assert_eq!(legacy.status, 200, "{}", legacy.text);
    assert_eq!(legacy.json["connectOptions"]["port"], 1);

    // T3: link, then the queue uploads a run with one attachment.
    let procs = sdk(&srv, Method::GET, "/api/v2/procedures", &key, None).await;
    let procs = procs.expect(200);
    assert!(procs["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == org.procedure_id.as_str()));
    let run = sdk(
        &srv,
        Method::POST,
        "/api/v2/runs",
        &key,
        Some(queued_run(&org.procedure_id)),
    )
    .await;
    let run_id = run.expect(200)["id"].as_str().unwrap().to_string();
    let att = cli(
        &srv,
        Method::POST,
        &format!("/api/v2/runs/{run_id}/attachments"),
        Some(&key),
        Some(json!({"name": "log.txt"})),
    )
    .await;
    let att = att.expect(200).clone();
    let att_id = att["id"].as_str().unwrap().to_string();
    let upload_url = att["upload_url"].as_str().unwrap().to_string();
    let put = reqwest::Client::new()
        .put(&upload_url)
        .header("Content-Type", "text/plain")
        .body("line 1\nline 2\n")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let fin = srv
        .raw(
            Method::POST,
            &format!("/api/v2/attachments/{att_id}/finalize"),
        )
        .header("Authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert!(fin.status().is_success(), "{}", fin.status());
    let got = sdk(
        &srv,
        Method::GET,
        &format!("/api/v2/runs/{run_id}"),
        &key,
        None,
    )
    .await;
    let got = got.expect(200);
    assert_eq!(got["created_by_station"]["id"], org.station_id.as_str());
    let atts = got["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{got}");
    assert_eq!(atts[0]["id"], att_id.as_str());
    assert_eq!(atts[0]["name"], "log.txt");
    assert_eq!(got["phases"][0]["measurements"][0]["measured_value"], 3.3);

    // Negative cases of §4.3, each a 4xx that parks the run for good.
    let bad = sdk(
        &srv,
        Method::POST,
        "/api/v2/runs",
        &key,
        Some(queued_run("my_dir")),
    )
    .await;
    bad.expect(400);
    let unlinked = srv
        .post(
            "/api/v2/procedures",
            &org.user_key,
            json!({"name": "Not linked"}),
        )
        .await;
    let unlinked = unlinked.expect(200)["id"].as_str().unwrap().to_string();
    let forbidden = sdk(
        &srv,
        Method::POST,
        "/api/v2/runs",
        &key,
        Some(queued_run(&unlinked)),
    )
    .await;
    forbidden.expect(403);
    let missing = cli(
        &srv,
        Method::POST,
        &format!("/api/v2/runs/{}/attachments", common::random_id()),
        Some(&key),
        Some(json!({"name": "log.txt"})),
    )
    .await;
    missing.expect(404);
    assert!(
        missing.error_text().contains("not found"),
        "{}",
        missing.text
    );

    // The installation is recorded with what the CLI reported.
    let list = srv
        .get(
            &format!("/api/lab/v1/stations/{}/installations", org.station_id),
            &org.user_key,
        )
        .await;
    let list = list.expect(200);
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], installation.as_str());
    assert_eq!(rows[0]["hostname"], "bench-01");
    assert_eq!(rows[0]["os"], "Ubuntu 24.04");
    assert_eq!(rows[0]["platform"], "linux_x86_64");
    assert_eq!(rows[0]["mac_address"], Value::Null);
    assert_eq!(rows[0]["cli_version"], "1.4.1");
    assert_eq!(rows[0]["status"], "active");
}

#[tokio::test]
async fn setup_tokens_are_single_use_hashed_and_expire() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let token = setup_token(&srv, &org.station_id).await;

    // Stored as a digest only.
    let count = |sql: &'static str, arg: String| {
        let db = srv.db.clone();
        async move {
            let (n,): (i64,) = db.read().fetch_one(Sql::new(sql).bind(arg)).await.unwrap();
            n
        }
    };
    let q = "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1";
    assert_eq!(count(q, token.clone()).await, 0);
    assert_eq!(count(q, tofulab::apikey::digest(&token)).await, 1);

    redeem(&srv, &token, "bench-01").await;
    let again = cli(
        &srv,
        Method::POST,
        "/api/cli/login/redeem",
        None,
        Some(redeem_body(&token, "bench-01")),
    )
    .await;
    again.expect(400);
    assert!(again.message().contains("already"), "{}", again.text);

    let unknown = cli(
        &srv,
        Method::POST,
        "/api/cli/login/redeem",
        None,
        Some(redeem_body("tp_setup_nope", "x")),
    )
    .await;
    unknown.expect(400);
    assert!(
        unknown.message().to_lowercase().contains("invalid"),
        "{}",
        unknown.text
    );

    // An expired token, written through the db layer (no sleeping).
    let expired = srv
        .db
        .create_setup_token(None, Id::parse(&org.station_id).unwrap(), ts_in(-1))
        .await
        .unwrap()
        .unwrap()
        .token;
    let r = cli(
        &srv,
        Method::POST,
        "/api/cli/login/redeem",
        None,
        Some(redeem_body(&expired, "x")),
    )
    .await;
    r.expect(400);
    let text = r.message().to_lowercase();
    assert!(text.contains("expire"), "{}", r.text);
    for word in ["invalid", "consumed", "already"] {
        assert!(!text.contains(word), "{word} in {}", r.text);
    }
    // Refused tokens change nothing: still one installation.
    let list = srv
        .get(
            &format!("/api/lab/v1/stations/{}/installations", org.station_id),
            &org.user_key,
        )
        .await;
    assert_eq!(list.expect(200)["data"].as_array().unwrap().len(), 1);

    // A token of a removed station is invalid.
    let doomed = setup_token(&srv, &org.station_id).await;
    srv.delete(
        &format!("/api/v2/stations/{}", org.station_id),
        &org.user_key,
    )
    .await
    .expect(200);
    let r = cli(
        &srv,
        Method::POST,
        "/api/cli/login/redeem",
        None,
        Some(redeem_body(&doomed, "x")),
    )
    .await;
    r.expect(400);
    assert!(r.message().to_lowercase().contains("invalid"), "{}", r.text);

    // `--url http://host:port/` makes the CLI send `//api/...` during login.
    let fresh = setup_token(&srv, &setup_station(&srv, &org.user_key).await).await;
    let r = cli(
        &srv,
        Method::POST,
        "//api/cli/login/redeem",
        None,
        Some(redeem_body(&fresh, "x")),
    )
    .await;
    let key = r.expect(200)["api_key"].as_str().unwrap().to_string();
    cli(&srv, Method::GET, "//api/cli/whoami", Some(&key), None)
        .await
        .expect(200);

    // A missing token is a validation error naming the field.
    let r = cli(
        &srv,
        Method::POST,
        "/api/cli/login/redeem",
        None,
        Some(json!({"hostname": "x"})),
    )
    .await;
    r.expect(400);
    assert!(r.text.contains("token"), "{}", r.text);
}

#[tokio::test]
async fn a_reinstall_replaces_the_installation_and_revokes_its_key() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let (k1, i1, _) = redeem(&srv, &setup_token(&srv, &org.station_id).await, "bench-01").await;
    let (k2, i2, body) = redeem(&srv, &setup_token(&srv, &org.station_id).await, "bench-01b").await;
    assert_eq!(body["replaced_installations"], 1);

    let old = cli(&srv, Method::GET, "/api/cli/whoami", Some(&k1), None).await;
    old.expect(401);
    let new = cli(&srv, Method::GET, "/api/cli/whoami", Some(&k2), None).await;
    assert_eq!(new.expect(200)["installation_id"], i2.as_str());
    // The old key cannot upload either (401 parks: the key is gone for good).
    sdk(
        &srv,
        Method::POST,
        "/api/v2/runs",
        &k1,
        Some(queued_run(&org.procedure_id)),
    )
    .await
    .expect(401);
    // The seed's station key is not an installation: untouched.
    let seeded = cli(
        &srv,
        Method::GET,
        "/api/cli/whoami",
        Some(&org.station_key),
        None,
    )
    .await;
    let seeded = seeded.expect(200);
    assert_eq!(seeded["auth_type"], "station");
    assert_eq!(seeded["installation_id"], Value::Null);

    let list = srv
        .get(
            &format!("/api/lab/v1/stations/{}/installations", org.station_id),
            &org.user_key,
        )
        .await;
    let list = list.expect(200);
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], i2.as_str());
    assert_eq!(rows[0]["status"], "active");
    assert_eq!(rows[0]["hostname"], "bench-01b");
    assert_eq!(rows[1]["id"], i1.as_str());
    assert_eq!(rows[1]["status"], "replaced");
    assert_eq!(rows[1]["replaced_by"], i2.as_str());
    assert!(rows[1]["ended_at"].is_string());

    // A third install replaces only the active one.
    let (_, _, body) = redeem(&srv, &setup_token(&srv, &org.station_id).await, "bench-01c").await;
    assert_eq!(body["replaced_installations"], 1);
}

#[tokio::test]
async fn logout_and_uninstall_revoke_cli_keys_only() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let (k, i, _) = redeem(&srv, &setup_token(&srv, &org.station_id).await, "bench-01").await;

    // `tofupilot logout`.
    let out = cli(
        &srv,
        Method::POST,
        "/api/cli/logout",
        Some(&k),
        Some(json!({"installation_id": i, "uninstalled": false})),
    )
    .await;
    assert_eq!(out.expect(200)["revoked"], true);
    cli(&srv, Method::GET, "/api/cli/whoami", Some(&k), None)
        .await
        .expect(401);

    // Reinstall: the logged-out installation is not counted as replaced.
    let (k2, i2, body) = redeem(&srv, &setup_token(&srv, &org.station_id).await, "bench-01").await;
    assert_eq!(body["replaced_installations"], 0);

    // `tofupilot uninstall`.
    let out = cli(
        &srv,
        Method::POST,
        "/api/cli/logout",
        Some(&k2),
        Some(json!({"installation_id": i2, "uninstalled": true})),
    )
    .await;
    assert_eq!(out.expect(200)["revoked"], true);
    cli(&srv, Method::GET, "/api/cli/whoami", Some(&k2), None)
        .await
        .expect(401);

    let list = srv
        .get(
            &format!("/api/lab/v1/stations/{}/installations", org.station_id),
            &org.user_key,
        )
        .await;
    let list = list.expect(200);
    let statuses: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![(i2.as_str(), "uninstalled"), (i.as_str(), "logged_out")]
    );

    // Keys from the seed file are not the CLI's to revoke.
    for key in [&org.station_key, &org.user_key] {
        let out = cli(
            &srv,
            Method::POST,
            "/api/cli/logout",
            Some(key),
            Some(json!({"installation_id": null, "uninstalled": false})),
        )
        .await;
        assert_eq!(out.expect(200)["revoked"], false);
        cli(&srv, Method::GET, "/api/cli/whoami", Some(key), None)
            .await
            .expect(200);
    }
}

/// `POST /api/auth/device/token` as the CLI polls it.
async fn poll(srv: &TestServer, device_code: &str) -> Resp {
    cli(
        srv,
        Method::POST,
        "/api/auth/device/token",
        None,
        Some(
            json!({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "device_code": device_code, "client_id": "tofupilot-cli"}),
        ),
    )
    .await
}

async fn device_code(srv: &TestServer) -> Value {
    let r = cli(
        srv,
        Method::POST,
        "/api/auth/device/code",
        None,
        Some(json!({"client_id": "tofupilot-cli"})),
    )
    .await;
    r.expect(200).clone()
}

#[tokio::test]
async fn a_developer_logs_in_with_the_device_flow() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let other = srv.org("Other").await;

    // §3.1.
    let start = device_code(&srv).await;
    let code = start["device_code"].as_str().unwrap().to_string();
    let user_code = start["user_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 8);
    assert!(
        user_code.chars().all(|c| c.is_ascii_uppercase()),
        "{user_code}"
    );
    assert_eq!(start["verification_uri"], format!("{}/device", srv.url));
    assert_eq!(start["interval"], 5);
    assert!(start["expires_in"].as_i64().unwrap() > 0);

    // §3.2: pending, then slow_down when polling faster than the interval.
    let r = poll(&srv, &code).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"], "authorization_pending");
    let r = poll(&srv, &code).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"], "slow_down");
    assert!(r.json["message"].is_string());

    // Approval, as `tofulab keys approve-device abcd-efgh --user EMAIL` does it.
    let shown = format!("{}-{}", &user_code[..4], &user_code[4..]).to_lowercase();
    srv.db
        .decide_device_code(&shown, Some(&org.user_email.to_uppercase()))
        .await
        .unwrap()
        .unwrap();
    let r = poll(&srv, &code).await;
    let access = r.expect(200)["access_token"].as_str().unwrap().to_string();
    // Issued once.
    let r = poll(&srv, &code).await;
    assert_eq!(r.json["error"], "invalid_grant");

    // §3.3: the organizations of that user only.
    cli(
        &srv,
        Method::GET,
        "/api/cli/login",
        Some("tp_access_wrong"),
        None,
    )
    .await
    .expect(401);
    let orgs = cli(&srv, Method::GET, "/api/cli/login", Some(&access), None).await;
    let orgs = orgs.expect(200).clone();
    let org_id = orgs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        orgs,
        json!([{"id": org_id, "name": "Acme", "slug": "acme"}])
    );

    // §3.4: another organization's id is not reachable; then the key.
    let other_org =
        srv.get("/api/v2/whoami", &other.user_key).await.expect(200)["organization"]["id"].clone();
    let r = cli(
        &srv,
        Method::POST,
        "/api/cli/login",
        Some(&access),
        Some(json!({"organization_id": other_org})),
    )
    .await;
    r.expect(404);
    let r = cli(
        &srv,
        Method::POST,
        "/api/cli/login",
        Some(&access),
        Some(json!({"organization_id": org_id})),
    )
    .await;
    let body = r.expect(200).clone();
    assert_eq!(body["installation_id"], Value::Null);
    assert!(body.as_object().unwrap().contains_key("installation_id"));
    let user_key = body["api_key"].as_str().unwrap().to_string();
    assert!(user_key.starts_with("tp_user_"));
    // The access token is spent.
    cli(
        &srv,
        Method::POST,
        "/api/cli/login",
        Some(&access),
        Some(json!({"organization_id": org_id})),
    )
    .await
    .expect(401);

    // §5.2: whoami with the new key.
    let me = cli(&srv, Method::GET, "/api/cli/whoami", Some(&user_key), None).await;
    let me = me.expect(200);
    assert_eq!(me["auth_type"], "user");
    assert_eq!(me["user_email"], org.user_email.as_str());
    assert_eq!(me["user_name"], "Acme Admin");
    assert_eq!(me["station_id"], Value::Null);
    assert_eq!(me["organization_slug"], "acme");

    // Station-only routes refuse a user key (§3.8, §3.9).
    cli(&srv, Method::GET, "/api/cli/config", Some(&user_key), None)
        .await
        .expect(403);
    cli(&srv, Method::GET, "/api/cli/pull", Some(&user_key), None)
        .await
        .expect(403);

    // Logging out revokes the key the login made.
    let out = cli(
        &srv,
        Method::POST,
        "/api/cli/logout",
        Some(&user_key),
        Some(json!({"installation_id": null, "uninstalled": false})),
    )
    .await;
    assert_eq!(out.expect(200)["revoked"], true);
    cli(&srv, Method::GET, "/api/cli/whoami", Some(&user_key), None)
        .await
        .expect(401);
}

#[tokio::test]
async fn device_logins_can_be_denied_expire_and_be_refused() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;

    let start = device_code(&srv).await;
    let user_code = start["user_code"].as_str().unwrap();
    srv.db
        .decide_device_code(user_code, None)
        .await
        .unwrap()
        .unwrap();
    let r = poll(&srv, start["device_code"].as_str().unwrap()).await;
    assert_eq!(r.json["error"], "access_denied");
    // Decided once.
    let again = srv
        .db
        .decide_device_code(user_code, Some(&org.user_email))
        .await
        .unwrap();
    assert!(again.is_err());

    // Expired, written through the db layer.
    let expired = srv.db.create_device_code(ts_in(-1)).await.unwrap();
    let r = poll(&srv, &expired.device_code).await;
    assert_eq!(r.json["error"], "expired_token");
    // A day after expiry a request is forgotten (swept when the next one starts).
    let stale = srv.db.create_device_code(ts_in(-2 * 86400)).await.unwrap();
    assert_eq!(
        poll(&srv, &stale.device_code).await.json["error"],
        "expired_token"
    );
    device_code(&srv).await;
    assert_eq!(
        poll(&srv, &stale.device_code).await.json["error"],
        "invalid_grant"
    );
    assert_eq!(
        poll(&srv, &expired.device_code).await.json["error"],
        "expired_token"
    );

    // Unknown email, unknown code, wrong grant type, missing client id.
    let start = device_code(&srv).await;
    let no_user = srv
        .db
        .decide_device_code(start["user_code"].as_str().unwrap(), Some("nobody@x.test"))
        .await
        .unwrap();
    assert!(no_user.is_err());
    assert_eq!(
        poll(&srv, "tp_device_unknown").await.json["error"],
        "invalid_grant"
    );
    let r = cli(
        &srv,
        Method::POST,
        "/api/auth/device/token",
        None,
        Some(json!({"grant_type": "password", "device_code": "x"})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"], "unsupported_grant_type");
    let r = cli(
        &srv,
        Method::POST,
        "/api/auth/device/code",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"], "invalid_request");
    assert!(r.json["error_description"]
        .as_str()
        .unwrap()
        .contains("client_id"));
}

#[tokio::test]
async fn auto_approval_serves_a_single_user_install() {
    let settings = Settings {
        auto_approve_devices: true,
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Solo").await;
    let start = device_code(&srv).await;
    let r = poll(&srv, start["device_code"].as_str().unwrap()).await;
    let access = r.expect(200)["access_token"].as_str().unwrap().to_string();
    let orgs = cli(&srv, Method::GET, "/api/cli/login", Some(&access), None).await;
    assert_eq!(orgs.expect(200)[0]["slug"], "solo");
    let _ = org;

    // With a second user it would have to guess: the login stays pending.
    srv.org("Second").await;
    let start = device_code(&srv).await;
    let r = poll(&srv, start["device_code"].as_str().unwrap()).await;
    assert_eq!(r.json["error"], "authorization_pending");
}

#[tokio::test]
async fn station_keys_and_other_organizations_are_kept_out() {
    let srv = TestServer::start().await;
    let a = srv.org("Acme").await;
    let b = srv.org("Bolt").await;
    let installations = format!("/api/lab/v1/stations/{}/installations", a.station_id);

    // Another organization's station id is nonexistent.
    srv.get(&installations, &b.user_key).await.expect(404);
    let b_org = srv.get("/api/v2/whoami", &b.user_key).await;
    let b_org = Id::parse(b_org.json["organization"]["id"].as_str().unwrap()).unwrap();
    // Minting a token for it in the other organization finds no station.
    let foreign = srv
        .db
        .create_setup_token(Some(b_org), Id::parse(&a.station_id).unwrap(), ts_in(3600))
        .await
        .unwrap();
    assert!(foreign.is_none());

    // Developer-only routes refuse station keys (BEHAVIOR.md §15, CLI.md §3.12).
    let r = srv.get(&installations, &a.station_key).await;
    r.expect(403);
    assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    srv.get("/api/lab/v1/cli/config", &a.station_key)
        .await
        .expect(403);
    srv.patch(
        "/api/lab/v1/cli/config",
        &a.station_key,
        json!({"auto_update": "on"}),
    )
    .await
    .expect(403);
    let deploy = cli(
        &srv,
        Method::POST,
        "/api/cli/deployments/upload",
        Some(&a.station_key),
        Some(json!({"procedureId": a.procedure_id, "sha256": "00", "sizeBytes": 1})),
    )
    .await;
    deploy.expect(403);
    let logs = cli(
        &srv,
        Method::GET,
        "/api/cli/deployments/x/logs?after_seq=0",
        Some(&a.station_key),
        None,
    )
    .await;
    logs.expect(403);
    srv.get("/api/v2/users/current", &a.station_key)
        .await
        .expect(403);
    // A user key gets the deploy refusal in the field `deploy` reads.
    let deploy = cli(
        &srv,
        Method::POST,
        "/api/cli/deployments",
        Some(&a.user_key),
        Some(json!({})),
    )
    .await;
    deploy.expect(404);
    assert!(deploy.json["error"]
        .as_str()
        .unwrap()
        .contains("not supported"));

    // Malformed ids are 400 before the key type is looked at (§16).
    srv.get("/api/lab/v1/stations/nope/installations", &a.station_key)
        .await
        .expect(400);
    // No key at all: 401 on keyed CLI routes.
    cli(&srv, Method::GET, "/api/cli/whoami", None, None)
        .await
        .expect(401);
    cli(
        &srv,
        Method::GET,
        "/api/cli/whoami",
        Some("tp_station_unknown"),
        None,
    )
    .await
    .expect(401);
}

#[tokio::test]
async fn cli_settings_are_per_organization() {
    let srv = TestServer::start().await;
    let a = srv.org("Acme").await;
    let b = srv.org("Bolt").await;

    let defaults = srv
        .get("/api/lab/v1/cli/config", &a.user_key)
        .await
        .expect(200)
        .clone();
    assert_eq!(defaults["auto_update"], "off");

    let set = srv
        .patch(
            "/api/lab/v1/cli/config",
            &a.user_key,
            json!({"auto_update": "on", "launch_on_boot": "on"}),
        )
        .await;
    let set = set.expect(200);
    assert_eq!(set["auto_update"], "on");
    assert_eq!(set["launch_on_boot"], "on");

    let station = cli(
        &srv,
        Method::GET,
        "/api/cli/config",
        Some(&a.station_key),
        None,
    )
    .await;
    let station = station.expect(200);
    assert_eq!(station["auto_update"], "on");
    assert_eq!(station["launch_on_boot"], "on");
    assert_eq!(station["kiosk_ui"], "off");
    let other = cli(
        &srv,
        Method::GET,
        "/api/cli/config",
        Some(&b.station_key),
        None,
    )
    .await;
    assert_eq!(other.expect(200)["auto_update"], "off");

    // null goes back to the default; bad names and values are named.
    let reset = srv
        .patch(
            "/api/lab/v1/cli/config",
            &a.user_key,
            json!({"auto_update": null}),
        )
        .await;
    assert_eq!(reset.expect(200)["auto_update"], "off");
    let bad = srv
        .patch(
            "/api/lab/v1/cli/config",
            &a.user_key,
            json!({"Bad Key": "on", "kiosk_ui": true}),
        )
        .await;
    bad.expect(400);
    let issues = bad.json["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 2, "{}", bad.text);
    assert!(
        bad.text.contains("Bad Key") && bad.text.contains("kiosk_ui"),
        "{}",
        bad.text
    );
    let after = cli(
        &srv,
        Method::GET,
        "/api/cli/config",
        Some(&a.station_key),
        None,
    )
    .await;
    assert_eq!(after.expect(200)["kiosk_ui"], "off");
}

/// The CLI's queue retries 429 and 5xx and parks on 4xx: transient trouble must never
/// be a 4xx, and must say so in words the attachment steps understand.
#[tokio::test]
async fn transient_failures_are_503_or_429_with_retry_after() {
    // Rate limit: 1/s with a burst of 2.
    let srv = TestServer::start_with(Settings::default(), Some(1)).await;
    let org = srv.org("Acme").await;
    let mut limited = None;
    for _ in 0..50 {
        let r = cli(
            &srv,
            Method::GET,
            "/api/cli/whoami",
            Some(&org.station_key),
            None,
        )
        .await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = limited.expect("the rate limit answers 429");
    r.expect(429);
    assert!(r.headers.get("retry-after").is_some());
    assert!(r.message().contains("temporarily"), "{}", r.text);
    drop(srv);

    // An unavailable database: every step of the queue answers 503 + Retry-After.
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let run = sdk(
        &srv,
        Method::POST,
        "/api/v2/runs",
        &org.station_key,
        Some(queued_run(&org.procedure_id)),
    )
    .await;
    let run_id = run.expect(200)["id"].as_str().unwrap().to_string();
    let att = cli(
        &srv,
        Method::POST,
        &format!("/api/v2/runs/{run_id}/attachments"),
        Some(&org.station_key),
        Some(json!({"name": "log.txt"})),
    )
    .await;
    let att = att.expect(200).clone();
    srv.db.close().await;

    let check = |r: Resp, what: &str| {
        assert_eq!(r.status, 503, "{what}: {}", r.text);
        assert_eq!(r.json["code"], "SERVICE_UNAVAILABLE", "{what}");
        assert!(r.message().contains("temporarily"), "{what}: {}", r.text);
        let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(after >= 1, "{what}");
    };
    check(
        sdk(
            &srv,
            Method::POST,
            "/api/v2/runs",
            &org.station_key,
            Some(queued_run(&org.procedure_id)),
        )
        .await,
        "runs.create",
    );
    check(
        cli(
            &srv,
            Method::POST,
            &format!("/api/v2/runs/{run_id}/attachments"),
            Some(&org.station_key),
            Some(json!({"name": "b.txt"})),
        )
        .await,
        "run attachment",
    );
    let put = reqwest::Client::new()
        .put(att["upload_url"].as_str().unwrap())
        .header("Content-Type", "text/plain")
        .body("bytes")
        .send()
        .await
        .unwrap();
    check(Resp::from(put).await, "upload PUT");
    let fin = srv
        .raw(
            Method::POST,
            &format!(
                "/api/v2/attachments/{}/finalize",
                att["id"].as_str().unwrap()
            ),
        )
        .header("Authorization", format!("Bearer {}", org.station_key))
        .send()
        .await
        .unwrap();
    check(Resp::from(fin).await, "finalize");
    // Never a 401: that would make a station daemon wipe its credentials.
    check(
        cli(
            &srv,
            Method::GET,
            "/api/cli/whoami",
            Some(&org.station_key),
            None,
        )
        .await,
        "whoami",
    );
}
