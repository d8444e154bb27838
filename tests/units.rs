//! Units (BEHAVIOR.md §2.1–§2.5) through the official client and raw HTTP.

mod catalog_support;
mod common;

use std::collections::HashMap;

use catalog_support::*;
use common::*;
use serde_json::json;
use tofupilot::types::{ListSortOrder, UnitListSortBy};

#[tokio::test]
async fn create_and_get_with_every_key() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let part_id = part(&srv, &org.user_key, "PCB").await;
    let rev_id = revision(&srv, &org.user_key, "PCB", "A").await;

    let created = c
        .units()
        .create()
        .serial_number("  SN-Get-1  ")
        .part_number("pcb")
        .revision_number("a")
        .metadata(HashMap::from([("fw".to_string(), json!("2.0"))]))
        .send()
        .await
        .unwrap();
    let got = c
        .units()
        .get()
        .serial_number("sn-get-1")
        .send()
        .await
        .unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.serial_number, "SN-Get-1");
    assert_eq!(got.part.id, part_id);
    assert_eq!(got.part.revision.id, rev_id);

    let r = srv.get("/api/v2/units/SN-GET-1", &org.user_key).await;
    let body = r.expect(200);
    for (key, value) in [
        ("parent", json!(null)),
        ("batch", json!(null)),
        ("created_during", json!(null)),
        ("created_by_station", json!(null)),
        ("sample", json!(null)),
        ("children", json!([])),
        ("attachments", json!([])),
        ("metadata", json!({"fw": "2.0"})),
    ] {
        assert_eq!(body[key], value, "{key} in {body}");
    }
    assert_eq!(
        body["part"],
        json!({"id": part_id, "number": "PCB", "name": "PCB",
               "revision": {"id": rev_id, "number": "A"}})
    );
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));

    // Stations may create units (and a sample flag); they are the creator.
    let r = srv
        .post(
            "/api/v2/units",
            &org.station_key,
            json!({"serial_number": "SN-ST", "part_number": "PCB", "revision_number": "A",
                   "sample": "golden"}),
        )
        .await;
    r.expect(200);
    let r = srv.get("/api/v2/units/sn-st", &org.station_key).await;
    let body = r.expect(200);
    assert_eq!(body["created_by_user"], json!(null));
    assert_eq!(body["created_by_station"]["id"], json!(org.station_id));
    assert_eq!(body["sample"], json!("golden"));
}

#[tokio::test]
async fn create_errors() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    part(&srv, &org.user_key, "PCB").await;
    revision(&srv, &org.user_key, "PCB", "A").await;
    let body = |sn: &str, pn: &str, rev: &str| json!({"serial_number": sn, "part_number": pn, "revision_number": rev});

    for (sn, word) in [
        ("", "empty"),
        ("   ", "empty"),
        (&"s".repeat(61) as &str, "60"),
    ] {
        let r = srv
            .post("/api/v2/units", &org.user_key, body(sn, "PCB", "A"))
            .await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed");
        assert_eq!(r.json["issues"][0]["path"], json!(["serial_number"]));
        assert!(r.error_text().contains(word), "{}", r.text);
    }
    srv.post(
        "/api/v2/units",
        &org.user_key,
        body(&"s".repeat(60), "PCB", "A"),
    )
    .await
    .expect(200);
    for missing in ["serial_number", "part_number", "revision_number"] {
        let mut b = body("SN-M", "PCB", "A");
        b.as_object_mut().unwrap().remove(missing);
        let r = srv.post("/api/v2/units", &org.user_key, b).await;
        r.expect(400);
        assert!(r.error_text().contains(missing), "{}", r.text);
    }
    let mut b = body("SN-S", "PCB", "A");
    b["sample"] = json!("shiny");
    srv.post("/api/v2/units", &org.user_key, b)
        .await
        .expect(400);

    // The part and revision must exist: 404 naming the revision either way.
    for (pn, rev) in [
        ("FAKE-PART", "FAKE-REV"),
        ("PCB", "FAKE-REV"),
        ("FAKE-PART", "A"),
    ] {
        let r = srv
            .post("/api/v2/units", &org.user_key, body("SN-404", pn, rev))
            .await;
        r.expect(404);
        assert!(r.error_text().contains("revision"), "{}", r.text);
    }

    // Duplicate serial, ci, keeps the stored spelling.
    unit(&srv, &org.user_key, "sn-dup", "PCB", "A").await;
    let r = srv
        .post(
            "/api/v2/units",
            &org.station_key,
            body("SN-DUP", "PCB", "A"),
        )
        .await;
    r.expect(409);
    assert!(r.error_text().contains("already exists"), "{}", r.text);
    let r = srv.get("/api/v2/units/SN-DUP", &org.user_key).await;
    assert_eq!(r.expect(200)["serial_number"], json!("sn-dup"));
    srv.get("/api/v2/units/NOPE", &org.user_key)
        .await
        .expect(404);
}

