//! Procedure versions (BEHAVIOR.md §7, §16) through the official client and raw HTTP.

mod common;
mod rows;

use common::*;
use serde_json::{json, Value};
use tofupilot::types::NullableField;

#[tokio::test]
async fn create_get_delete_round_trip() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    let created = c
        .versions()
        .create()
        .procedure_id(&org.procedure_id)
        .tag("  Release 1.0/β  ")
        .send()
        .await
        .unwrap();
    // Tags are trimmed, kept as spelled, looked up case-insensitively (the client
    // percent-encodes the `/` and the `β`).
    let got = c
        .versions()
        .get()
        .procedure_id(&org.procedure_id)
        .tag("release 1.0/Β")
        .send()
        .await
        .unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.tag, "Release 1.0/β");
    assert_eq!(got.run_count, 0);
    assert_eq!(got.procedure.id, org.procedure_id);
    assert_eq!(got.procedure.name, "Lab Functional");
    match &got.created_by_user {
        NullableField::Value(u) => assert_eq!(u.name.as_deref(), Some("Lab Admin")),
        other => panic!("creator missing: {other:?}"),
    }

    // Raw JSON: run_count is an integer; the station creator is an explicit null.
    let r = srv
        .get(
            &format!(
                "/api/v2/procedures/{}/versions/RELEASE%201.0%2F%CE%B2",
                org.procedure_id
            ),
            &org.user_key,
        )
        .await;
    let body = r.expect(200);
    assert!(body["run_count"].is_i64());
    assert_eq!(body["created_by_station"], Value::Null);
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    let deleted = c
        .versions()
        .delete()
        .procedure_id(&org.procedure_id)
        .tag("RELEASE 1.0/β")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.id, created.id);
    let again = c
        .versions()
        .get()
        .procedure_id(&org.procedure_id)
        .tag("Release 1.0/β")
        .send()
        .await;
    assert!(
        matches!(again, Err(tofupilot::Error::NotFound(_))),
        "{again:?}"
    );
    // The tag is free again.
    c.versions()
        .create()
        .procedure_id(&org.procedure_id)
        .tag("release 1.0/β")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn tags_are_validated() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let path = format!("/api/v2/procedures/{}/versions", org.procedure_id);

    for bad in ["", "   "] {
        let r = srv.post(&path, &org.user_key, json!({ "tag": bad })).await;
        r.expect(400);
        assert!(r.text.contains("tag"), "{}", r.text);
        assert_eq!(r.json["issues"][0]["path"], json!(["tag"]));
    }
    let r = srv
        .post(&path, &org.user_key, json!({ "tag": "x".repeat(61) }))
        .await;
    r.expect(400);
    assert!(r.text.contains("60 character"), "{}", r.text);
    // 60 characters (not bytes) is fine.
    srv.post(&path, &org.user_key, json!({ "tag": "é".repeat(60) }))
        .await
        .expect(200);
    for bad in [json!({}), json!({"tag": 1}), json!({"tag": null})] {
        let r = srv.post(&path, &org.user_key, bad).await;
        r.expect(400);
        assert!(r.text.contains("tag"), "{}", r.text);
    }
    srv.post(&path, &org.user_key, json!(["v1"]))
        .await
        .expect(400);
}

