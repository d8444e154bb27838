//! Stations (BEHAVIOR.md §8, §15, §16) through the official client and raw HTTP.

mod common;
mod rows;

use std::collections::HashMap;

use common::*;
use serde_json::{json, Value};
use tofulab::caller::Principal;
use tofulab::db::Id;

fn meta(v: Value) -> HashMap<String, Value> {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn create_get_update_remove_round_trip() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    let created = c
        .stations()
        .create()
        .name("  Bench 7  ")
        .procedure_id(&org.procedure_id)
        .metadata(meta(json!({"location": "Hall B", "bay": 4, "esd": true})))
        .send()
        .await
        .unwrap();
    let got = c.stations().get().id(&created.id).send().await.unwrap();
    assert_eq!(got.name, "Bench 7", "names are trimmed");
    assert_eq!(got.organization_slug, "lab");
    assert!(got.api_key.is_none(), "a new station has no key");
    assert_eq!(got.procedures.len(), 1);
    assert_eq!(got.procedures[0].id, org.procedure_id);
    assert_eq!(got.procedures[0].runs_count, 0.0);

    // Raw JSON: every key the clients require, nulls included.
    let r = srv
        .get(&format!("/api/v2/stations/{}", created.id), &org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["api_key"], Value::Null);
    assert_eq!(body["connection_status"], Value::Null);
    assert_eq!(body["team"], Value::Null);
    assert_eq!(body["procedures"][0]["deployment"], Value::Null);
    assert!(body["procedures"][0]["identifier"]
        .as_str()
        .unwrap()
        .starts_with("PROC-"));
    assert_eq!(body["procedures"][0]["runs_count"], json!(0));
    assert_eq!(
        body["metadata"],
        json!({"location": "Hall B", "bay": 4, "esd": true})
    );

    let updated = c
        .stations()
        .update()
        .id(&created.id)
        .name(" Bench 8 ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (updated.id.as_str(), updated.name.as_str()),
        (created.id.as_str(), "Bench 8")
    );
    // Fields not sent are unchanged; the answer carries the current name.
    let r = srv
        .patch(
            &format!("/api/v2/stations/{}", created.id),
            &org.user_key,
            json!({}),
        )
        .await;
    assert_eq!(r.expect(200), &json!({"id": created.id, "name": "Bench 8"}));
    let got = c.stations().get().id(&created.id).send().await.unwrap();
    assert_eq!(got.procedures.len(), 1);

    let removed = c.stations().remove().id(&created.id).send().await.unwrap();
    assert_eq!(removed.id, created.id);
    let again = c.stations().get().id(&created.id).send().await;
    assert!(
        matches!(again, Err(tofupilot::Error::NotFound(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn names_are_validated_but_not_unique() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    for bad in [json!({"name": ""}), json!({"name": "   "})] {
        let r = srv.post("/api/v2/stations", &org.user_key, bad).await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed");
        assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
    }
    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "x".repeat(256)}),
        )
        .await;
    r.expect(400);
    assert!(r.error_text().contains("255"), "{}", r.text);
    srv.post(
        "/api/v2/stations",
        &org.user_key,
        json!({"name": "x".repeat(255)}),
    )
    .await
    .expect(200);
    for bad in [json!({}), json!({"name": 7}), json!({"name": null})] {
        let r = srv.post("/api/v2/stations", &org.user_key, bad).await;
        r.expect(400);
        assert!(r.error_text().contains("name"), "{}", r.text);
    }

    // The same name twice makes two distinct stations.
    let c = srv.client(&org.user_key);
    let a = c.stations().create().name("Twin").send().await.unwrap();
    let b = c.stations().create().name("Twin").send().await.unwrap();
    assert_ne!(a.id, b.id);
    let list = c
        .stations()
        .list()
        .search_query("twin")
        .send()
        .await
        .unwrap();
    assert_eq!(list.data.len(), 2);
}

#[tokio::test]
async fn references_on_create_must_exist() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "B", "procedure_id": random_id()}),
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Procedure not found");
    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "B", "team_id": random_id()}),
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Team not found");
    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "B", "procedure_id": "nope"}),
        )
        .await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["procedure_id"]));
    for bad in [json!({"a": [1]}), json!("flat"), json!({"a": null})] {
        let r = srv
            .post(
                "/api/v2/stations",
                &org.user_key,
                json!({"name": "B", "metadata": bad}),
            )
            .await;
        r.expect(400);
        assert_eq!(
            r.json["issues"][0]["path"],
            json!(["metadata"]),
            "{}",
            r.text
        );
    }
    let too_many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "B", "metadata": too_many}),
        )
        .await;
    r.expect(400);
    assert!(r.error_text().contains("50"), "{}", r.text);

    // Nothing was created by the failures.
    let list = srv.get("/api/v2/stations", &org.user_key).await;
    assert_eq!(list.expect(200)["data"].as_array().unwrap().len(), 1);

    // A team of the organization is accepted and shown.
    let org_id = rows::org_id(&srv, &org.user_key).await;
    let team = rows::insert_team(&srv.db, org_id, "Line 1").await;
    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "B", "team_id": team.to_string()}),
        )
        .await;
    let id = r.expect(200)["id"].as_str().unwrap().to_string();
    let r = srv
        .get(&format!("/api/v2/stations/{id}"), &org.user_key)
        .await;
    assert_eq!(
        r.expect(200)["team"],
        json!({"id": team.to_string(), "name": "Line 1"})
    );
    assert_eq!(r.json["procedures"], json!([]));
}