#[tokio::test]
async fn get_shows_parent_children_creating_run_and_attachments() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let parent = part_with_unit(&srv, &org.user_key, "CHASSIS", "P-1").await;
    part(&srv, &org.user_key, "BOARD").await;
    revision(&srv, &org.user_key, "BOARD", "B").await;
    let me = unit(&srv, &org.user_key, "ME", "BOARD", "B").await;
    let kid = unit(&srv, &org.user_key, "KID", "BOARD", "B").await;
    let grandkid = unit(&srv, &org.user_key, "GRANDKID", "BOARD", "B").await;
    for (p, ch) in [("P-1", "ME"), ("ME", "KID"), ("KID", "GRANDKID")] {
        srv.call(
            reqwest::Method::PUT,
            &format!("/api/v2/units/{p}/children"),
            Some(&org.user_key),
            Some(json!({"child_serial_number": ch})),
        )
        .await
        .expect(200);
    }
    let run = insert_run(&srv, &me, &org.procedure_id, "FAIL", "2026-04-01T09:00:00Z").await;
    set_created_during(&srv, &me, &run).await;
    let done = insert_upload(&srv, &org, "report.txt", true).await;
    let pending = insert_upload(&srv, &org, "pending.bin", false).await;
    srv.patch(
        "/api/v2/units/ME",
        &org.user_key,
        json!({"attachments": [done, pending]}),
    )
    .await
    .expect(200);

    let r = srv.get("/api/v2/units/me", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["parent"]["id"], json!(parent));
    assert_eq!(body["parent"]["serial_number"], json!("P-1"));
    assert_eq!(body["parent"]["part"]["number"], json!("CHASSIS"));
    assert_eq!(body["parent"]["part"]["revision"]["number"], json!("A"));
    // Direct children only.
    assert_eq!(body["children"].as_array().unwrap().len(), 1);
    assert_eq!(body["children"][0]["id"], json!(kid));
    assert_eq!(
        body["children"][0]["part"]["revision"]["number"],
        json!("B")
    );
    assert!(!body.to_string().contains(&grandkid));

    let cd = &body["created_during"];
    assert_eq!(cd["id"], json!(run));
    assert_eq!(cd["outcome"], json!("FAIL"));
    assert_eq!(cd["started_at"], json!("2026-04-01T09:00:00.000000Z"));
    assert_eq!(cd["ended_at"], json!("2026-04-01T09:01:30.000000Z"));
    assert_eq!(cd["duration"], json!("PT1M30S"));
    assert_eq!(cd["procedure"]["id"], json!(org.procedure_id));
    assert_eq!(cd["procedure"]["name"], json!("Lab Functional"));
    assert!(cd["created_at"].is_string());

    let atts = body["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0]["id"], json!(done));
    assert_eq!(atts[0]["name"], json!("report.txt"));
    assert_eq!(atts[0]["size"], json!(5));
    assert_eq!(atts[0]["content_type"], json!("text/plain"));
    let url = atts[0]["download_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/files/{done}?", srv.url)),
        "{url}"
    );
    assert_eq!(atts[1]["id"], json!(pending));
    assert_eq!(atts[1]["download_url"], json!(null), "no bytes yet");
    assert!(upload_linked(&srv, &done).await);
}