#[tokio::test]
async fn checks_run_in_order() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let zero = "00000000-0000-0000-0000-000000000000";

    // 1. Malformed procedure id: 400 for both key types, whatever the body.
    for key in [&org.user_key, &org.station_key] {
        for body in [json!({"tag": "v1"}), json!({})] {
            let r = srv
                .post("/api/v2/procedures/invalid-uuid/versions", key, body)
                .await;
            r.expect(400);
        }
        srv.get("/api/v2/procedures/invalid-uuid/versions/v1", key)
            .await
            .expect(400);
        srv.delete("/api/v2/procedures/invalid-uuid/versions/v1", key)
            .await
            .expect(400);
    }
    // 2. Station key: 403 before body validation and existence.
    for body in [json!({"tag": "v1"}), json!({"tag": ""}), json!({})] {
        let r = srv
            .post(
                &format!("/api/v2/procedures/{}/versions", org.procedure_id),
                &org.station_key,
                body,
            )
            .await;
        r.expect(403);
        assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    }
    srv.post(
        &format!("/api/v2/procedures/{zero}/versions"),
        &org.station_key,
        json!({"tag": "v1"}),
    )
    .await
    .expect(403);
    srv.delete(
        &format!("/api/v2/procedures/{zero}/versions/v1"),
        &org.station_key,
    )
    .await
    .expect(403);
    // 3. Body validation before existence.
    srv.post(
        &format!("/api/v2/procedures/{zero}/versions"),
        &org.user_key,
        json!({"tag": ""}),
    )
    .await
    .expect(400);
    // 4. Existence.
    let r = srv
        .post(
            &format!("/api/v2/procedures/{zero}/versions"),
            &org.user_key,
            json!({"tag": "v1"}),
        )
        .await;
    r.expect(404);
    assert!(r.error_text().contains("procedure"), "{}", r.text);
    // 5. Uniqueness, case-insensitive, per procedure.
    let c = srv.client(&org.user_key);
    c.versions()
        .create()
        .procedure_id(&org.procedure_id)
        .tag("V1")
        .send()
        .await
        .unwrap();
    let dup = c
        .versions()
        .create()
        .procedure_id(&org.procedure_id)
        .tag(" v1 ")
        .send()
        .await;
    match dup {
        Err(tofupilot::Error::Conflict(e)) => {
            assert!(e.to_string().contains("already exists"), "{e}")
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let other_procedure = c.procedures().create().name("Other").send().await.unwrap();
    c.versions()
        .create()
        .procedure_id(&other_procedure.id)
        .tag("v1")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn stations_may_read_and_lookups_name_what_is_missing() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    c.versions()
        .create()
        .procedure_id(&org.procedure_id)
        .tag("v2")
        .send()
        .await
        .unwrap();

    let s = srv.client(&org.station_key);
    let got = s
        .versions()
        .get()
        .procedure_id(&org.procedure_id)
        .tag("V2")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag, "v2");

    let r = srv
        .get(
            &format!("/api/v2/procedures/{}/versions/v3", org.procedure_id),
            &org.station_key,
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Version not found");
    let r = srv
        .get(
            &format!("/api/v2/procedures/{}/versions/v2", random_id()),
            &org.station_key,
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Procedure not found");
    let r = srv
        .delete(
            &format!("/api/v2/procedures/{}/versions/v3", org.procedure_id),
            &org.user_key,
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Version not found");
    let r = c
        .versions()
        .delete()
        .procedure_id(random_id())
        .tag("v2")
        .send()
        .await;
    assert!(matches!(r, Err(tofupilot::Error::NotFound(_))), "{r:?}");
    // The empty tag segment is no route at all.
    srv.get(
        &format!("/api/v2/procedures/{}/versions/", org.procedure_id),
        &org.user_key,
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn versions_used_by_runs_are_counted_and_kept() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let org_id = rows::org_id(&srv, &org.user_key).await;
    let v = c
        .versions()
        .create()
        .procedure_id(&org.procedure_id)
        .tag("v1")
        .send()
        .await
        .unwrap();
    let hour = chrono::Duration::hours(1);
    let r1 = rows::insert_run(&srv.db, org_id, &org.procedure_id, Some(&v.id), None, hour).await;
    let r2 = rows::insert_run(&srv.db, org_id, &org.procedure_id, Some(&v.id), None, hour).await;
    rows::insert_run(&srv.db, org_id, &org.procedure_id, None, None, hour).await;

    let got = c
        .versions()
        .get()
        .procedure_id(&org.procedure_id)
        .tag("v1")
        .send()
        .await
        .unwrap();
    assert_eq!(got.run_count, 2);

    let refused = c
        .versions()
        .delete()
        .procedure_id(&org.procedure_id)
        .tag("v1")
        .send()
        .await;
    assert!(
        matches!(refused, Err(tofupilot::Error::Conflict(_))),
        "{refused:?}"
    );
    let r = srv
        .delete(
            &format!("/api/v2/procedures/{}/versions/v1", org.procedure_id),
            &org.user_key,
        )
        .await;
    r.expect(409);
    assert!(r.message().contains("2 run"), "{}", r.text);

    rows::delete_run(&srv.db, r1).await;
    rows::delete_run(&srv.db, r2).await;
    let deleted = c
        .versions()
        .delete()
        .procedure_id(&org.procedure_id)
        .tag("v1")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.id, v.id);
}

#[tokio::test]
async fn deleting_the_procedure_deletes_its_versions() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let p = c
        .procedures()
        .create()
        .name("Short-lived")
        .send()
        .await
        .unwrap();
    c.versions()
        .create()
        .procedure_id(&p.id)
        .tag("v1")
        .send()
        .await
        .unwrap();
    c.procedures().delete().id(&p.id).send().await.unwrap();
    let r = srv
        .get(
            &format!("/api/v2/procedures/{}/versions/v1", p.id),
            &org.user_key,
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Procedure not found");
}
