//! v2 imports (`imports.structured`, `imports.tabular`) and deployments: the OpenHTF
//! mapping of BEHAVIOR.md §11.4 against the contract's sample record and a record written
//! by a real OpenHTF run, lenient parsing, duplicates, CSV mappings, permissions and
//! organization scoping.

mod common;
mod legacy_support;

use common::*;
use legacy_support::*;
use serde_json::{json, Value};

async fn structured(srv: &TestServer, key: &str, items: Value) -> Resp {
    srv.post("/api/v2/imports/structured", key, json!({ "items": items }))
        .await
}

fn item(upload: &str) -> Value {
    json!({"upload_id": upload, "importer": "OPENHTF"})
}

fn phase<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
}

fn measurement<'a>(phase: &'a Value, name: &str) -> &'a Value {
    phase["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no measurement {name}"))
}

fn validator(m: &Value) -> (Value, Value, Value, Value) {
    let v = &m["validators"][0];
    (
        v["operator"].clone(),
        v["expected_value"].clone(),
        v["expression"].clone(),
        v["outcome"].clone(),
    )
}

#[tokio::test]
async fn sample_record_maps_as_specified() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let ident = identifier(&srv, &org, &org.procedure_id).await;
    let u = upload(
        &srv,
        &org.user_key,
        "sample.json",
        record(SAMPLE, "SN-0001", Some(&ident.to_lowercase()), Some("PN-1")),
    )
    .await;
    let r = structured(&srv, &org.user_key, json!([item(&u)])).await;
    let body = r.expect(200);
    let res = &body["results"][0];
    assert_eq!(res["upload_id"], json!(u));
    assert_eq!(res["success"], json!(true));
    assert_eq!(res["already_imported"], json!(false));
    assert_eq!(res["ids"], json!([res["id"]]));
    assert!(res.get("error").is_none());
    let run = get_run(&srv, &org.user_key, res["id"].as_str().unwrap()).await;

    assert_eq!(run["outcome"], "PASS");
    assert_eq!(run["started_at"], "2024-01-02T03:04:05.000000Z");
    assert_eq!(run["ended_at"], "2024-01-02T03:04:05.002000Z");
    assert_eq!(run["unit"]["serial_number"], "SN-0001");
    assert_eq!(run["unit"]["part"]["number"], "PN-1");
    assert_eq!(run["procedure"]["id"], json!(org.procedure_id));
    assert_eq!(names(&run["phases"]), ["trigger_phase", "check_power"]);
    let trigger = phase(&run, "trigger_phase");
    assert_eq!(trigger["outcome"], "PASS");
    assert_eq!(trigger["measurements"], json!([]));
    let power = phase(&run, "check_power");
    assert_eq!(power["started_at"], "2024-01-02T03:04:05.001000Z");
    let names: Vec<&str> = power["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["voltage", "firmware"], "record order");
    let v = measurement(power, "voltage");
    assert_eq!(
        (v["outcome"].as_str(), v["units"].as_str()),
        (Some("PASS"), Some("V"))
    );
    assert_eq!(v["measured_value"], json!(3.3));
    assert_eq!(
        validator(v),
        (
            json!("range"),
            json!([3.1, 3.5]),
            json!("3.1 <= x <= 3.5"),
            json!("PASS")
        )
    );
    let fw = measurement(power, "firmware");
    assert_eq!(fw["units"], Value::Null);
    assert_eq!(
        validator(fw),
        (
            json!("matches"),
            json!("^1\\.2\\.3$"),
            json!("'x' matches /^1\\.2\\.3$/"),
            json!("PASS")
        )
    );

    let logs = run["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 14, "every record exactly once");
    let powered = logs.iter().find(|l| l["message"] == "powered").unwrap();
    assert_eq!(powered["level"], "INFO");
    assert_eq!(powered["source_file"], "extract.py");
    assert_eq!(powered["line_number"], json!(1));
    assert_eq!(powered["timestamp"], "2024-01-02T03:04:05.001000Z");
    assert_eq!(logs.iter().filter(|l| l["level"] == "DEBUG").count(), 13);

    let report = &run["attachments"][0];
    assert_eq!(
        (report["id"].as_str(), report["is_report"].as_bool()),
        (Some(u.as_str()), Some(true))
    );
}

#[tokio::test]
async fn real_openhtf_record_maps_as_specified() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let u = upload(
        &srv,
        &org.station_key,
        "generated.json",
        record(
            GENERATED,
            "SN-GEN-1",
            Some(&org.procedure_id),
            Some("PN-GEN"),
        ),
    )
    .await;
    let r = structured(&srv, &org.station_key, json!([item(&u)])).await;
    let res = &r.expect(200)["results"][0];
    assert_eq!(res["success"], json!(true), "{}", r.text);
    let run = get_run(&srv, &org.station_key, res["id"].as_str().unwrap()).await;
    assert_eq!(run["created_by_station"]["id"], json!(org.station_id));

    assert_eq!(run["outcome"], "ERROR");
    // `sweep` and `explode` started in the same millisecond: ordered by name.
    assert_eq!(
        names(&run["phases"]),
        ["trigger_phase", "check_power", "explode", "sweep"]
    );
    let power = phase(&run, "check_power");
    assert_eq!(
        power["outcome"], "FAIL",
        "an unset measurement fails the phase"
    );
    assert_eq!(phase(&run, "explode")["outcome"], "ERROR");

    let check = |name: &str, op: Value, expected: Value| {
        let m = measurement(power, name);
        let (o, e, _, _) = validator(m);
        assert_eq!((o, e), (op, expected), "{name}: {m}");
    };
    check("ok", json!("=="), json!(true));
    check("count", json!("=="), json!(3));
    check("lower", json!(">="), json!(1));
    check("upper", json!("<="), json!(5));
    check("marginal", json!("range"), json!([0, 10]));
    assert_eq!(measurement(power, "ok")["measured_value"], json!(true));
    assert_eq!(measurement(power, "count")["measured_value"], json!(3));
    let voltage = measurement(power, "voltage");
    assert_eq!(voltage["docstring"], "Rail voltage");
    let unset = measurement(power, "never_set");
    assert_eq!(unset["outcome"], "UNSET");
    assert_eq!(unset["measured_value"], Value::Null);
    assert_eq!(unset["validators"], Value::Null);

    let sweep = phase(&run, "sweep");
    let iv = measurement(sweep, "iv");
    assert_eq!(iv["units"], "\u{2126}", "OpenHTF's ohm sign");
    assert_eq!(
        iv["measured_value"],
        json!([[0, 0.0, 0], [1, 0.1, 10], [2, 0.2, 20]])
    );
    let temp = measurement(sweep, "temp");
    assert_eq!(
        (temp["outcome"].as_str(), temp["units"].as_str()),
        (Some("FAIL"), Some("°C"))
    );
    assert_eq!(
        validator(temp).3,
        json!("FAIL"),
        "validator outcome = measurement outcome"
    );

    let logs = run["logs"].as_array().unwrap();
    for level in ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] {
        assert!(logs.iter().any(|l| l["level"] == level), "no {level} log");
    }
    let noisy = logs.iter().find(|l| l["message"] == "rail noisy").unwrap();
    assert_eq!(noisy["level"], "WARNING");
    assert!(noisy["line_number"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn nan_and_infinity_tokens_are_imported() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let text = String::from_utf8(record(SAMPLE, "SN-NAN", Some(&org.procedure_id), Some("P")))
        .unwrap()
        .replace("\"measured_value\": 3.3", "\"measured_value\": NaN")
        .replace(
            "\"start_time_millis\": 1704164645001",
            "\"start_time_millis\": Infinity",
        )
        .replace("\"lineno\": 1", "\"lineno\": -Infinity");
    assert!(text.contains("NaN") && text.contains("Infinity"));
    let u = upload(&srv, &org.user_key, "nan.json", text.into_bytes()).await;
    let r = srv
        .post(
            "/api/v1/import",
            &org.user_key,
            json!({"upload_id": u, "importer": "OPENHTF"}),
        )
        .await;
    let id = v1_ok(&r)["id"].as_str().unwrap().to_string();
    let run = get_run(&srv, &org.user_key, &id).await;
    let power = phase(&run, "check_power");
    assert_eq!(
        measurement(power, "voltage")["measured_value"],
        json!("NaN")
    );
    // A start time that is not a number: the phase starts when the run does.
    assert_eq!(power["started_at"], run["started_at"]);
    assert!(run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["line_number"] == json!(0)));
}

