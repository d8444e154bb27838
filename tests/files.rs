//! Signed file transfer (BEHAVIOR.md §10): uploads with the official client helpers and
//! the Python client's way (bare PUT, no Content-Type), downloads, signatures, expiry,
//! size limits, interrupted uploads, re-uploads, ranges, ETag and HEAD.

mod common;
mod file_support;

use std::time::Duration;

use common::*;
use file_support::*;
use serde_json::json;
use tofulab::db::blobs::STALE_WRITING;
use tofulab::db::{Id, Sql, Ts};
use tofulab::Settings;
use tokio::io::AsyncWriteExt;

/// Uploads `path` with the official run helper, downloads it with the official helper
/// from the finalize URL, and checks the bytes by SHA-256 and the recorded size.
async fn round_trip_on_run(
    srv: &TestServer,
    key: &str,
    run: Id,
    path: &std::path::Path,
    expected: &str,
) {
    let len = std::fs::metadata(path).unwrap().len() as i64;
    let c = srv.client(key);
    let id = c
        .runs()
        .attachments()
        .upload(&run.to_string(), path)
        .await
        .unwrap();
    let listed = srv.db.attachments_of_runs(&[run]).await.unwrap();
    let a = listed.iter().find(|a| a.id.to_string() == id).unwrap();
    assert_eq!(a.size, Some(len));
    assert!(a.has_bytes);

    let url = c.attachments().finalize().id(&id).send().await.unwrap().url;
    let dest = path.with_extension("downloaded");
    c.runs().attachments().download(&url, &dest).await.unwrap();
    assert_eq!(sha256_file(&dest), expected, "{} bytes", len);
    std::fs::remove_file(&dest).unwrap();
}

#[tokio::test]
async fn official_helpers_round_trip_small_and_medium_files() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = insert_run(&srv, &org).await;
    let dir = tempfile::tempdir().unwrap();

    for (name, len) in [("empty.txt", 0), ("one.bin", 1), ("five.bin", 5 << 20)] {
        let path = dir.path().join(name);
        let sha = write_pattern_file(&path, len, len as u64);
        round_trip_on_run(&srv, &org.station_key, run, &path, &sha).await;
    }
    // 5 MiB is exactly five chunks; the 1-byte file one; the empty file none.
    assert_eq!(byte_rows(&srv).await, (3, 6));

    // The content type comes from the name (the helper guesses it), the empty file
    // answers 200 with Content-Length 0.
    let listed = srv.db.attachments_of_runs(&[run]).await.unwrap();
    assert_eq!(listed[0].content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        listed[1].content_type.as_deref(),
        Some("application/octet-stream")
    );
    let url = tofulab::routes::attachments::download_url(&srv.state, &srv.url, listed[0].id);
    let (status, headers, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], "0");
    assert!(body.is_empty());

    // The unit helper too.
    insert_unit(&srv, &org, "SN-FILES").await;
    let path = dir.path().join("unit-cal.csv");
    let expected = write_pattern_file(&path, 1_234_567, 9);
    let c = srv.client(&org.user_key);
    let id = c
        .units()
        .attachments()
        .upload("sn-files", &path)
        .await
        .unwrap();
    let url = c.attachments().finalize().id(&id).send().await.unwrap().url;
    let dest = dir.path().join("unit-cal.downloaded");
    c.units().attachments().download(&url, &dest).await.unwrap();
    assert_eq!(sha256_file(&dest), expected);
    let (_, headers, _) = get(&url).await;
    assert_eq!(headers["content-type"], "text/csv");
}

/// 300 MiB through the official helpers (which hold the file in memory client-side; the
/// server streams it in 1 MiB chunks).
#[tokio::test]
async fn official_helpers_round_trip_300_mib() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = insert_run(&srv, &org).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("waveforms.bin");
    let sha = write_pattern_file(&path, 300 << 20, 300);
    round_trip_on_run(&srv, &org.user_key, run, &path, &sha).await;
    assert_eq!(byte_rows(&srv).await, (1, 300));
}

#[tokio::test]
async fn python_style_put_without_content_type_answers_exactly_200() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "raw_data").await;
    let bytes = pattern(70_000, 1);

    let r = reqwest::Client::new()
        .put(&upload_url)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["size"], json!(70_000));
    assert_eq!(body["sha256"], json!(sha256_hex(&bytes)));
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&bytes)));

    let url = finalize(&srv, &org.user_key, &id).await;
    let (status, headers, got) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-length"], "70000");
    assert_eq!(got, bytes);
}

