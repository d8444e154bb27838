//! `PATCH /v2/runs/{id}` (link uploads) and `PATCH /v2/runs/{id}/metadata`
//! (BEHAVIOR.md §1.5, §1.7).

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn update_links_uploads() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let id = create(
        &srv,
        &org.user_key,
        run_body(&org.procedure_id, "SN-U", "P"),
    )
    .await;
    let theirs = create(
        &srv,
        &other.user_key,
        run_body(&other.procedure_id, "SN-U", "P"),
    )
    .await;
    let (up, up_url) = initialize_upload(&srv, &org.user_key, "scope.png").await;
    let (foreign_up, _) = initialize_upload(&srv, &other.user_key, "secret.bin").await;

    // `{}` and an empty list are valid no-ops, for users and stations alike.
    let c = srv.client(&org.user_key);
    let r = c.runs().update().id(&id).send().await.unwrap();
    assert_eq!(r.id, id);
    for key in [&org.user_key, &org.station_key] {
        let r = srv
            .patch(
                &format!("/api/v2/runs/{id}"),
                key,
                json!({"attachments": []}),
            )
            .await;
        assert_eq!(r.expect(200).clone(), json!({"id": id}));
    }
    // Linking (a station may): the file shows up under its original name; nothing to
    // download before its bytes arrive.
    let r = srv
        .patch(
            &format!("/api/v2/runs/{id}"),
            &org.station_key,
            json!({"attachments": [up]}),
        )
        .await;
    r.expect(200);
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(
        run["attachments"],
        json!([{"id": up, "name": "scope.png", "size": null, "content_type": null,
                "is_report": false, "download_url": null}])
    );
    // Once uploaded and finalized, it has a size and a download URL that serves it.
    put_bytes(&up_url, b"0123456789").await;
    srv.call(
        reqwest::Method::POST,
        &format!("/api/v2/attachments/{up}/finalize"),
        Some(&org.user_key),
        None,
    )
    .await
    .expect(200);
    let got = c.runs().get().id(&id).send().await.unwrap();
    let att = &got.attachments.unwrap()[0];
    assert_eq!(att.size, Some(10.0));
    let url = match &att.download_url {
        tofupilot::types::NullableField::Value(u) => u.clone(),
        other => panic!("no download url: {other:?}"),
    };
    let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"0123456789");
    // The official client links too.
    let (second, _) = initialize_upload(&srv, &org.user_key, "log.txt").await;
    c.runs()
        .update()
        .id(&id)
        .attachments(vec![second.clone()])
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_run(&srv, &org.user_key, &id).await["attachments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Another organization's upload is unknown here; so is any other id.
    for bad in [foreign_up.as_str(), &random_id()] {
        let r = srv
            .patch(
                &format!("/api/v2/runs/{id}"),
                &org.user_key,
                json!({"attachments": [bad]}),
            )
            .await;
        r.expect(404);
    }
    // Unknown run: 404 even with nothing to link; another org's run too.
    for run_id in [random_id(), theirs.clone()] {
        let r = srv
            .patch(&format!("/api/v2/runs/{run_id}"), &org.user_key, json!({}))
            .await;
        r.expect(404);
        assert_eq!(r.message(), "Run not found");
    }
    let res = c.runs().update().id(random_id()).send().await;
    assert!(matches!(res, Err(tofupilot::Error::NotFound(_))), "{res:?}");
    srv.patch("/api/v2/runs/nope", &org.user_key, json!({}))
        .await
        .expect(400);
    srv.patch(
        &format!("/api/v2/runs/{id}"),
        &org.user_key,
        json!({"attachments": ["not-an-id"]}),
    )
    .await
    .expect(400);
}

#[tokio::test]
async fn metadata_upserts_and_deletes_keys() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let id = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "SN-M", "P"),
            json!({"metadata": {"keep": "k", "drop": 1, "change": false}}),
        ),
    )
    .await;
    let path = format!("/api/v2/runs/{id}/metadata");
    let r = srv
        .patch(
            &path,
            &org.station_key,
            json!({"metadata": {"drop": null, "change": true, "new": 2.5}}),
        )
        .await;
    assert_eq!(r.expect(200).clone(), json!({"id": id}));
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(
        run["metadata"],
        json!({"keep": "k", "change": true, "new": 2.5})
    );
    // Nothing to change is fine.
    srv.patch(&path, &org.user_key, json!({})).await.expect(200);
    srv.patch(&path, &org.user_key, json!({"metadata": {}}))
        .await
        .expect(200);
    // Limits: values must be scalars, at most 50 keys after the merge.
    let r = srv
        .patch(&path, &org.user_key, json!({"metadata": {"x": [1]}}))
        .await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["metadata"]));
    let many: serde_json::Map<String, Value> =
        (0..48).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = srv
        .patch(&path, &org.user_key, json!({"metadata": many}))
        .await;
    r.expect(400);
    assert!(r.error_text().contains("50"), "{}", r.text);
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["metadata"].as_object().unwrap().len(), 3, "unchanged");
    let forty_seven: serde_json::Map<String, Value> =
        (0..47).map(|i| (format!("k{i}"), json!(i))).collect();
    srv.patch(&path, &org.user_key, json!({"metadata": forty_seven}))
        .await
        .expect(200);
    // Removing every key leaves an empty object.
    let all_null: serde_json::Map<String, Value> = get_run(&srv, &org.user_key, &id).await
        ["metadata"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), Value::Null))
        .collect();
    srv.patch(&path, &org.user_key, json!({"metadata": all_null}))
        .await
        .expect(200);
    assert_eq!(
        get_run(&srv, &org.user_key, &id).await["metadata"],
        json!({})
    );
    // Unknown or foreign runs: 404.
    srv.patch(
        &format!("/api/v2/runs/{}/metadata", random_id()),
        &org.user_key,
        json!({"metadata": {"a": 1}}),
    )
    .await
    .expect(404);
    srv.patch(&path, &other.user_key, json!({"metadata": {"a": 1}}))
        .await
        .expect(404);
}
