//! `POST /v2/runs`: validation, the timing rule, procedure resolution and permissions,
//! the newer fields (BEHAVIOR.md §1.1, §1.7, §16).

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use serde_json::{json, Value};
use tofupilot::types::*;

/// Asserts a 400 validation error whose first issue mentions `fragment` and points at
/// `path`.
#[track_caller]
fn assert_fault(r: &Resp, fragment: &str, path: Value) {
    r.expect(400);
    assert_eq!(r.message(), "Input validation failed", "{}", r.text);
    let first = &r.json["issues"][0];
    let msg = first["message"].as_str().unwrap().to_lowercase();
    assert!(msg.contains(fragment), "issue {msg:?} lacks {fragment:?}");
    assert_eq!(first["path"], path, "{}", r.text);
}

#[tokio::test]
async fn every_fault_of_the_validation_table() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let base = run_body(&org.procedure_id, "SN-1", "PART-1");
    let cases: Vec<(Value, &str, Value)> = vec![
        (
            json!({"serial_number": ""}),
            "serial number",
            json!(["serial_number"]),
        ),
        (
            json!({"serial_number": "   "}),
            "serial number",
            json!(["serial_number"]),
        ),
        (
            json!({"serial_number": "x".repeat(1001)}),
            "serial number",
            json!(["serial_number"]),
        ),
        (
            json!({"serial_number": "x".repeat(61)}),
            "60",
            json!(["serial_number"]),
        ),
        (
            json!({"procedure_id": "not-a-uuid"}),
            "uuid",
            json!(["procedure_id"]),
        ),
        (json!({"part_number": ""}), "part", json!(["part_number"])),
        (json!({"part_number": "  "}), "part", json!(["part_number"])),
        (
            json!({"revision_number": ""}),
            "revision",
            json!(["revision_number"]),
        ),
        (
            json!({"batch_number": ""}),
            "batch",
            json!(["batch_number"]),
        ),
        (
            json!({"batch_number": "B 1"}),
            "batch",
            json!(["batch_number"]),
        ),
        (
            json!({"batch_number": "b".repeat(101)}),
            "batch",
            json!(["batch_number"]),
        ),
        (
            json!({"procedure_version": ""}),
            "version",
            json!(["procedure_version"]),
        ),
        (
            json!({"operated_by": "invalid_operator"}),
            "email",
            json!(["operated_by"]),
        ),
        (json!({"operated_by": ""}), "email", json!(["operated_by"])),
        (json!({"outcome": "MAYBE"}), "outcome", json!(["outcome"])),
        (json!({"outcome": null}), "outcome", json!([])),
        (
            json!({"started_at": "yesterday"}),
            "started_at",
            json!(["started_at"]),
        ),
        (json!({"serial_number": null}), "serial_number", json!([])),
        (json!({"procedure_id": null}), "procedure_id", json!([])),
        (json!({"ended_at": null}), "ended_at", json!([])),
    ];
    for (patch, fragment, path) in cases {
        // `null` in a patch removes the key: the field is missing.
        let missing = patch.as_object().unwrap().values().all(Value::is_null);
        let r = post_run(&srv, &org.user_key, with(base.clone(), patch.clone())).await;
        if missing {
            r.expect(400);
            assert!(r.error_text().contains(fragment), "{patch}: {}", r.text);
        } else {
            assert_fault(&r, fragment, path);
        }
    }
    // Nested faults name their place in the body.
    let phase = |extra: Value| {
        with(
            json!({"name": "p", "outcome": "PASS", "started_at": at(0), "ended_at": at(1)}),
            extra,
        )
    };
    let r = post_run(
        &srv,
        &org.user_key,
        with(
            base.clone(),
            json!({"phases": [phase(json!({})), phase(json!({"outcome": "DONE"}))]}),
        ),
    )
    .await;
    assert_fault(&r, "outcome", json!(["phases", 1, "outcome"]));
    let r = post_run(
        &srv,
        &org.user_key,
        with(
            base.clone(),
            json!({"phases": [phase(json!({"retry_count": -1}))]}),
        ),
    )
    .await;
    assert_fault(&r, "retry_count", json!(["phases", 0, "retry_count"]));
    let r = post_run(
        &srv,
        &org.user_key,
        with(
            base.clone(),
            json!({"phases": [phase(json!({"measurements": [{"name": "m", "outcome": "OK"}]}))]}),
        ),
    )
    .await;
    assert_fault(
        &r,
        "outcome",
        json!(["phases", 0, "measurements", 0, "outcome"]),
    );
    let r = post_run(
        &srv,
        &org.user_key,
        with(
            base.clone(),
            json!({"logs": [{"level": "LOUD", "timestamp": at(0), "message": "m",
                              "source_file": "f", "line_number": 1}]}),
        ),
    )
    .await;
    assert_fault(&r, "level", json!(["logs", 0, "level"]));

    // Malformed JSON and wrong types are 400s, never 500s.
    let r = srv
        .raw(reqwest::Method::POST, "/api/v2/runs")
        .bearer_auth(&org.user_key)
        .header("content-type", "application/json")
        .body("{\"serial_number\": ")
        .send()
        .await
        .unwrap();
    Resp::from(r).await.expect(400);
    let r = post_run(
        &srv,
        &org.user_key,
        with(base.clone(), json!({"phases": "many"})),
    )
    .await;
    r.expect(400);
    assert!(r.error_text().contains("phases"), "{}", r.text);
    // Nothing was created by any of these.
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM runs").await, 0);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 0);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM parts").await, 0);
}

