//! Batches (BEHAVIOR.md §5) through the official client and raw HTTP.

mod catalog_support;
mod common;

use catalog_support::*;
use common::*;
use serde_json::json;
use tofupilot::types::{BatchListSortBy, ListSortOrder};

#[tokio::test]
async fn number_rules() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for bad in [
        "", "   ", "A/B", "A\\B", "A B", "A(1)", "A[1]", "A#1", "A@1", "A&1", "A=1", "A,1", "A;1",
        "A\"1", "A'1", "A.1", "É1", "A%1",
    ] {
        let r = srv
            .post("/api/v2/batches", &org.user_key, json!({"number": bad}))
            .await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed", "{bad}");
        assert_eq!(r.json["issues"][0]["path"], json!(["number"]));
    }
    let r = srv
        .post(
            "/api/v2/batches",
            &org.user_key,
            json!({"number": "B".repeat(101)}),
        )
        .await;
    r.expect(400);
    assert!(r.error_text().contains("100"), "{}", r.text);
    for good in [
        "B".repeat(100),
        "Lot_2026-01".to_string(),
        "  trimmed-1  ".to_string(),
    ] {
        srv.post("/api/v2/batches", &org.user_key, json!({"number": good}))
            .await
            .expect(200);
    }
    srv.get("/api/v2/batches/trimmed-1", &org.user_key)
        .await
        .expect(200);
    srv.post("/api/v2/batches", &org.user_key, json!({}))
        .await
        .expect(400);
}

#[tokio::test]
async fn create_get_with_units_and_creators() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);

    let created = c.batches().create().number("Lot-7").send().await.unwrap();
    let r = srv.get("/api/v2/batches/lot-7", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["id"], json!(created.id));
    assert_eq!(body["number"], json!("Lot-7"));
    assert_eq!(body["units"], json!([]), "a new batch has no units");
    assert_eq!(body["created_by_station"], json!(null));
    assert_eq!(body["created_by_user"]["email"], json!(org.user_email));

    // Duplicates (ci) conflict and keep the stored spelling.
    let dup = c.batches().create().number("LOT-7").send().await;
    assert!(matches!(dup, Err(tofupilot::Error::Conflict(_))), "{dup:?}");
    let r = srv
        .post(
            "/api/v2/batches",
            &org.station_key,
            json!({"number": "lot-7"}),
        )
        .await;
    r.expect(409);
    assert!(r.error_text().contains("already exists"), "{}", r.text);

    // A station may create a batch and is its creator.
    srv.post(
        "/api/v2/batches",
        &org.station_key,
        json!({"number": "S-1"}),
    )
    .await
    .expect(200);
    let r = srv.get("/api/v2/batches/S-1", &org.station_key).await;
    let body = r.expect(200);
    assert_eq!(body["created_by_user"], json!(null));
    assert_eq!(body["created_by_station"]["name"], json!("Lab Bench"));

    // Units show with part and revision.
    let u = part_with_unit(&srv, &org.user_key, "PCB", "SN-1").await;
    srv.patch(
        "/api/v2/units/SN-1",
        &org.user_key,
        json!({"batch_number": "LOT-7"}),
    )
    .await
    .expect(200);
    let got = c.batches().get().number("LOT-7").send().await.unwrap();
    assert_eq!(got.number, "Lot-7");
    assert_eq!(got.units.len(), 1);
    assert_eq!(got.units[0].id, u);
    assert_eq!(got.units[0].serial_number, "SN-1");
    assert_eq!(got.units[0].part.number, "PCB");
    assert_eq!(got.units[0].part.revision.number, "A");

    let r = srv.get("/api/v2/batches/NOPE", &org.user_key).await;
    r.expect(404);
}

