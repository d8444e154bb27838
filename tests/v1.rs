//! The legacy API (BEHAVIOR.md §11): exact response shapes and content types, the run
//! mapping read back through v2, errors, station permissions and organization scoping.

mod common;
mod legacy_support;

use common::*;
use legacy_support::*;
use serde_json::{json, Value};

fn legacy_run(serial: &str, procedure: &str) -> Value {
    json!({
        "unit_under_test": {"serial_number": serial, "part_number": "PN-1"},
        "run_passed": true,
        "procedure_id": procedure,
        "procedure_name": null,
        "procedure_version": null,
        "client": "Python",
        "client_version": "2.26.1",
    })
}

#[tokio::test]
async fn create_run_maps_the_legacy_body_into_a_v2_run() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let sub = srv
        .post(
            "/api/v1/runs",
            &org.user_key,
            legacy_run("SUB1", &org.procedure_id),
        )
        .await;
    v1_ok(&sub);

    // The body the Python client sends (contract `observed.create_run_with_attachment`).
    let body = json!({
        "unit_under_test": {"serial_number": "SN1", "part_number": "PN1", "part_name": "Board",
                            "revision": "A", "batch_number": "B1"},
        "run_passed": false,
        "procedure_id": org.procedure_id,
        "procedure_name": "Final test",
        "procedure_version": "1.0",
        "client": "Python",
        "client_version": "2.26.1",
        "steps": [{"name": "s", "started_at": "2024-01-02T03:04:05Z", "duration": "PT1.500000S",
                   "step_passed": true, "measurement_unit": "V", "measurement_value": 3.3,
                   "limit_low": 3.0, "limit_high": 3.6}],
        "phases": [{"name": "p", "outcome": "PASS", "start_time_millis": 1704164645000u64,
                    "end_time_millis": 1704164646000u64, "docstring": "d",
                    "measurements": [{"name": "m", "outcome": "PASS", "measured_value": 3.3,
                                      "units": "V", "lower_limit": 3.0, "upper_limit": 3.6,
                                      "validators": ["3.0 <= x <= 3.6"], "docstring": "d"},
                                     {"name": "unset", "outcome": "UNSET"}]}],
        "logs": [{"level": "INFO", "timestamp": "2024-01-02T03:04:05Z", "message": "hi",
                  "source_file": "t.py", "line_number": 3.0}],
        "started_at": "2024-01-02T03:04:05Z",
        "duration": "PT1M2.250000S",
        "sub_units": [{"serial_number": "sub1"}],
    });
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    let ok = v1_ok(&r);
    let keys: Vec<&String> = ok.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "success"], "{}", r.text);
    assert_eq!(ok["success"], json!(true));
    let id = ok["id"].as_str().unwrap();

    let run = get_run(&srv, &org.user_key, id).await;
    assert_eq!(run["outcome"], "FAIL");
    assert_eq!(run["started_at"], "2024-01-02T03:04:05.000000Z");
    assert_eq!(run["ended_at"], "2024-01-02T03:05:07.250000Z");
    assert_eq!(run["duration"], "PT1M2.25S");
    assert_eq!(
        run["procedure"]["id"],
        json!(org.procedure_id),
        "procedure_id wins over the name"
    );
    assert_eq!(run["procedure"]["version"]["tag"], "1.0");
    assert_eq!(run["unit"]["serial_number"], "SN1");
    assert_eq!(run["unit"]["part"]["number"], "PN1");
    assert_eq!(run["unit"]["part"]["name"], "Board");
    assert_eq!(run["unit"]["part"]["revision"]["number"], "A");
    assert_eq!(run["unit"]["batch"]["number"], "B1");
    assert_eq!(run["created_by_user"]["email"], json!(org.user_email));
    assert_eq!(
        run["sub_units"][0]["serial_number"], "SUB1",
        "stored spelling"
    );

    // The phase and the step start together: ordered by name.
    assert_eq!(names(&run["phases"]), ["p", "s"]);
    let step = &run["phases"][1];
    assert_eq!(step["outcome"], "PASS");
    assert_eq!(step["duration"], "PT1.5S");
    let sm = &step["measurements"][0];
    assert_eq!(
        (sm["name"].as_str(), sm["measured_value"].as_f64()),
        (Some("s"), Some(3.3))
    );
    assert_eq!(sm["units"], "V");
    let ops: Vec<&str> = sm["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["operator"].as_str().unwrap())
        .collect();
    assert_eq!(ops, [">=", "<="]);

    let phase = &run["phases"][0];
    assert_eq!(
        (phase["outcome"].as_str(), phase["docstring"].as_str()),
        (Some("PASS"), Some("d"))
    );
    assert_eq!(phase["started_at"], "2024-01-02T03:04:05.000000Z");
    let m = &phase["measurements"][0];
    assert_eq!(m["docstring"], "d");
    let vs = m["validators"].as_array().unwrap();
    assert_eq!(vs.len(), 3, "two limits and the OpenHTF string: {vs:?}");
    assert_eq!(
        (vs[0]["operator"].as_str(), vs[0]["expected_value"].as_f64()),
        (Some(">="), Some(3.0))
    );
    assert_eq!(
        (vs[1]["operator"].as_str(), vs[1]["expected_value"].as_f64()),
        (Some("<="), Some(3.6))
    );
    assert_eq!(vs[2]["operator"], "range");
    assert_eq!(vs[2]["expected_value"], json!([3.0, 3.6]));
    assert_eq!(vs[2]["expression"], "3.0 <= x <= 3.6");
    assert_eq!(vs[2]["outcome"], "PASS");
    let unset = &phase["measurements"][1];
    assert_eq!(unset["outcome"], "UNSET");
    assert_eq!(unset["measured_value"], Value::Null);

    let log = &run["logs"][0];
    assert_eq!(
        (log["level"].as_str(), log["message"].as_str()),
        (Some("INFO"), Some("hi"))
    );
    assert_eq!(
        (log["source_file"].as_str(), log["line_number"].as_i64()),
        (Some("t.py"), Some(3))
    );
    assert!(log["line_number"].is_i64(), "an integer on the wire");
}

