//! Helpers for the attachment and file tests: rows the API of this branch cannot create
//! yet (runs, units), byte-table counters, uploads over raw HTTP, and generated files.
#![allow(dead_code)]

use std::path::Path;

use sha2::{Digest, Sha256};
use tofulab::db::{ci_key, Id, Sql, Ts};

use crate::common::{TestOrg, TestServer};

/// The id of a seeded organization.
pub async fn org_id(srv: &TestServer, org: &TestOrg) -> Id {
    let station = Id::parse(&org.station_id).unwrap();
    srv.db.station_org(station).await.unwrap().unwrap()
}

/// A unit (with a part and revision of its own) inserted directly.
pub async fn insert_unit(srv: &TestServer, org: &TestOrg, serial: &str) -> Id {
    let org_id = org_id(srv, org).await;
    let (part, revision, unit) = (Id::new(), Id::new(), Id::new());
    let now = Ts::now();
    let mut tx = srv.db.begin().await.unwrap();
    let number = format!("P-{serial}");
    tx.execute(
        Sql::new(
            "INSERT INTO parts (id, org_id, number, number_key, name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(part)
        .bind(org_id)
        .bind(&number)
        .bind(ci_key(&number))
        .bind("Part")
        .bind(now),
    )
    .await
    .unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO revisions (id, org_id, part_id, number, number_key, created_at)
             VALUES ($1, $2, $3, 'A', 'a', $4)",
        )
        .bind(revision)
        .bind(org_id)
        .bind(part)
        .bind(now),
    )
    .await
    .unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO units (id, org_id, serial_number, serial_key, part_id, revision_id,
                                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(unit)
        .bind(org_id)
        .bind(serial)
        .bind(ci_key(serial))
        .bind(part)
        .bind(revision)
        .bind(now),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    unit
}

/// A run of the organization's seeded procedure on a new unit, inserted directly.
pub async fn insert_run(srv: &TestServer, org: &TestOrg) -> Id {
    let serial = format!("SN-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let unit = insert_unit(srv, org, &serial).await;
    insert_run_on(srv, org, unit).await
}

/// A run on `unit` of the organization's seeded procedure, inserted directly.
pub async fn insert_run_on(srv: &TestServer, org: &TestOrg, unit: Id) -> Id {
    let org_id = org_id(srv, org).await;
    let run = Id::new();
    let now = Ts::now();
    let mut tx = srv.db.begin().await.unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO runs (id, org_id, procedure_id, unit_id, revision_id, outcome,
                               started_at, ended_at, duration_us, created_at)
             SELECT $1, $2, $3, u.id, u.revision_id, 'PASS', $4, $4, 0, $4
             FROM units u WHERE u.id = $5",
        )
        .bind(run)
        .bind(org_id)
        .bind(Id::parse(&org.procedure_id).unwrap())
        .bind(now)
        .bind(unit),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    run
}

/// Runs one statement on the database (deletes the API of this branch does not offer).
pub async fn exec(srv: &TestServer, sql: Sql) -> u64 {
    let mut tx = srv.db.begin().await.unwrap();
    let n = tx.execute(sql).await.unwrap();
    tx.commit().await.unwrap();
    n
}

/// `(blobs, chunks)` rows in the whole database. With an object store
/// (`TOFULAB_TEST_BLOB_STORE`), the objects in the store count as the chunks the same
/// bytes would take in the database (after the deletion queue is drained, as the server's
/// sweep does within seconds), so the same assertions hold for both stores.
pub async fn byte_rows(srv: &TestServer) -> (i64, i64) {
    let mut r = srv.db.read();
    let (b,): (i64,) = r
        .fetch_one(Sql::new("SELECT COUNT(*) FROM blobs"))
        .await
        .unwrap();
    let (mut c,): (i64,) = r
        .fetch_one(Sql::new("SELECT COUNT(*) FROM blob_chunks"))
        .await
        .unwrap();
    if let Some(objects) = srv.db.objects() {
        srv.db.sweep_object_deletions().await.unwrap();
        let chunk = tofulab::db::blobs::CHUNK_SIZE as u64;
        for (_, size) in objects.list().await.unwrap() {
            c += size.div_ceil(chunk) as i64;
        }
    }
    (b, c)
}