#[tokio::test]
async fn duplicates_and_allow_duplicate() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let bytes = record(SAMPLE, "SN-DUP", Some(&org.procedure_id), Some("P"));
    let u1 = upload(&srv, &org.user_key, "a.json", bytes.clone()).await;
    let first = structured(&srv, &org.user_key, json!([item(&u1)])).await;
    let first_id = first.expect(200)["results"][0]["id"].clone();

    // The same upload, and another upload with the same content: already imported.
    let u2 = upload(&srv, &org.user_key, "b.json", bytes.clone()).await;
    let r = structured(&srv, &org.user_key, json!([item(&u1), item(&u2)])).await;
    for res in r.expect(200)["results"].as_array().unwrap() {
        assert_eq!(res["success"], json!(true));
        assert_eq!(res["already_imported"], json!(true));
        assert_eq!(res["id"], first_id);
    }

    // allow_duplicate: new runs; the second upload becomes the new run's report, the
    // first stays with the first run.
    let r = srv
        .post(
            "/api/v2/imports/structured",
            &org.user_key,
            json!({"items": [item(&u1), item(&u2)], "allow_duplicate": true}),
        )
        .await;
    let results = r.expect(200)["results"].as_array().unwrap().clone();
    let ids: Vec<&Value> = results.iter().map(|r| &r["id"]).collect();
    assert!(ids.iter().all(|id| **id != first_id), "{results:?}");
    assert_ne!(ids[0], ids[1]);
    assert!(results
        .iter()
        .all(|r| r["already_imported"] == json!(false)));
    let first_run = get_run(&srv, &org.user_key, first_id.as_str().unwrap()).await;
    assert_eq!(first_run["attachments"][0]["id"], json!(u1));
    let reimported = get_run(&srv, &org.user_key, ids[0].as_str().unwrap()).await;
    assert_eq!(reimported["attachments"], json!([]));
    let with_u2 = get_run(&srv, &org.user_key, ids[1].as_str().unwrap()).await;
    assert_eq!(with_u2["attachments"][0]["id"], json!(u2));
    assert_eq!(with_u2["attachments"][0]["is_report"], json!(true));
}