#[tokio::test]
async fn times_default_from_phases_and_never_fail() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let mut body = legacy_run("T1", &org.procedure_id);
    body["phases"] = json!([
        {"name": "b", "outcome": "PASS", "start_time_millis": 1704164650000u64, "end_time_millis": 1704164655000u64},
        {"name": "a", "outcome": "SKIP", "start_time_millis": 1704164645000u64, "end_time_millis": 1704164640000u64},
    ]);
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    let id = v1_ok(&r)["id"].as_str().unwrap().to_string();
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(
        run["started_at"], "2024-01-02T03:04:05.000000Z",
        "earliest phase start"
    );
    assert_eq!(
        run["ended_at"], "2024-01-02T03:04:15.000000Z",
        "latest phase end"
    );
    assert_eq!(names(&run["phases"]), ["a", "b"]);
    assert_eq!(
        run["phases"][0]["duration"], "PT0S",
        "an end before the start is moved to it"
    );

    // No times at all: now, zero duration. A zero duration is fine too.
    let mut body = legacy_run("T2", &org.procedure_id);
    body["duration"] = json!("PT0S");
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    let id = v1_ok(&r)["id"].as_str().unwrap().to_string();
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["duration"], "PT0S");
    assert_eq!(run["started_at"], run["ended_at"]);
}

#[tokio::test]
async fn procedures_by_identifier_and_by_name() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let ident = identifier(&srv, &org, &org.procedure_id).await;

    let r = srv
        .post(
            "/api/v1/runs",
            &org.user_key,
            legacy_run("ID1", &ident.to_lowercase()),
        )
        .await;
    let id = v1_ok(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(
        get_run(&srv, &org.user_key, &id).await["procedure"]["id"],
        json!(org.procedure_id)
    );

    // By name: created on first use, found (case-insensitively) afterwards.
    let mut ids = Vec::new();
    for (serial, name) in [("N1", "Burn-in"), ("N2", "BURN-IN")] {
        let mut body = legacy_run(serial, "x");
        body["procedure_id"] = Value::Null;
        body["procedure_name"] = json!(name);
        let r = srv.post("/api/v1/runs", &org.user_key, body).await;
        let id = v1_ok(&r)["id"].as_str().unwrap().to_string();
        ids.push(get_run(&srv, &org.user_key, &id).await["procedure"].clone());
    }
    assert_eq!(ids[0]["id"], ids[1]["id"]);
    assert_eq!(ids[0]["name"], "Burn-in");

    // A second procedure with the same name makes the name ambiguous.
    unlinked_procedure(&srv, &org, "burn-in").await;
    let mut body = legacy_run("N3", "x");
    body["procedure_id"] = Value::Null;
    body["procedure_name"] = json!("Burn-in");
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(v1_err(&r, 400).contains("procedure_id"));

    // Neither: 400 naming the procedure.
    let mut body = legacy_run("N4", "x");
    body["procedure_id"] = Value::Null;
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(v1_err(&r, 400).contains("procedure"));

    // Unknown identifier or id: 404 naming it.
    let r = srv
        .post("/api/v1/runs", &org.user_key, legacy_run("N5", "PROC-NOPE"))
        .await;
    assert!(v1_err(&r, 404).contains("proc-nope"));
    let r = srv
        .post(
            "/api/v1/runs",
            &org.user_key,
            legacy_run("N5", &random_id()),
        )
        .await;
    assert!(v1_err(&r, 404).contains("not found"));
}

