//! `GET /v2/runs/{id}`: the exact JSON of a full run, and what run creation found or
//! created on the way (BEHAVIOR.md §1.1–1.3, Appendix A).
#![recursion_limit = "512"]

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use serde_json::{json, Value};
use tofupilot::types::*;

/// Replaces the values of `keys` (at any depth) with `"<id>"` after checking they are
/// ids, so that a whole response can be compared.
fn mask_ids(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if (k == "id" || k.ends_with("_id")) && val.is_string() {
                    let s = val.as_str().unwrap();
                    assert!(uuid::Uuid::parse_str(s).is_ok(), "{k} = {s} is not an id");
                    *val = json!("<id>");
                } else {
                    mask_ids(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_ids),
        _ => {}
    }
}

#[tokio::test]
async fn full_run_renders_every_key() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let sub = create(
        &srv,
        &org.user_key,
        run_body(&org.procedure_id, "Sub-9", "Sub-Part"),
    )
    .await;
    let _ = sub;
    let body = with(
        run_body(&org.procedure_id, "Main-1", "Part-X"),
        json!({
            "revision_number": "Rev-B",
            "batch_number": "Batch_7",
            "procedure_version": "V1.2",
            "operated_by": org.user_email,
            "docstring": "full run",
            "sub_units": ["SUB-9"],
            "phases": [
                {"name": "zeta", "outcome": "PASS", "started_at": at(10), "ended_at": at(20),
                 "retry_count": 1, "docstring": "second",
                 "measurements": [
                    {"name": "limits", "outcome": "PASS", "measured_value": 25, "units": "V",
                     "lower_limit": 10, "upper_limit": 40.5},
                    {"name": "text", "outcome": "FAIL", "measured_value": "abc", "lower_limit": 1},
                    {"name": "grid", "outcome": "PASS", "measured_value": [[1, 2], [3, 4]],
                     "units": ["V", "A"]},
                    {"name": "big", "outcome": "UNSET", "measured_value": 9999999999999999u64},
                    {"name": "obj", "outcome": "UNSET", "measured_value": {"k": [true, null]}},
                    {"name": "none", "outcome": "UNSET"},
                    {"name": "flag", "outcome": "PASS", "measured_value": false, "validators": [],
                     "aggregations": []}
                 ]},
                {"name": "alpha", "outcome": "FAIL", "started_at": at(10), "ended_at": at(12),
                 "measurements": [
                    {"name": "v", "outcome": "PASS", "measured_value": 3.3,
                     "validators": [
                        {"operator": ">=", "expected_value": 3.0, "outcome": "PASS", "is_decisive": true},
                        {"operator": "range", "expected_value": [3.0, 3.6]},
                        {"operator": "in", "expected_value": ["A", "B"]},
                        {"expression": "x is sane"},
                        {"operator": "==", "expected_value": {"odd": 1}, "expression": "custom"},
                        {"operator": "in", "expected_value": [1, "mixed"]}
                     ],
                     "aggregations": [
                        {"type": "%max", "value": 4.2, "outcome": "PASS", "unit": "V",
                         "validators": [{"operator": "<=", "expected_value": 5}]},
                        {"type": "count", "value": {"not": "scalar"}}
                     ]}
                 ]},
                {"name": "zeta", "outcome": "FAIL", "started_at": at(10), "ended_at": at(15),
                 "retry_count": 0},
                {"name": "first", "outcome": "SKIP", "started_at": at(0), "ended_at": at(0),
                 "measurements": [
                    {"name": "sweep", "outcome": "PASS",
                     "x_axis": {"data": [1, 2.5, 3], "units": "Hz", "name": "freq",
                                "aggregations": [{"type": "max", "value": 3}]},
                     "y_axis": [
                        {"data": [-1.5], "units": "dB", "description": "Gain",
                         "validators": [{"operator": ">", "expected_value": -3}]},
                        {"data": []}
                     ]}
                 ]}
            ],
            "logs": [
                {"level": "ERROR", "timestamp": at(50), "message": "later", "source_file": "b.py",
                 "line_number": 7},
                {"level": "DEBUG", "timestamp": at(5), "message": "", "source_file": "",
                 "line_number": 1.0},
                {"level": "INFO", "timestamp": at(6), "message": "m".repeat(10_050),
                 "source_file": format!("{}/tail.py", "d".repeat(300)), "line_number": 3}
            ],
        }),
    );
    let id = create(&srv, &org.user_key, body).await;
    let mut run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["id"], json!(id));
    assert!(run["created_at"].as_str().unwrap().ends_with('Z'));

    // Logs: ordered by timestamp, clipped, line numbers as integers.
    let logs = run["logs"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["message"], "(empty)");
    assert_eq!(logs[0]["source_file"], "unknown");
    assert!(
        logs[0]["line_number"].is_i64(),
        "line_number 1.0 comes back as 1"
    );
    assert_eq!(logs[0]["line_number"], 1);
    assert_eq!(logs[1]["message"].as_str().unwrap().chars().count(), 10_000);
    assert_eq!(
        logs[1]["source_file"].as_str().unwrap().chars().count(),
        200
    );
    assert!(logs[1]["source_file"]
        .as_str()
        .unwrap()
        .ends_with("/tail.py"));
    assert_eq!(logs[2]["message"], "later");
    run["logs"] = json!([]);

    mask_ids(&mut run);
    let expected = json!({
        "id": "<id>",
        "created_at": run["created_at"],
        "started_at": at(0),
        "ended_at": at(300),
        "duration": "PT5M",
        "outcome": "PASS",
        "docstring": "full run",
        "execution_id": null,
        "slot_key": null,
        "slot_name": null,
        "procedure": {"id": "<id>", "name": "Lab Functional", "version": {"id": "<id>", "tag": "V1.2"}},
        "unit": {
            "id": "<id>", "serial_number": "Main-1", "sample": null,
            "part": {"id": "<id>", "number": "Part-X", "name": "Part-X",
                     "revision": {"id": "<id>", "number": "Rev-B"}},
            "batch": {"id": "<id>", "number": "Batch_7"}
        },
        "created_by_user": {"id": "<id>", "name": "Lab Admin", "email": org.user_email},
        "created_by_station": null,
        "operated_by": {"id": "<id>", "name": "Lab Admin", "email": org.user_email},
        "metadata": {},
        "sequences": [],
        "phases": [
            {"id": "<id>", "name": "first", "outcome": "SKIP", "started_at": at(0), "ended_at": at(0),
             "duration": "PT0S", "retry_count": 0, "sequence_path": null, "docstring": null,
             "measurements": [
                {"id": "<id>", "name": "sweep", "outcome": "PASS", "units": null, "validators": null,
                 "aggregations": null, "measured_value": null, "docstring": null,
                 "data_series": [
                    {"data": [1, 2.5, 3], "units": "Hz", "name": "freq", "description": null,
                     "validators": null,
                     "aggregations": [{"id": "<id>", "type": "max", "outcome": null, "value": 3,
                                       "unit": null, "validators": null}]},
                    {"data": [-1.5], "units": "dB", "name": null, "description": "Gain",
                     "validators": [{"outcome": "UNSET", "operator": ">", "expected_value": -3,
                                     "expression": "x > -3", "is_decisive": null,
                                     "is_expression_only": false, "analytics_expression": "x > -3",
                                     "has_custom_expression": false}],
                     "aggregations": null},
                    {"data": [], "units": null, "name": null, "description": null,
                     "validators": null, "aggregations": null}
                 ]}
             ]},
            {"id": "<id>", "name": "alpha", "outcome": "FAIL", "started_at": at(10), "ended_at": at(12),
             "duration": "PT2S", "retry_count": 0, "sequence_path": null, "docstring": null,
             "measurements": [
                {"id": "<id>", "name": "v", "outcome": "PASS", "units": null, "measured_value": 3.3,
                 "docstring": null, "data_series": null,
                 "validators": [
                    {"outcome": "PASS", "operator": ">=", "expected_value": 3.0, "expression": "x >= 3.0",
                     "is_decisive": true, "is_expression_only": false,
                     "analytics_expression": "x >= 3.0", "has_custom_expression": false},
                    {"outcome": "UNSET", "operator": "range", "expected_value": [3.0, 3.6],
                     "expression": "3.0 <= x <= 3.6", "is_decisive": null, "is_expression_only": false,
                     "analytics_expression": "3.0 <= x <= 3.6", "has_custom_expression": false},
                    {"outcome": "UNSET", "operator": "in", "expected_value": ["A", "B"],
                     "expression": "x in [\"A\", \"B\"]", "is_decisive": null,
                     "is_expression_only": false, "analytics_expression": "x in [\"A\", \"B\"]",
                     "has_custom_expression": false},
                    {"outcome": "UNSET", "operator": null, "expected_value": null,
                     "expression": "x is sane", "is_decisive": null, "is_expression_only": true,
                     "analytics_expression": null, "has_custom_expression": true},
                    {"outcome": "UNSET", "operator": "==", "expected_value": "{\"odd\":1}",
                     "expression": "custom", "is_decisive": null, "is_expression_only": false,
                     "analytics_expression": "x == {\"odd\":1}", "has_custom_expression": true},
                    {"outcome": "UNSET", "operator": "in", "expected_value": "[1,\"mixed\"]",
                     "expression": "x in [1, \"mixed\"]", "is_decisive": null,
                     "is_expression_only": false, "analytics_expression": "x in [1, \"mixed\"]",
                     "has_custom_expression": false}
                 ],
                 "aggregations": [
                    {"id": "<id>", "type": "%max", "outcome": "PASS", "value": 4.2, "unit": "V",
                     "validators": [{"outcome": "UNSET", "operator": "<=", "expected_value": 5,
                                     "expression": "x <= 5", "is_decisive": null,
                                     "is_expression_only": false, "analytics_expression": "x <= 5",
                                     "has_custom_expression": false}]},
                    {"id": "<id>", "type": "count", "outcome": null, "value": "{\"not\":\"scalar\"}",
                     "unit": null, "validators": null}
                 ]}
             ]},
            {"id": "<id>", "name": "zeta", "outcome": "FAIL", "started_at": at(10), "ended_at": at(15),
             "duration": "PT5S", "retry_count": 0, "sequence_path": null, "docstring": null,
             "measurements": []},
            {"id": "<id>", "name": "zeta", "outcome": "PASS", "started_at": at(10), "ended_at": at(20),
             "duration": "PT10S", "retry_count": 1, "sequence_path": null, "docstring": "second",
             "measurements": [
                {"id": "<id>", "name": "limits", "outcome": "PASS", "units": "V", "measured_value": 25,
                 "docstring": null, "data_series": null, "aggregations": null,
                 "validators": [
                    {"outcome": "PASS", "operator": ">=", "expected_value": 10, "expression": "x >= 10",
                     "is_decisive": null, "is_expression_only": false,
                     "analytics_expression": "x >= 10", "has_custom_expression": false},
                    {"outcome": "PASS", "operator": "<=", "expected_value": 40.5,
                     "expression": "x <= 40.5", "is_decisive": null, "is_expression_only": false,
                     "analytics_expression": "x <= 40.5", "has_custom_expression": false}
                 ]},
                {"id": "<id>", "name": "text", "outcome": "FAIL", "units": null, "measured_value": "abc",
                 "docstring": null, "data_series": null, "aggregations": null,
                 "validators": [
                    {"outcome": "FAIL", "operator": ">=", "expected_value": 1, "expression": "x >= 1",
                     "is_decisive": null, "is_expression_only": false,
                     "analytics_expression": "x >= 1", "has_custom_expression": false}
                 ]},
                {"id": "<id>", "name": "grid", "outcome": "PASS", "units": "V, A",
                 "measured_value": [[1, 2], [3, 4]], "docstring": null, "data_series": null,
                 "validators": null, "aggregations": null},
                {"id": "<id>", "name": "big", "outcome": "UNSET", "units": null,
                 "measured_value": 9999999999999999u64, "docstring": null, "data_series": null,
                 "validators": null, "aggregations": null},
                {"id": "<id>", "name": "obj", "outcome": "UNSET", "units": null,
                 "measured_value": {"k": [true, null]}, "docstring": null, "data_series": null,
                 "validators": null, "aggregations": null},
                {"id": "<id>", "name": "none", "outcome": "UNSET", "units": null,
                 "measured_value": null, "docstring": null, "data_series": null,
                 "validators": null, "aggregations": null},
                {"id": "<id>", "name": "flag", "outcome": "PASS", "units": null,
                 "measured_value": false, "docstring": null, "data_series": null,
                 "validators": [], "aggregations": []}
             ]}
        ],
        "attachments": [],
        "logs": [],
        "sub_units": [{"id": "<id>", "serial_number": "Sub-9", "part_number": "Sub-Part",
                       "part_name": "Sub-Part"}],
        "config": [],
        "secrets": []
    });
    assert_eq!(
        run,
        expected,
        "got {}",
        serde_json::to_string_pretty(&run).unwrap()
    );

    // The official client reads it all.
    let c = srv.client(&org.user_key);
    let got = c.runs().get().id(&id).send().await.unwrap();
    let phases = got.phases.unwrap();
    assert_eq!(phases.len(), 4);
    assert_eq!(
        phases[3].measurements[0].validators.as_ref().unwrap().len(),
        2
    );
    assert_eq!(got.logs.unwrap()[0].line_number, 1);
    assert_eq!(got.sub_units.unwrap()[0].serial_number, "Sub-9");
    assert!(got.attachments.unwrap().is_empty());
}