#[tokio::test]
async fn list_filters() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let before = chrono::Utc::now();
    let b1 = batch(&srv, &org.user_key, "LOT_A-1").await;
    let b2 = batch(&srv, &org.user_key, "lot_b-2").await;
    let b3 = batch(&srv, &org.user_key, "OTHER-3").await;
    let after = chrono::Utc::now();
    part(&srv, &org.user_key, "MOTOR").await;
    revision(&srv, &org.user_key, "MOTOR", "R1").await;
    revision(&srv, &org.user_key, "MOTOR", "R2").await;
    unit(&srv, &org.user_key, "U1", "MOTOR", "R1").await;
    unit(&srv, &org.user_key, "U2", "MOTOR", "R2").await;
    unit(&srv, &org.user_key, "U3", "MOTOR", "R2").await;
    for (sn, b) in [("U1", "LOT_A-1"), ("U2", "lot_b-2"), ("U3", "lot_b-2")] {
        srv.patch(
            &format!("/api/v2/units/{sn}"),
            &org.user_key,
            json!({"batch_number": b}),
        )
        .await
        .expect(200);
    }

    let list = |q: &'static str| {
        let srv = &srv;
        let key = org.user_key.clone();
        async move { ids(&srv.get(&format!("/api/v2/batches?{q}"), &key).await) }
    };
    assert_eq!(list("").await, vec![b3.clone(), b2.clone(), b1.clone()]);
    let r = srv.get("/api/v2/batches", &org.user_key).await;
    let counts: Vec<i64> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["unit_count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![0, 2, 1]);
    assert_eq!(
        r.json["data"][0]["created_by_user"]["email"],
        json!(org.user_email)
    );
    assert_eq!(r.json["data"][0]["created_by_station"], json!(null));

    let r = c
        .batches()
        .list()
        .numbers(vec!["lot_a-1".into(), "OTHER-3".into(), "nope".into()])
        .send()
        .await
        .unwrap();
    let mut got: Vec<String> = r.data.into_iter().map(|b| b.id).collect();
    got.sort();
    let mut want = vec![b1.clone(), b3.clone()];
    want.sort();
    assert_eq!(got, want);
    let r = c
        .batches()
        .list()
        .ids(vec![b2.clone(), random_id()])
        .send()
        .await
        .unwrap();
    assert_eq!(r.data.len(), 1);
    assert_eq!(r.data[0].id, b2);
    assert_eq!(
        list("search_query=LOT_").await,
        vec![b2.clone(), b1.clone()]
    );
    assert!(list("search_query=lot%25").await.is_empty(), "% is literal");
    assert_eq!(
        list("part_numbers=motor").await,
        vec![b2.clone(), b1.clone()]
    );
    assert_eq!(list("revision_numbers=r2").await, vec![b2.clone()]);
    assert_eq!(
        list("revision_numbers=R1&revision_numbers=R2").await.len(),
        2
    );
    assert!(list("part_numbers=nothing").await.is_empty());
    assert!(list("ids=not-a-uuid").await.is_empty());
    let r = c
        .batches()
        .list()
        .created_after(before)
        .created_before(after)
        .send()
        .await
        .unwrap();
    assert_eq!(r.data.len(), 3);
    // The client sends milliseconds: step past the millisecond of the last create.
    let r = c
        .batches()
        .list()
        .created_after(after + chrono::Duration::milliseconds(1))
        .send()
        .await
        .unwrap();
    assert!(r.data.is_empty());

    let r = c
        .batches()
        .list()
        .sort_by(BatchListSortBy::Number)
        .sort_order(ListSortOrder::Asc)
        .send()
        .await
        .unwrap();
    let numbers: Vec<String> = r.data.into_iter().map(|b| b.number).collect();
    assert_eq!(numbers, ["LOT_A-1", "lot_b-2", "OTHER-3"]);
    for sort in ["number", "created_at"] {
        let asc = all_pages(
            &srv,
            &org.user_key,
            &format!("/api/v2/batches?sort_by={sort}&sort_order=asc"),
            1,
        )
        .await;
        let mut desc = all_pages(
            &srv,
            &org.user_key,
            &format!("/api/v2/batches?sort_by={sort}&sort_order=desc"),
            2,
        )
        .await;
        desc.reverse();
        assert_eq!(asc.len(), 3);
        assert_eq!(asc, desc, "{sort}");
    }
    for bad in ["sort_by=unit_count", "limit=x", "created_before=yesterday"] {
        srv.get(&format!("/api/v2/batches?{bad}"), &org.user_key)
            .await
            .expect(400);
    }
}

#[tokio::test]
async fn update_renumbers() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let id = batch(&srv, &org.user_key, "OLD").await;
    batch(&srv, &org.user_key, "taken").await;

    for p in ["/api/v2/batches/OLD", "/api/v2/batches/NOPE"] {
        for body in [
            json!({"new_number": "X"}),
            json!({"new_number": "bad char"}),
            json!({}),
        ] {
            let r = srv.patch(p, &org.station_key, body).await;
            r.expect(403);
            assert!(r.error_text().contains("stations cannot"), "{}", r.text);
        }
    }
    for body in [
        json!({}),
        json!({"new_number": ""}),
        json!({"new_number": "has space"}),
        json!({"new_number": "x".repeat(101)}),
    ] {
        let r = srv.patch("/api/v2/batches/OLD", &org.user_key, body).await;
        r.expect(400);
    }
    srv.patch(
        "/api/v2/batches/NOPE",
        &org.user_key,
        json!({"new_number": "X"}),
    )
    .await
    .expect(404);
    let r = c
        .batches()
        .update()
        .number("old")
        .new_number("TAKEN")
        .send()
        .await;
    assert!(matches!(r, Err(tofupilot::Error::Conflict(_))), "{r:?}");
    // Its own number in another case is fine.
    let r = c
        .batches()
        .update()
        .number("old")
        .new_number("Old")
        .send()
        .await
        .unwrap();
    assert_eq!(r.id, id);
    c.batches()
        .update()
        .number("OLD")
        .new_number("NEW")
        .send()
        .await
        .unwrap();
    srv.get("/api/v2/batches/OLD", &org.user_key)
        .await
        .expect(404);
    let got = c.batches().get().number("new").send().await.unwrap();
    assert_eq!(got.id, id);
    assert_eq!(got.number, "NEW");
}

