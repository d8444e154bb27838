//! Parts (BEHAVIOR.md §3) through the official client and raw HTTP.

mod catalog_support;
mod common;

use std::collections::HashMap;

use catalog_support::*;
use common::*;
use serde_json::json;
use tofupilot::types::{ListSortOrder, PartListSortBy};

#[tokio::test]
async fn create_get_round_trip_with_defaults_creator_and_metadata() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    let mut metadata = HashMap::new();
    metadata.insert("fw".to_string(), json!("1.2"));
    metadata.insert("layers".to_string(), json!(4));
    metadata.insert("rohs".to_string(), json!(true));
    let created = c
        .parts()
        .create()
        .number("  PCB-100  ")
        .revision_number(" A ")
        .metadata(metadata.clone())
        .send()
        .await
        .unwrap();

    let got = c.parts().get().number("pcb-100").send().await.unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.number, "PCB-100", "trimmed, stored spelling");
    assert_eq!(got.name, "PCB-100", "name defaults to the number");
    assert_eq!(got.revisions.len(), 1);
    assert_eq!(got.revisions[0].number, "A");
    assert_eq!(got.metadata, Some(metadata));

    let body = srv.get("/api/v2/parts/PCB-100", &org.user_key).await;
    let body = body.expect(200);
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));
    assert_eq!(body["created_by_station"], json!(null));
    assert!(body["revisions"][0]["created_at"].is_string());

    // A station may create parts; it is recorded as the creator.
    let r = srv
        .post(
            "/api/v2/parts",
            &org.station_key,
            json!({"number": "PCB-200", "name": "  Board  "}),
        )
        .await;
    r.expect(200);
    let body = srv.get("/api/v2/parts/pcb-200", &org.user_key).await;
    let body = body.expect(200);
    assert_eq!(body["name"], json!("Board"));
    assert_eq!(body["created_by_user"], json!(null));
    assert_eq!(body["created_by_station"]["id"], json!(org.station_id));
    assert_eq!(body["created_by_station"]["name"], json!("Lab Bench"));
    assert_eq!(body["revisions"], json!([]));
    assert_eq!(body["metadata"], json!({}));
}

#[tokio::test]
async fn any_characters_are_accepted_in_numbers_and_paths() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    for number in [
        "A/B\\C",
        "PN 1 (rev) [x] #7 @ & = , ; \" '",
        "零件-测试",
        "🚀.part_1",
        "50%_off?",
    ] {
        let created = c.parts().create().number(number).send().await.unwrap();
        let got = c.parts().get().number(number).send().await.unwrap();
        assert_eq!(got.id, created.id, "{number}");
        assert_eq!(got.number, number);
    }
}

#[tokio::test]
async fn create_validates_lengths_and_required_fields() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    for bad in ["", "   "] {
        let r = srv
            .post("/api/v2/parts", &org.user_key, json!({ "number": bad }))
            .await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed");
        assert_eq!(r.json["issues"][0]["path"], json!(["number"]));
        assert!(r.error_text().contains("empty"), "{}", r.text);
    }
    let r = srv
        .post(
            "/api/v2/parts",
            &org.user_key,
            json!({ "number": "x".repeat(61) }),
        )
        .await;
    r.expect(400);
    assert!(r.error_text().contains("60"), "{}", r.text);
    srv.post(
        "/api/v2/parts",
        &org.user_key,
        json!({ "number": "é".repeat(60) }),
    )
    .await
    .expect(200);

    let r = srv
        .post(
            "/api/v2/parts",
            &org.user_key,
            json!({ "number": "N1", "name": "n".repeat(256) }),
        )
        .await;
    r.expect(400);
    assert!(r.error_text().contains("255"), "{}", r.text);
    assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
    srv.post(
        "/api/v2/parts",
        &org.user_key,
        json!({ "number": "N2", "name": "n".repeat(255) }),
    )
    .await
    .expect(200);

    for (rev, word) in [("", "empty"), (&"r".repeat(61) as &str, "60")] {
        let r = srv
            .post(
                "/api/v2/parts",
                &org.user_key,
                json!({ "number": "N3", "revision_number": rev }),
            )
            .await;
        r.expect(400);
        assert!(r.error_text().contains(word), "{}", r.text);
        assert_eq!(r.json["issues"][0]["path"], json!(["revision_number"]));
    }
    // Nothing was created by the refused requests.
    srv.get("/api/v2/parts/N3", &org.user_key).await.expect(404);

    let r = srv.post("/api/v2/parts", &org.user_key, json!({})).await;
    r.expect(400);
    assert!(r.error_text().contains("number"), "{}", r.text);
    let r = srv
        .post("/api/v2/parts", &org.user_key, json!({ "number": 7 }))
        .await;
    r.expect(400);
}

