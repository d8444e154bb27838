//! Attachment operations (BEHAVIOR.md §10, §1.7, §2.7): initialize, finalize, the run and
//! unit attachment endpoints, deletes, linking, organization scoping, and — after every
//! way a file can be deleted — that none of its bytes are left in the chunk tables.

mod common;
mod file_support;

use std::time::Duration;

use common::*;
use file_support::*;
use serde_json::json;
use tofulab::db::attachments::{link_uploads, mark_linked, LinkTarget};
use tofulab::db::{Id, Sql, StoreError};
use tofulab::Settings;

#[tokio::test]
async fn initialize_returns_an_absolute_signed_upload_url() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    for key in [&org.user_key, &org.station_key] {
        let r = srv
            .post("/api/v2/attachments", key, json!({ "name": "report.pdf" }))
            .await;
        let body = r.expect(200);
        let id = body["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert!(Id::parse(id).is_some());
        let url = body["upload_url"].as_str().unwrap();
        // Built from the Host the client used.
        let prefix = format!("{}/files/{id}?expires=", srv.url);
        assert!(url.starts_with(&prefix), "{url}");
        assert!(url.contains("&signature="), "{url}");
    }

    // Without Authorization: 401 in the envelope.
    let r = srv
        .call(
            reqwest::Method::POST,
            "/api/v2/attachments",
            None,
            Some(json!({ "name": "x.txt" })),
        )
        .await;
    r.expect(401);

    // X-Forwarded-Proto is honoured for the scheme.
    let r = srv
        .raw(reqwest::Method::POST, "/api/v2/attachments")
        .bearer_auth(&org.user_key)
        .header("x-forwarded-proto", "https")
        .json(&json!({ "name": "x.txt" }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let url = body["upload_url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
}

#[tokio::test]
async fn public_url_setting_is_the_base_of_every_url() {
    let settings = Settings {
        public_url: Some("https://tofulab.example.com/".into()),
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Lab").await;
    let (id, upload_url) = initialize(&srv, &org.user_key, "a.txt").await;
    assert!(
        upload_url.starts_with(&format!("https://tofulab.example.com/files/{id}?")),
        "{upload_url}"
    );
    // The URL still works when reached through the server's own address.
    let local = upload_url.replace("https://tofulab.example.com", &srv.url);
    assert_eq!(put(&local, b"hello".to_vec(), None).await, 200);
    let url = finalize(&srv, &org.user_key, &id).await;
    assert!(
        url.starts_with("https://tofulab.example.com/files/"),
        "{url}"
    );
}

#[tokio::test]
async fn names_are_trimmed_and_validated() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    for bad in [json!({ "name": "" }), json!({ "name": "   " })] {
        let r = srv.post("/api/v2/attachments", &org.user_key, bad).await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed");
        assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
        assert!(r.error_text().contains("empty"), "{}", r.text);
    }
    for len in [256, 1001] {
        let r = srv
            .post(
                "/api/v2/attachments",
                &org.user_key,
                json!({ "name": "n".repeat(len) }),
            )
            .await;
        r.expect(400);
        assert!(r.error_text().contains("255"), "{}", r.text);
    }
    let r = srv
        .post("/api/v2/attachments", &org.user_key, json!({}))
        .await;
    r.expect(400);
    assert!(r.error_text().contains("name"), "{}", r.text);
    let r = srv
        .post("/api/v2/attachments", &org.user_key, json!({ "name": 5 }))
        .await;
    r.expect(400);

    // 255 characters is fine; surrounding blanks are dropped.
    let (id, _) = initialize(&srv, &org.user_key, &"n".repeat(255)).await;
    assert!(attachment_exists(&srv, &id).await);
    let (id, upload_url) = initialize(&srv, &org.user_key, "  spaced name.txt \t").await;
    assert_eq!(put(&upload_url, b"x".to_vec(), None).await, 200);
    let url = finalize(&srv, &org.user_key, &id).await;
    let (_, headers, _) = get(&url).await;
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains("filename=\"spaced name.txt\""),
        "{disposition}"
    );
}

#[tokio::test]
async fn finalize_is_idempotent_and_refuses_uploads_without_bytes() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let (id, upload_url) = initialize(&srv, &org.station_key, "data.csv").await;

    // Nothing uploaded yet: 400, and it stays unfinalized.
    let r = srv
        .call(
            reqwest::Method::POST,
            &format!("/api/v2/attachments/{id}/finalize"),
            Some(&org.user_key),
            None,
        )
        .await;
    r.expect(400);
    assert!(r.message().contains("no file"), "{}", r.text);

    assert_eq!(
        put(&upload_url, b"a,b\n1,2\n".to_vec(), Some("text/csv")).await,
        200
    );
    // Finalize through the official client (station key), twice: both 200, both URLs
    // serve the file.
    let sc = srv.client(&org.station_key);
    let first = sc.attachments().finalize().id(&id).send().await.unwrap();
    let second = c.attachments().finalize().id(&id).send().await.unwrap();
    for url in [&first.url, &second.url] {
        let (status, headers, body) = get(url).await;
        assert_eq!(status, 200);
        assert_eq!(body, b"a,b\n1,2\n");
        assert_eq!(headers["content-type"], "text/csv");
    }
    // The first finalize time is kept.
    let stamps: Vec<(Option<tofulab::db::Ts>,)> = srv
        .db
        .read()
        .fetch_all(
            Sql::new("SELECT finalized_at FROM attachments WHERE id = $1")
                .bind(Id::parse(&id).unwrap()),
        )
        .await
        .unwrap();
    assert!(stamps[0].0.is_some());

    // Unknown ids: 404 (the all-zero UUID is well formed); malformed: 400.
    let zero = "00000000-0000-0000-0000-000000000000";
    let r = c.attachments().finalize().id(zero).send().await;
    assert!(matches!(r, Err(tofupilot::Error::NotFound(_))), "{r:?}");
    let r = srv
        .call(
            reqwest::Method::POST,
            &format!("/api/v2/attachments/{}/finalize", random_id()),
            Some(&org.user_key),
            None,
        )
        .await;
    r.expect(404);
    let r = srv
        .call(
            reqwest::Method::POST,
            "/api/v2/attachments/not-a-uuid/finalize",
            Some(&org.user_key),
            None,
        )
        .await;
    r.expect(400);
}

#[tokio::test]
async fn run_attachments_are_linked_at_once() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = insert_run(&srv, &org).await;

    for key in [&org.user_key, &org.station_key] {
        let created = srv
            .client(key)
            .runs()
            .create_attachment()
            .id(run.to_string())
            .name("scope.png")
            .send()
            .await
            .unwrap();
        assert!(created.upload_url.starts_with(&srv.url));
        // Listed by the run right away, before any bytes or finalize.
        let listed = srv.db.attachments_of_runs(&[run]).await.unwrap();
        let a = listed
            .iter()
            .find(|a| a.id.to_string() == created.id)
            .expect("listed");
        assert_eq!(a.name, "scope.png");
        assert!(!a.has_bytes);
        assert_eq!(a.run_id, Some(run));
    }

    // The bytes make it downloadable; the listing then knows size and type.
    let r = srv
        .post(
            &format!("/api/v2/runs/{run}/attachments"),
            &org.user_key,
            json!({ "name": "log.txt" }),
        )
        .await;
    let b = r.expect(200);
    let id = Id::parse(b["id"].as_str().unwrap()).unwrap();
    let upload_url = b["upload_url"].as_str().unwrap();
    assert_eq!(
        put(upload_url, b"line\n".to_vec(), Some("text/plain")).await,
        200
    );
    let listed = srv.db.attachments_of_runs(&[run]).await.unwrap();
    let a = listed.iter().find(|a| a.id == id).unwrap();
    assert!(a.has_bytes);
    assert_eq!(a.size, Some(5));
    assert_eq!(a.content_type.as_deref(), Some("text/plain"));

    let missing = random_id();
    let r = srv
        .post(
            &format!("/api/v2/runs/{missing}/attachments"),
            &org.user_key,
            json!({ "name": "x.txt" }),
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Run not found");
    let r = srv
        .post(
            "/api/v2/runs/nope/attachments",
            &org.user_key,
            json!({ "name": "x.txt" }),
        )
        .await;
    r.expect(400);
    let r = srv
        .post(
            &format!("/api/v2/runs/{run}/attachments"),
            &org.user_key,
            json!({ "name": "" }),
        )
        .await;
    r.expect(400);
}

#[tokio::test]
async fn unit_attachments_are_created_and_deleted_with_their_bytes() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let unit = insert_unit(&srv, &org, "SN-Att-01").await;
    let c = srv.client(&org.station_key);

    // Serial numbers match case-insensitively.
    let created = c
        .units()
        .create_attachment()
        .serial_number("sn-att-01")
        .name("cal.pdf")
        .send()
        .await
        .unwrap();
    let keep = c
        .units()
        .create_attachment()
        .serial_number("SN-ATT-01")
        .name("keep.txt")
        .send()
        .await
        .unwrap();
    let listed = srv.db.attachments_of_unit(unit).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "cal.pdf");
    assert_eq!(listed[0].unit_id, Some(unit));

    assert_eq!(
        put(&created.upload_url, vec![7u8; 1_500_000], None).await,
        200
    );
    assert_eq!(put(&keep.upload_url, b"keep".to_vec(), None).await, 200);
    let url = finalize(&srv, &org.user_key, &created.id).await;
    let blobs = blobs_of(&srv, &created.id).await;
    assert_eq!(byte_rows(&srv).await, (2, 3));

    let r = c
        .units()
        .attachments()
        .delete("SN-ATT-01", vec![created.id.clone()])
        .await
        .unwrap();
    assert_eq!(r.ids, vec![created.id.clone()]);
    assert_bytes_gone(&srv, &blobs).await;
    assert_eq!(byte_rows(&srv).await, (1, 1), "the other file stays");
    let listed = srv.db.attachments_of_unit(unit).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "keep.txt");
    let (status, _, _) = get(&url).await;
    assert_eq!(status, 404);

    // Raw JSON shape; deleting again, unknown unit, no ids.
    let path = format!("/api/v2/units/SN-ATT-01/attachments?ids={}", keep.id);
    let r = srv.delete(&path, &org.user_key).await;
    assert_eq!(r.expect(200), &json!({ "ids": [keep.id] }));
    srv.delete(&path, &org.user_key).await.expect(404);
    srv.delete(
        "/api/v2/units/SN-ATT-01/attachments?ids=garbage",
        &org.user_key,
    )
    .await
    .expect(404);
    let r = srv
        .delete(
            &format!("/api/v2/units/NOPE/attachments?ids={}", random_id()),
            &org.user_key,
        )
        .await;
    r.expect(404);
    let r = srv
        .delete("/api/v2/units/SN-ATT-01/attachments", &org.user_key)
        .await;
    r.expect(400);
    assert_eq!(byte_rows(&srv).await, (0, 0));

    let r = srv
        .post(
            "/api/v2/units/NOPE/attachments",
            &org.user_key,
            json!({ "name": "x.txt" }),
        )
        .await;
    r.expect(404);
}