#[tokio::test]
async fn structured_validation_and_per_item_failures() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;

    // Not an importer at all, no items, too many.
    let r = structured(
        &srv,
        &org.user_key,
        json!([{"upload_id": random_id(), "importer": "CSV"}]),
    )
    .await;
    r.expect(400);
    assert!(r.error_text().contains("importer"));
    let r = structured(&srv, &org.user_key, json!([])).await;
    r.expect(400);
    assert!(r.error_text().contains("items"));
    let many: Vec<Value> = (0..101).map(|_| item(&random_id())).collect();
    structured(&srv, &org.user_key, json!(many))
        .await
        .expect(400);

    // Per item: a good file next to an unknown upload, another organization's upload, a
    // malformed id, a file that is not a record and a record without part number.
    let good = upload(
        &srv,
        &org.user_key,
        "g.json",
        record(SAMPLE, "G1", Some(&org.procedure_id), Some("P")),
    )
    .await;
    let foreign = upload(
        &srv,
        &other.user_key,
        "f.json",
        record(SAMPLE, "F1", Some(&other.procedure_id), Some("P")),
    )
    .await;
    let junk = upload(&srv, &org.user_key, "j.json", b"not json".to_vec()).await;
    let nopart = upload(
        &srv,
        &org.user_key,
        "n.json",
        record(SAMPLE, "N1", Some(&org.procedure_id), None),
    )
    .await;
    let r = structured(
        &srv,
        &org.user_key,
        json!([
            item(&random_id()),
            item(&good),
            item(&foreign),
            item("up-1"),
            item(&junk),
            item(&nopart)
        ]),
    )
    .await;
    let results = r.expect(200)["results"].as_array().unwrap().clone();
    let ok: Vec<bool> = results
        .iter()
        .map(|r| r["success"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, [false, true, false, false, false, false]);
    assert_eq!(results[3]["upload_id"], "up-1");
    let err = |i: usize| results[i]["error"].as_str().unwrap().to_lowercase();
    assert!(err(0).contains("not found"), "{}", err(0));
    assert!(err(2).contains("not found"), "{}", err(2));
    assert!(err(4).contains("openhtf"), "{}", err(4));
    assert!(err(5).contains("part number"), "{}", err(5));
    for r in &results {
        if r["success"] == json!(false) {
            assert!(r.get("id").is_none());
        }
    }
    // The other organization's file was not touched.
    let r = structured(&srv, &other.user_key, json!([item(&foreign)])).await;
    assert_eq!(r.expect(200)["results"][0]["success"], json!(true));
}