#[tokio::test]
async fn wrong_tampered_or_misused_signatures_are_403() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "a.txt").await;
    assert_eq!(put(&upload_url, b"abc".to_vec(), None).await, 200);
    let download = finalize(&srv, &org.user_key, &id).await;

    let flip = |url: &str| {
        let last = url.chars().last().unwrap();
        let swapped = if last == '0' { '1' } else { '0' };
        format!("{}{swapped}", &url[..url.len() - 1])
    };
    let tamper_expiry = |url: &str| {
        let start = url.find("expires=").unwrap() + "expires=".len();
        let end = start + url[start..].find('&').unwrap();
        let expires: i64 = url[start..end].parse().unwrap();
        format!("{}{}{}", &url[..start], expires + 3600, &url[end..])
    };
    let base = format!("{}/files/{id}", srv.url);
    let bad_urls = [
        flip(&download),
        tamper_expiry(&download),
        base.clone(),
        format!("{base}?expires=123"),
        format!("{base}?signature=abcd"),
        format!("{base}?expires=soon&signature=abcd"),
        // The upload URL is not a download URL.
        upload_url.clone(),
    ];
    for url in &bad_urls {
        let r = Resp::from(reqwest::get(url).await.unwrap()).await;
        r.expect(403);
        assert!(r.message().contains("signature"), "{url}: {}", r.text);
    }
    // …and the download URL is not an upload URL.
    for url in [
        flip(&upload_url),
        tamper_expiry(&upload_url),
        download.clone(),
    ] {
        let r = Resp::from(
            reqwest::Client::new()
                .put(&url)
                .body("evil")
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.expect(403);
    }
    // Another id's signature does not open this one.
    let (other, _) = initialize(&srv, &org.user_key, "b.txt").await;
    let other_url = download.replace(&id, &other);
    Resp::from(reqwest::get(&other_url).await.unwrap())
        .await
        .expect(403);

    // Nothing was changed by the refused uploads.
    assert_eq!(get(&download).await.2, b"abc");

    // HEAD answers 403 too (without a body).
    let r = reqwest::Client::new()
        .head(flip(&download))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn unknown_or_unuploaded_files_are_404() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let ghost = Id::new();
    let get_url = tofulab::routes::attachments::download_url(&srv.state, &srv.url, ghost);
    let put_url = tofulab::routes::attachments::signed_url(&srv.state, &srv.url, ghost, "PUT");
    let r = Resp::from(reqwest::get(&get_url).await.unwrap()).await;
    r.expect(404);
    let r = Resp::from(
        reqwest::Client::new()
            .put(&put_url)
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(404);
    assert_eq!(byte_rows(&srv).await, (0, 0));

    // Initialized but nothing uploaded yet: the download URL is 404.
    let (id, upload_url) = initialize(&srv, &org.user_key, "later.txt").await;
    let url =
        tofulab::routes::attachments::download_url(&srv.state, &srv.url, Id::parse(&id).unwrap());
    Resp::from(reqwest::get(&url).await.unwrap())
        .await
        .expect(404);

    // Deleted: its upload URL is 404 and stores nothing.
    srv.delete(&format!("/api/v2/attachments?ids={id}"), &org.user_key)
        .await
        .expect(200);
    assert_eq!(put(&upload_url, b"late".to_vec(), None).await, 404);
    assert_eq!(byte_rows(&srv).await, (0, 0));

    // A malformed id in the path is a 400.
    let r = Resp::from(
        reqwest::get(format!(
            "{}/files/not-an-id?expires=1&signature=00",
            srv.url
        ))
        .await
        .unwrap(),
    )
    .await;
    r.expect(400);
}

#[tokio::test]
async fn expired_urls_are_403() {
    let settings = Settings {
        signed_url_ttl: Duration::ZERO,
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "a.txt").await;
    // A zero lifetime expires at the next second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = Resp::from(
        reqwest::Client::new()
            .put(&upload_url)
            .body("late")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(403);
    assert!(r.message().contains("expired"), "{}", r.text);
    assert_eq!(byte_rows(&srv).await, (0, 0));

    // A genuinely signed download URL whose time has passed.
    let id = Id::parse(&id).unwrap();
    let past = chrono::Utc::now().timestamp() - 10;
    let sig = srv.state.signer.sign(id, "GET", past);
    let url = format!("{}/files/{id}?expires={past}&signature={sig}", srv.url);
    let r = Resp::from(reqwest::get(&url).await.unwrap()).await;
    r.expect(403);
    assert!(r.message().contains("expired"), "{}", r.text);
}

/// A request body that yields `pieces` of `piece` bytes each, then stops.
fn streamed_body(pieces: usize, piece: usize) -> reqwest::Body {
    let s = futures_util::stream::iter(
        (0..pieces).map(move |i| Ok::<_, std::io::Error>(pattern(piece, i as u64))),
    );
    reqwest::Body::wrap_stream(s)
}

#[tokio::test]
async fn oversize_uploads_are_413_and_leave_nothing() {
    let max = 3u64 << 20;
    let settings = Settings {
        max_upload_size: max,
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "big.bin").await;

    // Declared too large: refused before reading.
    let r = Resp::from(
        reqwest::Client::new()
            .put(&upload_url)
            .body(vec![0u8; (max + 1) as usize])
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(413);
    assert!(r.message().contains(&max.to_string()), "{}", r.text);

    // Streamed without a length: refused once it passes the limit, after chunks were
    // written; the partial blob is deleted.
    let r = Resp::from(
        reqwest::Client::new()
            .put(&upload_url)
            .body(streamed_body(49, 64 << 10))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(413);
    assert_eq!(byte_rows(&srv).await, (0, 0));

    // Exactly the limit is fine, streamed or not.
    let r = reqwest::Client::new()
        .put(&upload_url)
        .body(streamed_body(48, 64 << 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(byte_rows(&srv).await, (1, 3));

    // A later oversize attempt leaves the stored file alone.
    let r = Resp::from(
        reqwest::Client::new()
            .put(&upload_url)
            .body(streamed_body(60, 64 << 10))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(413);
    assert_eq!(byte_rows(&srv).await, (1, 3));
    let url = finalize(&srv, &org.user_key, &id).await;
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, max);
}

#[tokio::test]
async fn reuploading_replaces_the_bytes_and_deletes_the_old_ones() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "v.bin").await;
    let first = pattern((3 << 20) + 17, 1);
    assert_eq!(
        put(&upload_url, first.clone(), Some("application/x-first")).await,
        200
    );
    let old_blobs = blobs_of(&srv, &id).await;
    let url = finalize(&srv, &org.user_key, &id).await;
    assert_eq!(get(&url).await.2, first);

    let second = pattern(1000, 2);
    assert_eq!(put(&upload_url, second.clone(), None).await, 200);
    assert_bytes_gone(&srv, &old_blobs).await;
    assert_eq!(byte_rows(&srv).await, (1, 1));
    let (status, headers, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body, second);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256_hex(&second))
    );
    let listed: Vec<(Option<i64>, Option<String>)> = srv
        .db
        .read()
        .fetch_all(
            Sql::new("SELECT size, sha256 FROM attachments WHERE id = $1")
                .bind(Id::parse(&id).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(listed[0], (Some(1000), Some(sha256_hex(&second))));
}

#[tokio::test]
async fn ranges_etag_and_head() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "scope.bin").await;
    let len = (3 << 20) + 5;
    let bytes = pattern(len, 42);
    assert_eq!(
        put(&upload_url, bytes.clone(), Some("image/png")).await,
        200
    );
    let url = finalize(&srv, &org.user_key, &id).await;
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let http = reqwest::Client::new();

    let ranged = |range: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(&url).header("range", range).send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.bytes().await.unwrap().to_vec())
        }
    };
    let mib = 1usize << 20;
    for (range, first, last) in [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        // Across a chunk boundary, and spanning a whole chunk.
        ("bytes=1048570-1048580", mib - 6, mib + 4),
        ("bytes=1048000-3145000", 1_048_000, 3_145_000),
        ("bytes=3145700-", 3_145_700, len - 1),
        ("bytes=-7", len - 7, len - 1),
        ("bytes=3145000-99999999", 3_145_000, len - 1),
    ] {
        let (status, headers, body) = ranged(range).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            headers["content-range"].to_str().unwrap(),
            format!("bytes {first}-{last}/{len}"),
            "{range}"
        );
        assert_eq!(
            headers["content-length"].to_str().unwrap(),
            (last - first + 1).to_string()
        );
        assert_eq!(headers["etag"].to_str().unwrap(), etag);
        assert_eq!(body, &bytes[first..=last], "{range}");
    }

    // Unsatisfiable: 416 with the size; several ranges or a malformed one: the whole file.
    let (status, headers, body) = ranged("bytes=3145733-").await;
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"].to_str().unwrap(),
        format!("bytes */{len}")
    );
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        err["message"].is_string() && err["code"].is_string(),
        "{err}"
    );
    for range in ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2"] {
        let (status, _, body) = ranged(range).await;
        assert_eq!(status, 200, "{range}");
        assert_eq!(body.len(), len, "{range}");
    }

    // If-Range with an old validator: the whole (changed) file.
    let r = http
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);

    // If-None-Match with the current ETag: 304, no body.
    let r = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = http
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // HEAD: the headers of a GET, no body.
    let r = http.head(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.bytes().await.unwrap().is_empty());
    let r = http
        .head(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-length"], "100");
}