#[tokio::test]
async fn minimal_run_has_empty_arrays_and_null_keys() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let id = create(
        &srv,
        &org.station_key,
        run_body(&org.procedure_id, "SN-MIN", "P-MIN"),
    )
    .await;
    let run = get_run(&srv, &org.station_key, &id).await;
    for k in [
        "phases",
        "logs",
        "attachments",
        "sub_units",
        "config",
        "secrets",
        "sequences",
    ] {
        assert_eq!(run[k], json!([]), "{k}");
    }
    for k in [
        "docstring",
        "operated_by",
        "created_by_user",
        "execution_id",
        "slot_key",
        "slot_name",
    ] {
        assert!(
            run.get(k).is_some_and(Value::is_null),
            "{k} must be present and null"
        );
    }
    assert_eq!(run["procedure"]["version"], Value::Null);
    assert_eq!(run["unit"]["batch"], Value::Null);
    assert_eq!(run["created_by_station"]["name"], "Lab Bench");
    assert_eq!(run["metadata"], json!({}));
    // The default revision of a new part is A.
    assert_eq!(run["unit"]["part"]["revision"]["number"], "A");
}

#[tokio::test]
async fn ids_are_checked_and_scoped() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let id = create(&srv, &a.user_key, run_body(&a.procedure_id, "SN-A", "P-A")).await;
    for key in [&a.user_key, &a.station_key] {
        let r = srv.get("/api/v2/runs/not-a-uuid", key).await;
        r.expect(400);
    }
    let r = srv
        .get(
            "/api/v2/runs/00000000-0000-0000-0000-000000000000",
            &a.user_key,
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Run not found");
    // Another organization's run does not exist for B.
    let r = srv.get(&format!("/api/v2/runs/{id}"), &b.user_key).await;
    r.expect(404);
    assert_eq!(r.message(), "Run not found");
    let r = srv.get(&format!("/api/v2/runs/{id}"), &b.station_key).await;
    r.expect(404);
    let res = srv.client(&b.user_key).runs().get().id(&id).send().await;
    assert!(matches!(res, Err(tofupilot::Error::NotFound(_))), "{res:?}");
}