#[tokio::test]
async fn update_moves_renames_batches_and_flags() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let id = part_with_unit(&srv, &org.user_key, "OLD-PART", "SN-1").await;
    revision(&srv, &org.user_key, "OLD-PART", "B").await;
    part(&srv, &org.user_key, "NEW-PART").await;
    revision(&srv, &org.user_key, "NEW-PART", "X").await;
    unit(&srv, &org.user_key, "SN-OTHER", "OLD-PART", "A").await;
    batch(&srv, &org.user_key, "Lot-1").await;

    // Rename: ci conflict with another unit; own serial in another case is fine.
    let r = srv
        .patch(
            "/api/v2/units/SN-1",
            &org.user_key,
            json!({"new_serial_number": "sn-other"}),
        )
        .await;
    r.expect(409);
    assert!(r.error_text().contains("already exists"), "{}", r.text);
    c.units()
        .update()
        .serial_number("sn-1")
        .new_serial_number("Sn-1")
        .send()
        .await
        .unwrap();
    let r = c
        .units()
        .update()
        .serial_number("SN-1")
        .new_serial_number("SN-RENAMED")
        .send()
        .await
        .unwrap();
    assert_eq!(r.id, id);
    srv.get("/api/v2/units/SN-1", &org.user_key)
        .await
        .expect(404);

    // Revision on the current part, then another part's revision.
    srv.patch(
        "/api/v2/units/SN-RENAMED",
        &org.user_key,
        json!({"revision_number": "b"}),
    )
    .await
    .expect(200);
    let got = c
        .units()
        .get()
        .serial_number("SN-RENAMED")
        .send()
        .await
        .unwrap();
    assert_eq!(got.part.revision.number, "B");
    c.units()
        .update()
        .serial_number("SN-RENAMED")
        .part_number("new-part")
        .revision_number("x")
        .send()
        .await
        .unwrap();
    let got = c
        .units()
        .get()
        .serial_number("SN-RENAMED")
        .send()
        .await
        .unwrap();
    assert_eq!(got.part.number, "NEW-PART");
    assert_eq!(got.part.revision.number, "X");

    // Batch: assign (ci), then remove with null; sample flag; metadata upsert/delete.
    srv.patch(
        "/api/v2/units/SN-RENAMED",
        &org.station_key,
        json!({"batch_number": "LOT-1", "sample": "failing", "metadata": {"a": 1, "b": "x"}}),
    )
    .await
    .expect(200);
    let r = srv.get("/api/v2/units/SN-RENAMED", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["batch"]["number"], json!("Lot-1"));
    assert_eq!(body["sample"], json!("failing"));
    assert_eq!(body["metadata"], json!({"a": 1, "b": "x"}));
    srv.patch(
        "/api/v2/units/SN-RENAMED",
        &org.user_key,
        json!({"batch_number": null, "sample": null, "metadata": {"a": null, "c": false}}),
    )
    .await
    .expect(200);
    let r = srv.get("/api/v2/units/SN-RENAMED", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["batch"], json!(null));
    assert_eq!(body["sample"], json!(null));
    assert_eq!(body["metadata"], json!({"b": "x", "c": false}));

    // An empty body changes nothing.
    let r = srv
        .patch("/api/v2/units/SN-RENAMED", &org.user_key, json!({}))
        .await;
    assert_eq!(r.expect(200)["id"], json!(id));
}