/// The unit an upload is written in: a chunk row, or a part of the object store's
/// multipart upload.
fn piece_size(srv: &TestServer) -> usize {
    match srv.db.objects() {
        Some(_) => tofulab::db::objects::PART_SIZE,
        None => tofulab::db::blobs::CHUNK_SIZE,
    }
}

/// Whether an upload in progress has written at least two pieces: two chunk rows, or (in
/// an object store, where parts are not listed as objects) a multipart upload recorded
/// on its blob, which happens as its first part is written.
async fn pieces_written(srv: &TestServer) -> bool {
    if srv.db.objects().is_some() {
        let (n,): (i64,) = srv
            .db
            .read()
            .fetch_one(Sql::new(
                "SELECT COUNT(*) FROM blobs WHERE upload_id IS NOT NULL",
            ))
            .await
            .unwrap();
        n > 0
    } else {
        byte_rows(srv).await.1 >= 2
    }
}

#[tokio::test]
async fn a_client_that_disconnects_midway_leaves_nothing() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "cut.bin").await;
    let path_and_query = &upload_url[srv.url.len()..];
    let addr = srv.url.trim_start_matches("http://").to_string();

    let piece = piece_size(&srv);
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
        5 * piece
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&pattern(5 * piece / 2, 3)).await.unwrap();
    sock.flush().await.unwrap();
    // Pieces of the partial upload reach storage…
    eventually("pieces written", || async { pieces_written(&srv).await }).await;
    // …and go away with the client.
    drop(sock);
    eventually("partial blob deleted", || async {
        byte_rows(&srv).await == (0, 0)
    })
    .await;
    let url =
        tofulab::routes::attachments::download_url(&srv.state, &srv.url, Id::parse(&id).unwrap());
    Resp::from(reqwest::get(&url).await.unwrap())
        .await
        .expect(404);
}

