//! Cross-organization isolation for every operation of the foundation: another
//! organization's ids behave as nonexistent (404, never data) and lists never show them.
//! The table over every operation of the contract is `tests/security.rs`; these cases
//! add the exact messages and list contents for stations, versions, links and identities.

mod common;
mod rows;

use common::*;
use serde_json::{json, Value};

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn stations_of_another_organization_do_not_exist() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let a_org = rows::org_id(&srv, &a.user_key).await;
    let a_team = rows::insert_team(&srv.db, a_org, "Alpha team").await;
    let a_upload = rows::insert_upload(&srv.db, a_org).await;
    let path = format!("/api/v2/stations/{}", a.station_id);

    for key in [&b.user_key, &b.station_key] {
        let r = srv.get(&path, key).await;
        r.expect(404);
        assert_eq!(r.message(), "Station not found");
    }
    srv.patch(&path, &b.user_key, json!({"name": "stolen"}))
        .await
        .expect(404);
    srv.delete(&path, &b.user_key).await.expect(404);
    let list = srv.get("/api/v2/stations?limit=100", &b.user_key).await;
    assert_eq!(ids(list.expect(200)), vec![b.station_id.clone()]);
    let list = srv
        .get(
            &format!("/api/v2/stations?procedure_ids={}", a.procedure_id),
            &b.user_key,
        )
        .await;
    assert_eq!(list.expect(200)["data"], json!([]));
    let list = srv
        .get("/api/v2/stations?search_query=alpha", &b.user_key)
        .await;
    assert_eq!(list.expect(200)["data"], json!([]));

    // References to A's procedure, team or upload from B are unknown.
    let r = srv
        .post(
            "/api/v2/stations",
            &b.user_key,
            json!({"name": "x", "procedure_id": a.procedure_id}),
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Procedure not found");
    srv.post(
        "/api/v2/stations",
        &b.user_key,
        json!({"name": "x", "team_id": a_team.to_string()}),
    )
    .await
    .expect(404);
    let b_path = format!("/api/v2/stations/{}", b.station_id);
    srv.patch(&b_path, &b.user_key, json!({"team_id": a_team.to_string()}))
        .await
        .expect(404);
    srv.patch(
        &b_path,
        &b.user_key,
        json!({"image_id": a_upload.to_string()}),
    )
    .await
    .expect(404);

    // B's current station is its own; A's station is untouched.
    let r = srv.get("/api/v2/stations/current", &b.station_key).await;
    assert_eq!(r.expect(200)["id"], json!(b.station_id));
    assert_eq!(r.json["organization_slug"], json!("beta"));
    let r = srv.get(&path, &a.user_key).await;
    assert_eq!(r.expect(200)["name"], json!("Alpha Bench"));
    assert_eq!(r.json["procedures"][0]["id"], json!(a.procedure_id));
}

#[tokio::test]
async fn versions_of_another_organization_do_not_exist() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    srv.post(
        &format!("/api/v2/procedures/{}/versions", a.procedure_id),
        &a.user_key,
        json!({"tag": "v1"}),
    )
    .await
    .expect(200);
    let base = format!("/api/v2/procedures/{}/versions", a.procedure_id);

    let r = srv.post(&base, &b.user_key, json!({"tag": "v2"})).await;
    r.expect(404);
    assert_eq!(r.message(), "Procedure not found");
    for key in [&b.user_key, &b.station_key] {
        let r = srv.get(&format!("{base}/v1"), key).await;
        r.expect(404);
        assert_eq!(r.message(), "Procedure not found");
    }
    srv.delete(&format!("{base}/v1"), &b.user_key)
        .await
        .expect(404);
    // The same tag on B's own procedure is unrelated.
    srv.post(
        &format!("/api/v2/procedures/{}/versions", b.procedure_id),
        &b.user_key,
        json!({"tag": "v1"}),
    )
    .await
    .expect(200);
    let r = srv.get(&format!("{base}/v1"), &a.user_key).await;
    assert_eq!(r.expect(200)["procedure"]["id"], json!(a.procedure_id));
}

#[tokio::test]
async fn links_across_organizations_are_refused() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    for path in [
        "/api/trpc/station.linkProcedure",
        "/api/trpc/station.unlinkProcedure",
    ] {
        // A's station with B's procedure, B's station with A's procedure, both A's.
        for (station, procedure, missing) in [
            (&a.station_id, &b.procedure_id, "Station not found"),
            (&b.station_id, &a.procedure_id, "Procedure not found"),
            (&a.station_id, &a.procedure_id, "Station not found"),
        ] {
            let r = srv
                .post(
                    path,
                    &b.user_key,
                    json!({"json": {"id": station, "procedure_id": procedure}}),
                )
                .await;
            r.expect(404);
            assert_eq!(r.message(), missing);
        }
    }
    // A's links are intact, B got none of A's procedures.
    let r = srv
        .get(&format!("/api/v2/stations/{}", a.station_id), &a.user_key)
        .await;
    assert_eq!(r.expect(200)["procedures"].as_array().unwrap().len(), 1);
    let r = srv
        .get(&format!("/api/v2/stations/{}", b.station_id), &b.user_key)
        .await;
    let procedures = r.expect(200)["procedures"].as_array().unwrap();
    assert_eq!(procedures.len(), 1);
    assert_eq!(procedures[0]["id"], json!(b.procedure_id));
}

#[tokio::test]
async fn identities_and_procedures_stay_in_their_organization() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;

    for (org, other) in [(&a, &b), (&b, &a)] {
        for key in [&org.user_key, &org.station_key] {
            let who = srv.get("/api/v2/whoami", key).await;
            assert_eq!(
                who.expect(200)["organization"]["name"],
                json!(org.name.as_str())
            );
            let users = srv.get("/api/v2/users", key).await;
            let emails: Vec<&str> = users
                .expect(200)
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap())
                .collect();
            assert_eq!(emails, vec![org.user_email.as_str()]);
            let procs = srv.get("/api/v2/procedures?limit=100", key).await;
            assert_eq!(ids(procs.expect(200)), vec![org.procedure_id.clone()]);
            srv.get(&format!("/api/v2/procedures/{}", other.procedure_id), key)
                .await
                .expect(404);
            srv.get(&format!("/api/v2/stations/{}", other.station_id), key)
                .await
                .expect(404);
        }
        let me = srv.get("/api/v2/users/current", &org.user_key).await;
        assert_eq!(me.expect(200)["email"], json!(org.user_email));
    }
}