#[tokio::test]
async fn implicit_creation_is_case_insensitive_and_keeps_first_spelling() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let first = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "Sn-Case", "Part-Case"),
            json!({"revision_number": "Rev-a", "batch_number": "Lot-A", "procedure_version": "v1.0-RC"}),
        ),
    )
    .await;
    let second = create(
        &srv,
        &org.station_key,
        with(
            run_body(&org.procedure_id, "SN-CASE", "PART-CASE"),
            json!({"revision_number": "REV-A", "batch_number": "lot-a", "procedure_version": "V1.0-rc"}),
        ),
    )
    .await;
    let a = get_run(&srv, &org.user_key, &first).await;
    let b = get_run(&srv, &org.user_key, &second).await;
    for path in [
        ["unit", "id", ""],
        ["unit", "serial_number", ""],
        ["unit", "part", "id"],
        ["unit", "part", "number"],
        ["unit", "batch", "number"],
        ["procedure", "version", "tag"],
    ] {
        let pick = |v: &Value| {
            let mut x = v.clone();
            for p in path.iter().filter(|p| !p.is_empty()) {
                x = x[*p].clone();
            }
            x
        };
        assert_eq!(pick(&a), pick(&b), "{path:?}");
    }
    assert_eq!(b["unit"]["serial_number"], "Sn-Case");
    assert_eq!(b["unit"]["part"]["number"], "Part-Case");
    assert_eq!(b["unit"]["part"]["revision"]["number"], "Rev-a");
    assert_eq!(b["procedure"]["version"]["tag"], "v1.0-RC");
    for (table, sql) in [
        ("units", "SELECT COUNT(*) FROM units"),
        ("parts", "SELECT COUNT(*) FROM parts"),
        ("revisions", "SELECT COUNT(*) FROM revisions"),
        ("batches", "SELECT COUNT(*) FROM batches"),
        (
            "procedure_versions",
            "SELECT COUNT(*) FROM procedure_versions",
        ),
    ] {
        assert_eq!(count(&srv, sql).await, 1, "{table}");
    }
    // The unit remembers the run that created it and who created it.
    let (during, by_user): (Option<String>, Option<String>) = srv
        .db
        .read()
        .fetch_one(tofulab::db::Sql::new(
            "SELECT CAST(created_during_run_id AS TEXT), CAST(created_by_user_id AS TEXT) FROM units",
        ))
        .await
        .unwrap();
    assert_eq!(during.as_deref(), Some(first.as_str()));
    assert!(by_user.is_some());
}

