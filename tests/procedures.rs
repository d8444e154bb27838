//! Procedures (BEHAVIOR.md §6) through the official client and raw HTTP.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    let created = c
        .procedures()
        .create()
        .name("  Functional Test  ")
        .send()
        .await
        .unwrap();
    let got = c.procedures().get().id(&created.id).send().await.unwrap();
    assert_eq!(got.name, "Functional Test", "names are trimmed");
    assert_eq!(got.runs_count, 0.0);
    assert!(got.recent_runs.is_empty());

    // Raw JSON: every key the clients require is present.
    let raw = srv
        .get(&format!("/api/v2/procedures/{}", created.id), &org.user_key)
        .await;
    let body = raw.expect(200);
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));
    assert!(body["identifier"].as_str().unwrap().starts_with("PROC-"));
    assert_eq!(body["stations"], json!([]));

    c.procedures()
        .update()
        .id(&created.id)
        .name("Renamed")
        .send()
        .await
        .unwrap();
    let got = c.procedures().get().id(&created.id).send().await.unwrap();
    assert_eq!(got.name, "Renamed");

    let deleted = c
        .procedures()
        .delete()
        .id(&created.id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.id, created.id);
    let again = c.procedures().get().id(&created.id).send().await;
    assert!(
        matches!(again, Err(tofupilot::Error::NotFound(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn names_are_validated() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    for bad in ["", "   "] {
        let r = srv
            .post("/api/v2/procedures", &org.user_key, json!({ "name": bad }))
            .await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed");
        assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
    }
    let long = "x".repeat(1001);
    let r = srv
        .post("/api/v2/procedures", &org.user_key, json!({ "name": long }))
        .await;
    r.expect(400);
    assert!(r.error_text().contains("255"), "{}", r.text);

    let r = srv
        .post("/api/v2/procedures", &org.user_key, json!({}))
        .await;
    r.expect(400);
    assert!(r.error_text().contains("name"), "{}", r.text);

    let r = srv
        .post("/api/v2/procedures", &org.user_key, json!({ "name": 5 }))
        .await;
    r.expect(400);
    assert!(r.error_text().contains("name"), "{}", r.text);

    // Accents, punctuation and non-Latin scripts are stored exactly.
    let name = "Prüfung !@# 测试 ‑ v1.2_x";
    let r = srv
        .post("/api/v2/procedures", &org.user_key, json!({ "name": name }))
        .await;
    let id = r.expect(200)["id"].as_str().unwrap().to_string();
    let r = srv
        .get(&format!("/api/v2/procedures/{id}"), &org.user_key)
        .await;
    assert_eq!(r.expect(200)["name"], json!(name));

    // Unknown fields are ignored.
    let r = srv
        .post(
            "/api/v2/procedures",
            &org.user_key,
            json!({ "name": "x", "future": {"a": 1} }),
        )
        .await;
    r.expect(200);

    // Empty name on update names the field.
    let r = srv
        .patch(
            &format!("/api/v2/procedures/{id}"),
            &org.user_key,
            json!({ "name": "" }),
        )
        .await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
}

#[tokio::test]
async fn stations_may_read_but_not_write() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let path = format!("/api/v2/procedures/{}", org.procedure_id);

    srv.get("/api/v2/procedures", &org.station_key)
        .await
        .expect(200);
    srv.get(&path, &org.station_key).await.expect(200);

    // 403 before body validation and before lookups.
    let r = srv
        .post(
            "/api/v2/procedures",
            &org.station_key,
            json!({ "name": "" }),
        )
        .await;
    r.expect(403);
    assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    srv.patch(&path, &org.station_key, json!({ "name": "" }))
        .await
        .expect(403);
    srv.delete(
        &format!("/api/v2/procedures/{}", random_id()),
        &org.station_key,
    )
    .await
    .expect(403);
    srv.delete(&path, &org.station_key).await.expect(403);
    // Still there.
    srv.get(&path, &org.user_key).await.expect(200);
}

#[tokio::test]
async fn ids_are_checked_before_permissions_and_existence() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for key in [&org.user_key, &org.station_key] {
        srv.get("/api/v2/procedures/not-a-uuid", key)
            .await
            .expect(400);
        srv.delete("/api/v2/procedures/not-a-uuid", key)
            .await
            .expect(400);
    }
    let zero = "00000000-0000-0000-0000-000000000000";
    let r = srv
        .get(&format!("/api/v2/procedures/{zero}"), &org.user_key)
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Procedure not found");
    srv.patch(
        &format!("/api/v2/procedures/{zero}"),
        &org.user_key,
        json!({"name": "x"}),
    )
    .await
    .expect(404);
    srv.delete(&format!("/api/v2/procedures/{zero}"), &org.user_key)
        .await
        .expect(404);
}

/// The start of the next whole millisecond, once the clock has reached it.
async fn next_millisecond() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    let next = chrono::DateTime::from_timestamp_millis(now.timestamp_millis() + 1).unwrap();
    while chrono::Utc::now() < next {
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
    next
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    // The client sends `created_after` truncated to milliseconds: start the window on a
    // millisecond that begins after the seed's procedure was created, or that procedure
    // may fall inside it.
    let before = next_millisecond().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let p = c
            .procedures()
            .create()
            .name(format!("Paged 100%_{i}"))
            .send()
            .await
            .unwrap();
        ids.push(p.id);
    }
    let after = chrono::Utc::now();

    // Newest first; the search takes `%` and `_` literally.
    let page1 = c
        .procedures()
        .list()
        .search_query("paged 100%_")
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page1.data.len(), 2);
    assert!(page1.meta.has_more);
    assert_eq!(page1.data[0].id, ids[2]);
    assert_eq!(page1.data[1].id, ids[1]);
    let cursor = page1.meta.next_cursor.unwrap() as f64;
    let page2 = c
        .procedures()
        .list()
        .search_query("paged 100%_")
        .limit(2)
        .cursor(cursor)
        .send()
        .await
        .unwrap();
    assert_eq!(page2.data.len(), 1);
    assert_eq!(page2.data[0].id, ids[0]);
    assert!(!page2.meta.has_more);
    assert!(page2.meta.next_cursor.is_none());

    let none = c
        .procedures()
        .list()
        .search_query("paged 100x")
        .send()
        .await
        .unwrap();
    assert!(none.data.is_empty());

    let window = c
        .procedures()
        .list()
        .created_after(before)
        .created_before(after)
        .send()
        .await
        .unwrap();
    assert_eq!(window.data.len(), 3);

    // Older clients send float cursors; limits above 100 are clamped.
    let r = srv
        .get("/api/v2/procedures?limit=500&cursor=1.0", &org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        3,
        "4 procedures, offset 1"
    );
    assert_eq!(body["data"][0]["runs"], json!([]));
    assert_eq!(body["data"][0]["linkedRepository"], json!(null));
    for bad in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "cursor=x",
        "cursor=1.5",
        "created_after=soon",
    ] {
        srv.get(&format!("/api/v2/procedures?{bad}"), &org.user_key)
            .await
            .expect(400);
    }
}

#[tokio::test]
async fn other_organizations_are_invisible() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let path = format!("/api/v2/procedures/{}", a.procedure_id);

    srv.get(&path, &b.user_key).await.expect(404);
    srv.patch(&path, &b.user_key, json!({"name": "stolen"}))
        .await
        .expect(404);
    srv.delete(&path, &b.user_key).await.expect(404);
    let list = srv.get("/api/v2/procedures?limit=100", &b.user_key).await;
    let ids: Vec<&str> = list.expect(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b.procedure_id.as_str()]);
    // A's procedure is untouched.
    let r = srv.get(&path, &a.user_key).await;
    assert_eq!(r.expect(200)["name"], json!("Alpha Functional"));
}