#[tokio::test]
async fn metadata_rules_on_create() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for bad in [
        json!({"a": [1, 2]}),
        json!({"a": {"nested": true}}),
        json!({"a": null}),
        json!({"": "x"}),
        json!("not an object"),
    ] {
        let r = srv
            .post(
                "/api/v2/parts",
                &org.user_key,
                json!({"number": "M", "metadata": bad}),
            )
            .await;
        r.expect(400);
        assert_eq!(
            r.json["issues"][0]["path"][0],
            json!("metadata"),
            "{}",
            r.text
        );
    }
    let many: serde_json::Map<String, serde_json::Value> =
        (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = srv
        .post(
            "/api/v2/parts",
            &org.user_key,
            json!({"number": "M", "metadata": many}),
        )
        .await;
    r.expect(400);
    assert!(r.error_text().contains("50"), "{}", r.text);
    let fifty: serde_json::Map<String, serde_json::Value> =
        (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
    srv.post(
        "/api/v2/parts",
        &org.user_key,
        json!({"number": "M", "metadata": fifty}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn duplicate_numbers_conflict_case_insensitively() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    c.parts().create().number("pn-x").send().await.unwrap();
    let again = c.parts().create().number("PN-X").name("other").send().await;
    match again {
        Err(tofupilot::Error::Conflict(e)) => {
            assert!(e.message.contains("already exists"), "{}", e.message)
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let r = srv
        .post(
            "/api/v2/parts",
            &org.station_key,
            json!({"number": " Pn-X "}),
        )
        .await;
    r.expect(409);
    let got = c.parts().get().number("PN-x").send().await.unwrap();
    assert_eq!(got.number, "pn-x", "the first spelling is kept");
    assert_eq!(got.name, "pn-x");
}

#[tokio::test]
async fn update_renames_renumbers_and_patches_metadata() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let created = c
        .parts()
        .create()
        .number("OLD-1")
        .name("Old")
        .metadata(HashMap::from([
            ("keep".to_string(), json!("k")),
            ("drop".to_string(), json!(1)),
        ]))
        .send()
        .await
        .unwrap();
    c.parts()
        .create()
        .number("part-lower-x")
        .send()
        .await
        .unwrap();

    // Same number in another case plus a new name succeeds.
    let r = srv
        .patch(
            "/api/v2/parts/old-1",
            &org.user_key,
            json!({"new_number": "Old-1", "name": "  New name  "}),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["id"], json!(created.id));
    assert_eq!(body["number"], json!("Old-1"));
    assert_eq!(body["name"], json!("New name"));
    let first_update = body["updated_at"].as_str().unwrap().to_string();
    assert!(first_update.ends_with('Z'));

    // Taken by another part, ci.
    let r = srv
        .patch(
            "/api/v2/parts/Old-1",
            &org.user_key,
            json!({"new_number": "PART-LOWER-X"}),
        )
        .await;
    r.expect(409);
    assert!(r.error_text().contains("already exists"), "{}", r.text);

    let r = srv
        .patch(
            "/api/v2/parts/OLD-1",
            &org.user_key,
            json!({"new_number": "NEW-1", "metadata": {"drop": null, "added": 2.5}}),
        )
        .await;
    let body = r.expect(200);
    assert_eq!(body["number"], json!("NEW-1"));
    assert_eq!(body["name"], json!("New name"));
    assert!(body["updated_at"].as_str().unwrap() > first_update.as_str());
    srv.get("/api/v2/parts/OLD-1", &org.user_key)
        .await
        .expect(404);
    let got = c.parts().get().number("new-1").send().await.unwrap();
    assert_eq!(
        got.metadata,
        Some(HashMap::from([
            ("keep".to_string(), json!("k")),
            ("added".to_string(), json!(2.5)),
        ]))
    );
}

#[tokio::test]
async fn update_validation_and_errors() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    part(&srv, &org.user_key, "P1").await;

    let r = srv
        .patch("/api/v2/parts/P1", &org.user_key, json!({}))
        .await;
    r.expect(400);
    assert_eq!(r.message(), "Input validation failed");
    for (body, word) in [
        (json!({"new_number": ""}), "empty"),
        (json!({"new_number": "x".repeat(61)}), "60"),
        (json!({"name": "x".repeat(256)}), "255"),
        (json!({"name": "  "}), "empty"),
        (json!({"metadata": {"a": [1]}}), "metadata"),
    ] {
        let r = srv.patch("/api/v2/parts/P1", &org.user_key, body).await;
        r.expect(400);
        assert!(r.error_text().contains(word), "{}", r.text);
    }
    let r = srv
        .patch("/api/v2/parts/NOPE", &org.user_key, json!({"name": "x"}))
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Part not found");
    // An empty path segment still answers JSON.
    let r = srv
        .patch("/api/v2/parts/", &org.user_key, json!({"name": "x"}))
        .await;
    assert!(r.status == 404 || r.status == 405, "{}", r.status);
    assert_error_envelope(&r);
}

#[tokio::test]
async fn stations_cannot_update_or_delete_before_any_check() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    part(&srv, &org.user_key, "P1").await;
    for path in ["/api/v2/parts/P1", "/api/v2/parts/UNKNOWN"] {
        for body in [json!({"name": "x"}), json!({}), json!({"new_number": ""})] {
            let r = srv.patch(path, &org.station_key, body).await;
            r.expect(403);
            assert!(r.error_text().contains("stations cannot"), "{}", r.text);
        }
        let r = srv.delete(path, &org.station_key).await;
        r.expect(403);
        assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    }
    // Reads are allowed and the part is untouched.
    let r = srv.get("/api/v2/parts/P1", &org.station_key).await;
    assert_eq!(r.expect(200)["name"], json!("P1"));
    srv.get("/api/v2/parts", &org.station_key).await.expect(200);
}

#[tokio::test]
async fn delete_removes_revisions_and_their_images() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let part_id = part(&srv, &org.user_key, "DEL-1").await;
    let rev_a = revision(&srv, &org.user_key, "DEL-1", "A").await;
    let rev_b = revision(&srv, &org.user_key, "DEL-1", "B").await;
    let image = insert_upload(&srv, &org, "board.png", true).await;
    srv.patch(
        "/api/v2/parts/DEL-1/revisions/A",
        &org.user_key,
        json!({"image_id": image}),
    )
    .await
    .expect(200);
    assert_eq!(count_where(&srv, "attachments", "id", &image).await, 1);

    let r = srv.delete("/api/v2/parts/del-1", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["id"], json!(part_id));
    assert_eq!(body["deletedRevisionIds"], json!([rev_a, rev_b]));
    assert!(matches!(
        c.parts().get().number("DEL-1").send().await,
        Err(tofupilot::Error::NotFound(_))
    ));
    assert_eq!(count_where(&srv, "revisions", "part_id", &part_id).await, 0);
    assert_eq!(count_where(&srv, "attachments", "id", &image).await, 0);
    assert_eq!(count_where(&srv, "blobs", "attachment_id", &image).await, 0);

    // A part without revisions deletes with an empty list.
    part(&srv, &org.user_key, "DEL-2").await;
    let r = srv.delete("/api/v2/parts/DEL-2", &org.user_key).await;
    assert_eq!(r.expect(200)["deletedRevisionIds"], json!([]));
    srv.delete("/api/v2/parts/DEL-2", &org.user_key)
        .await
        .expect(404);
}

#[tokio::test]
async fn delete_is_refused_while_units_or_runs_use_the_part() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let unit1 = part_with_unit(&srv, &org.user_key, "USED", "SN-1").await;
    unit(&srv, &org.user_key, "SN-2", "USED", "A").await;

    let r = srv.delete("/api/v2/parts/USED", &org.user_key).await;
    r.expect(409);
    assert!(r.message().contains("2 units"), "{}", r.text);
    srv.get("/api/v2/parts/USED", &org.user_key)
        .await
        .expect(200);

    // Runs keep the revision they were on: moving the units away still leaves the runs.
    let run = insert_run(
        &srv,
        &unit1,
        &org.procedure_id,
        "PASS",
        "2026-01-01T10:00:00Z",
    )
    .await;
    part(&srv, &org.user_key, "OTHER").await;
    revision(&srv, &org.user_key, "OTHER", "A").await;
    for sn in ["SN-1", "SN-2"] {
        srv.patch(
            &format!("/api/v2/units/{sn}"),
            &org.user_key,
            json!({"part_number": "OTHER", "revision_number": "A"}),
        )
        .await
        .expect(200);
    }
    let r = srv.delete("/api/v2/parts/USED", &org.user_key).await;
    r.expect(409);
    assert!(r.message().contains("1 run"), "{}", r.text);
    assert_eq!(count_where(&srv, "runs", "id", &run).await, 1);

    // Once the run is gone the part can go.
    srv.delete("/api/v2/units?serial_numbers=SN-1", &org.user_key)
        .await
        .expect(200);
    srv.delete("/api/v2/parts/USED", &org.user_key)
        .await
        .expect(200);
}