#[tokio::test]
async fn deleting_an_attachment_mid_upload_stops_the_upload() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "racing.bin").await;

    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let upload = tokio::spawn(
        reqwest::Client::new()
            .put(&upload_url)
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    let piece = piece_size(&srv);
    for i in 0..3 {
        tx.send(pattern(piece, i)).await.unwrap();
    }
    eventually("pieces written", || async { pieces_written(&srv).await }).await;
    srv.delete(&format!("/api/v2/attachments?ids={id}"), &org.user_key)
        .await
        .expect(200);
    // The next chunk finds its blob gone: the upload ends with 404.
    for i in 3..5 {
        if tx.send(pattern(piece, i)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let r = Resp::from(upload.await.unwrap().unwrap()).await;
    r.expect(404);
    eventually("nothing left", || async { byte_rows(&srv).await == (0, 0) }).await;
}

#[tokio::test]
async fn stale_partial_blobs_are_swept() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (id, _) = initialize(&srv, &org.user_key, "crashed.bin").await;
    let id = Id::parse(&id).unwrap();
    // What a crash mid-upload leaves: a 'writing' blob with chunks, one long idle and
    // one recent.
    let old =
        Ts::from_micros(Ts::now().micros() - STALE_WRITING.as_micros() as i64 - 1_000_000).unwrap();
    for (blob, at) in [(Id::new(), old), (Id::new(), Ts::now())] {
        exec(
            &srv,
            Sql::new(
                "INSERT INTO blobs (id, attachment_id, state, touched_at)
                 VALUES ($1, $2, 'writing', $3)",
            )
            .bind(blob)
            .bind(id)
            .bind(at),
        )
        .await;
        exec(
            &srv,
            Sql::new("INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, 0, $2)")
                .bind(blob)
                .bind(vec![1u8; 100]),
        )
        .await;
    }
    assert_eq!(byte_rows(&srv).await, (2, 2));
    let n = srv.db.sweep_stale_blobs(STALE_WRITING).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(byte_rows(&srv).await, (1, 1));
    // Partial blobs are never readable: the attachment still has no bytes.
    let url = tofulab::routes::attachments::download_url(&srv.state, &srv.url, id);
    Resp::from(reqwest::get(&url).await.unwrap())
        .await
        .expect(404);
}