#[tokio::test]
async fn errors_use_the_legacy_shape_and_content_type() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    // Missing serial number.
    let mut body = legacy_run("", &org.procedure_id);
    let r = srv.post("/api/v1/runs", &org.user_key, body.clone()).await;
    assert!(v1_err(&r, 400).contains("serial number"));
    body["unit_under_test"] = json!({"part_number": "P"});
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(v1_err(&r, 400).contains("serial_number"));

    // A new unit without a part number.
    let mut body = legacy_run("NEW-UNIT", &org.procedure_id);
    body["unit_under_test"] = json!({"serial_number": "NEW-UNIT"});
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(v1_err(&r, 400).contains("part number"));

    // Bad enums and values name the field.
    let mut body = legacy_run("E1", &org.procedure_id);
    body["phases"] =
        json!([{"name": "p", "outcome": "MAYBE", "start_time_millis": 1, "end_time_millis": 2}]);
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(
        v1_err(&r, 400).contains("phases[0].outcome") || r.text.contains("phases.0.outcome"),
        "{}",
        r.text
    );
    let mut body = legacy_run("E2", &org.procedure_id);
    body["duration"] = json!("90 seconds");
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(v1_err(&r, 400).contains("duration"));
    let mut body = legacy_run("E3", &org.procedure_id);
    body["unit_under_test"]["batch_number"] = json!("LOT 1");
    let r = srv.post("/api/v1/runs", &org.user_key, body).await;
    assert!(v1_err(&r, 400).contains("batch number"));

    // Malformed JSON.
    let r = Resp::from(
        srv.raw(reqwest::Method::POST, "/api/v1/runs")
            .bearer_auth(&org.user_key)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(v1_err(&r, 400).contains("json"));

    // Keys: missing and unknown are 401.
    let r = srv
        .call(
            reqwest::Method::POST,
            "/api/v1/runs",
            None,
            Some(legacy_run("K", &org.procedure_id)),
        )
        .await;
    assert!(v1_err(&r, 401).contains("api key"));
    let r = srv
        .post(
            "/api/v1/runs",
            "tp_user_unknownunknownunknown",
            legacy_run("K", &org.procedure_id),
        )
        .await;
    assert!(v1_err(&r, 401).contains("api key"));
    let r = srv
        .get("/api/v1/streaming", "tp_user_unknownunknownunknown")
        .await;
    v1_err(&r, 401);

    // Unknown legacy paths and methods.
    let r = srv.get("/api/v1/nothing", &org.user_key).await;
    v1_err(&r, 404);
    let r = srv.delete("/api/v1/runs", &org.user_key).await;
    v1_err(&r, 405);
}