#[tokio::test]
async fn station_keys_import_only_into_linked_procedures() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let unlinked = unlinked_procedure(&srv, &org, "Unlinked").await;
    let u = upload(
        &srv,
        &org.station_key,
        "r.json",
        record(SAMPLE, "S1", Some(&unlinked), Some("P")),
    )
    .await;
    let r = structured(&srv, &org.station_key, json!([item(&u)])).await;
    let res = &r.expect(200)["results"][0];
    assert_eq!(res["success"], json!(false));
    assert!(res["error"].as_str().unwrap().contains("not authorized"));
    // The failed import released the file: a user key can import it.
    let r = structured(&srv, &org.user_key, json!([item(&u)])).await;
    assert_eq!(r.expect(200)["results"][0]["success"], json!(true));
}

const CSV: &str = "Serial,Result,Start,End,Step,Voltage,Current,Operator Note\n\
    SN-CSV-1,ok,2026-01-02T03:04:05Z,2026-01-02T03:05:00Z,power,3.3,0.2,first\n\
    SN-CSV-1,,,,thermal,3.4,0.9,\n";

fn tabular_body(upload: &str, procedure: &str, mapping: Value) -> Value {
    json!({"upload_id": upload, "procedure_id": procedure, "mapping": mapping})
}

fn wide_mapping() -> Value {
    json!({
        "fields": {
            "serial_number": {"column": "Serial"},
            "outcome": {"column": "Result", "valueMap": {"ok": "PASS", "nok": "FAIL"}},
            "started_at": {"column": "Start"},
            "ended_at": {"column": "End"},
            "part_number": {"value": "PCB-9"},
            "batch_number": {"value": "LOT-3"},
            "docstring": {"column": "Operator Note"},
        },
        "measurements": {"layout": "wide", "columns": [
            {"column": "Voltage", "name": "voltage", "units": "V", "lowerLimit": 3.0, "upperLimit": 3.6},
            {"column": "Current", "units": "A", "upperLimit": 0.5},
        ]},
        "phases": {"nameColumn": "Step"},
        "metadata": [{"key": "line", "value": "L2"}],
        "unitMetadata": [{"key": "note", "column": "Operator Note"}],
    })
}

