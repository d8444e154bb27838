//! Phases, measurements and logs across runs: `phases.list/get`,
//! `measurements.list/get`, `logs.list/get`.

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use serde_json::{json, Value};

struct Fixture {
    srv: TestServer,
    org: TestOrg,
    other: TestOrg,
    run_a: String,
    run_b: String,
}

/// Run A (user key, PASS, serial SN-A): phase `setup` then `measure` tried twice
/// (retry 0 FAIL, retry 1 PASS). Run B (station key, FAIL, serial SN-B, second
/// procedure is not used): one `measure` phase. Logs on both.
async fn fixture() -> Fixture {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let m = |name: &str, value: Value, outcome: &str| {
        json!({"name": name, "outcome": outcome, "measured_value": value, "units": "V",
               "validators": [{"operator": ">=", "expected_value": 1}]})
    };
    let run_a = create(
        &srv,
        &org.user_key,
        with(
            run_body(&org.procedure_id, "SN-A", "P-1"),
            json!({
                "phases": [
                    {"name": "setup", "outcome": "PASS", "started_at": at(0), "ended_at": at(10),
                     "measurements": [m("flag", json!(true), "PASS"), m("label", json!("ok"), "PASS"),
                                      {"name": "curve", "outcome": "PASS",
                                       "x_axis": {"data": [1, 2]}, "y_axis": [{"data": [3, 4]}]},
                                      {"name": "blob", "outcome": "UNSET", "measured_value": {"a": 1}},
                                      {"name": "nothing", "outcome": "UNSET"}]},
                    {"name": "measure", "outcome": "FAIL", "started_at": at(10), "ended_at": at(40),
                     "retry_count": 0, "measurements": [m("v", json!(0.5), "FAIL")]},
                    {"name": "measure", "outcome": "PASS", "started_at": at(40), "ended_at": at(100),
                     "retry_count": 1, "measurements": [m("v", json!(3.3), "PASS")]}
                ],
                "logs": [
                    {"level": "INFO", "timestamp": at(1), "message": "Booting DUT",
                     "source_file": "boot.py", "line_number": 10},
                    {"level": "ERROR", "timestamp": at(30), "message": "Voltage 100% low_",
                     "source_file": "measure.py", "line_number": 20}
                ]
            }),
        ),
    )
    .await;
    let run_b = create(
        &srv,
        &org.station_key,
        with(
            run_body(&org.procedure_id, "SN-B", "P-2"),
            json!({
                "outcome": "FAIL",
                "started_at": at(1000), "ended_at": at(1100),
                "phases": [
                    {"name": "measure", "outcome": "PASS", "started_at": at(1000),
                     "ended_at": at(1005), "measurements": [m("v", json!(7), "PASS")]}
                ],
                "logs": [{"level": "WARNING", "timestamp": at(1001), "message": "hot",
                          "source_file": "measure.py", "line_number": 5}]
            }),
        ),
    )
    .await;
    // Look-alike data in another organization.
    create(
        &srv,
        &other.user_key,
        with(
            run_body(&other.procedure_id, "SN-A", "P-1"),
            json!({"phases": [{"name": "measure", "outcome": "PASS", "started_at": at(0),
                               "ended_at": at(1),
                               "measurements": [{"name": "v", "outcome": "PASS", "measured_value": 1}]}],
                   "logs": [{"level": "INFO", "timestamp": at(0), "message": "Booting DUT",
                             "source_file": "boot.py", "line_number": 1}]}),
        ),
    )
    .await;
    Fixture {
        srv,
        org,
        other,
        run_a,
        run_b,
    }
}

impl Fixture {
    async fn list(&self, what: &str, q: &str) -> Value {
        self.srv
            .get(
                &with_limit(&format!("/api/v2/{what}"), q),
                &self.org.user_key,
            )
            .await
            .expect(200)
            .clone()
    }