#[tokio::test]
async fn station_keys_may_only_read() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let key = &org.station_key;
    let own = format!("/api/v2/stations/{}", org.station_id);
    let unknown = format!("/api/v2/stations/{}", random_id());

    // 403 before body validation and before any lookup.
    for body in [json!({"name": "ok"}), json!({"name": ""}), json!({})] {
        let r = srv.post("/api/v2/stations", key, body).await;
        r.expect(403);
        assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    }
    srv.get("/api/v2/stations", key).await.expect(403);
    srv.get("/api/v2/stations?limit=abc", key).await.expect(403);
    srv.patch(&own, key, json!({"name": "mine"}))
        .await
        .expect(403);
    srv.patch(&unknown, key, json!({"name": ""}))
        .await
        .expect(403);
    srv.delete(&own, key).await.expect(403);
    srv.delete(&unknown, key).await.expect(403);
    // Malformed ids are 400 for every key (path format comes before the station gate).
    srv.delete("/api/v2/stations/not-an-id", key)
        .await
        .expect(400);

    // Reads: any station of the organization, and the current one.
    let other = srv
        .post("/api/v2/stations", &org.user_key, json!({"name": "Other"}))
        .await;
    let other = other.expect(200)["id"].as_str().unwrap().to_string();
    let r = srv.get(&format!("/api/v2/stations/{other}"), key).await;
    assert_eq!(r.expect(200)["name"], json!("Other"));
    srv.get(&unknown, key).await.expect(404);

    let c = srv.client(key);
    let me = c.stations().get_current().send().await.unwrap();
    assert_eq!(me.id, org.station_id);
    assert_eq!(me.name, "Lab Bench");
    assert_eq!(me.organization_slug, "lab");
    assert_eq!(me.procedures.len(), 1);
    assert_eq!(me.procedures[0].id, org.procedure_id);
    let masked = me.api_key.expect("the seeded key shows as a prefix");
    assert!(masked.starts_with("tp_station_"), "{masked}");
    assert_ne!(masked, org.station_key, "never the secret");
    assert!(masked.chars().count() < org.station_key.len());

    // Still unchanged after the refused writes.
    let r = srv.get(&own, &org.user_key).await;
    assert_eq!(r.expect(200)["name"], json!("Lab Bench"));

    // A user key has no current station.
    let r = srv
        .client(&org.user_key)
        .stations()
        .get_current()
        .send()
        .await;
    assert!(matches!(r, Err(tofupilot::Error::Forbidden(_))), "{r:?}");
    srv.get("/api/v2/stations/current", &org.user_key)
        .await
        .expect(403);
}