#[tokio::test]
async fn unit_moves_to_the_last_named_part_and_old_runs_keep_theirs() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let r1 = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "SN-MOVE", "PART-1"),
            json!({"revision_number": "R1", "batch_number": "B1"}),
        ),
    )
    .await;
    // No part named: the unit's current part and revision are used, and its batch.
    let r2 = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "SN-MOVE", "x"),
            json!({"part_number": null}),
        ),
    )
    .await;
    let g2 = get_run(&srv, &org.user_key, &r2).await;
    assert_eq!(g2["unit"]["part"]["number"], "PART-1");
    assert_eq!(g2["unit"]["part"]["revision"]["number"], "R1");
    assert_eq!(g2["unit"]["batch"]["number"], "B1");
    // Another part without a revision: the unit moves to that part's default revision.
    let r3 = create(
        &srv,
        &org.user_key,
        run_body(&org.procedure_id, "SN-MOVE", "PART-2"),
    )
    .await;
    let g3 = get_run(&srv, &org.user_key, &r3).await;
    assert_eq!(g3["unit"]["part"]["number"], "PART-2");
    assert_eq!(g3["unit"]["part"]["revision"]["number"], "A");
    // Same part, another revision and batch.
    let r4 = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "sn-move", "part-2"),
            json!({"revision_number": "R9", "batch_number": "B2"}),
        ),
    )
    .await;
    let g4 = get_run(&srv, &org.user_key, &r4).await;
    assert_eq!(g4["unit"]["part"]["revision"]["number"], "R9");
    assert_eq!(g4["unit"]["batch"]["number"], "B2");
    // Earlier runs keep the part revision and batch they were recorded with.
    let g1 = get_run(&srv, &org.user_key, &r1).await;
    assert_eq!(g1["unit"]["part"]["number"], "PART-1");
    assert_eq!(g1["unit"]["part"]["revision"]["number"], "R1");
    assert_eq!(g1["unit"]["batch"]["number"], "B1");
    assert_eq!(g1["unit"]["id"], g4["unit"]["id"]);
    // Part without revision, when the part already has revisions: its oldest one.
    let r5 = create(
        &srv,
        &org.user_key,
        run_body(&org.procedure_id, "SN-OTHER", "PART-1"),
    )
    .await;
    let g5 = get_run(&srv, &org.user_key, &r5).await;
    assert_eq!(g5["unit"]["part"]["revision"]["number"], "R1");
    // A new unit without any part number cannot be created.
    let r = post_run(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "SN-NEW", "x"),
            json!({"part_number": null}),
        ),
    )
    .await;
    r.expect(400);
    assert!(r.error_text().contains("part number"), "{}", r.text);
    assert_eq!(r.json["issues"][0]["path"], json!(["part_number"]));
    // The moved unit's current state is the last run's.
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 2);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM parts").await, 2);
}