#[tokio::test]
async fn several_faults_give_one_issue_each() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let body = with(
        run_body(&org.procedure_id, "", ""),
        json!({"procedure_id": "nope", "batch_number": ""}),
    );
    let r = post_run(&srv, &org.user_key, body).await;
    r.expect(400);
    let paths: Vec<Value> = r.json["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].clone())
        .collect();
    for p in [
        "serial_number",
        "procedure_id",
        "part_number",
        "batch_number",
    ] {
        assert!(paths.contains(&json!([p])), "{p} missing in {}", r.text);
    }
}

#[tokio::test]
async fn timing_rule() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let base = run_body(&org.procedure_id, "SN-T", "PART-T");
    // Equal start and end is fine.
    create(
        &srv,
        &org.user_key,
        with(base.clone(), json!({"ended_at": at(0)})),
    )
    .await;
    // An end before the start is a deliberate 500 (see BEHAVIOR §24), and leaves nothing.
    let r = post_run(
        &srv,
        &org.user_key,
        with(base.clone(), json!({"ended_at": at(-1)})),
    )
    .await;
    r.expect(500);
    assert_eq!(r.message(), "ended_at must not be before started_at");
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM runs").await, 1);
    // Phase and log times are not checked against the run window.
    create(
        &srv,
        &org.user_key,
        with(
            base,
            json!({
                "phases": [{"name": "early", "outcome": "PASS", "started_at": at(-900),
                            "ended_at": at(9000)}],
                "logs": [{"level": "INFO", "timestamp": at(-5000), "message": "m",
                          "source_file": "f.py", "line_number": 1}],
            }),
        ),
    )
    .await;
}