#[tokio::test]
async fn api_key_shows_the_newest_live_key_masked() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let created = c.stations().create().name("Keyed").send().await.unwrap();
    let id = Id::parse(&created.id).unwrap();
    let org_id = rows::org_id(&srv, &org.user_key).await;

    let key = srv
        .db
        .create_api_key(org_id, Principal::Station(id))
        .await
        .unwrap();
    let got = c.stations().get().id(&created.id).send().await.unwrap();
    let shown = got.api_key.unwrap();
    assert_eq!(shown, tofulab::apikey::masked(&key));
    assert!(shown.len() < key.len() && !shown.contains(&key[11..]));

    // The new key works, and the station it names is this one.
    let me = srv
        .client(&key)
        .stations()
        .get_current()
        .send()
        .await
        .unwrap();
    assert_eq!(me.id, created.id);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    let mut ids = Vec::new();
    for (i, (loc, bay, esd)) in [
        ("Hall A", 1, true),
        ("Hall B", 5, false),
        ("Annex", 9, true),
    ]
    .into_iter()
    .enumerate()
    {
        let s = c
            .stations()
            .create()
            .name(format!("Rack 100%_{i}"))
            .metadata(meta(json!({"location": loc, "bay": bay, "esd": esd})))
            .send()
            .await
            .unwrap();
        ids.push(s.id);
    }
    // Linked to the org's procedure: the seeded bench and the last rack.
    srv.post(
        "/api/trpc/station.linkProcedure",
        &org.user_key,
        json!({"json": {"id": ids[2], "procedure_id": org.procedure_id}}),
    )
    .await
    .expect(200);

    // Newest first, paged, search takes `%` and `_` literally and ignores case.
    let page1 = c
        .stations()
        .list()
        .search_query("RACK 100%_")
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page1.data.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![ids[2].as_str(), ids[1].as_str()]
    );
    assert!(page1.meta.has_more);
    let page2 = c
        .stations()
        .list()
        .search_query("rack 100%_")
        .limit(2)
        .cursor(page1.meta.next_cursor.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page2.data.len(), 1);
    assert_eq!(page2.data[0].id, ids[0]);
    assert!(!page2.meta.has_more && page2.meta.next_cursor.is_none());
    let none = c
        .stations()
        .list()
        .search_query("rack 100x")
        .send()
        .await
        .unwrap();
    assert!(none.data.is_empty());

    // Linked procedures and their count on each item.
    let linked = c
        .stations()
        .list()
        .procedure_ids(vec![org.procedure_id.clone()])
        .send()
        .await
        .unwrap();
    let mut linked_ids: Vec<&str> = linked.data.iter().map(|s| s.id.as_str()).collect();
    linked_ids.sort();
    let mut expected = vec![ids[2].as_str(), org.station_id.as_str()];
    expected.sort();
    assert_eq!(linked_ids, expected);
    for s in &linked.data {
        assert_eq!(s.procedures_count, 1.0);
        assert_eq!(s.procedures[0].id, org.procedure_id);
    }
    let r = srv
        .get(
            &format!("/api/v2/stations?procedure_ids={}", random_id()),
            &org.user_key,
        )
        .await;
    assert_eq!(r.expect(200)["data"], json!([]));
    let r = srv
        .get("/api/v2/stations?procedure_ids=garbage", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["data"], json!([]));

    // Metadata filters: operators per type, combined with AND.
    let by_meta = |f: Value| {
        let srv = &srv;
        let key = org.user_key.clone();
        async move {
            let q: String = form_urlencoded::byte_serialize(f.to_string().as_bytes()).collect();
            let r = srv
                .get(&format!("/api/v2/stations?metadata={q}&limit=100"), &key)
                .await;
            let mut got: Vec<String> = r.expect(200)["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            got.sort();
            got
        }
    };
    let sorted = |v: Vec<&String>| {
        let mut v: Vec<String> = v.into_iter().cloned().collect();
        v.sort();
        v
    };
    assert_eq!(
        by_meta(json!({"location": {"in": ["Hall A", "Annex"]}})).await,
        sorted(vec![&ids[0], &ids[2]])
    );
    assert_eq!(
        by_meta(json!({"location": {"contains": "hall"}})).await,
        sorted(vec![&ids[0], &ids[1]])
    );
    assert_eq!(
        by_meta(json!({"bay": {"gte": 5}})).await,
        sorted(vec![&ids[1], &ids[2]])
    );
    assert_eq!(
        by_meta(json!({"bay": {"gt": 1, "lt": 9}})).await,
        sorted(vec![&ids[1]])
    );
    assert_eq!(
        by_meta(json!({"esd": {"eq": true}, "bay": {"lte": 5}})).await,
        sorted(vec![&ids[0]])
    );
    assert_eq!(
        by_meta(json!({"location": "Annex"})).await,
        sorted(vec![&ids[2]])
    );
    // A type mismatch matches nothing rather than failing.
    assert!(by_meta(json!({"location": {"gte": 1}})).await.is_empty());
    // Through the official client too.
    let via_client = c
        .stations()
        .list()
        .metadata(meta(json!({"bay": {"eq": 9}})))
        .include_metadata(true)
        .send()
        .await
        .unwrap();
    assert_eq!(via_client.data.len(), 1);
    assert_eq!(
        via_client.data[0].metadata.as_ref().unwrap()["location"],
        json!("Annex")
    );

    // An empty `metadata=` (sent by the Python client) is no filter; bad filters are 400.
    let r = srv
        .get("/api/v2/stations?metadata=&limit=50", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["data"].as_array().unwrap().len(), 4);
    assert!(
        r.json["data"][0].get("metadata").is_none(),
        "only on request"
    );
    for bad in [
        "metadata=nope",
        "metadata=%5B1%5D",
        "metadata=%7B%22a%22%3A%7B%22near%22%3A1%7D%7D",
        "limit=0",
        "limit=x",
        "cursor=-1",
    ] {
        srv.get(&format!("/api/v2/stations?{bad}"), &org.user_key)
            .await
            .expect(400);
    }
    // Limits above 100 are clamped; items carry every required key.
    let r = srv.get("/api/v2/stations?limit=500", &org.user_key).await;
    for item in r.expect(200)["data"].as_array().unwrap() {
        for k in ["id", "name", "procedures", "procedures_count", "team"] {
            assert!(item.get(k).is_some(), "{k} missing in {item}");
        }
    }
}