#[tokio::test]
async fn update_errors() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    part_with_unit(&srv, &org.user_key, "P", "SN-1").await;
    let path = "/api/v2/units/SN-1";

    for (body, field) in [
        (json!({"new_serial_number": ""}), "new_serial_number"),
        (
            json!({"new_serial_number": "s".repeat(61)}),
            "new_serial_number",
        ),
        (json!({"part_number": "P"}), "revision_number"),
        (json!({"revision_number": ""}), "revision_number"),
        (json!({"batch_number": ""}), "batch_number"),
        (json!({"attachments": ["nope"]}), "attachments"),
        (json!({"sample": "shiny"}), "sample"),
        (json!({"metadata": {"x": [1]}}), "metadata"),
    ] {
        let r = srv.patch(path, &org.user_key, body).await;
        r.expect(400);
        assert_eq!(r.json["issues"][0]["path"][0], json!(field), "{}", r.text);
    }
    for (body, word) in [
        (
            json!({"part_number": "NOPE", "revision_number": "A"}),
            "revision",
        ),
        (
            json!({"part_number": "P", "revision_number": "NOPE"}),
            "revision",
        ),
        (json!({"revision_number": "NOPE"}), "revision"),
        (json!({"batch_number": "NOPE"}), "batch"),
        (json!({"attachments": [random_id()]}), "upload"),
    ] {
        let r = srv.patch(path, &org.user_key, body).await;
        r.expect(404);
        assert!(r.error_text().contains(word), "{}", r.text);
    }
    // Another organization's upload is unknown here.
    let foreign = insert_upload(&srv, &other, "x.txt", true).await;
    srv.patch(path, &org.user_key, json!({"attachments": [foreign]}))
        .await
        .expect(404);
    assert!(!upload_linked(&srv, &foreign).await);
    // A failed update changes nothing (one transaction).
    let r = srv
        .patch(
            path,
            &org.user_key,
            json!({"new_serial_number": "SN-NEW", "attachments": [random_id()]}),
        )
        .await;
    r.expect(404);
    srv.get(path, &org.user_key).await.expect(200);
    srv.patch("/api/v2/units/NOPE", &org.user_key, json!({"sample": null}))
        .await
        .expect(404);
}