#[tokio::test]
async fn sub_units_are_linked_and_checked() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let c = srv.client(&org.user_key);
    for s in ["CHILD-1", "CHILD-2", "TOP"] {
        create(&srv, &org.user_key, run_body(&org.procedure_id, s, "P-SUB")).await;
    }
    create(
        &srv,
        &other.user_key,
        run_body(&other.procedure_id, "FOREIGN", "P"),
    )
    .await;

    // Through the official client; duplicates (ci) are linked once.
    let now = chrono::Utc::now();
    let run = c
        .runs()
        .create()
        .serial_number("PARENT")
        .procedure_id(&org.procedure_id)
        .part_number("P-PARENT")
        .started_at(now)
        .ended_at(now)
        .outcome(LogGetOutcome::Pass)
        .sub_units(vec![
            "child-1".to_string(),
            "CHILD-2".into(),
            "Child-1".into(),
        ])
        .send()
        .await
        .unwrap();
    let got = get_run(&srv, &org.user_key, &run.id).await;
    let serials: Vec<&str> = got["sub_units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["serial_number"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["CHILD-1", "CHILD-2"]);
    assert_eq!(got["sub_units"][0]["part_number"], "P-SUB");
    let parents = count(
        &srv,
        "SELECT COUNT(*) FROM units c JOIN units p ON p.id = c.parent_id
         WHERE p.serial_key = 'parent'",
    )
    .await;
    assert_eq!(parents, 2);

    let base = run_body(&org.procedure_id, "PARENT", "P-PARENT");
    // Unknown (or another organization's) sub-unit: 404 naming it; nothing created.
    for missing in ["GHOST", "FOREIGN"] {
        let r = post_run(
            &srv,
            &org.user_key,
            with(base.clone(), json!({"sub_units": [missing]})),
        )
        .await;
        r.expect(404);
        assert_eq!(r.message(), format!("Unit {missing} not found"));
    }
    // The unit itself, or one of its ancestors, would make a cycle: 400.
    let r = post_run(
        &srv,
        &org.user_key,
        with(base.clone(), json!({"sub_units": ["parent"]})),
    )
    .await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["sub_units", 0]));
    create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "TOP", "P-SUB"),
            json!({"sub_units": ["PARENT"]}),
        ),
    )
    .await;
    let r = post_run(
        &srv,
        &org.user_key,
        with(base.clone(), json!({"sub_units": ["CHILD-1", "top"]})),
    )
    .await;
    r.expect(400);
    assert!(r.error_text().contains("cycle"), "{}", r.text);
    assert_eq!(r.json["issues"][0]["path"], json!(["sub_units", 1]));
    // A sub-unit moves from its previous parent.
    create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "OTHER-PARENT", "P"),
            json!({"sub_units": ["CHILD-2"]}),
        ),
    )
    .await;
    let moved = count(
        &srv,
        "SELECT COUNT(*) FROM units c JOIN units p ON p.id = c.parent_id
         WHERE c.serial_key = 'child-2' AND p.serial_key = 'other-parent'",
    )
    .await;
    assert_eq!(moved, 1);
    // The run that linked it still lists it.
    let again = get_run(&srv, &org.user_key, &run.id).await;
    assert_eq!(again["sub_units"].as_array().unwrap().len(), 2);
    // An empty list links nothing.
    let id = create(&srv, &org.user_key, with(base, json!({"sub_units": []}))).await;
    assert_eq!(
        get_run(&srv, &org.user_key, &id).await["sub_units"],
        json!([])
    );
}