    async fn names(&self, what: &str, field: &str, q: &str) -> Vec<String> {
        self.list(what, q).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d[field].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test]
async fn phases_list_and_get() {
    let f = fixture().await;
    let all = f.list("phases", "").await;
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    // Newest start first; the retry is the final attempt, its first try is not.
    assert_eq!(data[0]["run_id"], json!(f.run_b));
    assert_eq!(data[0]["run_outcome"], "FAIL");
    assert_eq!(data[0]["serial_number"], "SN-B");
    assert_eq!(data[0]["duration_ms"], 5000);
    assert_eq!(data[0]["sample"], Value::Null);
    let attempts: Vec<(i64, bool)> = data[1..3]
        .iter()
        .map(|p| {
            (
                p["retry_count"].as_i64().unwrap(),
                p["is_final_attempt"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, vec![(1, true), (0, false)]);
    for k in [
        "id",
        "name",
        "outcome",
        "started_at",
        "ended_at",
        "sequence_path",
    ] {
        assert!(data[0].get(k).is_some(), "{k}");
    }

    let p = f.org.procedure_id.clone();
    let cases: Vec<(String, usize)> = vec![
        (format!("procedure_id={p}"), 4),
        (format!("procedure_id={}", f.other.procedure_id), 0),
        ("names=measure".into(), 3),
        ("outcomes=FAIL".into(), 1),
        ("exclude_retries=true".into(), 3),
        ("exclude_retries=true&names=measure".into(), 2),
        ("run_outcomes=PASS".into(), 3),
        ("serial_numbers=sn-b".into(), 1),
        ("part_numbers=P-1".into(), 3),
        (format!("created_by_station_ids={}", f.org.station_id), 1),
        ("duration_min=PT30S".into(), 2),
        ("duration_max=PT10S".into(), 2),
        (format!("started_after={}", at(40).replace('+', "%2B")), 2),
        ("sequence_paths=x".into(), 0),
    ];
    for (q, n) in cases {
        let got = f.list("phases", &q).await;
        assert_eq!(got["data"].as_array().unwrap().len(), n, "{q}");
    }
    // Sorts mirror.
    for sort in [
        "started_at",
        "duration",
        "outcome",
        "serial_number",
        "phase_name",
    ] {
        let asc = f
            .names("phases", "id", &format!("sort_by={sort}&sort_order=asc"))
            .await;
        let mut desc = f
            .names("phases", "id", &format!("sort_by={sort}&sort_order=desc"))
            .await;
        desc.reverse();
        assert_eq!(asc, desc, "{sort}");
    }
    assert_eq!(
        f.names("phases", "name", "sort_by=phase_name&sort_order=asc")
            .await,
        ["measure", "measure", "measure", "setup"]
    );
    // Paging.
    let page = f.list("phases", "limit=3").await;
    assert_eq!(page["meta"], json!({"has_more": true, "next_cursor": 3}));

    // One phase with its measurements in request order.
    let setup_id = data[3]["id"].as_str().unwrap();
    let got = f
        .srv
        .get(&format!("/api/v2/phases/{setup_id}"), &f.org.station_key)
        .await;
    let body = got.expect(200);
    assert_eq!(body["name"], "setup");
    assert_eq!(body["duration"], "PT10S");
    assert_eq!(body["run"], json!({"id": f.run_a, "serial_number": "SN-A"}));
    assert_eq!(body["procedure"]["id"], json!(f.org.procedure_id));
    assert_eq!(body["procedure"]["name"], "Lab Functional");
    let names: Vec<&str> = body["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["flag", "label", "curve", "blob", "nothing"]);
    assert_eq!(
        body["measurements"][0]["validators"][0]["expression"],
        "x >= 1"
    );
    assert_eq!(
        body["measurements"][2]["data_series"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Unknown, malformed, foreign.
    f.srv
        .get("/api/v2/phases/nope", &f.org.user_key)
        .await
        .expect(400);
    let r = f
        .srv
        .get(&format!("/api/v2/phases/{}", random_id()), &f.org.user_key)
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Phase not found");
    f.srv
        .get(&format!("/api/v2/phases/{setup_id}"), &f.other.user_key)
        .await
        .expect(404);
}

#[tokio::test]
async fn measurements_list_and_get() {
    let f = fixture().await;
    let all = f.list("measurements", "").await;
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 8);
    let first = &data[0];
    assert_eq!(first["run_id"], json!(f.run_b));
    assert_eq!(first["measurement_name"], "v");
    assert_eq!(first["phase_name"], "measure");
    assert_eq!(first["value"], 7.0);
    assert_eq!(first["measurement_type"], "numeric");
    assert_eq!(first["measurement_outcome"], "PASS");
    assert_eq!(first["units"], "V");
    assert_eq!(first["is_final_attempt"], true);
    assert_eq!(first["retry_count"], 0);
    assert_eq!(first["validators"][0]["operator"], ">=");
    for k in [
        "bool_value",
        "string_value",
        "sample",
        "started_at",
        "serial_number",
    ] {
        assert!(first.get(k).is_some(), "{k}");
    }
    let types: Vec<(String, String)> = data
        .iter()
        .map(|m| {
            (
                m["measurement_name"].as_str().unwrap().to_string(),
                m["measurement_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, ty) in [
        ("flag", "boolean"),
        ("label", "string"),
        ("curve", "multidimensional"),
        ("blob", "json"),
        ("nothing", "empty"),
    ] {
        assert!(
            types.contains(&(name.into(), ty.into())),
            "{name} {ty}: {types:?}"
        );
    }

    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("measurement_name=v", vec!["v", "v", "v"]),
        ("measurement_name=v&exclude_retries=true", vec!["v", "v"]),
        ("phase_name=setup&measurement_types=string", vec!["label"]),
        ("phase_names=measure&value_min=1", vec!["v", "v"]),
        ("value_min=0&value_max=1", vec!["v"]),
        ("value_bool=true", vec!["flag"]),
        ("value_strings=ok", vec!["label"]),
        ("measurement_outcomes=FAIL", vec!["v"]),
        ("outcomes=FAIL", vec!["v"]),
        (
            "serial_numbers=SN-A&measurement_types=empty",
            vec!["nothing"],
        ),
        ("duration_min=PT10M", vec![]),
    ];
    for (q, expected) in cases {
        let mut got = f.names("measurements", "measurement_name", q).await;
        got.sort();
        assert_eq!(got, expected, "{q}");
    }
    // Sorts mirror; value sorts numbers, non-numbers last ascending.
    for sort in [
        "started_at",
        "value",
        "outcome",
        "serial_number",
        "phase_name",
        "measurement_name",
    ] {
        let asc = f
            .names(
                "measurements",
                "id",
                &format!("sort_by={sort}&sort_order=asc"),
            )
            .await;
        let mut desc = f
            .names(
                "measurements",
                "id",
                &format!("sort_by={sort}&sort_order=desc"),
            )
            .await;
        desc.reverse();
        assert_eq!(asc, desc, "{sort}");
    }
    let by_value = f.list("measurements", "sort_by=value&sort_order=asc").await;
    let values: Vec<Value> = by_value["data"].as_array().unwrap()[..3]
        .iter()
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(values, vec![json!(0.5), json!(3.3), json!(7.0)]);

    // One measurement.
    let id = first["id"].as_str().unwrap();
    let r = f
        .srv
        .get(&format!("/api/v2/measurements/{id}"), &f.org.station_key)
        .await;
    let body = r.expect(200);
    assert_eq!(body["name"], "v");
    assert_eq!(body["measured_value"], 7);
    assert_eq!(body["phase"]["name"], "measure");
    assert_eq!(
        body["run"],
        json!({"id": f.run_b, "outcome": "FAIL", "serial_number": "SN-B"})
    );
    assert_eq!(body["procedure"]["name"], "Lab Functional");
    assert_eq!(body["validators"][0]["expression"], "x >= 1");
    f.srv
        .get(&format!("/api/v2/measurements/{id}"), &f.other.user_key)
        .await
        .expect(404);
    let r = f
        .srv
        .get(
            &format!("/api/v2/measurements/{}", random_id()),
            &f.org.user_key,
        )
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Measurement not found");
    // Bad filters are 400s.
    for bad in [
        "value_min=abc",
        "value_bool=maybe",
        "measurement_types=cube",
        "sort_by=x",
    ] {
        f.srv
            .get(&format!("/api/v2/measurements?{bad}"), &f.org.user_key)
            .await
            .expect(400);
    }
}

#[tokio::test]
async fn logs_list_and_get() {
    let f = fixture().await;
    let all = f.list("logs", "").await;
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["message"], "hot");
    assert_eq!(data[0]["created_at"], json!(at(1001)));
    assert_eq!(data[0]["run"]["id"], json!(f.run_b));
    assert_eq!(data[0]["run"]["outcome"], "FAIL");
    assert_eq!(data[0]["unit"]["serial_number"], "SN-B");
    assert_eq!(data[0]["procedure"]["name"], "Lab Functional");
    assert_eq!(data[0]["created_by_station"]["id"], json!(f.org.station_id));
    assert_eq!(data[0]["created_by_user"], Value::Null);
    assert_eq!(data[2]["created_by_user"]["email"], json!(f.org.user_email));
    assert_eq!(data[2]["line_number"], 10);

    let cases: Vec<(String, Vec<&str>)> = vec![
        ("search_query=booting".into(), vec!["Booting DUT"]),
        (
            "search_query=100%25%20low_".into(),
            vec!["Voltage 100% low_"],
        ),
        ("search_query=%25x".into(), vec![]),
        (
            "levels=ERROR&levels=WARNING".into(),
            vec!["Voltage 100% low_", "hot"],
        ),
        (
            "source_files=measure.py".into(),
            vec!["Voltage 100% low_", "hot"],
        ),
        (
            format!("run_ids={}", f.run_a),
            vec!["Booting DUT", "Voltage 100% low_"],
        ),
        ("run_outcomes=FAIL".into(), vec!["hot"]),
        (
            "serial_numbers=sn-a&part_numbers=p-1".into(),
            vec!["Booting DUT", "Voltage 100% low_"],
        ),
        (format!("procedure_ids={}", f.other.procedure_id), vec![]),
        (
            format!("timestamp_after={}&timestamp_before={}", at(1), at(30)),
            vec!["Booting DUT", "Voltage 100% low_"],
        ),
    ];
    for (q, expected) in cases {
        let mut got = f.names("logs", "message", &q).await;
        got.sort();
        assert_eq!(got, expected, "{q}");
    }
    assert_eq!(
        f.names("logs", "level", "sort_by=level&sort_order=asc")
            .await,
        ["INFO", "WARNING", "ERROR"]
    );
    for sort in ["created_at", "level", "run_id", "outcome"] {
        let asc = f
            .names("logs", "id", &format!("sort_by={sort}&sort_order=asc"))
            .await;
        let mut desc = f
            .names("logs", "id", &format!("sort_by={sort}&sort_order=desc"))
            .await;
        desc.reverse();
        assert_eq!(asc, desc, "{sort}");
    }
    let id = data[1]["id"].as_str().unwrap();
    let r = f
        .srv
        .get(&format!("/api/v2/logs/{id}"), &f.org.station_key)
        .await;
    assert_eq!(r.expect(200).clone(), data[1].clone());
    f.srv
        .get(&format!("/api/v2/logs/{id}"), &f.other.user_key)
        .await
        .expect(404);
    let r = f
        .srv
        .get(&format!("/api/v2/logs/{}", random_id()), &f.org.user_key)
        .await;
    r.expect(404);
    assert_eq!(r.message(), "Log not found");
    f.srv
        .get("/api/v2/logs?levels=LOUD", &f.org.user_key)
        .await
        .expect(400);
    // Other organizations see only their own lines.
    let theirs = f.srv.get("/api/v2/logs?limit=100", &f.other.user_key).await;
    assert_eq!(theirs.expect(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_official_client_reads_every_content_endpoint() {
    let f = fixture().await;
    let c = f.srv.client(&f.org.station_key);
    let phases = c
        .phases()
        .list()
        .procedure_id(&f.org.procedure_id)
        .send()
        .await
        .unwrap();
    assert_eq!(phases.data.len(), 4);
    let phase = c
        .phases()
        .get()
        .id(&phases.data[3].id)
        .send()
        .await
        .unwrap();
    assert_eq!(phase.measurements.len(), 5);
    let measurements = c
        .measurements()
        .list()
        .procedure_id(&f.org.procedure_id)
        .send()
        .await
        .unwrap();
    assert_eq!(measurements.data.len(), 8);
    for m in &measurements.data {
        let got = c.measurements().get().id(&m.id).send().await.unwrap();
        assert_eq!(got.id, m.id);
    }
    let logs = c.logs().list().send().await.unwrap();
    assert_eq!(logs.data.len(), 3);
    let log = c.logs().get().id(&logs.data[0].id).send().await.unwrap();
    assert_eq!(log.id, logs.data[0].id);
    let runs = c
        .runs()
        .list()
        .include_metadata(true)
        .include_sequences(true)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.data.len(), 2);
    let missing = c.phases().get().id(random_id()).send().await;
    assert!(
        matches!(missing, Err(tofupilot::Error::NotFound(_))),
        "{missing:?}"
    );
}
