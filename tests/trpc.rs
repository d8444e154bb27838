//! The internal tRPC link endpoints (BEHAVIOR.md §12).

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const LINK: &str = "/api/trpc/station.linkProcedure";
const UNLINK: &str = "/api/trpc/station.unlinkProcedure";

async fn station_procedures(srv: &TestServer, key: &str, station: &str) -> Vec<String> {
    let r = srv.get(&format!("/api/v2/stations/{station}"), key).await;
    r.expect(200)["procedures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn link_is_idempotent_and_unlink_undoes_it() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let p = c
        .procedures()
        .create()
        .name("V1 Test Procedure")
        .send()
        .await
        .unwrap();
    let body = json!({"json": {"id": org.station_id, "procedure_id": p.id}});

    for _ in 0..2 {
        let r = srv.post(LINK, &org.user_key, body.clone()).await;
        assert_eq!(
            r.expect(200),
            &json!({"result": {"data": {"json": {"station_id": org.station_id, "procedure_id": p.id}}}})
        );
    }
    let mut linked = station_procedures(&srv, &org.user_key, &org.station_id).await;
    linked.sort();
    let mut expected = vec![org.procedure_id.clone(), p.id.clone()];
    expected.sort();
    assert_eq!(linked, expected, "linking twice leaves one link");
    let got = c.procedures().get().id(&p.id).send().await.unwrap();
    assert_eq!(got.stations.len(), 1);
    assert_eq!(got.stations[0].id, org.station_id);
    let list = srv.get("/api/v2/stations", &org.user_key).await;
    assert_eq!(list.expect(200)["data"][0]["procedures_count"], json!(2));

    for _ in 0..2 {
        let r = srv.post(UNLINK, &org.user_key, body.clone()).await;
        assert_eq!(
            r.expect(200)["result"]["data"]["json"]["procedure_id"],
            json!(p.id)
        );
    }
    assert_eq!(
        station_procedures(&srv, &org.user_key, &org.station_id).await,
        vec![org.procedure_id.clone()]
    );

    // A bare input (no superjson `json` wrapper) is understood too.
    srv.post(
        LINK,
        &org.user_key,
        json!({"id": org.station_id, "procedure_id": p.id}),
    )
    .await
    .expect(200);
    assert_eq!(
        station_procedures(&srv, &org.user_key, &org.station_id)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn only_user_keys_may_link() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let body = json!({"json": {"id": org.station_id, "procedure_id": org.procedure_id}});
    for path in [LINK, UNLINK] {
        let r = srv.post(path, &org.station_key, body.clone()).await;
        r.expect(403);
        assert!(r.error_text().contains("stations cannot"), "{}", r.text);
        // The tRPC error block mirrors the envelope.
        assert_eq!(r.json["error"]["json"]["data"]["code"], json!("FORBIDDEN"));
        assert_eq!(r.json["error"]["json"]["data"]["httpStatus"], json!(403));
        // Even with a broken body: the gate comes first.
        srv.post(path, &org.station_key, json!({}))
            .await
            .expect(403);
        srv.call(Method::POST, path, None, Some(body.clone()))
            .await
            .expect(401);
    }
    assert_eq!(
        station_procedures(&srv, &org.user_key, &org.station_id).await,
        vec![org.procedure_id.clone()],
        "the refused unlink changed nothing"
    );
}

#[tokio::test]
async fn bad_input_and_unknown_ids() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let k = &org.user_key;
    for path in [LINK, UNLINK] {
        let r = srv
            .post(
                path,
                k,
                json!({"json": {"id": random_id(), "procedure_id": org.procedure_id}}),
            )
            .await;
        r.expect(404);
        assert_eq!(r.message(), "Station not found");
        let r = srv
            .post(
                path,
                k,
                json!({"json": {"id": org.station_id, "procedure_id": random_id()}}),
            )
            .await;
        r.expect(404);
        assert_eq!(r.message(), "Procedure not found");
        let r = srv
            .post(path, k, json!({"json": {"id": org.station_id}}))
            .await;
        r.expect(400);
        assert!(r.error_text().contains("procedure_id"), "{}", r.text);
        let r = srv
            .post(
                path,
                k,
                json!({"json": {"id": "nope", "procedure_id": org.procedure_id}}),
            )
            .await;
        r.expect(400);
        assert!(r.error_text().contains("id"), "{}", r.text);
        let r = srv
            .raw(Method::POST, path)
            .bearer_auth(k)
            .header("content-type", "application/json")
            .body("{\"json\": ")
            .send()
            .await
            .unwrap();
        let r = Resp::from(r).await;
        r.expect(400);
        assert!(r.message().contains("Malformed JSON"), "{}", r.text);
        let r = srv
            .raw(Method::POST, path)
            .bearer_auth(k)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        Resp::from(r).await.expect(415);
        srv.call(Method::GET, path, Some(k), None).await.expect(405);
    }
    srv.post("/api/trpc/station.nothing", k, json!({}))
        .await
        .expect(404);

    // A removed station cannot be linked.
    srv.delete(&format!("/api/v2/stations/{}", org.station_id), k)
        .await
        .expect(200);
    let r = srv
        .post(
            LINK,
            k,
            json!({"json": {"id": org.station_id, "procedure_id": org.procedure_id}}),
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Station not found");
}
