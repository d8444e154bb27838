//! Revisions (BEHAVIOR.md §4) through the official client and raw HTTP.

mod catalog_support;
mod common;

use std::collections::HashMap;

use catalog_support::*;
use common::*;
use serde_json::json;

#[tokio::test]
async fn create_and_get_with_every_key() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let part_id = part(&srv, &org.user_key, "PCB").await;

    let created = c
        .revisions()
        .create()
        .part_number("pcb")
        .number("  Rev-A  ")
        .metadata(HashMap::from([("ecn".to_string(), json!("ECN-7"))]))
        .send()
        .await
        .unwrap();
    let got = c
        .revisions()
        .get()
        .part_number("PCB")
        .revision_number("REV-a")
        .send()
        .await
        .unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.number, "Rev-A");
    assert_eq!(got.part.id, part_id);
    assert_eq!(got.part.name, "PCB");
    assert!(got.units.is_empty());

    let r = srv
        .get("/api/v2/parts/PCB/revisions/Rev-A", &org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["units"], json!([]));
    assert_eq!(body["created_by_station"], json!(null));
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));
    assert_eq!(body["metadata"], json!({"ecn": "ECN-7"}));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    // Units built to the revision are listed.
    let u = unit(&srv, &org.user_key, "SN-1", "PCB", "rev-a").await;
    let r = srv
        .get("/api/v2/parts/PCB/revisions/Rev-A", &org.user_key)
        .await;
    assert_eq!(
        r.expect(200)["units"],
        json!([{"id": u, "serial_number": "SN-1"}])
    );

    // Stations may create and read revisions; they are recorded as creator.
    let r = srv
        .post(
            "/api/v2/parts/PCB/revisions",
            &org.station_key,
            json!({"number": "B"}),
        )
        .await;
    r.expect(200);
    let r = srv
        .get("/api/v2/parts/PCB/revisions/b", &org.station_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["created_by_user"], json!(null));
    assert_eq!(body["created_by_station"]["id"], json!(org.station_id));
}

#[tokio::test]
async fn create_errors() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    part(&srv, &org.user_key, "P1").await;
    part(&srv, &org.user_key, "P2").await;

    for unknown in [
        "NONEXISTENT-1".to_string(),
        random_id(),
        "00000000-0000-0000-0000-000000000000".to_string(),
    ] {
        let r = srv
            .post(
                &format!("/api/v2/parts/{unknown}/revisions"),
                &org.user_key,
                json!({"number": "A"}),
            )
            .await;
        r.expect(404);
        assert_eq!(r.message(), "Part not found");
    }
    for (bad, word) in [
        ("", "empty"),
        ("  ", "empty"),
        (&"r".repeat(61) as &str, "60"),
    ] {
        let r = srv
            .post(
                "/api/v2/parts/P1/revisions",
                &org.user_key,
                json!({"number": bad}),
            )
            .await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed");
        assert!(r.error_text().contains(word), "{}", r.text);
        assert_eq!(r.json["issues"][0]["path"], json!(["number"]));
    }
    // Validation comes before the part lookup.
    srv.post(
        "/api/v2/parts/NOPE/revisions",
        &org.user_key,
        json!({"number": ""}),
    )
    .await
    .expect(400);

    let first = revision(&srv, &org.user_key, "P1", "rev-case-x").await;
    let r = srv
        .post(
            "/api/v2/parts/p1/revisions",
            &org.user_key,
            json!({"number": "REV-CASE-X"}),
        )
        .await;
    r.expect(409);
    assert!(r.error_text().contains("already exists"), "{}", r.text);
    // The same number on another part is a distinct revision.
    let other = revision(&srv, &org.user_key, "P2", "REV-CASE-X").await;
    assert_ne!(first, other);
    let r = srv
        .get("/api/v2/parts/P1/revisions/REV-CASE-X", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["number"], json!("rev-case-x"));
}

#[tokio::test]
async fn get_unknown_is_404_for_both_key_kinds() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    part(&srv, &org.user_key, "P1").await;
    revision(&srv, &org.user_key, "P1", "A").await;
    for key in [&org.user_key, &org.station_key] {
        for path in [
            "/api/v2/parts/P1/revisions/B",
            "/api/v2/parts/P9/revisions/A",
        ] {
            let r = srv.get(path, key).await;
            r.expect(404);
            assert!(r.error_text().contains("not found"), "{}", r.text);
        }
    }
}