#[tokio::test]
async fn delete_rules() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let p = part_with_unit(&srv, &org.user_key, "P", "PARENT").await;
    let kid = unit(&srv, &org.user_key, "KID", "P", "A").await;
    let other = unit(&srv, &org.user_key, "OTHER", "P", "A").await;
    srv.call(
        reqwest::Method::PUT,
        "/api/v2/units/PARENT/children",
        Some(&org.user_key),
        Some(json!({"child_serial_number": "KID"})),
    )
    .await
    .expect(200);
    let run = insert_run(&srv, &p, &org.procedure_id, "PASS", "2026-01-01T00:00:00Z").await;
    let kid_run = insert_run(
        &srv,
        &kid,
        &org.procedure_id,
        "PASS",
        "2026-01-01T00:00:00Z",
    )
    .await;
    set_created_during(&srv, &kid, &run).await;
    let att = insert_upload(&srv, &org, "photo.jpg", true).await;
    srv.patch(
        "/api/v2/units/PARENT",
        &org.user_key,
        json!({"attachments": [att]}),
    )
    .await
    .expect(200);

    // Stations: 403 before anything, even without serials.
    for q in ["?serial_numbers=PARENT", "?serial_numbers=NOPE", ""] {
        let r = srv
            .delete(&format!("/api/v2/units{q}"), &org.station_key)
            .await;
        r.expect(403);
        assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    }
    srv.delete("/api/v2/units", &org.user_key).await.expect(400);
    let none = c
        .units()
        .delete()
        .serial_numbers(vec!["NOPE-1".into(), "NOPE-2".into()])
        .send()
        .await;
    assert!(
        matches!(none, Err(tofupilot::Error::NotFound(_))),
        "{none:?}"
    );

    // Unknown serials in the list are skipped; found ones are deleted (ci).
    let deleted = c
        .units()
        .delete()
        .serial_numbers(vec!["parent".into(), "NOPE".into()])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.id, vec![p.clone()]);
    srv.get("/api/v2/units/PARENT", &org.user_key)
        .await
        .expect(404);
    // The child stays, without parent; its own run stays; its created_during is gone.
    let r = srv.get("/api/v2/units/KID", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["parent"], json!(null));
    assert_eq!(body["created_during"], json!(null));
    assert_eq!(count_where(&srv, "runs", "id", &kid_run).await, 1);
    // The unit's runs and attachments went with it.
    assert_eq!(count_where(&srv, "runs", "id", &run).await, 0);
    assert_eq!(count_where(&srv, "attachments", "id", &att).await, 0);
    assert_eq!(count_where(&srv, "blobs", "attachment_id", &att).await, 0);

    // Bulk.
    let r = srv
        .delete(
            "/api/v2/units?serial_numbers=KID&serial_numbers=other",
            &org.user_key,
        )
        .await;
    let mut got: Vec<String> = serde_json::from_value(r.expect(200)["id"].clone()).unwrap();
    got.sort();
    let mut want = vec![kid, other];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn list_items_have_every_key() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let parent = part_with_unit(&srv, &org.user_key, "P", "PARENT").await;
    let mut kids = Vec::new();
    for i in 0..12 {
        kids.push(unit(&srv, &org.user_key, &format!("KID-{i:02}"), "P", "A").await);
        srv.call(
            reqwest::Method::PUT,
            "/api/v2/units/PARENT/children",
            Some(&org.user_key),
            Some(json!({"child_serial_number": format!("KID-{i:02}")})),
        )
        .await
        .expect(200);
    }
    insert_run(
        &srv,
        &parent,
        &org.procedure_id,
        "PASS",
        "2026-01-01T00:00:00Z",
    )
    .await;
    let last = insert_run(
        &srv,
        &parent,
        &org.procedure_id,
        "ERROR",
        "2026-01-02T00:00:00Z",
    )
    .await;

    let r = srv
        .get(
            "/api/v2/units?serial_numbers=PARENT&serial_numbers=KID-00",
            &org.user_key,
        )
        .await;
    let data = r.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    let kid = &data[0];
    let par = &data[1];
    assert_eq!(kid["serial_number"], json!("KID-00"));
    assert_eq!(
        kid["parent"],
        json!({"id": parent, "serial_number": "PARENT"})
    );
    assert_eq!(kid["children"], json!([]));
    assert_eq!(kid["last_run"], json!(null));
    assert_eq!(kid["batch"], json!(null));
    assert_eq!(kid["sample"], json!(null));
    assert_eq!(kid["created_by_station"], json!(null));
    assert!(kid.get("metadata").is_none());
    assert_eq!(par["parent"], json!(null));
    let children = par["children"].as_array().unwrap();
    assert_eq!(children.len(), 10, "at most 10 children per item");
    assert_eq!(children[0]["id"], json!(kids[0]));
    assert_eq!(children[9]["serial_number"], json!("KID-09"));
    assert_eq!(par["last_run"]["id"], json!(last));
    assert_eq!(par["last_run"]["outcome"], json!("ERROR"));
    assert_eq!(
        par["last_run"]["started_at"],
        json!("2026-01-02T00:00:00.000000Z")
    );
    assert_eq!(
        par["last_run"]["ended_at"],
        json!("2026-01-02T00:01:30.000000Z")
    );
    assert_eq!(
        par["last_run"]["procedure"],
        json!({"id": org.procedure_id, "name": "Lab Functional"})
    );
    assert_eq!(par["part"]["revision"]["number"], json!("A"));

    // The official client reads it all.
    let c = srv.client(&org.user_key);
    let r = c
        .units()
        .list()
        .include_metadata(true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.data.len(), 13);
    assert!(r.data.iter().all(|u| u.metadata.is_some()));
}

