//! Attachment bytes in an S3-compatible object store (`--blob-store s3://…`), against a
//! real S3 server (moto, see tests/s3_support): uploads as single PUTs and multipart
//! uploads, ranged downloads, deletes through every path that deletes attachments, cut-off
//! and crashed uploads, presigned redirects, and `tofulab blobs migrate`.

mod common;
mod file_support;
mod s3_support;

use std::time::Duration;

use common::*;
use file_support::*;
use tofulab::db::objects::{ObjectBlobs, PART_SIZE};
use tofulab::db::{Id, Sql};
use tofulab::Settings;
use tokio::io::AsyncWriteExt;

/// A server whose attachment bytes go to a fresh prefix of the test bucket.
async fn server_on_s3(test: &str) -> Option<(TestServer, ObjectBlobs, String)> {
    let (store, endpoint) = s3_support::fresh_store(test).await?;
    let (db, dir) = fresh_db().await;
    let srv = TestServer::start_on(
        db.with_objects(store.clone()),
        dir,
        Settings::default(),
        None,
    )
    .await;
    Some((srv, store, endpoint))
}

/// The keys under the store's prefix once the deletion queue has been drained (what the
/// server's background sweep does every few seconds).
async fn objects_left(srv: &TestServer, store: &ObjectBlobs) -> Vec<String> {
    srv.db.sweep_object_deletions().await.unwrap();
    store.list_keys().await.unwrap()
}

/// The key prefix of the store's objects (each test has its own).
fn blobs_prefix(store: &ObjectBlobs) -> String {
    let any = store.key_for(Id::NIL);
    any.trim_end_matches(&Id::NIL.to_string()).to_string()
}

async fn chunk_rows(srv: &TestServer) -> i64 {
    let (n,): (i64,) = srv
        .db
        .read()
        .fetch_one(Sql::new("SELECT COUNT(*) FROM blob_chunks"))
        .await
        .unwrap();
    n
}

async fn store_key_of(srv: &TestServer, attachment: &str) -> Option<String> {
    let (key,): (Option<String>,) = srv
        .db
        .read()
        .fetch_one(
            Sql::new("SELECT b.store_key FROM blobs b JOIN attachments a ON a.blob_id = b.id WHERE a.id = $1")
                .bind(Id::parse(attachment).unwrap()),
        )
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn files_of_every_size_round_trip_through_the_object_store() {
    let Some((srv, store, endpoint)) = server_on_s3("round_trip").await else {
        return;
    };
    let org = srv.org("Lab").await;
    // Three parts (the last one short), one PUT, and an empty file.
    let sizes = [2 * PART_SIZE + 12_345, 1000, 0];
    let mut files = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let (id, url) = initialize(&srv, &org.user_key, &format!("f{i}.bin")).await;
        let bytes = pattern(*size, i as u64 + 1);
        assert_eq!(
            put(&url, bytes.clone(), Some("application/x-test")).await,
            200
        );
        let download = finalize(&srv, &org.user_key, &id).await;
        files.push((id, download, bytes));
    }
    assert_eq!(chunk_rows(&srv).await, 0, "no bytes in the database");
    let keys = objects_left(&srv, &store).await;
    assert_eq!(keys.len(), 3, "one object per file: {keys:?}");
    assert_eq!(
        s3_support::open_uploads(&endpoint, &blobs_prefix(&store)).await,
        0
    );

    for (id, download, bytes) in &files {
        let key = store_key_of(&srv, id).await.expect("bytes in the store");
        assert!(keys.contains(&key), "{key} listed");
        let (status, headers, body) = get(download).await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), bytes.len());
        assert!(body == *bytes, "the bytes come back unchanged");
        assert_eq!(
            headers["etag"].to_str().unwrap(),
            format!("\"{}\"", sha256_hex(bytes))
        );
        assert_eq!(headers["content-type"], "application/x-test");
    }

    // A range across the first part boundary comes from the store as asked.
    let (_, download, bytes) = &files[0];
    let (first, last) = (PART_SIZE - 10, PART_SIZE + 9);
    let r = reqwest::Client::new()
        .get(download)
        .header("range", format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes {first}-{last}/{}", bytes.len())
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &bytes[first..=last]);

    // A re-upload replaces the bytes; the old object goes.
    let (id, _, _) = &files[1];
    let old_key = store_key_of(&srv, id).await.unwrap();
    let (_, url) = (id.clone(), upload_url_of(&srv, &org, id).await);
    assert_eq!(put(&url, b"new bytes".to_vec(), None).await, 200);
    let keys = objects_left(&srv, &store).await;
    assert!(!keys.contains(&old_key), "replaced object deleted");
    assert_eq!(keys.len(), 3);
}