#[tokio::test]
async fn large_runs_round_trip() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    // Enough rows to need several multi-row statements per table.
    let phases: Vec<Value> = (0..40)
        .map(|p| {
            json!({
                "name": format!("phase-{p:02}"), "outcome": "PASS",
                "started_at": at(p), "ended_at": at(p + 1),
                "measurements": (0..50).map(|m| json!({
                    "name": format!("m{m}"), "outcome": "PASS", "measured_value": p * 100 + m,
                    "validators": [{"operator": ">=", "expected_value": 0}]
                })).collect::<Vec<_>>()
            })
        })
        .collect();
    let logs: Vec<Value> = (0..1500)
        .map(|i| {
            json!({"level": "INFO", "timestamp": at(i), "message": format!("line {i}"),
                   "source_file": "x.py", "line_number": i})
        })
        .collect();
    let id = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "SN-BIG", "P-BIG"),
            json!({"phases": phases, "logs": logs}),
        ),
    )
    .await;
    let run = get_run(&srv, &org.user_key, &id).await;
    let phases = run["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 40);
    for (p, phase) in phases.iter().enumerate() {
        assert_eq!(phase["name"], format!("phase-{p:02}"));
        let ms = phase["measurements"].as_array().unwrap();
        assert_eq!(ms.len(), 50);
        for (m, meas) in ms.iter().enumerate() {
            assert_eq!(meas["name"], format!("m{m}"), "request order");
            assert_eq!(meas["measured_value"], json!(p * 100 + m));
        }
    }
    let logs = run["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1500);
    assert_eq!(logs[1499]["message"], "line 1499");
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM measurements").await, 2000);
}