#[tokio::test]
async fn tabular_wide_layout_with_phases_and_metadata() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let u = upload(&srv, &org.user_key, "results.csv", CSV.as_bytes().to_vec()).await;
    let r = srv
        .post(
            "/api/v2/imports/tabular",
            &org.user_key,
            tabular_body(&u, &org.procedure_id, wide_mapping()),
        )
        .await;
    let body = r.expect(200).clone();
    assert_eq!(body["file_import_id"], json!(u));
    let run = get_run(&srv, &org.user_key, body["id"].as_str().unwrap()).await;
    assert_eq!(run["outcome"], "PASS");
    assert_eq!(run["docstring"], "first");
    assert_eq!(run["duration"], "PT55S");
    assert_eq!(run["unit"]["part"]["number"], "PCB-9");
    assert_eq!(run["unit"]["batch"]["number"], "LOT-3");
    assert_eq!(run["metadata"]["line"], "L2");
    assert_eq!(names(&run["phases"]), ["power", "thermal"]);
    let power = phase(&run, "power");
    assert_eq!(power["outcome"], "PASS");
    assert_eq!(
        measurement(power, "voltage")["validators"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(measurement(power, "Current")["units"], "A");
    let thermal = phase(&run, "thermal");
    assert_eq!(thermal["outcome"], "FAIL");
    assert_eq!(measurement(thermal, "Current")["outcome"], "FAIL");
    assert_eq!(run["attachments"][0]["is_report"], json!(true));
    // Unit metadata is upserted onto the unit.
    let (md,): (Option<sqlx::types::Json<Value>>,) = srv
        .db
        .read()
        .fetch_one(tofulab::db::Sql::new(
            "SELECT metadata FROM units WHERE serial_key = 'sn-csv-1'",
        ))
        .await
        .unwrap();
    assert_eq!(md.unwrap().0["note"], "first");
}

#[tokio::test]
async fn tabular_long_layout() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let csv = "sn;name;value;unit;low;high;verdict;stage\n\
        L-1;voltage;3.3;V;3;3.6;;power\n\
        L-1;label;ABC;;;;pass;power\n\
        L-1;temp;80;C;;60;;thermal\n";
    let u = upload(&srv, &org.user_key, "long.csv", csv.as_bytes().to_vec()).await;
    let mapping = json!({
        "fields": {
            "serial_number": {"column": "sn"},
            "outcome": {"value": "FAIL"},
            "started_at": {"value": "2026-01-02 03:04:05"},
            "ended_at": {"value": "2026-01-02T03:04:06Z"},
            "part_number": {"value": "P-L"},
        },
        "measurements": {"layout": "long", "nameColumn": "name", "valueColumn": "value",
            "unitsColumn": "unit", "lowerColumn": "low", "upperColumn": "high",
            "outcomeColumn": "verdict", "phaseColumn": "stage"},
    });
    let r = srv
        .post(
            "/api/v2/imports/tabular",
            &org.station_key,
            tabular_body(&u, &org.procedure_id, mapping),
        )
        .await;
    let run = get_run(&srv, &org.user_key, r.expect(200)["id"].as_str().unwrap()).await;
    assert_eq!(run["outcome"], "FAIL");
    assert_eq!(run["started_at"], "2026-01-02T03:04:05.000000Z");
    assert_eq!(names(&run["phases"]), ["power", "thermal"]);
    let power = phase(&run, "power");
    assert_eq!(measurement(power, "voltage")["measured_value"], json!(3.3));
    assert_eq!(measurement(power, "label")["measured_value"], "ABC");
    let temp = measurement(phase(&run, "thermal"), "temp");
    assert_eq!(
        (temp["outcome"].as_str(), temp["measured_value"].as_i64()),
        (Some("FAIL"), Some(80))
    );
    assert_eq!(phase(&run, "thermal")["outcome"], "FAIL");
}