#[tokio::test]
async fn station_keys_follow_the_v2_permissions() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    let r = srv
        .post(
            "/api/v1/runs",
            &org.station_key,
            legacy_run("ST1", &org.procedure_id),
        )
        .await;
    let id = v1_ok(&r)["id"].as_str().unwrap().to_string();
    let run = get_run(&srv, &org.user_key, &id).await;
    assert_eq!(run["created_by_station"]["id"], json!(org.station_id));
    assert_eq!(run["created_by_user"], Value::Null);

    // An existing procedure the station is not linked to, and an unknown one: both 403.
    let other = unlinked_procedure(&srv, &org, "Other").await;
    for procedure in [
        other.clone(),
        identifier(&srv, &org, &other).await,
        random_id(),
        "PROC-NOPE".into(),
    ] {
        let r = srv
            .post(
                "/api/v1/runs",
                &org.station_key,
                legacy_run("ST2", &procedure),
            )
            .await;
        assert!(
            v1_err(&r, 403).contains("not authorized"),
            "{procedure}: {}",
            r.text
        );
    }

    // Stations cannot create procedures by name.
    let mut body = legacy_run("ST3", "x");
    body["procedure_id"] = Value::Null;
    body["procedure_name"] = json!("Brand new");
    let r = srv.post("/api/v1/runs", &org.station_key, body).await;
    assert!(v1_err(&r, 403).contains("stations cannot"));
    // Nothing was created along the way.
    let r = srv
        .get("/api/v1/runs?serial_number=ST3", &org.user_key)
        .await;
    assert_eq!(v1_ok(&r)["result"], json!([]));
}

#[tokio::test]
async fn get_runs_by_serial_number() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let mut ids = Vec::new();
    for (i, serial) in ["Unit-7", "UNIT-7"].iter().enumerate() {
        let mut body = legacy_run(serial, &org.procedure_id);
        body["started_at"] = json!(format!("2024-01-0{}T00:00:00Z", i + 1));
        let r = srv.post("/api/v1/runs", &org.user_key, body).await;
        ids.push(v1_ok(&r)["id"].clone());
    }
    srv.post(
        "/api/v1/runs",
        &org.user_key,
        legacy_run("Unit-8", &org.procedure_id),
    )
    .await;

    let r = srv
        .get("/api/v1/runs?serial_number=unit-7", &org.station_key)
        .await;
    let body = v1_ok(&r);
    assert_eq!(body["success"], json!(true));
    let result = body["result"].as_array().unwrap();
    let got: Vec<&Value> = result.iter().map(|r| &r["id"]).collect();
    assert_eq!(
        got,
        [&ids[1], &ids[0]],
        "all runs of the unit, newest first"
    );
    for run in result {
        for key in [
            "id",
            "outcome",
            "created_at",
            "started_at",
            "ended_at",
            "duration",
            "procedure",
            "phases",
            "logs",
            "attachments",
        ] {
            assert!(run.get(key).is_some(), "{key} missing in {run}");
        }
        assert_eq!(run["unit"]["serial_number"], "Unit-7", "stored spelling");
    }

    // Unknown serial (and another organization's): an empty list, not 404.
    for (key, serial) in [(&org.user_key, "nobody"), (&other.user_key, "Unit-7")] {
        let r = srv
            .get(&format!("/api/v1/runs?serial_number={serial}"), key)
            .await;
        assert_eq!(v1_ok(&r)["result"], json!([]));
    }
    let r = srv.get("/api/v1/runs", &org.user_key).await;
    assert!(v1_err(&r, 400).contains("serial_number"));
}

#[tokio::test]
async fn uploads_initialize_put_and_sync() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let r = srv
        .post(
            "/api/v1/runs",
            &org.user_key,
            legacy_run("UP1", &org.procedure_id),
        )
        .await;
    let run_id = v1_ok(&r)["id"].as_str().unwrap().to_string();

    for key in [&org.user_key, &org.station_key] {
        let r = srv
            .post(
                "/api/v1/uploads/initialize",
                key,
                json!({"name": "raw_data", "mimeType": "application/octet-stream"}),
            )
            .await;
        let body = v1_ok(&r);
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "uploadUrl"], "camelCase: {}", r.text);
        let upload_id = body["id"].as_str().unwrap().to_string();
        let url = body["uploadUrl"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/files/{upload_id}?", srv.url)),
            "{url}"
        );
        // The legacy client sends no Content-Type for names without a known extension.
        let put = reqwest::Client::new()
            .put(url)
            .body(vec![1u8, 2, 3])
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 200);

        let r = srv
            .post(
                "/api/v1/uploads/sync",
                key,
                json!({"upload_id": upload_id, "run_id": run_id}),
            )
            .await;
        assert_eq!(v1_ok(&r), &json!({"success": true}));
    }
    let run = get_run(&srv, &org.user_key, &run_id).await;
    let atts = run["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    for a in atts {
        assert_eq!(a["name"], "raw_data");
        assert_eq!(a["is_report"], json!(false));
        assert_eq!(a["size"], json!(3));
        let got = reqwest::get(a["download_url"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), &[1u8, 2, 3]);
    }

    // Validation.
    let r = srv
        .post(
            "/api/v1/uploads/initialize",
            &org.user_key,
            json!({"name": "  "}),
        )
        .await;
    assert!(v1_err(&r, 400).contains("name"));
    let r = srv
        .post(
            "/api/v1/uploads/initialize",
            &org.user_key,
            json!({"name": "a.bin", "sizeBytes": 0}),
        )
        .await;
    assert!(v1_err(&r, 400).contains("sizebytes"));
    let r = srv
        .post(
            "/api/v1/uploads/sync",
            &org.user_key,
            json!({"upload_id": "up-1", "run_id": run_id}),
        )
        .await;
    assert!(v1_err(&r, 400).contains("uuid"));
}