#[tokio::test]
async fn update_renames_sets_images_and_patches_metadata() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    part(&srv, &org.user_key, "P1").await;
    let rev = revision(&srv, &org.user_key, "P1", "A").await;
    revision(&srv, &org.user_key, "P1", "B").await;

    // Rename; a sibling's number (ci) conflicts; its own number in another case is fine.
    let r = srv
        .patch(
            "/api/v2/parts/P1/revisions/A",
            &org.user_key,
            json!({"number": "b"}),
        )
        .await;
    r.expect(409);
    assert!(r.error_text().contains("already exists"), "{}", r.text);
    let r = srv
        .patch(
            "/api/v2/parts/p1/revisions/a",
            &org.user_key,
            json!({"number": " a "}),
        )
        .await;
    assert_eq!(r.expect(200)["id"], json!(rev));
    let r = srv
        .patch(
            "/api/v2/parts/P1/revisions/A",
            &org.user_key,
            json!({"number": "A2", "metadata": {"x": 1, "y": "z"}}),
        )
        .await;
    assert_eq!(r.expect(200)["id"], json!(rev));
    let got = c.parts().get().number("P1").send().await.unwrap();
    let renamed = got.revisions.iter().find(|r| r.id == rev).unwrap();
    assert_eq!(renamed.number, "A2");
    srv.get("/api/v2/parts/P1/revisions/A", &org.user_key)
        .await
        .expect(404);

    // Image: set (the upload is marked as used), replace (the old file goes), remove.
    let img1 = insert_upload(&srv, &org, "front.png", true).await;
    let img2 = insert_upload(&srv, &org, "back.png", true).await;
    assert!(!upload_linked(&srv, &img1).await);
    c.revisions()
        .update()
        .part_number("P1")
        .revision_number("A2")
        .image_id(&img1)
        .send()
        .await
        .unwrap();
    assert!(upload_linked(&srv, &img1).await);
    let r = srv
        .get("/api/v2/parts/P1/revisions/A2", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["image_id"], json!(img1));
    srv.patch(
        "/api/v2/parts/P1/revisions/A2",
        &org.user_key,
        json!({"image_id": img2, "metadata": {"x": null}}),
    )
    .await
    .expect(200);
    assert_eq!(count_where(&srv, "attachments", "id", &img1).await, 0);
    let r = srv
        .get("/api/v2/parts/P1/revisions/A2", &org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["image_id"], json!(img2));
    assert_eq!(body["metadata"], json!({"y": "z"}));
    srv.patch(
        "/api/v2/parts/P1/revisions/A2",
        &org.user_key,
        json!({"image_id": ""}),
    )
    .await
    .expect(200);
    assert_eq!(count_where(&srv, "attachments", "id", &img2).await, 0);
    let r = srv
        .get("/api/v2/parts/P1/revisions/A2", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["image_id"], json!(null));
}

#[tokio::test]
async fn update_errors_and_station_gate() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    part(&srv, &org.user_key, "P1").await;
    revision(&srv, &org.user_key, "P1", "A").await;
    let path = "/api/v2/parts/P1/revisions/A";

    // Stations: 403 before validation and lookups.
    for p in [path, "/api/v2/parts/NOPE/revisions/NOPE"] {
        for body in [json!({"number": "B"}), json!({"number": ""}), json!({})] {
            let r = srv.patch(p, &org.station_key, body).await;
            r.expect(403);
            assert!(r.error_text().contains("stations cannot"), "{}", r.text);
        }
    }
    srv.patch(path, &org.user_key, json!({})).await.expect(400);
    for body in [
        json!({"number": ""}),
        json!({"number": "n".repeat(61)}),
        json!({"image_id": "not-an-id"}),
        json!({"metadata": {"a": {"b": 1}}}),
    ] {
        srv.patch(path, &org.user_key, body).await.expect(400);
    }
    for p in [
        "/api/v2/parts/P1/revisions/Z",
        "/api/v2/parts/P9/revisions/A",
    ] {
        srv.patch(p, &org.user_key, json!({"number": "Q"}))
            .await
            .expect(404);
    }
    // Unknown upload, and another organization's upload: 404, nothing changed.
    let foreign = insert_upload(&srv, &other, "theirs.png", true).await;
    for image in [random_id(), foreign.clone()] {
        let r = srv
            .patch(
                path,
                &org.user_key,
                json!({"image_id": image, "number": "X"}),
            )
            .await;
        r.expect(404);
    }
    assert!(!upload_linked(&srv, &foreign).await);
    srv.get(path, &org.user_key).await.expect(200);
}