#[tokio::test]
async fn tabular_errors_name_the_column_and_row() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let u = upload(&srv, &org.user_key, "results.csv", CSV.as_bytes().to_vec()).await;
    let post = |body: Value, key: String| {
        let srv = &srv;
        async move { srv.post("/api/v2/imports/tabular", &key, body).await }
    };

    // A column the file does not have.
    let mut m = wide_mapping();
    m["measurements"]["columns"][0]["column"] = json!("Volts");
    let r = post(tabular_body(&u, &org.procedure_id, m), org.user_key.clone()).await;
    r.expect(400);
    assert_eq!(
        r.json["issues"][0]["path"],
        json!(["mapping", "measurements", "columns", 0, "column"])
    );
    assert!(
        r.error_text().contains("`volts`") && r.error_text().contains("serial, result"),
        "{}",
        r.text
    );

    // A value the outcome cannot take.
    let mut m = wide_mapping();
    m["fields"]["outcome"] = json!({"column": "Step"});
    let r = post(tabular_body(&u, &org.procedure_id, m), org.user_key.clone()).await;
    r.expect(400);
    assert!(
        r.error_text().contains("power") && r.error_text().contains("row 1"),
        "{}",
        r.text
    );

    // A time that is not one.
    let mut m = wide_mapping();
    m["fields"]["ended_at"] = json!({"value": "tomorrow"});
    let r = post(tabular_body(&u, &org.procedure_id, m), org.user_key.clone()).await;
    r.expect(400);
    assert!(r.error_text().contains("tomorrow"));

    // Unknown layout; no mapping; a template; both.
    let mut m = wide_mapping();
    m["measurements"]["layout"] = json!("diagonal");
    post(tabular_body(&u, &org.procedure_id, m), org.user_key.clone())
        .await
        .expect(400);
    let r = post(
        json!({"upload_id": u, "procedure_id": org.procedure_id}),
        org.user_key.clone(),
    )
    .await;
    r.expect(400);
    let r = post(
        json!({"upload_id": u, "procedure_id": org.procedure_id, "template_id": "t1"}),
        org.user_key.clone(),
    )
    .await;
    r.expect(404);
    assert!(r.error_text().contains("template"));

    // Unknown procedure (404), unlinked for a station (403), malformed ids (400).
    post(
        tabular_body(&u, &random_id(), wide_mapping()),
        org.user_key.clone(),
    )
    .await
    .expect(404);
    let unlinked = unlinked_procedure(&srv, &org, "Unlinked").await;
    post(
        tabular_body(&u, &unlinked, wide_mapping()),
        org.station_key.clone(),
    )
    .await
    .expect(403);
    post(
        tabular_body("nope", &org.procedure_id, wide_mapping()),
        org.user_key.clone(),
    )
    .await
    .expect(400);
    post(
        tabular_body(&u, "nope", wide_mapping()),
        org.user_key.clone(),
    )
    .await
    .expect(400);

    // Another organization's upload and procedure are unknown.
    post(
        tabular_body(&u, &other.procedure_id, wide_mapping()),
        other.user_key.clone(),
    )
    .await
    .expect(404);
    post(
        tabular_body(&u, &org.procedure_id, wide_mapping()),
        other.user_key.clone(),
    )
    .await
    .expect(404);

    // None of the failures created a run.
    let r = srv
        .get("/api/v2/runs?serial_numbers=SN-CSV-1", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["data"], json!([]));
}

#[tokio::test]
async fn deployments_are_an_empty_page_and_404() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for key in [&org.user_key, &org.station_key] {
        let r = srv
            .get(
                "/api/v2/deployments?limit=10&environments=production&pushed=true",
                key,
            )
            .await;
        assert_eq!(
            r.expect(200),
            &json!({"data": [], "meta": {"has_more": false, "next_cursor": null}})
        );
        let r = srv
            .get(&format!("/api/v2/deployments/{}", random_id()), key)
            .await;
        r.expect(404);
        assert!(r.message().contains("Deployment not found"));
    }
    srv.get("/api/v2/deployments?limit=0", &org.user_key)
        .await
        .expect(400);
    srv.get(
        "/api/v2/deployments?deployed_after=yesterday",
        &org.user_key,
    )
    .await
    .expect(400);

    // The official client reads both answers.
    let c = srv.client(&org.user_key);
    let page = c.deployments().list().send().await.unwrap();
    assert!(page.data.is_empty() && !page.meta.has_more);
    let got = c.deployments().get().id(random_id()).send().await;
    assert!(matches!(got, Err(tofupilot::Error::NotFound(_))), "{got:?}");
}