#[tokio::test]
async fn procedure_resolution_and_station_links() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let unknown = random_id();

    // User key: unknown procedure, or another organization's, is 404.
    for proc in [&unknown, &other.procedure_id] {
        let r = post_run(&srv, &org.user_key, run_body(proc, "SN-P", "PART-P")).await;
        r.expect(404);
        assert_eq!(r.message(), "Procedure not found");
    }
    // The official client maps it to NotFound.
    let c = srv.client(&org.user_key);
    let res = c
        .runs()
        .create()
        .serial_number("SN-P")
        .procedure_id(&unknown)
        .part_number("PART-P")
        .started_at(chrono::Utc::now())
        .ended_at(chrono::Utc::now())
        .outcome(LogGetOutcome::Pass)
        .send()
        .await;
    assert!(matches!(res, Err(tofupilot::Error::NotFound(_))), "{res:?}");

    // Station key: linked procedure works, records the station as creator, and may
    // create a procedure version on the way.
    let id = create(
        &srv,
        &org.station_key,
        with(
            run_body(&org.procedure_id, "SN-S", "PART-S"),
            json!({"procedure_version": "st-1"}),
        ),
    )
    .await;
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["created_by_station"]["id"], json!(org.station_id));
    assert_eq!(run["created_by_user"], Value::Null);
    assert_eq!(run["procedure"]["version"]["tag"], "st-1");
    assert_eq!(
        count(
            &srv,
            "SELECT COUNT(*) FROM procedure_versions WHERE created_by_station_id IS NOT NULL"
        )
        .await,
        1
    );

    // Unlinked, unknown and foreign procedures all look the same to a station: 403.
    let unlinked = c
        .procedures()
        .create()
        .name("Unlinked")
        .send()
        .await
        .unwrap()
        .id;
    for proc in [&unlinked, &unknown, &other.procedure_id] {
        let r = post_run(&srv, &org.station_key, run_body(proc, "SN-S2", "PART-S")).await;
        r.expect(403);
        assert!(r.error_text().contains("not authorized"), "{}", r.text);
    }
    // Body validation comes first, for stations too.
    let r = post_run(&srv, &org.station_key, run_body("not-a-uuid", "SN-S2", "P")).await;
    assert_fault(&r, "uuid", json!(["procedure_id"]));
    let r = post_run(&srv, &org.station_key, run_body(&unlinked, "", "P")).await;
    r.expect(400);
    // No implicit creation happened for the refused runs.
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM runs").await, 1);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 1);
}

#[tokio::test]
async fn operator_must_be_a_member() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let base = run_body(&org.procedure_id, "SN-O", "PART-O");
    let id = create(
        &srv,
        &org.user_key,
        with(
            base.clone(),
            json!({"operated_by": org.user_email.to_uppercase()}),
        ),
    )
    .await;
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["operated_by"]["email"], json!(org.user_email));
    assert_eq!(run["operated_by"]["name"], json!("Lab Admin"));
    // An email nobody in this organization has (someone of another org included).
    for email in ["nobody@lab.test", other.user_email.as_str()] {
        let r = post_run(
            &srv,
            &org.user_key,
            with(base.clone(), json!({"operated_by": email})),
        )
        .await;
        assert_fault(&r, "email", json!(["operated_by"]));
    }
    // Without an operator, the key is null.
    let id = create(&srv, &org.user_key, base).await;
    assert_eq!(
        get_run(&srv, &org.user_key, &id).await["operated_by"],
        Value::Null
    );
}