#[tokio::test]
async fn only_the_units_own_attachments_are_deleted() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    insert_unit(&srv, &org, "SN-A").await;
    insert_unit(&srv, &org, "SN-B").await;
    let c = srv.client(&org.user_key);
    let on_b = c
        .units()
        .create_attachment()
        .serial_number("SN-B")
        .name("b.txt")
        .send()
        .await
        .unwrap();
    put(&on_b.upload_url, b"b".to_vec(), None).await;
    let r = srv
        .delete(
            &format!("/api/v2/units/SN-A/attachments?ids={}", on_b.id),
            &org.user_key,
        )
        .await;
    r.expect(404);
    assert!(attachment_exists(&srv, &on_b.id).await);
    assert_eq!(byte_rows(&srv).await, (1, 1));
}

#[tokio::test]
async fn delete_attachments_removes_uploads_and_their_bytes() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let (a, a_url) = initialize(&srv, &org.user_key, "a.bin").await;
    let (b, b_url) = initialize(&srv, &org.user_key, "b.bin").await;
    assert_eq!(put(&a_url, vec![1u8; 2 << 20], None).await, 200);
    assert_eq!(put(&b_url, vec![2u8; 10], None).await, 200);
    let a_blobs = blobs_of(&srv, &a).await;
    assert_eq!(byte_rows(&srv).await, (2, 3));

    let missing = random_id();
    let r = srv
        .delete(
            &format!("/api/v2/attachments?ids={a}&ids={missing}"),
            &org.station_key,
        )
        .await;
    assert_eq!(r.expect(200), &json!({ "id": [a] }));
    assert_bytes_gone(&srv, &a_blobs).await;
    assert_eq!(byte_rows(&srv).await, (1, 1));

    srv.delete(&format!("/api/v2/attachments?ids={a}"), &org.user_key)
        .await
        .expect(404);
    srv.delete("/api/v2/attachments?ids=garbage", &org.user_key)
        .await
        .expect(404);
    srv.delete("/api/v2/attachments", &org.user_key)
        .await
        .expect(400);
    assert!(attachment_exists(&srv, &b).await);
}