/// A fresh signed upload URL for an existing attachment (the server's own signer).
async fn upload_url_of(srv: &TestServer, _org: &TestOrg, id: &str) -> String {
    tofulab::routes::attachments::signed_url(&srv.state, &srv.url, Id::parse(id).unwrap(), "PUT")
}

#[tokio::test]
async fn deleting_attachments_runs_units_procedures_and_organizations_deletes_their_objects() {
    let Some((srv, store, _)) = server_on_s3("deletes").await else {
        return;
    };
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let upload = |target: String, name: &'static str| {
        let c = &c;
        async move {
            let created = c
                .runs()
                .create_attachment()
                .id(target)
                .name(name)
                .send()
                .await
                .unwrap();
            assert_eq!(
                put(&created.upload_url, pattern(PART_SIZE + 7, 9), None).await,
                200
            );
            created.id
        }
    };

    // Directly.
    let (a, a_url) = initialize(&srv, &org.user_key, "a.bin").await;
    assert_eq!(put(&a_url, vec![1u8; 100], None).await, 200);
    assert_eq!(objects_left(&srv, &store).await.len(), 1);
    srv.delete(&format!("/api/v2/attachments?ids={a}"), &org.user_key)
        .await
        .expect(200);
    assert_eq!(objects_left(&srv, &store).await, Vec::<String>::new());

    // With a run, a unit (and its runs), a procedure.
    let run = insert_run(&srv, &org).await;
    upload(run.to_string(), "run.bin").await;
    let unit = insert_unit(&srv, &org, "SN-S3").await;
    let unit_run = insert_run_on(&srv, &org, unit).await;
    upload(unit_run.to_string(), "unit-run.bin").await;
    assert_eq!(objects_left(&srv, &store).await.len(), 2);
    exec(&srv, Sql::new("DELETE FROM runs WHERE id = $1").bind(run)).await;
    assert_eq!(objects_left(&srv, &store).await.len(), 1);
    exec(&srv, Sql::new("DELETE FROM units WHERE id = $1").bind(unit)).await;
    assert_eq!(objects_left(&srv, &store).await, Vec::<String>::new());
    let run = insert_run(&srv, &org).await;
    upload(run.to_string(), "proc.bin").await;
    c.procedures()
        .delete()
        .id(&org.procedure_id)
        .send()
        .await
        .unwrap();
    assert_eq!(objects_left(&srv, &store).await, Vec::<String>::new());

    // With the whole organization.
    let (_, url) = initialize(&srv, &org.user_key, "org.bin").await;
    assert_eq!(put(&url, vec![2u8; 10], None).await, 200);
    assert_eq!(objects_left(&srv, &store).await.len(), 1);
    let org_id = org_id(&srv, &org).await;
    exec(
        &srv,
        Sql::new("DELETE FROM organizations WHERE id = $1").bind(org_id),
    )
    .await;
    assert_eq!(objects_left(&srv, &store).await, Vec::<String>::new());
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_no_object_and_no_open_upload() {
    let Some((srv, store, endpoint)) = server_on_s3("cut_off").await else {
        return;
    };
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "cut.bin").await;
    let path_and_query = &upload_url[srv.url.len()..];
    let addr = srv.url.trim_start_matches("http://").to_string();
    let total = 3 * PART_SIZE;
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head =
        format!("PUT {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {total}\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&pattern(PART_SIZE + PART_SIZE / 2, 3))
        .await
        .unwrap();
    sock.flush().await.unwrap();
    // The first part reached the store as a multipart upload…
    let prefix = &blobs_prefix(&store);
    eventually("a multipart upload open", || async {
        s3_support::open_uploads(&endpoint, prefix).await == 1
    })
    .await;
    // …and goes away with the client: aborted, no object, no blob.
    drop(sock);
    eventually("upload aborted", || async {
        objects_left(&srv, &store).await.is_empty()
            && s3_support::open_uploads(&endpoint, prefix).await == 0
            && byte_rows(&srv).await == (0, 0)
    })
    .await;
    let url =
        tofulab::routes::attachments::download_url(&srv.state, &srv.url, Id::parse(&id).unwrap());
    Resp::from(reqwest::get(&url).await.unwrap())
        .await
        .expect(404);
}