/// The blob ids that hold an attachment's bytes (complete or being written).
pub async fn blobs_of(srv: &TestServer, attachment: &str) -> Vec<Id> {
    let rows: Vec<(Id,)> = srv
        .db
        .read()
        .fetch_all(
            Sql::new("SELECT id FROM blobs WHERE attachment_id = $1")
                .bind(Id::parse(attachment).unwrap()),
        )
        .await
        .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

/// Asserts that none of these blobs, nor any chunk of theirs, is left.
pub async fn assert_bytes_gone(srv: &TestServer, blobs: &[Id]) {
    assert!(!blobs.is_empty(), "the test should have stored bytes first");
    let mut q = Sql::new("SELECT COUNT(*) FROM blobs WHERE id IN ");
    q.push_tuple(blobs.iter().copied());
    let (b,): (i64,) = srv.db.read().fetch_one(q).await.unwrap();
    let mut q = Sql::new("SELECT COUNT(*) FROM blob_chunks WHERE blob_id IN ");
    q.push_tuple(blobs.iter().copied());
    let (c,): (i64,) = srv.db.read().fetch_one(q).await.unwrap();
    assert_eq!((b, c), (0, 0), "blobs/chunks left behind");
    if let Some(objects) = srv.db.objects() {
        srv.db.sweep_object_deletions().await.unwrap();
        let left = objects.list_keys().await.unwrap();
        for blob in blobs {
            let key = objects.key_for(*blob);
            assert!(!left.contains(&key), "object {key} left behind");
        }
    }
}

/// Does the attachment row still exist?
pub async fn attachment_exists(srv: &TestServer, id: &str) -> bool {
    srv.db
        .read()
        .fetch_optional::<(Id,)>(
            Sql::new("SELECT id FROM attachments WHERE id = $1").bind(Id::parse(id).unwrap()),
        )
        .await
        .unwrap()
        .is_some()
}

/// `POST /api/v2/attachments` → `(id, upload_url)`.
pub async fn initialize(srv: &TestServer, key: &str, name: &str) -> (String, String) {
    let r = srv
        .post(
            "/api/v2/attachments",
            key,
            serde_json::json!({ "name": name }),
        )
        .await;
    let body = r.expect(200);
    (
        body["id"].as_str().unwrap().to_string(),
        body["upload_url"].as_str().unwrap().to_string(),
    )
}

/// `PUT url` with `bytes` and no other header than the ones reqwest adds; the status.
pub async fn put(url: &str, bytes: Vec<u8>, content_type: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new().put(url).body(bytes);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap().status().as_u16()
}

/// `POST /api/v2/attachments/{id}/finalize` → the download URL.
pub async fn finalize(srv: &TestServer, key: &str, id: &str) -> String {
    let r = srv
        .call(
            reqwest::Method::POST,
            &format!("/api/v2/attachments/{id}/finalize"),
            Some(key),
            None,
        )
        .await;
    r.expect(200)["url"].as_str().unwrap().to_string()
}

/// `GET url` without auth → (status, headers, body).
pub async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// Deterministic pseudo-random bytes (xorshift), so files differ chunk to chunk.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..n]);
    }
    out
}

/// Writes `len` pattern bytes to `path` in 1 MiB pieces; returns their SHA-256 (hex).
pub fn write_pattern_file(path: &Path, len: usize, seed: u64) -> String {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut left = len;
    let mut piece = 0u64;
    while left > 0 {
        let n = left.min(1 << 20);
        let bytes = pattern(n, seed.wrapping_add(piece));
        hasher.update(&bytes);
        f.write_all(&bytes).unwrap();
        left -= n;
        piece += 1;
    }
    f.flush().unwrap();
    hex::encode(hasher.finalize())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of a file, read in pieces.
pub fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}