#[tokio::test]
async fn update_changes_only_what_is_sent() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let org_id = rows::org_id(&srv, &org.user_key).await;
    let team = rows::insert_team(&srv.db, org_id, "Line 2").await;
    let s = c
        .stations()
        .create()
        .name("Bench")
        .metadata(meta(json!({"a": 1, "b": "x"})))
        .send()
        .await
        .unwrap();
    let path = format!("/api/v2/stations/{}", s.id);
    let sid = Id::parse(&s.id).unwrap();

    // Team: assign, then `null` unassigns.
    c.stations()
        .update()
        .id(&s.id)
        .team_id(team.to_string())
        .send()
        .await
        .unwrap();
    let got = c.stations().get().id(&s.id).send().await.unwrap();
    assert_eq!(got.team.unwrap().name, "Line 2");
    c.stations()
        .update()
        .id(&s.id)
        .team_id_null()
        .send()
        .await
        .unwrap();
    let r = srv.get(&path, &org.user_key).await;
    assert_eq!(r.expect(200)["team"], Value::Null);
    let r = srv
        .patch(&path, &org.user_key, json!({"team_id": random_id()}))
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Team not found");

    // Metadata is patched: new keys added, `null` deletes, others kept.
    let r = srv
        .patch(
            &path,
            &org.user_key,
            json!({"metadata": {"a": null, "c": true}}),
        )
        .await;
    assert_eq!(r.expect(200)["name"], json!("Bench"));
    let r = srv.get(&path, &org.user_key).await;
    assert_eq!(r.expect(200)["metadata"], json!({"b": "x", "c": true}));
    let r = srv
        .patch(&path, &org.user_key, json!({"metadata": {"bad": {"x": 1}}}))
        .await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["metadata"]));
    let many: serde_json::Map<String, Value> =
        (0..49).map(|i| (format!("k{i}"), json!(i))).collect();
    srv.patch(&path, &org.user_key, json!({"metadata": many}))
        .await
        .expect(400);
    let r = srv.get(&path, &org.user_key).await;
    assert_eq!(r.expect(200)["metadata"], json!({"b": "x", "c": true}));

    // Image: an upload of the organization; "" removes it.
    let image_sql = "SELECT CAST(image_attachment_id AS TEXT) FROM stations WHERE id = $1";
    let upload = rows::insert_upload(&srv.db, org_id).await;
    c.stations()
        .update()
        .id(&s.id)
        .image_id(upload.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        rows::column(&srv.db, image_sql, sid).await,
        Some(upload.to_string())
    );
    let linked = rows::column(
        &srv.db,
        "SELECT CAST(linked_at AS TEXT) FROM attachments WHERE id = $1",
        upload,
    )
    .await;
    assert!(linked.is_some(), "an image upload is kept by the sweep");
    srv.patch(&path, &org.user_key, json!({"image_id": ""}))
        .await
        .expect(200);
    assert_eq!(rows::column(&srv.db, image_sql, sid).await, None);
    let r = srv
        .patch(&path, &org.user_key, json!({"image_id": random_id()}))
        .await;
    r.expect(404);
    srv.patch(&path, &org.user_key, json!({"image_id": "x"}))
        .await
        .expect(400);

    // Validation and existence.
    let r = srv.patch(&path, &org.user_key, json!({"name": " "})).await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
    let r = c.stations().update().id(random_id()).name("x").send().await;
    assert!(matches!(r, Err(tofupilot::Error::NotFound(_))), "{r:?}");
    srv.patch("/api/v2/stations/nope", &org.user_key, json!({}))
        .await
        .expect(400);
    // Unchanged by all the failures.
    let got = c.stations().get().id(&s.id).send().await.unwrap();
    assert_eq!(got.name, "Bench");
}