#[tokio::test]
async fn delete_rules() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    part(&srv, &org.user_key, "P1").await;
    let rev_a = revision(&srv, &org.user_key, "P1", "A").await;
    revision(&srv, &org.user_key, "P1", "B").await;
    let image = insert_upload(&srv, &org, "a.png", true).await;
    srv.patch(
        "/api/v2/parts/P1/revisions/A",
        &org.user_key,
        json!({"image_id": image}),
    )
    .await
    .expect(200);

    for p in [
        "/api/v2/parts/P1/revisions/A",
        "/api/v2/parts/NO/revisions/NO",
    ] {
        srv.delete(p, &org.station_key).await.expect(403);
    }
    srv.delete("/api/v2/parts/P1/revisions/Z", &org.user_key)
        .await
        .expect(404);

    // In use by units: 409 naming the count.
    let u1 = unit(&srv, &org.user_key, "SN-1", "P1", "B").await;
    unit(&srv, &org.user_key, "SN-2", "P1", "B").await;
    let r = srv
        .delete("/api/v2/parts/P1/revisions/B", &org.user_key)
        .await;
    r.expect(409);
    assert!(r.message().contains("2 units"), "{}", r.text);
    // In use by a run after its unit moved on: 409 too.
    insert_run(&srv, &u1, &org.procedure_id, "FAIL", "2026-03-01T08:00:00Z").await;
    for sn in ["SN-1", "SN-2"] {
        srv.patch(
            &format!("/api/v2/units/{sn}"),
            &org.user_key,
            json!({"revision_number": "A"}),
        )
        .await
        .expect(200);
    }
    let r = srv
        .delete("/api/v2/parts/P1/revisions/B", &org.user_key)
        .await;
    r.expect(409);
    assert!(r.message().contains("1 run"), "{}", r.text);

    // Revision A: move the units back to B first, then it deletes with its image.
    for sn in ["SN-1", "SN-2"] {
        srv.patch(
            &format!("/api/v2/units/{sn}"),
            &org.user_key,
            json!({"revision_number": "B"}),
        )
        .await
        .expect(200);
    }
    let deleted = c
        .revisions()
        .delete()
        .part_number("p1")
        .revision_number("a")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.id, rev_a);
    assert_eq!(count_where(&srv, "attachments", "id", &image).await, 0);
    assert!(matches!(
        c.revisions()
            .get()
            .part_number("P1")
            .revision_number("A")
            .send()
            .await,
        Err(tofupilot::Error::NotFound(_))
    ));
}

#[tokio::test]
async fn other_organizations_revisions_are_invisible() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    part(&srv, &a.user_key, "P1").await;
    revision(&srv, &a.user_key, "P1", "A").await;
    let path = "/api/v2/parts/P1/revisions/A";

    srv.get(path, &b.user_key).await.expect(404);
    srv.patch(path, &b.user_key, json!({"number": "X"}))
        .await
        .expect(404);
    srv.delete(path, &b.user_key).await.expect(404);
    srv.post(
        "/api/v2/parts/P1/revisions",
        &b.user_key,
        json!({"number": "B"}),
    )
    .await
    .expect(404);
    let r = srv.get(path, &a.user_key).await;
    assert_eq!(r.expect(200)["number"], json!("A"));
    let r = srv.get("/api/v2/parts/P1", &a.user_key).await;
    assert_eq!(r.expect(200)["revisions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn revisions_created_by_runs_are_ordinary_and_protected() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = create_run(
        &srv,
        &org.user_key,
        &org.procedure_id,
        "2026-06-01T10:00:00Z",
        json!({"serial_number": "SN-1", "part_number": "P", "revision_number": "Rev-9"}),
    )
    .await;
    let r = srv
        .get("/api/v2/parts/p/revisions/REV-9", &org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["number"], json!("Rev-9"));
    assert_eq!(body["units"][0]["serial_number"], json!("SN-1"));
    let r = srv
        .delete("/api/v2/parts/P/revisions/Rev-9", &org.user_key)
        .await;
    r.expect(409);
    assert!(r.message().contains("1 unit"), "{}", r.text);

    // The unit moves on with a later run; the first run keeps the revision in use.
    create_run(
        &srv,
        &org.user_key,
        &org.procedure_id,
        "2026-06-02T10:00:00Z",
        json!({"serial_number": "SN-1", "part_number": "P", "revision_number": "Rev-10"}),
    )
    .await;
    let r = srv
        .delete("/api/v2/parts/P/revisions/Rev-9", &org.user_key)
        .await;
    r.expect(409);
    assert!(r.message().contains("1 run"), "{}", r.text);
    srv.delete(&format!("/api/v2/runs?ids={run}"), &org.user_key)
        .await
        .expect(200);
    srv.delete("/api/v2/parts/P/revisions/Rev-9", &org.user_key)
        .await
        .expect(200);
}