#[tokio::test]
async fn another_organizations_attachments_behave_as_nonexistent() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let (id, upload_url) = initialize(&srv, &a.user_key, "secret.txt").await;
    assert_eq!(put(&upload_url, b"alpha only".to_vec(), None).await, 200);
    let b_run = insert_run(&srv, &b).await;
    insert_unit(&srv, &b, "SN-BETA").await;
    let a_unit = insert_unit(&srv, &a, "SN-ALPHA").await;

    // Finalize and delete from B: 404, nothing changes.
    for key in [&b.user_key, &b.station_key] {
        srv.call(
            reqwest::Method::POST,
            &format!("/api/v2/attachments/{id}/finalize"),
            Some(key),
            None,
        )
        .await
        .expect(404);
        srv.delete(&format!("/api/v2/attachments?ids={id}"), key)
            .await
            .expect(404);
    }
    assert!(attachment_exists(&srv, &id).await);

    // A's key on B's run and B's unit: 404.
    let r = srv
        .post(
            &format!("/api/v2/runs/{b_run}/attachments"),
            &a.user_key,
            json!({ "name": "x.txt" }),
        )
        .await;
    r.expect(404);
    let r = srv
        .post(
            "/api/v2/units/SN-BETA/attachments",
            &a.user_key,
            json!({ "name": "x.txt" }),
        )
        .await;
    r.expect(404);

    // B cannot delete A's unit attachments (A's unit does not exist for B).
    let on_a_unit = srv
        .client(&a.user_key)
        .units()
        .create_attachment()
        .serial_number("SN-ALPHA")
        .name("u.txt")
        .send()
        .await
        .unwrap();
    let r = srv
        .delete(
            &format!("/api/v2/units/SN-ALPHA/attachments?ids={}", on_a_unit.id),
            &b.user_key,
        )
        .await;
    r.expect(404);
    assert_eq!(srv.db.attachments_of_unit(a_unit).await.unwrap().len(), 1);

    // Linking: A's upload to B's run (from either side) is refused.
    let a_org = org_id(&srv, &a).await;
    let b_org = org_id(&srv, &b).await;
    let upload = Id::parse(&id).unwrap();
    let mut tx = srv.db.begin().await.unwrap();
    let e = link_uploads(&mut tx, a_org, LinkTarget::Run(b_run), &[upload])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "Run not found"),
        "{e}"
    );
    let e = link_uploads(&mut tx, b_org, LinkTarget::Run(b_run), &[upload])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m.contains(&id)),
        "{e}"
    );
    let e = mark_linked(&mut tx, b_org, upload).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    drop(tx);
    assert!(srv
        .db
        .attachments_of_runs(&[b_run])
        .await
        .unwrap()
        .is_empty());

    // The file itself is still A's and intact.
    let url = finalize(&srv, &a.user_key, &id).await;
    assert_eq!(get(&url).await.2, b"alpha only");
}