#[tokio::test]
async fn remove_archives_revokes_keys_and_keeps_history() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let org_id = rows::org_id(&srv, &org.user_key).await;
    let station = &org.station_id;
    let path = format!("/api/v2/stations/{station}");

    // History made by the station: a version it created implicitly and a run of it.
    let version = Id::new();
    {
        let mut tx = srv.db.begin().await.unwrap();
        tx.execute(
            tofulab::db::Sql::new(
                "INSERT INTO procedure_versions (id, org_id, procedure_id, tag, tag_key,
                     created_by_station_id, created_at)
                 VALUES ($1, $2, $3, 'v9', 'v9', $4, $5)",
            )
            .bind(version)
            .bind(org_id)
            .bind(Id::parse(&org.procedure_id).unwrap())
            .bind(Id::parse(station).unwrap())
            .bind(tofulab::db::Ts::now()),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    rows::insert_run(
        &srv.db,
        org_id,
        &org.procedure_id,
        Some(&version.to_string()),
        Some(station),
        chrono::Duration::hours(1),
    )
    .await;
    // Runs of the last 7 days by this station count; older ones and others' do not.
    rows::insert_run(
        &srv.db,
        org_id,
        &org.procedure_id,
        None,
        Some(station),
        chrono::Duration::days(8),
    )
    .await;
    rows::insert_run(
        &srv.db,
        org_id,
        &org.procedure_id,
        None,
        None,
        chrono::Duration::hours(1),
    )
    .await;
    let r = srv.get(&path, &org.user_key).await;
    assert_eq!(r.expect(200)["procedures"][0]["runs_count"], json!(1));

    srv.get("/api/v2/whoami", &org.station_key)
        .await
        .expect(200);
    let removed = c.stations().remove().id(station).send().await.unwrap();
    assert_eq!(&removed.id, station);

    // Gone for get, update, list and remove; its key no longer authenticates.
    srv.get(&path, &org.user_key).await.expect(404);
    srv.patch(&path, &org.user_key, json!({"name": "back"}))
        .await
        .expect(404);
    let again = c.stations().remove().id(station).send().await;
    assert!(
        matches!(again, Err(tofupilot::Error::NotFound(_))),
        "{again:?}"
    );
    let list = c.stations().list().send().await.unwrap();
    assert!(list.data.iter().all(|s| &s.id != station));
    let r = srv.get("/api/v2/whoami", &org.station_key).await;
    r.expect(401);
    srv.get("/api/v2/stations/current", &org.station_key)
        .await
        .expect(401);
    // Its procedure links are gone.
    let r = srv
        .get(
            &format!("/api/v2/procedures/{}", org.procedure_id),
            &org.user_key,
        )
        .await;
    assert_eq!(r.expect(200)["stations"], json!([]));
    // History stays readable, still naming the station.
    let r = srv
        .get(
            &format!("/api/v2/procedures/{}/versions/V9", org.procedure_id),
            &org.user_key,
        )
        .await;
    let v = r.expect(200);
    assert_eq!(
        v["created_by_station"],
        json!({"id": station, "name": "Lab Bench"})
    );
    assert_eq!(v["run_count"], json!(1));
    let archived = rows::column(
        &srv.db,
        "SELECT CAST(archived_at AS TEXT) FROM stations WHERE id = $1",
        Id::parse(station).unwrap(),
    )
    .await;
    assert!(archived.is_some());

    let r = c.stations().remove().id(random_id()).send().await;
    assert!(matches!(r, Err(tofupilot::Error::NotFound(_))), "{r:?}");
}