#[tokio::test]
async fn newer_fields_are_accepted_and_checked() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let base = run_body(&org.procedure_id, "SN-N", "PART-N");
    let full = with(
        base.clone(),
        json!({
            "deployment_id": "dep-1",
            "execution_id": "exec-1",
            "slot_key": "left",
            "slot_name": "Left slot",
            "metadata": {"station": "s1", "temp": 21.5, "ok": true},
            "unit_metadata": {"lot": "L7"},
            "config": [{"key": "offset", "value": 0.5, "variable_id": "v1", "version": 2,
                        "source": "station"}],
            "secrets": [{"key": "token", "variable_id": "v2", "version": 1, "source": "organization"}],
            "sequences": [
                {"path": "cal", "name": "Calibration", "outcome": "PASS",
                 "started_at": at(0), "ended_at": at(60)},
                {"path": "cal/dmm", "name": "DMM", "outcome": "SKIP", "source": "./dmm.yaml"}
            ],
            "phases": [{"name": "p", "outcome": "PASS", "started_at": at(0), "ended_at": at(30),
                        "sequence_path": "cal/dmm"}],
            "future_field": {"ignored": true},
        }),
    );
    let id = create(&srv, &org.user_key, full).await;
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["execution_id"], "exec-1");
    assert_eq!(run["slot_key"], "left");
    assert_eq!(run["slot_name"], "Left slot");
    assert_eq!(
        run["metadata"],
        json!({"station": "s1", "temp": 21.5, "ok": true})
    );
    assert_eq!(
        run["config"],
        json!([{"key": "offset", "value": 0.5, "variable_id": "v1", "version": 2, "source": "station"}])
    );
    assert_eq!(
        run["secrets"],
        json!([{"key": "token", "variable_id": "v2", "version": 1, "source": "organization"}])
    );
    let seq = run["sequences"].as_array().unwrap();
    assert_eq!(seq.len(), 2);
    assert_eq!(seq[0]["key"], "cal");
    assert_eq!(seq[0]["parent_path"], Value::Null);
    assert_eq!(seq[0]["duration"], "PT1M");
    assert_eq!(seq[1]["key"], "dmm");
    assert_eq!(seq[1]["parent_path"], "cal");
    assert_eq!(seq[1]["duration"], Value::Null);
    assert_eq!(seq[1]["source"], "./dmm.yaml");
    assert!(seq[1]["id"].is_string());
    assert_eq!(run["phases"][0]["sequence_path"], "cal/dmm");
    let lot: (Option<String>,) = srv
        .db
        .read()
        .fetch_one(tofulab::db::Sql::new(
            "SELECT CAST(metadata AS TEXT) FROM units WHERE serial_key = 'sn-n'",
        ))
        .await
        .unwrap();
    assert!(lot.0.unwrap().contains("L7"));

    // The rules of the newer fields.
    let cases: Vec<(Value, &str, Value)> = vec![
        (
            json!({"slot_key": "a"}),
            "execution_id",
            json!(["slot_key"]),
        ),
        (
            json!({"execution_id": "e", "slot_name": "A"}),
            "slot_key",
            json!(["slot_name"]),
        ),
        (
            json!({"secrets": [{"key": "k", "value": "hunter2"}]}),
            "value",
            json!(["secrets", 0, "value"]),
        ),
        (
            json!({"secrets": [{"key": "k", "value": null}]}),
            "value",
            json!(["secrets", 0, "value"]),
        ),
        (
            json!({"metadata": (0..51).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>()}),
            "50",
            json!(["metadata"]),
        ),
        (
            json!({"metadata": {"a": [1]}}),
            "string, number or boolean",
            json!(["metadata"]),
        ),
        (
            json!({"metadata": {"a": {"b": 1}}}),
            "string, number or boolean",
            json!(["metadata"]),
        ),
        (
            json!({"unit_metadata": {"a": null}}),
            "string, number or boolean",
            json!(["unit_metadata"]),
        ),
        (
            json!({"config": [{"key": "k", "value": [1]}]}),
            "config value",
            json!(["config", 0, "value"]),
        ),
        (
            json!({"sequences": [{"path": "a/b", "name": "B", "outcome": "PASS"}]}),
            "parent",
            json!(["sequences", 0, "path"]),
        ),
        (
            json!({"phases": [{"name": "p", "outcome": "PASS", "started_at": at(0),
                               "ended_at": at(1), "sequence_path": "nowhere"}]}),
            "sequence",
            json!(["phases", 0, "sequence_path"]),
        ),
    ];
    for (patch, fragment, path) in cases {
        let r = post_run(&srv, &org.user_key, with(base.clone(), patch.clone())).await;
        assert_fault(&r, fragment, path);
    }
    // unit_metadata is merged onto the unit: the limit applies to the result.
    let forty: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("u{i}"), json!(i))).collect();
    let unit_run = with(base.clone(), json!({"serial_number": "SN-UM"}));
    create(
        &srv,
        &org.user_key,
        with(unit_run.clone(), json!({"unit_metadata": forty})),
    )
    .await;
    let eleven_more: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("v{i}"), json!(i))).collect();
    let r = post_run(
        &srv,
        &org.user_key,
        with(unit_run.clone(), json!({"unit_metadata": eleven_more})),
    )
    .await;
    assert_fault(&r, "50", json!(["unit_metadata"]));
    let ten_more: serde_json::Map<String, Value> =
        (0..10).map(|i| (format!("v{i}"), json!(i))).collect();
    create(
        &srv,
        &org.user_key,
        with(unit_run, json!({"unit_metadata": ten_more})),
    )
    .await;
    // 50 keys is the limit, not over it.
    let fifty: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
    create(
        &srv,
        &org.user_key,
        with(base.clone(), json!({"metadata": fifty})),
    )
    .await;
    // Explicit nulls for optional fields mean "absent".
    let r = srv
        .post(
            "/api/v2/runs",
            &org.user_key,
            json!({
                "serial_number": "SN-NULLS", "procedure_id": org.procedure_id,
                "part_number": "PART-N", "started_at": at(0), "ended_at": at(1),
                "outcome": "PASS", "procedure_version": null, "docstring": null,
                "phases": null, "logs": null, "sub_units": null, "metadata": null,
                "execution_id": null, "slot_key": null, "slot_name": null,
                "deployment_id": null, "sequences": null,
            }),
        )
        .await;
    r.expect(200);
}