#[tokio::test]
async fn list_sorts_mirror_and_pages_never_repeat() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    for (number, name) in [
        ("B-2", "beta"),
        ("a-1", "Delta"),
        ("C-3", "alpha"),
        ("d-4", "Charlie"),
    ] {
        c.parts()
            .create()
            .number(number)
            .name(name)
            .send()
            .await
            .unwrap();
    }
    let numbers = |r: tofupilot::types::PartListResponse| -> Vec<String> {
        r.data.into_iter().map(|p| p.number).collect()
    };
    let by_number = c
        .parts()
        .list()
        .sort_by(PartListSortBy::Number)
        .sort_order(ListSortOrder::Asc)
        .send()
        .await
        .unwrap();
    assert_eq!(numbers(by_number), ["a-1", "B-2", "C-3", "d-4"]);
    let by_name = c
        .parts()
        .list()
        .sort_by(PartListSortBy::Name)
        .sort_order(ListSortOrder::Desc)
        .send()
        .await
        .unwrap();
    assert_eq!(numbers(by_name), ["a-1", "d-4", "B-2", "C-3"]);
    // Default: newest first.
    let default = c.parts().list().send().await.unwrap();
    assert_eq!(numbers(default), ["d-4", "C-3", "a-1", "B-2"]);

    for sort in ["name", "number", "created_at"] {
        let asc = all_pages(
            &srv,
            &org.user_key,
            &format!("/api/v2/parts?sort_by={sort}&sort_order=asc"),
            1,
        )
        .await;
        let mut desc = all_pages(
            &srv,
            &org.user_key,
            &format!("/api/v2/parts?sort_by={sort}&sort_order=desc"),
            3,
        )
        .await;
        desc.reverse();
        assert_eq!(asc.len(), 4);
        assert_eq!(asc, desc, "{sort}: asc and desc mirror, no repeats");
    }
}