#[tokio::test]
async fn other_organizations_ids_are_unknown() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let r = srv
        .post(
            "/api/v1/runs",
            &a.user_key,
            legacy_run("A1", &a.procedure_id),
        )
        .await;
    let a_run = v1_ok(&r)["id"].as_str().unwrap().to_string();
    let a_upload = upload(&srv, &a.user_key, "a.json", b"{}".to_vec()).await;
    let r = srv
        .post(
            "/api/v1/runs",
            &b.user_key,
            legacy_run("B1", &b.procedure_id),
        )
        .await;
    let b_run = v1_ok(&r)["id"].as_str().unwrap().to_string();
    let b_upload = upload(&srv, &b.user_key, "b.json", b"{}".to_vec()).await;

    // B cannot link A's upload, nor link to A's run, nor import A's upload, nor use A's
    // procedure.
    let r = srv
        .post(
            "/api/v1/uploads/sync",
            &b.user_key,
            json!({"upload_id": a_upload, "run_id": b_run}),
        )
        .await;
    v1_err(&r, 404);
    let r = srv
        .post(
            "/api/v1/uploads/sync",
            &b.user_key,
            json!({"upload_id": b_upload, "run_id": a_run}),
        )
        .await;
    assert!(v1_err(&r, 404).contains("run not found"));
    let r = srv
        .post(
            "/api/v1/import",
            &b.user_key,
            json!({"upload_id": a_upload, "importer": "OPENHTF"}),
        )
        .await;
    v1_err(&r, 404);
    let r = srv
        .post(
            "/api/v1/runs",
            &b.user_key,
            legacy_run("B2", &a.procedure_id),
        )
        .await;
    v1_err(&r, 404);
    let r = srv.get("/api/v1/runs?serial_number=A1", &b.user_key).await;
    assert_eq!(v1_ok(&r)["result"], json!([]));
}

