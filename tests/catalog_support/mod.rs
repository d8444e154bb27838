//! Helpers shared by the catalog tests (parts, revisions, batches, units, unit children):
//! creating catalog entities over HTTP, and writing the rows other resources own (runs,
//! uploads) straight into the schema so catalog rules that read them can be tested on
//! their own.
#![allow(dead_code)]

use serde_json::{json, Value};
use tofulab::db::{Id, Sql, Ts};

use crate::common::{Resp, TestOrg, TestServer};

/// `POST /v2/parts`, expecting 200; returns the id.
pub async fn part(srv: &TestServer, key: &str, number: &str) -> String {
    id_of(
        srv.post("/api/v2/parts", key, json!({ "number": number }))
            .await,
    )
}

/// `POST /v2/parts/{part}/revisions`, expecting 200; returns the id.
pub async fn revision(srv: &TestServer, key: &str, part: &str, number: &str) -> String {
    id_of(
        srv.post(
            &format!("/api/v2/parts/{}/revisions", enc(part)),
            key,
            json!({ "number": number }),
        )
        .await,
    )
}

/// `POST /v2/units`, expecting 200; returns the id.
pub async fn unit(srv: &TestServer, key: &str, serial: &str, part: &str, rev: &str) -> String {
    id_of(
        srv.post(
            "/api/v2/units",
            key,
            json!({ "serial_number": serial, "part_number": part, "revision_number": rev }),
        )
        .await,
    )
}

/// A part with revision `A` and one unit on it.
pub async fn part_with_unit(
    srv: &TestServer,
    key: &str,
    part_number: &str,
    serial: &str,
) -> String {
    part(srv, key, part_number).await;
    revision(srv, key, part_number, "A").await;
    unit(srv, key, serial, part_number, "A").await
}

/// `POST /v2/batches`, expecting 200; returns the id.
pub async fn batch(srv: &TestServer, key: &str, number: &str) -> String {
    id_of(
        srv.post("/api/v2/batches", key, json!({ "number": number }))
            .await,
    )
}

#[track_caller]
pub fn id_of(r: Resp) -> String {
    r.expect(200)["id"]
        .as_str()
        .expect("id in response")
        .to_string()
}