#[tokio::test]
async fn delete_keeps_units() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let id = batch(&srv, &org.user_key, "LOT").await;
    let u = part_with_unit(&srv, &org.user_key, "P", "SN-1").await;
    srv.patch(
        "/api/v2/units/SN-1",
        &org.user_key,
        json!({"batch_number": "lot"}),
    )
    .await
    .expect(200);
    let run = insert_run(&srv, &u, &org.procedure_id, "PASS", "2026-01-05T00:00:00Z").await;

    for p in ["/api/v2/batches/LOT", "/api/v2/batches/NOPE"] {
        srv.delete(p, &org.station_key).await.expect(403);
    }
    srv.delete("/api/v2/batches/NOPE", &org.user_key)
        .await
        .expect(404);
    let r = srv.delete("/api/v2/batches/lot", &org.user_key).await;
    assert_eq!(r.expect(200)["id"], json!([id]));
    srv.get("/api/v2/batches/LOT", &org.user_key)
        .await
        .expect(404);
    let r = srv.get("/api/v2/units/SN-1", &org.user_key).await;
    assert_eq!(r.expect(200)["batch"], json!(null));
    assert_eq!(count_where(&srv, "runs", "id", &run).await, 1);
    assert_eq!(count_where(&srv, "runs", "batch_id", &id).await, 0);
}

#[tokio::test]
async fn other_organizations_batches_are_invisible() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let a_id = batch(&srv, &a.user_key, "LOT").await;

    srv.get("/api/v2/batches/LOT", &b.user_key)
        .await
        .expect(404);
    srv.patch(
        "/api/v2/batches/LOT",
        &b.user_key,
        json!({"new_number": "X"}),
    )
    .await
    .expect(404);
    srv.delete("/api/v2/batches/LOT", &b.user_key)
        .await
        .expect(404);
    let r = srv
        .get(
            &format!("/api/v2/batches?ids={a_id}&numbers=LOT"),
            &b.user_key,
        )
        .await;
    assert!(ids(&r).is_empty());
    // Same number is free in another organization; a unit there cannot join A's batch.
    let b_id = batch(&srv, &b.user_key, "lot").await;
    assert_ne!(a_id, b_id);
    part_with_unit(&srv, &b.user_key, "P", "SN-B").await;
    srv.patch(
        "/api/v2/units/SN-B",
        &b.user_key,
        json!({"batch_number": "LOT"}),
    )
    .await
    .expect(200);
    let r = srv.get("/api/v2/batches/LOT", &a.user_key).await;
    assert_eq!(r.expect(200)["units"], json!([]));
}

#[tokio::test]
async fn batches_created_by_runs() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let run = create_run(
        &srv,
        &org.station_key,
        &org.procedure_id,
        "2026-06-01T10:00:00Z",
        json!({"serial_number": "SN-1", "part_number": "P", "batch_number": "Run-Lot"}),
    )
    .await;
    let got = c.batches().get().number("run-lot").send().await.unwrap();
    assert_eq!(got.number, "Run-Lot");
    assert_eq!(got.units.len(), 1);
    assert_eq!(got.units[0].serial_number, "SN-1");
    let r = srv
        .get("/api/v2/batches?part_numbers=p", &org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["data"][0]["unit_count"], json!(1));
    assert_eq!(
        body["data"][0]["created_by_station"]["id"],
        json!(org.station_id)
    );

    c.batches().delete().number("RUN-LOT").send().await.unwrap();
    let r = srv.get("/api/v2/units/SN-1", &org.user_key).await;
    assert_eq!(r.expect(200)["batch"], json!(null));
    srv.get(&format!("/api/v2/runs/{run}"), &org.user_key)
        .await
        .expect(200);
}