#[tokio::test]
async fn list_search_procedure_and_metadata_filters() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let p1 = c
        .parts()
        .create()
        .number("MOTOR-100%")
        .name("Stepper motor")
        .revision_number("rev_Z9")
        .metadata(HashMap::from([
            ("voltage".to_string(), json!(12)),
            ("vendor".to_string(), json!("Acme Corp")),
            ("rohs".to_string(), json!(true)),
        ]))
        .send()
        .await
        .unwrap()
        .id;
    let p2 = c
        .parts()
        .create()
        .number("SENSOR-1")
        .name("Hall sensor")
        .metadata(HashMap::from([
            ("voltage".to_string(), json!(3.3)),
            ("vendor".to_string(), json!("Other")),
            ("rohs".to_string(), json!(false)),
        ]))
        .send()
        .await
        .unwrap()
        .id;
    let search = |q: &str| {
        let q = q.to_string();
        let c = &c;
        async move {
            c.parts()
                .list()
                .search_query(q)
                .send()
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("motor-100%").await,
        vec![p1.clone()],
        "number, ci, literal %"
    );
    assert_eq!(search("HALL").await, vec![p2.clone()], "name");
    assert_eq!(search("REV_z").await, vec![p1.clone()], "revision number");
    assert!(search("motor_100").await.is_empty(), "_ is literal");

    // procedure_ids: parts with runs under those procedures.
    let other_proc = srv
        .post(
            "/api/v2/procedures",
            &org.user_key,
            json!({"name": "Other"}),
        )
        .await;
    let other_proc = other_proc.expect(200)["id"].as_str().unwrap().to_string();
    revision(&srv, &org.user_key, "SENSOR-1", "A").await;
    let u = unit(&srv, &org.user_key, "S-1", "SENSOR-1", "A").await;
    insert_run(&srv, &u, &org.procedure_id, "PASS", "2026-02-01T00:00:00Z").await;
    let r = c
        .parts()
        .list()
        .procedure_ids(vec![org.procedure_id.clone()])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.data.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![p2.clone()]
    );
    let r = c
        .parts()
        .list()
        .procedure_ids(vec![other_proc])
        .send()
        .await
        .unwrap();
    assert!(r.data.is_empty());
    let r = srv
        .get("/api/v2/parts?procedure_ids=not-a-uuid", &org.user_key)
        .await;
    assert!(ids(&r).is_empty());

    // Metadata filters, and include_metadata.
    for (filter, expected) in [
        (json!({"voltage": {"gte": 5}}), vec![p1.clone()]),
        (json!({"voltage": {"lt": 5, "gt": 3}}), vec![p2.clone()]),
        (json!({"voltage": {"eq": 12}}), vec![p1.clone()]),
        (json!({"voltage": 3.3}), vec![p2.clone()]),
        (json!({"vendor": {"contains": "acme"}}), vec![p1.clone()]),
        (
            json!({"vendor": {"in": ["Other", "Nobody"]}}),
            vec![p2.clone()],
        ),
        (json!({"vendor": "Acme Corp"}), vec![p1.clone()]),
        (json!({"rohs": {"eq": false}}), vec![p2.clone()]),
        (
            json!({"rohs": true, "voltage": {"gte": 1}}),
            vec![p1.clone()],
        ),
        (json!({"vendor": {"gte": 1}}), vec![]),
        (json!({"missing": "x"}), vec![]),
    ] {
        let r = c
            .parts()
            .list()
            .metadata(
                serde_json::from_value::<HashMap<String, serde_json::Value>>(filter.clone())
                    .unwrap(),
            )
            .include_metadata(true)
            .send()
            .await
            .unwrap();
        let got: Vec<String> = r.data.iter().map(|p| p.id.clone()).collect();
        assert_eq!(got, expected, "{filter}");
        for p in &r.data {
            assert!(p
                .metadata
                .as_ref()
                .is_some_and(|m| m.contains_key("voltage")));
        }
    }
    // Without include_metadata, no metadata; an empty `metadata=` is no filter.
    let r = srv
        .get(
            "/api/v2/parts?metadata=&limit=50&sort_by=created_at&sort_order=desc",
            &org.user_key,
        )
        .await;
    assert_eq!(ids(&r).len(), 2);
    assert!(r.json["data"][0].get("metadata").is_none());
    for bad in [
        "metadata=notjson",
        "metadata=%7B%22a%22%3A%7B%22like%22%3A1%7D%7D",
        "sort_by=size",
        "sort_order=up",
        "limit=0",
        "cursor=-1",
        "include_metadata=maybe",
    ] {
        srv.get(&format!("/api/v2/parts?{bad}"), &org.user_key)
            .await
            .expect(400);
    }
}

