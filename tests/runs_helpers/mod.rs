//! Helpers shared by the run tests: request bodies, creating runs, counting rows.
#![allow(dead_code)]

use serde_json::{json, Value};
use tofulab::db::Sql;

use crate::common::{Resp, TestServer};

/// `2026-03-01T10:00:00Z` plus `secs` seconds, RFC 3339.
pub fn at(secs: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap();
    (base + chrono::Duration::seconds(secs))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A minimal valid run body: started at `at(0)`, ended five minutes later.
pub fn run_body(procedure_id: &str, serial: &str, part: &str) -> Value {
    json!({
        "serial_number": serial,
        "procedure_id": procedure_id,
        "part_number": part,
        "started_at": at(0),
        "ended_at": at(300),
        "outcome": "PASS",
    })
}

/// `base` with the keys of `extra` set (a `null` in `extra` removes the key).
pub fn with(mut base: Value, extra: Value) -> Value {
    let obj = base.as_object_mut().unwrap();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    base
}

/// POSTs a run and returns its id (asserting 200).
pub async fn create(srv: &TestServer, key: &str, body: Value) -> String {
    let r = srv.post("/api/v2/runs", key, body).await;
    r.expect(200)["id"].as_str().unwrap().to_string()
}

pub async fn post_run(srv: &TestServer, key: &str, body: Value) -> Resp {
    srv.post("/api/v2/runs", key, body).await
}

pub async fn get_run(srv: &TestServer, key: &str, id: &str) -> Value {
    srv.get(&format!("/api/v2/runs/{id}"), key)
        .await
        .expect(200)
        .clone()
}

/// `SELECT COUNT(*) …` straight on the database.
/// Rows in `table`.
pub async fn count_rows(srv: &TestServer, table: &'static str) -> i64 {
    let (n,): (i64,) = srv
        .db
        .read()
        .fetch_one(Sql::new("SELECT COUNT(*) FROM ").then(table))
        .await
        .unwrap();
    n
}

pub async fn count(srv: &TestServer, sql: &'static str) -> i64 {
    let (n,): (i64,) = srv.db.read().fetch_one(Sql::new(sql)).await.unwrap();
    n
}

/// The ids of a list response, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// `path?q`, with `limit=100` unless `q` sets a limit.
pub fn with_limit(path: &str, q: &str) -> String {
    if q.split('&').any(|p| p.starts_with("limit=")) {
        format!("{path}?{q}")
    } else {
        format!("{path}?limit=100&{q}")
    }
}

/// `POST /api/v2/attachments` (a standalone upload) → `(id, upload_url)`.
pub async fn initialize_upload(srv: &TestServer, key: &str, name: &str) -> (String, String) {
    let r = srv
        .post("/api/v2/attachments", key, json!({ "name": name }))
        .await;
    let body = r.expect(200);
    (
        body["id"].as_str().unwrap().to_string(),
        body["upload_url"].as_str().unwrap().to_string(),
    )
}

/// `POST /api/v2/runs/{run}/attachments` then PUT `bytes` to the upload URL → the id.
pub async fn attach_file(
    srv: &TestServer,
    key: &str,
    run: &str,
    name: &str,
    bytes: &[u8],
) -> String {
    let r = srv
        .post(
            &format!("/api/v2/runs/{run}/attachments"),
            key,
            json!({ "name": name }),
        )
        .await;
    let body = r.expect(200).clone();
    put_bytes(body["upload_url"].as_str().unwrap(), bytes).await;
    body["id"].as_str().unwrap().to_string()
}

/// PUTs `bytes` to a signed upload URL (asserting 200).
pub async fn put_bytes(url: &str, bytes: &[u8]) {
    let status = reqwest::Client::new()
        .put(url)
        .header("content-type", "text/plain")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}
