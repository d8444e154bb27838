//! `tofulab keys setup-token` and `tofulab keys approve-device`, run as the real binary
//! on a database of their own (SQLite file, or a fresh Postgres database when
//! `TOFULAB_TEST_DATABASE_URL` is set), next to a running server.

mod process_support;

use std::process::Command;

use process_support::{ProcessDb, Server, BIN};
use serde_json::{json, Value};

const STATION: &str = "22222222-2222-4222-8222-222222222222";

/// Runs a non-serving command to completion: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("TOFULAB_DATABASE_URL")
        .env_remove("TOFULAB_PUBLIC_URL")
        .output()
        .expect("run tofulab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A CLI-native POST (no User-Agent, JSON body).
async fn post(url: &str, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(k) = bearer {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn setup_token_prints_a_token_that_installs_the_station() {
    let db = ProcessDb::new().await;
    let seed = db.seed();
    let (code, _, err) = run(&["seed", seed.to_str().unwrap(), "--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&[
        "keys",
        "setup-token",
        "--station",
        STATION,
        "--database-url",
        &db.url,
        "--url",
        "http://tofulab.lab:8080/",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on stdout: {out:?}");
    let token = lines[0].to_string();
    assert!(
        token.starts_with("tp_setup_") && token.len() == 41,
        "{token}"
    );
    assert!(
        err.contains(&format!(
            "tofupilot login --token {token} --url http://tofulab.lab:8080\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("Bench 1") && err.contains("single use"),
        "{err}"
    );

    // Without --url the command still shows where the URL goes.
    let (code, out2, err2) = run(&[
        "keys",
        "setup-token",
        "--station",
        STATION,
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err2}");
    assert!(err2.contains("--url URL"), "{err2}");
    assert_ne!(out2.trim(), token, "every token is new");

    // Unknown or malformed station ids are clear errors.
    let (code, out, err) = run(&[
        "keys",
        "setup-token",
        "--station",
        "33333333-3333-4333-8333-333333333333",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("no station with id"), "{err}");
    let (code, _, err) = run(&[
        "keys",
        "setup-token",
        "--station",
        "bench",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not a station id"), "{err}");

    // The token works once against the server.
    let srv = Server::start_on(&db);
    let body = json!({"token": token, "hostname": "bench-01", "os": "Debian 13",
                      "platform": "linux_aarch64", "mac_address": "aa:bb:cc:dd:ee:ff",
                      "cli_version": "1.4.1"});
    let (status, answer) = post(&srv.url, "/api/cli/login/redeem", None, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["organization_slug"], "lab");
    let key = answer["api_key"].as_str().unwrap();
    let (status, me) = srv.get("/api/cli/whoami", key).await;
    assert_eq!(status, 200);
    assert_eq!(me["station_id"], STATION);
    let (status, again) = post(&srv.url, "/api/cli/login/redeem", None, body).await;
    assert_eq!(status, 400);
    assert!(again["message"].as_str().unwrap().contains("already"));
    assert!(
        !srv.stderr.text().contains(&token),
        "tokens never reach the log"
    );
    assert_eq!(srv.stop_with("TERM"), 0);
}

#[tokio::test]
async fn approve_device_lets_a_developer_log_in() {
    let db = ProcessDb::new().await;
    let srv = Server::start_on(&db);

    let (status, start) = post(
        &srv.url,
        "/api/auth/device/code",
        None,
        json!({"client_id": "tofupilot-cli"}),
    )
    .await;
    assert_eq!(status, 200, "{start}");
    let user_code = start["user_code"].as_str().unwrap();
    let shown = format!("{}-{}", &user_code[..4], &user_code[4..]);
    let poll = json!({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                      "device_code": start["device_code"], "client_id": "tofupilot-cli"});

    let (code, _, err) = run(&[
        "keys",
        "approve-device",
        "ZZZZ-ZZZZ",
        "--user",
        "a@lab.test",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no pending login"), "{err}");
    let (code, _, err) = run(&[
        "keys",
        "approve-device",
        &shown,
        "--user",
        "a@lab.test",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Approved"), "{err}");

    let (status, token) = post(&srv.url, "/api/auth/device/token", None, poll).await;
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap();
    let (status, orgs) = srv.get("/api/cli/login", access).await;
    assert_eq!(status, 200);
    let org_id = orgs[0]["id"].as_str().unwrap();
    let (status, login) = post(
        &srv.url,
        "/api/cli/login",
        Some(access),
        json!({"organization_id": org_id}),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let (status, me) = srv
        .get("/api/cli/whoami", login["api_key"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["user_email"], "a@lab.test");

    // A second decision on the same code is refused.
    let (code, _, err) = run(&[
        "keys",
        "approve-device",
        &shown,
        "--deny",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("already"), "{err}");
    assert_eq!(srv.stop_with("TERM"), 0);
}