#[tokio::test]
async fn client_run_ref_makes_creation_idempotent() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let c = srv.client(&org.user_key);
    let now = chrono::Utc::now();
    let send = |serial: &'static str| {
        c.runs()
            .create()
            .serial_number(serial)
            .procedure_id(&org.procedure_id)
            .part_number("PART-R")
            .started_at(now)
            .ended_at(now)
            .outcome(LogGetOutcome::Pass)
            .client_run_ref("cred-1_42")
            .send()
    };
    let first = send("SN-R1").await.unwrap();
    let again = send("SN-R1").await.unwrap();
    assert_eq!(first.id, again.id);
    // Even a retry with different content returns the first run and creates nothing.
    let third = send("SN-R2").await.unwrap();
    assert_eq!(first.id, third.id);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM runs").await, 1);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 1);
    // The reference is unique per organization: another org may use the same one.
    let theirs = create(
        &srv,
        &other.user_key,
        with(
            run_body(&other.procedure_id, "SN-R1", "PART-R"),
            json!({"client_run_ref": "cred-1_42"}),
        ),
    )
    .await;
    assert_ne!(theirs, first.id);
    // Without a reference every POST creates a run.
    let body = run_body(&org.procedure_id, "SN-R1", "PART-R");
    let a = create(&srv, &org.user_key, body.clone()).await;
    let b = create(&srv, &org.user_key, body).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn concurrent_retries_with_one_client_run_ref_create_one_run() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let body = with(
        run_body(&org.procedure_id, "SN-CR", "PART-CR"),
        json!({"client_run_ref": "cred-9_1", "batch_number": "B-CR",
               "phases": [{"name": "p", "outcome": "PASS", "started_at": at(0), "ended_at": at(1),
                           "measurements": [{"name": "m", "outcome": "PASS", "measured_value": 1}]}]}),
    );
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let body = body.clone();
            let srv = &srv;
            let key = org.user_key.clone();
            async move { srv.post("/api/v2/runs", &key, body).await }
        })
        .collect();
    let results = futures_util::future::join_all(tasks).await;
    let mut ids: Vec<String> = results
        .iter()
        .map(|r| r.expect(200)["id"].as_str().unwrap().to_string())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry answers the same run");
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM runs").await, 1);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM phases").await, 1);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM measurements").await, 1);
}