#[tokio::test]
async fn import_creates_the_run_and_keeps_the_report() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let ident = identifier(&srv, &org, &org.procedure_id).await;
    let bytes = record(SAMPLE, "SN-0001", Some(&ident.to_lowercase()), Some("PN-1"));
    let upload_id = upload(&srv, &org.user_key, "SN-0001.test.json", bytes.clone()).await;

    let r = srv
        .post(
            "/api/v1/import",
            &org.user_key,
            json!({"upload_id": upload_id, "importer": "OPENHTF", "client": "Python", "client_version": "2.26.1"}),
        )
        .await;
    let body = v1_ok(&r);
    // No `url` and no message: the client then prints exactly one
    // "Run imported successfully with ID: <id>" line.
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "success"], "{}", r.text);
    let run_id = body["id"].as_str().unwrap().to_string();

    let run = get_run(&srv, &org.user_key, &run_id).await;
    assert_eq!(run["procedure"]["id"], json!(org.procedure_id));
    assert_eq!(names(&run["phases"]), ["trigger_phase", "check_power"]);
    let atts = run["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0]["id"], json!(upload_id));
    assert_eq!(atts[0]["is_report"], json!(true));
    assert_eq!(atts[0]["name"], "SN-0001.test.json");

    // The same content again (a new upload): the run it was imported into.
    let again = upload(&srv, &org.user_key, "again.json", bytes).await;
    let r = srv
        .post(
            "/api/v1/import",
            &org.user_key,
            json!({"upload_id": again, "importer": "openhtf"}),
        )
        .await;
    assert_eq!(v1_ok(&r)["id"], json!(run_id));
    let r = srv
        .get("/api/v1/runs?serial_number=SN-0001", &org.user_key)
        .await;
    assert_eq!(v1_ok(&r)["result"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn import_failures() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let import = |upload: String, key: String| {
        let srv = &srv;
        async move {
            srv.post(
                "/api/v1/import",
                &key,
                json!({"upload_id": upload, "importer": "OPENHTF"}),
            )
            .await
        }
    };

    // No part number for a serial the server does not know.
    let u = upload(
        &srv,
        &org.user_key,
        "r.json",
        record(SAMPLE, "NEW-1", Some(&org.procedure_id), None),
    )
    .await;
    let r = import(u.clone(), org.user_key.clone()).await;
    assert!(v1_err(&r, 400).contains("part number"));
    // The failed import left the upload free: with a part number it imports.
    let u2 = upload(
        &srv,
        &org.user_key,
        "r.json",
        record(SAMPLE, "NEW-1", Some(&org.procedure_id), Some("P")),
    )
    .await;
    v1_ok(&import(u2, org.user_key.clone()).await);
    // Now the unit exists: its part is used.
    let r = import(u, org.user_key.clone()).await;
    v1_ok(&r);

    // Unknown procedure: 404 naming it; none: 400 mentioning the procedure.
    let u = upload(
        &srv,
        &org.user_key,
        "r.json",
        record(SAMPLE, "X", Some("FVT1"), Some("P")),
    )
    .await;
    assert!(v1_err(&import(u.clone(), org.user_key.clone()).await, 404)
        .contains("procedure `fvt1` not found"));
    // A station key gets 403, as for an unlinked procedure.
    assert!(v1_err(&import(u, org.station_key.clone()).await, 403).contains("not authorized"));
    let u = upload(
        &srv,
        &org.user_key,
        "r.json",
        record(SAMPLE, "X", None, Some("P")),
    )
    .await;
    assert!(v1_err(&import(u, org.user_key.clone()).await, 400).contains("procedure"));

    // Not a record.
    let u = upload(&srv, &org.user_key, "r.json", b"<xml/>".to_vec()).await;
    assert!(v1_err(&import(u, org.user_key.clone()).await, 400).contains("openhtf"));
    let u = upload(
        &srv,
        &org.user_key,
        "r.json",
        br#"{"phases": "nope"}"#.to_vec(),
    )
    .await;
    assert!(v1_err(&import(u, org.user_key.clone()).await, 400).contains("phases"));

    // Unknown upload, an upload without bytes, another importer.
    let r = import(random_id(), org.user_key.clone()).await;
    assert!(v1_err(&r, 404).contains("upload"));
    let r = srv
        .post(
            "/api/v1/uploads/initialize",
            &org.user_key,
            json!({"name": "empty.json"}),
        )
        .await;
    let empty = v1_ok(&r)["id"].as_str().unwrap().to_string();
    assert!(v1_err(&import(empty, org.user_key.clone()).await, 400).contains("no file"));
    let u = upload(
        &srv,
        &org.user_key,
        "r.json",
        record(SAMPLE, "Y", Some(&org.procedure_id), Some("P")),
    )
    .await;
    let r = srv
        .post(
            "/api/v1/import",
            &org.user_key,
            json!({"upload_id": u, "importer": "WATS"}),
        )
        .await;
    assert!(v1_err(&r, 400).contains("openhtf"));
}

#[tokio::test]
async fn streaming_answers_with_an_unreachable_broker() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for key in [&org.user_key, &org.station_key] {
        let r = srv.get("/api/v1/streaming", key).await;
        let body = v1_ok(&r);
        assert!(body.get("success").is_none());
        assert!(body["token"].is_string());
        assert!(body["operatorPage"].as_str().unwrap().starts_with(&srv.url));
        assert_eq!(
            body["clientOptions"],
            json!({"transport": "tcp", "protocol": 5, "reconnect_on_failure": false})
        );
        assert_eq!(body["connectOptions"]["host"], "127.0.0.1");
        assert_eq!(body["connectOptions"]["port"], 1);
        assert_eq!(body["willOptions"]["payload"], "");
        for k in ["willOptions", "publishOptions", "subscribeOptions"] {
            assert!(body[k]["topic"].is_string(), "{k}");
            assert_eq!(body[k]["qos"], 0);
        }
    }
}