#[tokio::test]
async fn list_filters_on_the_unit() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let before = chrono::Utc::now();
    let u1 = part_with_unit(&srv, &org.user_key, "MOTOR-X", "SN_100%").await;
    revision(&srv, &org.user_key, "MOTOR-X", "B").await;
    let u2 = unit(&srv, &org.user_key, "SN-200", "MOTOR-X", "B").await;
    part(&srv, &org.user_key, "SENSOR").await;
    revision(&srv, &org.user_key, "SENSOR", "A").await;
    let u3 = id_of(
        srv.post(
            "/api/v2/units",
            &org.station_key,
            json!({"serial_number": "sn-300", "part_number": "SENSOR", "revision_number": "A",
                   "sample": "golden", "metadata": {"temp": 40, "line": "north"}}),
        )
        .await,
    );
    let after = chrono::Utc::now();
    batch(&srv, &org.user_key, "LOT-1").await;
    srv.patch(
        "/api/v2/units/SN-200",
        &org.user_key,
        json!({"batch_number": "lot-1", "metadata": {"temp": 20, "line": "south"}}),
    )
    .await
    .expect(200);
    srv.call(
        reqwest::Method::PUT,
        "/api/v2/units/SN-200/children",
        Some(&org.user_key),
        Some(json!({"child_serial_number": "SN-300"})),
    )
    .await
    .expect(200);

    let list = |q: String| {
        let srv = &srv;
        let key = org.user_key.clone();
        async move {
            let mut got = ids(&srv.get(&format!("/api/v2/units?{q}"), &key).await);
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        list(format!("ids={u1}&ids={u3}")).await,
        sorted(vec![u1.clone(), u3.clone()])
    );
    assert_eq!(list("ids=bogus".into()).await, Vec::<String>::new());
    assert_eq!(
        list("serial_numbers=sn-200&serial_numbers=NOPE".into()).await,
        vec![u2.clone()]
    );
    assert_eq!(
        list("part_numbers=motor-x".into()).await,
        sorted(vec![u1.clone(), u2.clone()])
    );
    assert_eq!(
        list("part_numbers=MOTOR-X&revision_numbers=b".into()).await,
        vec![u2.clone()]
    );
    assert_eq!(
        list("revision_numbers=a".into()).await,
        sorted(vec![u1.clone(), u3.clone()])
    );
    assert_eq!(list("batch_numbers=LOT-1".into()).await, vec![u2.clone()]);
    assert_eq!(
        list("exclude_units_with_parent=true".into()).await,
        sorted(vec![u1.clone(), u2.clone()])
    );
    assert_eq!(
        list("exclude_units_with_parent=false".into()).await.len(),
        3
    );
    assert_eq!(
        list(format!("created_by_station_ids={}", org.station_id)).await,
        vec![u3.clone()]
    );
    assert_eq!(
        list("created_by_user_ids=bogus".into()).await,
        Vec::<String>::new()
    );
    assert_eq!(list("samples=golden".into()).await, vec![u3.clone()]);
    assert_eq!(
        list("samples=production".into()).await,
        sorted(vec![u1.clone(), u2.clone()])
    );
    assert_eq!(
        list("samples=production&samples=golden".into()).await.len(),
        3
    );
    assert_eq!(list("samples=failing".into()).await, Vec::<String>::new());
    assert_eq!(
        list("search_query=sn_100%25".into()).await,
        vec![u1.clone()],
        "literal"
    );
    assert_eq!(
        list("search_query=SENS".into()).await,
        vec![u3.clone()],
        "part number"
    );
    assert_eq!(list("search_query=".into()).await.len(), 3);
    assert_eq!(
        list("latest_only=false&exclude_units_with_parent=false&limit=50&sort_by=created_at&sort_order=desc&metadata=".into()).await.len(),
        3,
        "the Python client's defaults"
    );
    let r = c
        .units()
        .list()
        .created_after(before)
        .created_before(after)
        .send()
        .await
        .unwrap();
    assert_eq!(r.data.len(), 3);
    // The client sends milliseconds: step past the millisecond of the last create.
    let r = c
        .units()
        .list()
        .created_after(after + chrono::Duration::milliseconds(1))
        .send()
        .await
        .unwrap();
    assert!(r.data.is_empty());
    let r = c
        .units()
        .list()
        .metadata(HashMap::from([
            ("temp".to_string(), json!({"gte": 30})),
            ("line".to_string(), json!({"in": ["north", "east"]})),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![u3.clone()]
    );
    let r = c
        .units()
        .list()
        .metadata(HashMap::from([(
            "line".to_string(),
            json!({"contains": "OUT"}),
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![u2.clone()]
    );
    for bad in [
        "samples=shiny",
        "sort_by=size",
        "outcomes=GOOD",
        "run_count_min=-1",
        "run_count_max=x",
        "exclude_units_with_parent=perhaps",
        "started_after=never",
        "metadata=%5B1%5D",
    ] {
        srv.get(&format!("/api/v2/units?{bad}"), &org.user_key)
            .await
            .expect(400);
    }
}

#[tokio::test]
async fn list_filters_and_sorts_on_runs() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let other_proc = srv
        .post(
            "/api/v2/procedures",
            &org.user_key,
            json!({"name": "Burn-in"}),
        )
        .await;
    let other_proc = other_proc.expect(200)["id"].as_str().unwrap().to_string();
    let never = part_with_unit(&srv, &org.user_key, "P", "NEVER").await;
    let once = unit(&srv, &org.user_key, "ONCE", "P", "A").await;
    let twice = unit(&srv, &org.user_key, "TWICE", "P", "A").await;
    insert_run(&srv, &once, &other_proc, "FAIL", "2026-05-01T00:00:00Z").await;
    insert_run(
        &srv,
        &twice,
        &org.procedure_id,
        "PASS",
        "2026-05-02T00:00:00Z",
    )
    .await;
    insert_run(
        &srv,
        &twice,
        &org.procedure_id,
        "FAIL",
        "2026-04-01T00:00:00Z",
    )
    .await;

    let list = |q: &'static str| {
        let srv = &srv;
        let key = org.user_key.clone();
        async move { ids(&srv.get(&format!("/api/v2/units?{q}"), &key).await) }
    };
    let r = c
        .units()
        .list()
        .procedure_ids(vec![org.procedure_id.clone()])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![twice.clone()]
    );
    assert_eq!(
        list("outcomes=FAIL&sort_by=serial_number&sort_order=asc").await,
        vec![once.clone(), twice.clone()]
    );
    assert_eq!(list("outcomes=ERROR").await, Vec::<String>::new());
    // Run filters combine on the same run.
    assert_eq!(
        list("outcomes=FAIL&started_after=2026-04-15T00:00:00Z").await,
        vec![once.clone()]
    );
    assert_eq!(
        list("started_before=2026-04-15T00:00:00Z").await,
        vec![twice.clone()]
    );
    assert_eq!(list("run_count_min=2").await, vec![twice.clone()]);
    assert_eq!(list("run_count_max=0").await, vec![never.clone()]);
    assert_eq!(
        list("run_count_min=1&run_count_max=1").await,
        vec![once.clone()]
    );
    assert_eq!(
        list("outcomes=FAIL&run_count_min=2").await,
        Vec::<String>::new(),
        "counts matching runs"
    );
    assert_eq!(list("procedure_ids=bogus").await, Vec::<String>::new());

    // last_run_at: by the latest start; units without runs are the oldest.
    let r = c
        .units()
        .list()
        .sort_by(UnitListSortBy::LastRunAt)
        .sort_order(ListSortOrder::Desc)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![twice.clone(), once.clone(), never.clone()]
    );
    // last_run_procedure: by the name of the last run's procedure ("Burn-in" < "Lab …").
    assert_eq!(
        list("sort_by=last_run_procedure&sort_order=asc").await,
        vec![never.clone(), once.clone(), twice.clone()]
    );
    for sort in [
        "serial_number",
        "created_at",
        "last_run_at",
        "part_number",
        "last_run_procedure",
    ] {
        let asc = all_pages(
            &srv,
            &org.user_key,
            &format!("/api/v2/units?sort_by={sort}&sort_order=asc"),
            1,
        )
        .await;
        let mut desc = all_pages(
            &srv,
            &org.user_key,
            &format!("/api/v2/units?sort_by={sort}&sort_order=desc"),
            2,
        )
        .await;
        desc.reverse();
        assert_eq!(asc.len(), 3);
        assert_eq!(asc, desc, "{sort}: mirror, no repeats");
    }
}

#[tokio::test]
async fn other_organizations_units_are_invisible() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let a_unit = part_with_unit(&srv, &a.user_key, "P", "SN-A").await;
    part_with_unit(&srv, &b.user_key, "P", "SN-B").await;
    batch(&srv, &a.user_key, "A-LOT").await;

    srv.get("/api/v2/units/SN-A", &b.user_key).await.expect(404);
    srv.patch(
        "/api/v2/units/SN-A",
        &b.user_key,
        json!({"sample": "golden"}),
    )
    .await
    .expect(404);
    srv.delete("/api/v2/units?serial_numbers=SN-A", &b.user_key)
        .await
        .expect(404);
    let r = srv
        .get(
            &format!("/api/v2/units?ids={a_unit}&serial_numbers=SN-A"),
            &b.user_key,
        )
        .await;
    assert!(ids(&r).is_empty());
    // B cannot use A's batch, nor place a unit on A's part (B has its own "P").
    srv.patch(
        "/api/v2/units/SN-B",
        &b.user_key,
        json!({"batch_number": "A-LOT"}),
    )
    .await
    .expect(404);
    // The same serial is free in B.
    unit(&srv, &b.user_key, "sn-a", "P", "A").await;
    // Children links cannot cross organizations.
    srv.call(
        reqwest::Method::PUT,
        "/api/v2/units/SN-B/children",
        Some(&b.user_key),
        Some(json!({"child_serial_number": "SN-A-NOT-THERE"})),
    )
    .await
    .expect(404);
    let r = srv.get("/api/v2/units/SN-A", &a.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["id"], json!(a_unit));
    assert_eq!(body["sample"], json!(null));
}

