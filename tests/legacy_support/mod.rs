//! Helpers for the legacy API and import tests: uploads over the v1 API, the exact v1
//! response shapes, OpenHTF records and a second procedure not linked to the station.
#![allow(dead_code)]

use serde_json::{json, Value};

use crate::common::{Resp, TestOrg, TestServer};

/// The sample OpenHTF record of the contract (`v1-openhtf-report.sample.json`).
pub const SAMPLE: &str = include_str!("../fixtures/openhtf/sample.json");
/// A record written by a real OpenHTF run (`tests/fixtures/openhtf/generate.py`).
pub const GENERATED: &str = include_str!("../fixtures/openhtf/generated.json");

/// `record` with its serial, procedure and part replaced (`None` removes the key).
/// Edited as text: a round trip through `serde_json::Value` would sort the keys, and
/// measurement order in the record matters.
pub fn record(src: &str, serial: &str, procedure: Option<&str>, part: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in src.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let member = |key: &str, value: Option<&str>| -> Option<String> {
            value.map(|v| format!("{indent}\"{key}\": {},", json!(v)))
        };
        let replaced = if trimmed.starts_with("\"dut_id\": ") {
            member("dut_id", Some(serial))
        } else if trimmed.starts_with("\"procedure_id\": ") && indent.len() == 2 {
            member("procedure_id", procedure)
        } else if trimmed.starts_with("\"part_number\": ") && indent.len() == 2 {
            member("part_number", part)
        } else {
            Some(line.to_string())
        };
        if let Some(l) = replaced {
            out.push(l);
        }
    }
    let text = out.join("\n");
    serde_json::from_str::<Value>(&text).expect("the edited record is JSON");
    text.into_bytes()
}

/// Uploads `bytes` as `name` through `POST /api/v1/uploads/initialize` and the signed
/// `PUT`; returns the upload id.
pub async fn upload(srv: &TestServer, key: &str, name: &str, bytes: Vec<u8>) -> String {
    let r = srv
        .post(
            "/api/v1/uploads/initialize",
            key,
            json!({"name": name, "mimeType": "application/json", "sizeBytes": bytes.len()}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let url = r.json["uploadUrl"].as_str().unwrap();
    let put = reqwest::Client::new()
        .put(url)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    id
}

/// Asserts a v1 success: the status, `Content-Type: application/json` exactly, and no
/// `error`/`errors` key.
#[track_caller]
pub fn v1_ok(r: &Resp) -> &Value {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(content_type(r), "application/json", "{}", r.text);
    if let Some(o) = r.json.as_object() {
        assert!(
            !o.contains_key("error") && !o.contains_key("errors"),
            "{}",
            r.text
        );
    }
    &r.json
}

/// Asserts a v1 error: the status, `Content-Type: application/json` exactly, and the
/// body `{"success": false, "error": {"message"}}`; returns the message, lower-cased.
#[track_caller]
pub fn v1_err(r: &Resp, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(content_type(r), "application/json", "{}", r.text);
    assert_eq!(r.json["success"], json!(false), "{}", r.text);
    let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "only success and error: {}", r.text);
    r.json["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {}", r.text))
        .to_lowercase()
}

pub fn content_type(r: &Resp) -> &str {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A procedure of `org` created with the user key (not linked to the station).
pub async fn unlinked_procedure(srv: &TestServer, org: &TestOrg, name: &str) -> String {
    let r = srv
        .post("/api/v2/procedures", &org.user_key, json!({"name": name}))
        .await;
    r.json["id"].as_str().unwrap().to_string()
}

/// The `identifier` of a procedure.
pub async fn identifier(srv: &TestServer, org: &TestOrg, procedure: &str) -> String {
    let r = srv
        .get(&format!("/api/v2/procedures/{procedure}"), &org.user_key)
        .await;
    r.json["identifier"].as_str().unwrap().to_string()
}

/// `GET /api/v2/runs/{id}` as JSON.
pub async fn get_run(srv: &TestServer, key: &str, id: &str) -> Value {
    let r = srv.get(&format!("/api/v2/runs/{id}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

/// Names of a JSON array of objects.
pub fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect()
}