#[tokio::test]
async fn linked_uploads_appear_on_their_run_and_unit() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let org_id = org_id(&srv, &org).await;
    let run = insert_run(&srv, &org).await;
    let unit = insert_unit(&srv, &org, "SN-LINK").await;
    let (r_id, r_url) = initialize(&srv, &org.user_key, "run.txt").await;
    let (u_id, _) = initialize(&srv, &org.user_key, "unit.txt").await;
    assert_eq!(
        put(&r_url, b"run bytes".to_vec(), Some("text/plain")).await,
        200
    );

    let mut tx = srv.db.begin().await.unwrap();
    link_uploads(
        &mut tx,
        org_id,
        LinkTarget::Run(run),
        &[Id::parse(&r_id).unwrap()],
    )
    .await
    .unwrap();
    link_uploads(
        &mut tx,
        org_id,
        LinkTarget::Unit(unit),
        &[Id::parse(&u_id).unwrap()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let on_run = srv.db.attachments_of_runs(&[run]).await.unwrap();
    assert_eq!(on_run.len(), 1);
    assert_eq!(on_run[0].name, "run.txt");
    assert_eq!(on_run[0].size, Some(9));
    assert_eq!(on_run[0].content_type.as_deref(), Some("text/plain"));
    assert!(on_run[0].has_bytes);
    let on_unit = srv.db.attachments_of_unit(unit).await.unwrap();
    assert_eq!(on_unit.len(), 1);
    assert!(
        !on_unit[0].has_bytes,
        "linked before any bytes: still listed"
    );

    // The download URL builder the run/unit reads use serves the bytes.
    let url = tofulab::routes::attachments::download_url(&srv.state, &srv.url, on_run[0].id);
    assert_eq!(get(&url).await.2, b"run bytes");

    // Linked uploads survive the sweep even with a zero TTL.
    srv.db.sweep_unlinked_uploads(Duration::ZERO).await.unwrap();
    assert!(attachment_exists(&srv, &r_id).await);
    assert!(attachment_exists(&srv, &u_id).await);
}

#[tokio::test]
async fn deleting_runs_units_and_procedures_deletes_their_bytes() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    // One attachment on each of: a run, a unit (via its own run too), a run of a
    // procedure that gets deleted.
    let run = insert_run(&srv, &org).await;
    let unit = insert_unit(&srv, &org, "SN-DEL").await;
    let unit_run = insert_run_on(&srv, &org, unit).await;
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
                put(&created.upload_url, vec![3u8; (1 << 20) + 1], None).await,
                200
            );
            created.id
        }
    };
    let on_run = upload(run.to_string(), "run.bin").await;
    let on_unit_run = upload(unit_run.to_string(), "unit-run.bin").await;
    let on_unit = c
        .units()
        .create_attachment()
        .serial_number("SN-DEL")
        .name("unit.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(put(&on_unit.upload_url, vec![4u8; 10], None).await, 200);
    let (run_blobs, unit_blobs, unit_run_blobs) = (
        blobs_of(&srv, &on_run).await,
        blobs_of(&srv, &on_unit.id).await,
        blobs_of(&srv, &on_unit_run).await,
    );
    assert_eq!(byte_rows(&srv).await, (3, 5));

    // A run deleted (as the run delete operation does): its files go.
    exec(&srv, Sql::new("DELETE FROM runs WHERE id = $1").bind(run)).await;
    assert_bytes_gone(&srv, &run_blobs).await;
    assert!(!attachment_exists(&srv, &on_run).await);
    assert_eq!(byte_rows(&srv).await, (2, 3));

    // A unit deleted: its own files and its runs' files go.
    exec(&srv, Sql::new("DELETE FROM units WHERE id = $1").bind(unit)).await;
    assert_bytes_gone(&srv, &unit_blobs).await;
    assert_bytes_gone(&srv, &unit_run_blobs).await;
    assert_eq!(byte_rows(&srv).await, (0, 0));

    // A procedure deleted through the API: the files of its runs go.
    let run = insert_run(&srv, &org).await;
    let on_run = upload(run.to_string(), "proc.bin").await;
    let blobs = blobs_of(&srv, &on_run).await;
    c.procedures()
        .delete()
        .id(&org.procedure_id)
        .send()
        .await
        .unwrap();
    assert_bytes_gone(&srv, &blobs).await;
    assert_eq!(byte_rows(&srv).await, (0, 0));
}