#[tokio::test]
async fn an_upload_a_crash_left_open_is_aborted_by_the_sweep() {
    let Some((srv, store, endpoint)) = server_on_s3("crash").await else {
        return;
    };
    let org = srv.org("Lab").await;
    let (id, _) = initialize(&srv, &org.user_key, "crashed.bin").await;
    // What a crash mid-upload leaves: a `writing` blob naming an open multipart upload
    // with a part in it, idle for longer than the sweep's limit.
    let blob = Id::new();
    let key = store.key_for(blob);
    let upload = store.start_upload(&key, "").await.unwrap();
    store
        .put_part(&key, &upload, 0, pattern(PART_SIZE, 1).into())
        .await
        .unwrap();
    exec(
        &srv,
        Sql::new(
            "INSERT INTO blobs (id, attachment_id, state, touched_at, store_key, upload_id)
             VALUES ($1, $2, 'writing', $3, $4, $5)",
        )
        .bind(blob)
        .bind(Id::parse(&id).unwrap())
        .bind(tofulab::db::blobs::cutoff(Duration::from_secs(3600)))
        .bind(&key)
        .bind(&upload),
    )
    .await;
    let prefix = blobs_prefix(&store);
    assert_eq!(s3_support::open_uploads(&endpoint, &prefix).await, 1);
    srv.db
        .sweep_uploads(Duration::from_secs(86400))
        .await
        .unwrap();
    assert!(objects_left(&srv, &store).await.is_empty());
    assert_eq!(s3_support::open_uploads(&endpoint, &prefix).await, 0);
    assert_eq!(byte_rows(&srv).await, (0, 0));
}

#[tokio::test]
async fn downloads_can_redirect_to_presigned_store_urls() {
    let Some((store, _)) = s3_support::fresh_store("redirect").await else {
        return;
    };
    let (db, dir) = fresh_db().await;
    let srv = TestServer::start_on(
        db.with_objects(store.with_redirect(true)),
        dir,
        Settings::default(),
        None,
    )
    .await;
    let org = srv.org("Lab").await;
    let (id, url) = initialize(&srv, &org.user_key, "r.bin").await;
    let bytes = pattern(5000, 4);
    assert_eq!(put(&url, bytes.clone(), Some("text/plain")).await, 200);
    let download = finalize(&srv, &org.user_key, &id).await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow.get(&download).send().await.unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert_eq!(
        r.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256_hex(&bytes))
    );
    // Followed (as the official clients do), the store serves the bytes and ranges.
    let (status, _, body) = get(&download).await;
    assert_eq!((status, body == bytes), (200, true));
    let r = reqwest::Client::new()
        .get(&download)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &bytes[10..20]);
}

#[tokio::test]
async fn blobs_migrate_moves_database_bytes_to_the_store_verified_and_resumable() {
    let Some((store, _)) = s3_support::fresh_store("migrate").await else {
        return;
    };
    // Bytes written with the database store…
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let mut files = Vec::new();
    for (i, size) in [3 * (1 << 20) + 5, PART_SIZE * 2 + 1, 0, 77]
        .iter()
        .enumerate()
    {
        let (id, url) = initialize(&srv, &org.user_key, &format!("m{i}.bin")).await;
        let bytes = pattern(*size, 40 + i as u64);
        assert_eq!(put(&url, bytes.clone(), Some("image/png")).await, 200);
        files.push((finalize(&srv, &org.user_key, &id).await, bytes));
    }
    assert!(chunk_rows(&srv).await > 0);

    // …move to the store, every one checked, chunks gone, downloads unchanged.
    let report = srv.db.migrate_blobs(&store, |_| {}).await.unwrap();
    assert_eq!((report.moved, report.gone), (4, 0));
    assert_eq!(
        report.bytes,
        files.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    assert_eq!(chunk_rows(&srv).await, 0);
    assert_eq!(store.list_keys().await.unwrap().len(), 4);
    let srv_s3 = TestServer::start_on(
        srv.db.clone().with_objects(store.clone()),
        None,
        Settings::default(),
        None,
    )
    .await;
    for (url, bytes) in &files {
        // The signed URL names the first server; the second serves the same path.
        let url = url.replacen(&srv.url, &srv_s3.url, 1);
        let (status, headers, body) = get(&url).await;
        assert_eq!((status, body == *bytes), (200, true), "{url}");
        assert_eq!(headers["content-type"], "image/png");
    }
    // Resumable: a second run finds nothing left to move.
    let again = srv.db.migrate_blobs(&store, |_| {}).await.unwrap();
    assert_eq!(again.moved, 0);

    // A blob whose recorded digest does not match its bytes stays where it is.
    let (id, url) = initialize(&srv, &org.user_key, "bad.bin").await;
    assert_eq!(put(&url, vec![5u8; 50], None).await, 200);
    exec(
        &srv,
        Sql::new("UPDATE blobs SET sha256 = 'bad' WHERE attachment_id = $1")
            .bind(Id::parse(&id).unwrap()),
    )
    .await;
    let err = srv.db.migrate_blobs(&store, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert_eq!(chunk_rows(&srv).await, 1, "left in the database");
    assert_eq!(store.list_keys().await.unwrap().len(), 4, "no stray copy");
}
