//! The dashboard's side of the official TofuPilot CLI: a station's page mints a setup
//! token that the CLI redeems, and `/device` (the `verification_uri` of the device flow)
//! lets a signed-in user approve or deny a developer's login.

mod common;

use common::TestServer;
use reqwest::header::SET_COOKIE;
use reqwest::redirect;
use serde_json::{json, Value};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with a user key; returns the `Cookie` header value.
async fn sign_in(srv: &TestServer, key: &str) -> String {
    let r = http()
        .post(format!("{}/login", srv.url))
        .header("origin", srv.url.clone())
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn page(srv: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let r = http()
        .get(format!("{}{path}", srv.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(
    srv: &TestServer,
    cookie: &str,
    path: &str,
    origin: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let r = http()
        .post(format!("{}{path}", srv.url))
        .header("cookie", cookie)
        .header("origin", origin)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn api(srv: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("{}{path}", srv.url))
        .header("user-agent", "tofupilot-cli/1.4.1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_station_page_mints_a_setup_token_the_cli_redeems_once() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let other = srv.org("Other").await;
    let cookie = sign_in(&srv, &org.user_key).await;

    let (status, body) = page(&srv, &cookie, "/stations").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("/stations/{}", org.station_id)),
        "{body}"
    );
    let (status, body) = page(&srv, &cookie, &format!("/stations/{}", org.station_id)).await;
    assert_eq!(status, 200);
    assert!(body.contains("Create a setup token"));

    let path = format!("/stations/{}/setup-token", org.station_id);
    // A post from another site is refused; another organization's station is not found.
    let (status, _) = post(&srv, &cookie, &path, "http://evil.example", &[]).await;
    assert_eq!(status, 403);
    let foreign = format!("/stations/{}/setup-token", other.station_id);
    let (status, _) = post(&srv, &cookie, &foreign, &srv.url, &[]).await;
    assert_eq!(status, 404);
    let (status, _) = page(&srv, &cookie, &format!("/stations/{}", other.station_id)).await;
    assert_eq!(status, 404);

    let (status, body) = post(&srv, &cookie, &path, &srv.url, &[]).await;
    assert_eq!(status, 200);
    let command = body
        .split("tofupilot login --token ")
        .nth(1)
        .expect("the install command");
    let token: String = command
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert!(token.starts_with("tp_setup_"), "{token}");
    assert!(body.contains(&format!("--url {}", srv.url)), "{body}");
    // The page shows no API key.
    assert!(!body.contains(&org.user_key) && !body.contains(&org.station_key));

    let redeem = json!({"token": token, "hostname": "bench-01", "os": "Ubuntu 24.04",
                        "platform": "linux_x86_64", "mac_address": null, "cli_version": "1.4.1"});
    let (status, answer) = api(&srv, "/api/cli/login/redeem", redeem.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let key = answer["api_key"].as_str().unwrap().to_string();
    let who = srv.get("/api/cli/whoami", &key).await.expect(200).clone();
    assert_eq!(who["station_id"], json!(org.station_id), "{who}");
    let (status, again) = api(&srv, "/api/cli/login/redeem", redeem).await;
    assert_eq!(status, 400);
    assert!(
        again["message"].as_str().unwrap().contains("already"),
        "{again}"
    );

    // The installation shows on the station's page.
    let (_, body) = page(&srv, &cookie, &format!("/stations/{}", org.station_id)).await;
    assert!(body.contains("bench-01"), "{body}");
}

#[tokio::test]
async fn the_device_page_approves_or_denies_a_developer_login() {
    let srv = TestServer::start().await;
    let org = srv.org("Acme").await;
    let cookie = sign_in(&srv, &org.user_key).await;

    let (status, start) = api(
        &srv,
        "/api/auth/device/code",
        json!({"client_id": "tofupilot-cli"}),
    )
    .await;
    assert_eq!(status, 200);
    let uri = start["verification_uri_complete"].as_str().unwrap();
    let path = uri.strip_prefix(&srv.url).expect("a page of this server");
    let user_code = start["user_code"].as_str().unwrap().to_string();
    let device_code = start["device_code"].as_str().unwrap().to_string();

    // The page the CLI opens shows the code, and needs a session.
    let r = http()
        .get(format!("{}{path}", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (status, body) = page(&srv, &cookie, path).await;
    assert_eq!(status, 200);
    assert!(body.contains(&user_code), "{body}");

    let form = [("user_code", user_code.as_str()), ("decision", "approve")];
    let (status, _) = post(&srv, &cookie, "/device", "http://evil.example", &form).await;
    assert_eq!(status, 403);
    let (status, body) = post(&srv, &cookie, "/device", &srv.url, &form).await;
    assert_eq!(status, 200);
    assert!(body.contains("Approved"), "{body}");
    let poll = json!({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                      "device_code": device_code, "client_id": "tofupilot-cli"});
    let (status, token) = api(&srv, "/api/auth/device/token", poll).await;
    assert_eq!(status, 200, "{token}");
    assert!(token["access_token"].is_string());
    // A code is decided once.
    let (_, body) = post(&srv, &cookie, "/device", &srv.url, &form).await;
    assert!(!body.contains("Approved"), "{body}");

    // Denied: the CLI is told so.
    let (_, start) = api(
        &srv,
        "/api/auth/device/code",
        json!({"client_id": "tofupilot-cli"}),
    )
    .await;
    let code = start["user_code"].as_str().unwrap();
    let (_, body) = post(
        &srv,
        &cookie,
        "/device",
        &srv.url,
        &[("user_code", code), ("decision", "deny")],
    )
    .await;
    assert!(body.contains("Denied"), "{body}");
    let poll = json!({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                      "device_code": start["device_code"], "client_id": "tofupilot-cli"});
    let (status, answer) = api(&srv, "/api/auth/device/token", poll).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "access_denied", "{answer}");
}