#[tokio::test]
async fn the_sweep_removes_unlinked_unfinalized_uploads_only() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let org_id = org_id(&srv, &org).await;
    let (stale, stale_url) = initialize(&srv, &org.user_key, "stale.bin").await;
    let (finalized, fin_url) = initialize(&srv, &org.user_key, "final.bin").await;
    let (image, image_url) = initialize(&srv, &org.user_key, "image.png").await;
    assert_eq!(put(&stale_url, vec![5u8; 3 << 20], None).await, 200);
    assert_eq!(put(&fin_url, vec![6u8; 10], None).await, 200);
    assert_eq!(put(&image_url, vec![7u8; 10], None).await, 200);
    finalize(&srv, &org.user_key, &finalized).await;
    let mut tx = srv.db.begin().await.unwrap();
    mark_linked(&mut tx, org_id, Id::parse(&image).unwrap())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stale_blobs = blobs_of(&srv, &stale).await;

    // Younger than the TTL: kept.
    let n = srv
        .db
        .sweep_unlinked_uploads(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert!(attachment_exists(&srv, &stale).await);

    let n = srv.db.sweep_unlinked_uploads(Duration::ZERO).await.unwrap();
    assert_eq!(n, 1);
    assert!(!attachment_exists(&srv, &stale).await);
    assert_bytes_gone(&srv, &stale_blobs).await;
    assert!(attachment_exists(&srv, &finalized).await);
    assert!(attachment_exists(&srv, &image).await);
    assert_eq!(byte_rows(&srv).await, (2, 2));

    // The whole background pass (as the server runs it) keeps them too.
    srv.db.sweep_uploads(Duration::ZERO).await.unwrap();
    assert_eq!(byte_rows(&srv).await, (2, 2));
}

#[tokio::test]
async fn the_sweep_removes_many_uploads_in_batches() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let mut ids = Vec::new();
    for i in 0..230 {
        ids.push(
            initialize(&srv, &org.user_key, &format!("f{i}.txt"))
                .await
                .0,
        );
    }
    let (_, url) = initialize(&srv, &org.user_key, "with-bytes.txt").await;
    assert_eq!(put(&url, b"x".to_vec(), None).await, 200);
    let n = srv.db.sweep_unlinked_uploads(Duration::ZERO).await.unwrap();
    assert_eq!(n, 231);
    assert_eq!(byte_rows(&srv).await, (0, 0));
    let (left,): (i64,) = srv
        .db
        .read()
        .fetch_one(Sql::new("SELECT COUNT(*) FROM attachments"))
        .await
        .unwrap();
    assert_eq!(left, 0);
}
