//! `DELETE /v2/runs?ids=…` (BEHAVIOR.md §1.6): who may delete, what goes with a run,
//! what stays.

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use serde_json::json;

/// A run with two phases of measurements, logs, a sub-unit link, a new version, batch,
/// and an attachment with stored bytes.
async fn rich_run(srv: &TestServer, org: &TestOrg, serial: &str) -> String {
    let sub = format!("{serial}-SUB");
    create(
        srv,
        &org.user_key,
        run_body(&org.procedure_id, &sub, "P-SUB"),
    )
    .await;
    let id = create(
        srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, serial, "P-DEL"),
            json!({
                "batch_number": format!("B-{serial}"),
                "procedure_version": format!("v-{serial}"),
                "sub_units": [sub],
                "phases": [
                    {"name": "a", "outcome": "PASS", "started_at": at(0), "ended_at": at(1),
                     "measurements": [{"name": "m1", "outcome": "PASS", "measured_value": 1},
                                      {"name": "m2", "outcome": "PASS", "measured_value": 2}]},
                    {"name": "b", "outcome": "PASS", "started_at": at(1), "ended_at": at(2),
                     "measurements": [{"name": "m3", "outcome": "PASS"}]}
                ],
                "logs": [{"level": "INFO", "timestamp": at(0), "message": "x",
                          "source_file": "f.py", "line_number": 1}]
            }),
        ),
    )
    .await;
    attach_file(srv, &org.user_key, &id, "report.txt", b"hello").await;
    id
}

async fn counts(srv: &TestServer) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "runs",
        "phases",
        "measurements",
        "logs",
        "run_sub_units",
        "attachments",
        "blobs",
        "blob_chunks",
    ] {
        out.push(count_rows(srv, t).await);
    }
    out
}

#[tokio::test]
async fn delete_takes_the_content_and_leaves_the_catalog() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let keep = rich_run(&srv, &org, "KEEP").await;
    let gone = rich_run(&srv, &org, "GONE").await;
    // Two sub-unit runs plus the two rich runs.
    assert_eq!(counts(&srv).await, vec![4, 4, 6, 2, 2, 2, 2, 2]);
    let run = get_run(&srv, &org.user_key, &gone).await;
    let url = run["attachments"][0]["download_url"].as_str().unwrap();
    assert!(url.contains("/files/"), "{url}");

    let c = srv.client(&org.user_key);
    let deleted = c
        .runs()
        .delete()
        .ids(vec![gone.clone()])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.id, vec![gone.clone()]);
    // Everything of the deleted run went; nothing of the other one.
    assert_eq!(counts(&srv).await, vec![3, 2, 3, 1, 1, 1, 1, 1]);
    srv.get(&format!("/api/v2/runs/{gone}"), &org.user_key)
        .await
        .expect(404);
    let kept = get_run(&srv, &org.user_key, &keep).await;
    assert_eq!(kept["phases"].as_array().unwrap().len(), 2);
    assert_eq!(kept["attachments"].as_array().unwrap().len(), 1);
    // Units (including the one the run created), parts, batches, versions stay; the
    // unit no longer points at the deleted run.
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 4);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM parts").await, 2);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM batches").await, 2);
    assert_eq!(
        count(&srv, "SELECT COUNT(*) FROM procedure_versions").await,
        2
    );
    assert_eq!(
        count(&srv, "SELECT COUNT(*) FROM units WHERE serial_key = 'gone' AND created_during_run_id IS NULL").await,
        1
    );
    // The sub-unit keeps its parent (the link is the unit's, the record was the run's).
    assert_eq!(
        count(
            &srv,
            "SELECT COUNT(*) FROM units WHERE serial_key = 'gone-sub' AND parent_id IS NOT NULL"
        )
        .await,
        1
    );
    // The same id again: 404.
    let again = c.runs().delete().ids(vec![gone.clone()]).send().await;
    assert!(
        matches!(again, Err(tofupilot::Error::NotFound(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn mixed_ids_delete_those_that_exist() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let a = create(&srv, &org.user_key, run_body(&org.procedure_id, "A", "P")).await;
    let b = create(&srv, &org.user_key, run_body(&org.procedure_id, "B", "P")).await;
    let theirs = create(
        &srv,
        &other.user_key,
        run_body(&other.procedure_id, "A", "P"),
    )
    .await;
    let missing = random_id();
    let r = srv
        .delete(
            &format!(
                "/api/v2/runs?ids={missing}&ids={b}&ids=not-a-uuid&ids={theirs}&ids={a}&ids={b}"
            ),
            &org.user_key,
        )
        .await;
    assert_eq!(r.expect(200).clone(), json!({"id": [b, a]}));
    // Another organization's run was not touched.
    get_run(&srv, &other.user_key, &theirs).await;
    // None existing (another org's included): 404.
    for q in [
        format!("ids={theirs}"),
        format!("ids={missing}"),
        "ids=bad".into(),
    ] {
        let r = srv
            .delete(&format!("/api/v2/runs?{q}"), &org.user_key)
            .await;
        r.expect(404);
    }
    srv.delete("/api/v2/runs", &org.user_key).await.expect(400);
}

#[tokio::test]
async fn stations_cannot_delete() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let id = create(
        &srv,
        &org.station_key,
        run_body(&org.procedure_id, "S", "P"),
    )
    .await;
    // 403 before anything is looked up or validated.
    for q in [
        format!("ids={id}"),
        format!("ids={}", random_id()),
        String::new(),
    ] {
        let r = srv
            .delete(&format!("/api/v2/runs?{q}"), &org.station_key)
            .await;
        r.expect(403);
        assert!(r.error_text().contains("stations cannot"), "{}", r.text);
    }
    get_run(&srv, &org.user_key, &id).await;
}

#[tokio::test]
async fn procedure_delete_takes_its_runs() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    rich_run(&srv, &org, "PROC").await;
    srv.delete(
        &format!("/api/v2/procedures/{}", org.procedure_id),
        &org.user_key,
    )
    .await
    .expect(200);
    assert_eq!(counts(&srv).await, vec![0; 8]);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 2);
}