#[tokio::test]
async fn other_organizations_parts_are_invisible() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    part(&srv, &a.user_key, "SHARED").await;
    revision(&srv, &a.user_key, "SHARED", "A").await;

    srv.get("/api/v2/parts/SHARED", &b.user_key)
        .await
        .expect(404);
    srv.patch(
        "/api/v2/parts/SHARED",
        &b.user_key,
        json!({"name": "stolen"}),
    )
    .await
    .expect(404);
    srv.delete("/api/v2/parts/SHARED", &b.user_key)
        .await
        .expect(404);
    let r = srv
        .get("/api/v2/parts?search_query=shared", &b.user_key)
        .await;
    assert!(ids(&r).is_empty());

    // The same number is free in another organization.
    let b_part = part(&srv, &b.user_key, "shared").await;
    let r = srv.get("/api/v2/parts", &b.user_key).await;
    assert_eq!(ids(&r), vec![b_part]);
    let r = srv.get("/api/v2/parts/SHARED", &a.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["name"], json!("SHARED"));
    assert_eq!(body["revisions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_creates_of_one_number_make_one_part() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let srv_url = srv.url.clone();
        let key = org.user_key.clone();
        tasks.push(tokio::spawn(async move {
            let number = if i % 2 == 0 { "RACE-1" } else { "race-1" };
            reqwest::Client::new()
                .post(format!("{srv_url}/api/v2/parts"))
                .bearer_auth(key)
                .json(&json!({ "number": number }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    let r = srv
        .get("/api/v2/parts?search_query=race", &org.user_key)
        .await;
    assert_eq!(ids(&r).len(), 1);
}

#[tokio::test]
async fn parts_created_by_runs_are_ordinary_and_protected() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    create_run(
        &srv,
        &org.station_key,
        &org.procedure_id,
        "2026-06-01T10:00:00Z",
        json!({"serial_number": "SN-1", "part_number": "Run-Part"}),
    )
    .await;
    let got = c.parts().get().number("RUN-PART").send().await.unwrap();
    assert_eq!(got.name, "Run-Part");
    assert_eq!(got.revisions.len(), 1, "the default revision");
    let r = srv.get("/api/v2/parts/run-part", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["created_by_station"]["id"], json!(org.station_id));
    assert_eq!(body["created_by_user"], json!(null));

    let r = c
        .parts()
        .list()
        .procedure_ids(vec![org.procedure_id.clone()])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.data.iter().map(|p| p.number.clone()).collect::<Vec<_>>(),
        ["Run-Part"]
    );

    let r = srv.delete("/api/v2/parts/RUN-PART", &org.user_key).await;
    r.expect(409);
    assert!(r.message().contains("1 unit"), "{}", r.text);
    srv.delete("/api/v2/units?serial_numbers=SN-1", &org.user_key)
        .await
        .expect(200);
    let r = srv.delete("/api/v2/parts/RUN-PART", &org.user_key).await;
    assert_eq!(
        r.expect(200)["deletedRevisionIds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