/// Percent-encodes a path segment the way the Rust client does.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The ids of the `data` items of a list response.
#[track_caller]
pub fn ids(r: &Resp) -> Vec<String> {
    r.expect(200)["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// The values of `key` of the `data` items of a list response.
#[track_caller]
pub fn field(r: &Resp, key: &str) -> Vec<String> {
    r.expect(200)["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

/// Walks every page of `path` (which must not contain `limit`/`cursor`) with `limit`,
/// checking the paging contract; returns the ids in order.
pub async fn all_pages(srv: &TestServer, key: &str, path: &str, limit: usize) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let url = match cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = srv.get(&url, key).await;
        let page = ids(&r);
        assert!(page.len() <= limit);
        out.extend(page);
        let meta = &r.json["meta"];
        if meta["has_more"] == json!(true) {
            cursor = Some(
                meta["next_cursor"]
                    .as_i64()
                    .expect("next_cursor when has_more"),
            );
        } else {
            assert_eq!(meta["next_cursor"], Value::Null);
            break;
        }
    }
    out
}

/// The organization id of a test org (through its user).
pub async fn org_id(srv: &TestServer, org: &TestOrg) -> Id {
    let (id,): (Id,) = srv
        .db
        .read()
        .fetch_one(
            Sql::new("SELECT org_id FROM users WHERE email_key = $1")
                .bind(org.user_email.to_lowercase()),
        )
        .await
        .expect("org of test user");
    id
}

/// Writes a run of `unit_id` under `procedure_id` straight into the schema, as
/// `runs.create` would (on the unit's current revision and batch). Returns its id.
pub async fn insert_run(
    srv: &TestServer,
    unit_id: &str,
    procedure_id: &str,
    outcome: &str,
    started_at: &str,
) -> String {
    let unit = Id::parse(unit_id).unwrap();
    let (org, revision, batch): (Id, Id, Option<Id>) = srv
        .db
        .read()
        .fetch_one(
            Sql::new("SELECT org_id, revision_id, batch_id FROM units WHERE id = $1").bind(unit),
        )
        .await
        .expect("unit of run");
    let started = Ts::parse_rfc3339(started_at).unwrap();
    let ended = Ts::from_micros(started.micros() + 90_000_000).unwrap();
    let id = Id::new();
    let mut tx = srv.db.begin().await.unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO runs (id, org_id, procedure_id, unit_id, revision_id, batch_id, outcome,
                started_at, ended_at, duration_us, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(org)
        .bind(Id::parse(procedure_id).unwrap())
        .bind(unit)
        .bind(revision)
        .bind(batch)
        .bind(outcome)
        .bind(started)
        .bind(ended)
        .bind(90_000_000i64)
        .bind(Ts::now()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id.to_string()
}

/// Marks `unit_id` as created during `run_id` (what `runs.create` does for new units).
pub async fn set_created_during(srv: &TestServer, unit_id: &str, run_id: &str) {
    let mut tx = srv.db.begin().await.unwrap();
    tx.execute(
        Sql::new("UPDATE units SET created_during_run_id = $1 WHERE id = $2")
            .bind(Id::parse(run_id).unwrap())
            .bind(Id::parse(unit_id).unwrap()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Writes an upload (attachment row) of the org straight into the schema, as
/// `attachments.initialize` would; `with_bytes` also records a stored blob.
pub async fn insert_upload(
    srv: &TestServer,
    org: &TestOrg,
    name: &str,
    with_bytes: bool,
) -> String {
    let org = org_id(srv, org).await;
    let id = Id::new();
    let mut tx = srv.db.begin().await.unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO attachments (id, org_id, name, content_type, size, created_at)
             VALUES ($1, $2, $3, 'text/plain', 5, $4)",
        )
        .bind(id)
        .bind(org)
        .bind(name)
        .bind(Ts::now()),
    )
    .await
    .unwrap();
    if with_bytes {
        let blob = Id::new();
        tx.execute(
            Sql::new(
                "INSERT INTO blobs (id, attachment_id, state, size, touched_at)
                 VALUES ($1, $2, 'complete', 5, $3)",
            )
            .bind(blob)
            .bind(id)
            .bind(Ts::now()),
        )
        .await
        .unwrap();
        tx.execute(
            Sql::new("INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, 0, $2)")
                .bind(blob)
                .bind(b"hello".to_vec()),
        )
        .await
        .unwrap();
        tx.execute(
            Sql::new("UPDATE attachments SET blob_id = $1 WHERE id = $2")
                .bind(blob)
                .bind(id),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    id.to_string()
}

/// How many rows of `table` have `col = id`.
pub async fn count_where(srv: &TestServer, table: &str, col: &str, id: &str) -> i64 {
    // `Sql` takes only static text; a test's own table and column names are safe to leak.
    let sql: &'static str =
        Box::leak(format!("SELECT COUNT(*) FROM {table} WHERE {col} = $1").into_boxed_str());
    let (n,): (i64,) = srv
        .db
        .read()
        .fetch_one(Sql::new(sql).bind(Id::parse(id).unwrap()))
        .await
        .unwrap();
    n
}

/// `linked_at` of an upload is set.
pub async fn upload_linked(srv: &TestServer, id: &str) -> bool {
    let (linked,): (Option<Ts>,) = srv
        .db
        .read()
        .fetch_one(
            Sql::new("SELECT linked_at FROM attachments WHERE id = $1")
                .bind(Id::parse(id).unwrap()),
        )
        .await
        .unwrap();
    linked.is_some()
}

/// `POST /v2/runs` with `fields` merged over a passing 90-second run of `procedure_id`
/// starting at `started_at`; expects 200 and returns the run id.
pub async fn create_run(
    srv: &TestServer,
    key: &str,
    procedure_id: &str,
    started_at: &str,
    fields: Value,
) -> String {
    let started = Ts::parse_rfc3339(started_at).unwrap();
    let ended = Ts::from_micros(started.micros() + 90_000_000).unwrap();
    let mut body = json!({
        "procedure_id": procedure_id,
        "outcome": "PASS",
        "started_at": started.to_string(),
        "ended_at": ended.to_string(),
    });
    for (k, v) in fields.as_object().expect("fields object") {
        body[k] = v.clone();
    }
    id_of(srv.post("/api/v2/runs", key, body).await)
}