#[tokio::test]
async fn units_created_by_runs_show_their_runs() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let first = create_run(
        &srv,
        &org.user_key,
        &org.procedure_id,
        "2026-06-01T10:00:00Z",
        json!({"serial_number": "SN-RUN", "part_number": "PN-RUN", "revision_number": "R1",
               "batch_number": "LOT-RUN"}),
    )
    .await;
    let r = srv.get("/api/v2/units/sn-run", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["created_during"]["id"], json!(first));
    assert_eq!(body["created_during"]["outcome"], json!("PASS"));
    assert_eq!(body["created_during"]["duration"], json!("PT1M30S"));
    assert_eq!(
        body["created_during"]["procedure"]["name"],
        json!("Lab Functional")
    );
    assert_eq!(body["part"]["number"], json!("PN-RUN"));
    assert_eq!(body["part"]["name"], json!("PN-RUN"));
    assert_eq!(body["part"]["revision"]["number"], json!("R1"));
    assert_eq!(body["batch"]["number"], json!("LOT-RUN"));
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));

    // A later run by the station: the unit's last run, not its creating run.
    let second = create_run(
        &srv,
        &org.station_key,
        &org.procedure_id,
        "2026-06-02T10:00:00Z",
        json!({"serial_number": "SN-RUN", "outcome": "FAIL"}),
    )
    .await;
    part_with_unit(&srv, &org.user_key, "PN-OTHER", "SN-NO-RUNS").await;
    let r = c
        .units()
        .list()
        .serial_numbers(vec!["SN-RUN".into()])
        .send()
        .await
        .unwrap();
    let last = r.data[0].last_run.clone();
    let r = srv
        .get("/api/v2/units?serial_numbers=SN-RUN", &org.user_key)
        .await;
    let item = &r.expect(200)["data"][0];
    assert_eq!(item["last_run"]["id"], json!(second));
    assert_eq!(item["last_run"]["outcome"], json!("FAIL"));
    assert!(format!("{last:?}").contains(&second));
    let r = srv.get("/api/v2/units/SN-RUN", &org.user_key).await;
    assert_eq!(r.expect(200)["created_during"]["id"], json!(first));

    let list = |q: String| {
        let srv = &srv;
        let key = org.user_key.clone();
        async move {
            field(
                &srv.get(&format!("/api/v2/units?{q}"), &key).await,
                "serial_number",
            )
        }
    };
    assert_eq!(list("outcomes=FAIL".into()).await, ["SN-RUN"]);
    assert_eq!(list("run_count_min=2".into()).await, ["SN-RUN"]);
    assert_eq!(list("run_count_max=0".into()).await, ["SN-NO-RUNS"]);
    assert_eq!(
        list(format!("procedure_ids={}", org.procedure_id)).await,
        ["SN-RUN"]
    );
    assert_eq!(
        list("sort_by=last_run_at&sort_order=desc".into()).await,
        ["SN-RUN", "SN-NO-RUNS"]
    );

    // Deleting the unit deletes its runs.
    c.units()
        .delete()
        .serial_numbers(vec!["sn-run".into()])
        .send()
        .await
        .unwrap();
    for run in [first, second] {
        srv.get(&format!("/api/v2/runs/{run}"), &org.user_key)
            .await
            .expect(404);
    }
}
