//! The XML/JSON structured importers of `imports.structured` (IMPORTERS.md §3–§6):
//! WATS (WSJF), WSXF, ATML and TestStand XML. Hand-written fixtures under
//! `tests/fixtures/import/` cover every mapping row; each is imported through the real
//! server and read back with `runs.get`.

mod common;
mod legacy_support;

use common::*;
use legacy_support::{get_run, names, unlinked_procedure, upload};
use serde_json::{json, Value};

const WATS: &str = include_str!("fixtures/import/wats.json");
const WSXF: &str = include_str!("fixtures/import/wsxf.xml");
const ATML2: &str = include_str!("fixtures/import/atml-2.02.xml");
const ATML5: &str = include_str!("fixtures/import/atml-5.00.xml");
const ATML6: &str = include_str!("fixtures/import/atml-6.01.xml");
const TESTSTAND: &str = include_str!("fixtures/import/teststand.xml");

/// Imports `items` (`(upload id, importer)`) and returns the results.
async fn import(
    srv: &TestServer,
    key: &str,
    items: &[(&str, &str)],
    allow_duplicate: bool,
) -> Vec<Value> {
    let items: Vec<Value> = items
        .iter()
        .map(|(u, i)| json!({"upload_id": u, "importer": i}))
        .collect();
    let r = srv
        .post(
            "/api/v2/imports/structured",
            key,
            json!({"items": items, "allow_duplicate": allow_duplicate}),
        )
        .await;
    r.expect(200)["results"].as_array().unwrap().clone()
}

/// Uploads `text` and imports it alone; the one result.
async fn import_text(srv: &TestServer, key: &str, name: &str, text: &str, importer: &str) -> Value {
    let u = upload(srv, key, name, text.as_bytes().to_vec()).await;
    import(srv, key, &[(&u, importer)], false).await.remove(0)
}

fn ids(result: &Value) -> Vec<String> {
    result["ids"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn phase<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
}

fn meas<'a>(phase: &'a Value, name: &str) -> &'a Value {
    phase["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no measurement {name} in {}", phase["name"]))
}

/// `(operator, expected_value, expression)` of each validator.
fn validators(m: &Value) -> Vec<(Value, Value, Value)> {
    m["validators"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    (
                        v["operator"].clone(),
                        v["expected_value"].clone(),
                        v["expression"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every run of the organization (ids).
async fn all_runs(srv: &TestServer, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = "/api/v2/runs?limit=100".to_string();
    loop {
        let r = srv.get(&path, key).await;
        let page = r.expect(200);
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page["meta"]["next_cursor"].as_i64() {
            Some(c) if page["meta"]["has_more"] == json!(true) => {
                path = format!("/api/v2/runs?limit=100&cursor={c}")
            }
            _ => return ids,
        }
    }
}

/// A minimal WSJF report for serial `sn` (distinct bytes per serial).
fn wsjf(sn: &str, result: &str, process: &str) -> String {
    json!({
        "type": "T", "sn": sn, "pn": "MINI-1", "rev": "A", "result": result,
        "processName": process, "start": "2024-01-01T00:00:00Z",
        "root": {"stepType": "SequenceCall", "name": "MainSequence", "steps": [
            {"name": "Check", "stepType": "ET_NLT", "status": result, "totTime": 1,
             "numericMeas": [{"name": "v", "value": 1.0, "unit": "V", "compOp": "GELE",
                              "lowLimit": 0, "highLimit": 2, "status": result}]}]}
    })
    .to_string()
}

mod wats {
    use super::*;

    #[tokio::test]
    async fn report_maps_as_specified() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        // The sub-unit SUB-1 exists (imported first); CAB-1 has no serial.
        let sub = import_text(
            &srv,
            &org.user_key,
            "s.json",
            &wsjf("SUB-1", "P", "Sub"),
            "WATS",
        )
        .await;
        assert_eq!(sub["success"], json!(true), "{sub}");
        let res = import_text(&srv, &org.user_key, "r.json", WATS, "WATS").await;
        assert_eq!(res["success"], json!(true), "{res}");
        assert_eq!(res["already_imported"], json!(false));
        assert_eq!(ids(&res), [res["id"].as_str().unwrap()]);
        let warnings = res["warnings"].to_string();
        assert!(
            warnings.contains("CAB-1") && warnings.contains("LOT 7/A"),
            "{warnings}"
        );
        let run = get_run(&srv, &org.user_key, res["id"].as_str().unwrap()).await;

        assert_eq!(run["outcome"], "FAIL");
        assert_eq!(
            run["started_at"], "2024-03-04T09:00:00.000000Z",
            "startUTC wins"
        );
        assert_eq!(
            run["ended_at"], "2024-03-04T09:00:12.500000Z",
            "start + execTime"
        );
        assert_eq!(run["docstring"], "Nightly run");
        assert_eq!(run["unit"]["serial_number"], "WSJF-0001");
        assert_eq!(run["unit"]["part"]["number"], "PCBA-100");
        assert_eq!(run["unit"]["part"]["revision"]["number"], "B");
        assert_eq!(run["unit"]["batch"]["number"], "LOT_7_A");
        assert_eq!(run["procedure"]["name"], "Prüfung Endtest");
        assert_eq!(run["procedure"]["version"]["tag"], "3.1.0");
        assert_eq!(run["sub_units"][0]["serial_number"], "SUB-1");
        let meta = &run["metadata"];
        for (k, v) in [
            ("station", json!("Station-Ω")),
            ("location", json!("Trondheim")),
            ("purpose", json!("Production")),
            ("process_code", json!("10")),
            ("fixture_id", json!("FX-2")),
            ("test_socket", json!("1")),
            (
                "wats_report_id",
                json!("0f6c2a4e-1d2b-4c5d-9e8f-0a1b2c3d4e5f"),
            ),
            ("operator", json!("kari")),
            ("batch_serial", json!("LOT 7/A")),
            ("Firmware", json!("1.4.2")),
            ("Temperature", json!(23.5)),
            ("Line", json!("L3")),
        ] {
            assert_eq!(meta[k], v, "metadata {k}");
        }
        let logs: Vec<(&str, &str)> = run["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
            .collect();
        assert_eq!(
            logs,
            [
                ("ERROR", "Step failed (code 42)"),
                ("ERROR", "Broken check: Instrument timeout (code -17)")
            ]
        );

        // Leaf steps (nested sequence calls flattened), in time order then by name (the
        // order runs.get returns), statuses mapped.
        assert_eq!(
            names(&run["phases"]),
            [
                "Power on",
                "Rails",
                "LED grün",
                "Firmware",
                "Sweep",
                "Ask",
                "Broken check",
                "Flash",
                "Photo",
                "Skipped check"
            ]
        );
        for (name, outcome) in [
            ("Power on", "PASS"),      // D
            ("Rails", "FAIL"),         // F
            ("LED grün", "PASS"),      // P
            ("Skipped check", "SKIP"), // S
            ("Broken check", "ERROR"), // E
            ("Flash", "ERROR"),        // T
            ("Ask", "ERROR"),          // U
        ] {
            assert_eq!(phase(&run, name)["outcome"], outcome, "{name}");
        }
        let power_on = phase(&run, "Power on");
        assert_eq!(power_on["started_at"], "2024-03-04T09:00:01.000000Z");
        let rails = phase(&run, "Rails");
        assert_eq!(
            rails["started_at"], "2024-03-04T09:00:01.500000Z",
            "laid out after the previous step"
        );
        assert_eq!(rails["ended_at"], "2024-03-04T09:00:02.750000Z");
        assert_eq!(rails["docstring"], "in: Power tests\nRail check");

        // Limits both-sided, one-sided, none; units; non-finite value; repeated name.
        let v = meas(rails, "3V3");
        assert_eq!(
            (
                v["measured_value"].clone(),
                v["units"].clone(),
                v["outcome"].clone()
            ),
            (json!(3.31), json!("V"), json!("PASS"))
        );
        assert_eq!(
            validators(v),
            [(json!("range"), json!([3.2, 3.4]), json!("3.2 <= x <= 3.4"))]
        );
        let ripple = meas(rails, "Ripple");
        assert_eq!(ripple["outcome"], "FAIL");
        assert_eq!(
            validators(ripple),
            [(json!("<="), json!(0.05), json!("x <= 0.05"))]
        );
        let current = meas(rails, "Current");
        assert_eq!(
            (current["measured_value"].clone(), current["units"].clone()),
            (json!(0.42), json!("A"))
        );
        assert_eq!(current["validators"], Value::Null, "LOG has no limit");
        let nan = meas(rails, "Current #2");
        assert_eq!(nan["measured_value"], Value::Null);
        assert_eq!(nan["docstring"], "measured value: NaN");
        assert_eq!(validators(nan), [(json!(">"), json!(0), json!("x > 0"))]);
        let led = meas(phase(&run, "LED grün"), "LED");
        assert_eq!(
            (led["measured_value"].clone(), led["outcome"].clone()),
            (json!(true), json!("PASS"))
        );
        assert_eq!(
            validators(led),
            [(json!("=="), json!(true), json!("x == true"))]
        );
        let version = meas(phase(&run, "Firmware"), "Version");
        assert_eq!(version["measured_value"], "V1.4.2");
        assert_eq!(
            validators(version),
            [(
                json!("=="),
                json!("v1.4.2"),
                json!("x == 'v1.4.2' (ignore case)")
            )]
        );
        let gain = meas(phase(&run, "Sweep"), "Gain");
        assert_eq!(gain["data_series"][0]["data"], json!([100, 1000, 10000]));
        assert_eq!(gain["data_series"][0]["units"], "Hz");
        assert_eq!(gain["data_series"][1]["data"], json!([0.1, 0.2, -3]));
        assert_eq!(gain["data_series"][1]["units"], "dB");
        assert_eq!(
            meas(phase(&run, "Flash"), "exit_code")["measured_value"],
            json!(3)
        );
        assert_eq!(
            meas(phase(&run, "Ask"), "response")["measured_value"],
            json!("OK")
        );

        // The file is the report; the embedded file an attachment of its own.
        let files: Vec<(&str, bool, i64)> = run["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap(),
                    a["is_report"].as_bool().unwrap(),
                    a["size"].as_i64().unwrap(),
                )
            })
            .collect();
        assert!(
            files.contains(&("r.json", true, WATS.len() as i64)),
            "{files:?}"
        );
        assert!(files.contains(&("photo.txt", false, 11)), "{files:?}");
        let photo = run["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "photo.txt")
            .unwrap();
        let body = reqwest::get(photo["download_url"].as_str().unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hello world");
    }

    #[tokio::test]
    async fn every_result_code() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        let doc: Value = serde_json::from_str(WATS).unwrap();
        let mut uploads = Vec::new();
        let cases = [
            ("P", "PASS"),
            ("F", "FAIL"),
            ("E", "ERROR"),
            ("T", "ABORTED"),
            ("Passed", "PASS"),
            ("Terminated", "ABORTED"),
            ("", "FAIL"), // no verdict: derived from the failing steps
        ];
        for (i, (code, _)) in cases.iter().enumerate() {
            let mut d = doc.clone();
            d["sn"] = json!(format!("CODE-{i}"));
            d["result"] = json!(code);
            uploads.push(upload(&srv, &org.user_key, "c.json", d.to_string().into_bytes()).await);
        }
        let items: Vec<(&str, &str)> = uploads.iter().map(|u| (u.as_str(), "WATS")).collect();
        let results = import(&srv, &org.user_key, &items, false).await;
        for ((_, want), res) in cases.iter().zip(&results) {
            let run = get_run(&srv, &org.user_key, res["id"].as_str().unwrap()).await;
            assert_eq!(run["outcome"], *want, "{res}");
        }
    }

    #[tokio::test]
    async fn repair_reports_and_other_formats_are_refused() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        let uur = import_text(
            &srv,
            &org.user_key,
            "u.json",
            r#"{"type": "R", "sn": "X"}"#,
            "WATS",
        )
        .await;
        assert_eq!(uur["success"], json!(false));
        assert!(uur["error"].as_str().unwrap().contains("repair"), "{uur}");
        let htf = import_text(
            &srv,
            &org.user_key,
            "h.json",
            r#"{"phases": [], "start_time_millis": 1}"#,
            "WATS",
        )
        .await;
        assert!(
            htf["error"]
                .as_str()
                .unwrap()
                .contains("import it with importer OPENHTF"),
            "{htf}"
        );
        let xml = import_text(&srv, &org.user_key, "x.xml", WSXF, "WATS").await;
        assert!(xml["error"].as_str().unwrap().contains("WSXF"), "{xml}");
        let empty_serial =
            import_text(&srv, &org.user_key, "e.json", &wsjf("", "P", "X"), "WATS").await;
        assert_eq!(empty_serial["success"], json!(false));
        let e = empty_serial["error"].as_str().unwrap();
        assert!(
            e.starts_with("No run imported: 1 of 1 units failed")
                && e.contains("serial number is empty"),
            "{e}"
        );
        assert!(all_runs(&srv, &org.user_key).await.is_empty());
    }
}

mod wsxf {
    use super::*;

    #[tokio::test]
    async fn several_reports_and_a_repair() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        let res = import_text(&srv, &org.user_key, "w.xml", WSXF, "WSXF").await;
        assert_eq!(res["success"], json!(true), "{res}");
        let run_ids = ids(&res);
        assert_eq!(run_ids.len(), 2, "two UUT reports; the UUR is skipped");
        assert_eq!(res["id"].as_str().unwrap(), run_ids[0]);
        assert!(
            res["warnings"].to_string().contains("repair (UUR)"),
            "{res}"
        );
        assert!(
            res["warnings"].to_string().contains("RAD-SN-1"),
            "unknown sub-unit: {res}"
        );

        let run = get_run(&srv, &org.user_key, &run_ids[0]).await;
        assert_eq!(run["outcome"], "PASS");
        assert_eq!(run["started_at"], "2024-05-06T06:00:00.000000Z");
        assert_eq!(run["ended_at"], "2024-05-06T06:00:04.500000Z");
        assert_eq!(run["docstring"], "All good");
        assert_eq!(run["unit"]["serial_number"], "WSXF-0001");
        assert_eq!(run["unit"]["part"]["number"], "PCBA-200");
        assert_eq!(run["unit"]["part"]["revision"]["number"], "C");
        assert_eq!(run["unit"]["batch"]["number"], "B-17");
        assert_eq!(run["procedure"]["name"], "Funktionstest Ü");
        assert_eq!(run["procedure"]["version"]["tag"], "7.2");
        let meta = &run["metadata"];
        assert_eq!(meta["station"], "Rack-7");
        assert_eq!(meta["operator"], "ola");
        assert_eq!(meta["process_code"], "20");
        assert_eq!(meta["Firmware"], "2.0.1");
        assert_eq!(meta["Humidity"], json!(41.5));
        assert_eq!(meta["fixture_id"], "FX-9");
        assert_eq!(
            names(&run["phases"]),
            ["Supply", "Link", "Serial", "Spectrum"]
        );
        let supply = phase(&run, "Supply");
        assert_eq!(supply["docstring"], "Supply ok");
        assert_eq!(supply["ended_at"], "2024-05-06T06:00:01.500000Z");
        let vin = meas(supply, "Vin");
        assert_eq!(
            (vin["measured_value"].clone(), vin["units"].clone()),
            (json!(12.02), json!("V"))
        );
        assert_eq!(
            validators(vin),
            [(
                json!("range"),
                json!([11.5, 12.5]),
                json!("11.5 <= x <= 12.5")
            )]
        );
        let iin = meas(supply, "Iin");
        assert_eq!(iin["measured_value"], json!(31), "hex 0x1F");
        assert_eq!(validators(iin), [(json!("<"), json!(40), json!("x < 40"))]);
        let temp = meas(supply, "Temp");
        assert_eq!(
            (temp["units"].clone(), temp["validators"].clone()),
            (json!("°C"), Value::Null)
        );
        assert_eq!(phase(&run, "Link")["docstring"], "in: Radio");
        assert_eq!(
            meas(phase(&run, "Link"), "Link up")["measured_value"],
            json!(true)
        );
        let imei = meas(phase(&run, "Serial"), "IMEI");
        assert_eq!(
            validators(imei),
            [(json!("=="), json!("3569"), json!("x == '3569'"))]
        );
        let spectrum = meas(phase(&run, "Spectrum"), "Spectrum");
        assert_eq!(
            spectrum["data_series"][1]["data"],
            json!([-50, -40, -45, -60])
        );

        let second = get_run(&srv, &org.user_key, &run_ids[1]).await;
        assert_eq!(second["outcome"], "ABORTED", "Terminated");
        assert_eq!(
            second["procedure"]["name"], "WATS",
            "no process, no root sequence"
        );
        assert_eq!(
            second["started_at"], "2024-05-06T07:00:00.000000Z",
            "no offset: UTC"
        );
        assert_eq!(second["logs"][0]["message"], "Operator abort (code 5)");
        assert_eq!(phase(&second, "Supply")["outcome"], "FAIL");
        assert_eq!(
            second["attachments"],
            json!([]),
            "the file is the first run's report"
        );
        let trace = run["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "trace.bin")
            .expect("embedded attachment");
        assert_eq!(
            (trace["is_report"].clone(), trace["size"].clone()),
            (json!(false), json!(3))
        );
        assert_eq!(trace["content_type"], "application/octet-stream");
    }
}

/// A WSXF report for `sn` with part `pn` (an empty `pn` leaves the attribute out).
fn wsxf_report(sn: &str, pn: &str) -> String {
    let pn = if pn.is_empty() {
        String::new()
    } else {
        format!(" PN=\"{pn}\"")
    };
    format!(
        "<Report Type=\"UUT\" SN=\"{sn}\"{pn} Result=\"Passed\" Start=\"2024-01-01T00:00:00Z\">\
         <Step Name=\"S\" StepType=\"ET_NLT\" Status=\"Passed\" total_time=\"1\">\
         <NumericLimit Name=\"v\" NumericValue=\"1\" CompOperator=\"LOG\" Status=\"Passed\"/></Step></Report>"
    )
}

#[tokio::test]
async fn units_that_cannot_be_created_are_skipped_with_warnings() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let long = "L".repeat(61);
    let doc = format!(
        "<Reports xmlns=\"http://wats.virinco.com/schemas/WATS/Report/wsxf\">{}{}{}{}</Reports>",
        wsxf_report("OK-1", "P-1"),
        wsxf_report(&long, "P-1"),
        wsxf_report("NOPART-1", ""),
        wsxf_report("OK-2", "P-1"),
    );
    let res = import_text(&srv, &org.user_key, "mixed.xml", &doc, "WSXF").await;
    assert_eq!(res["success"], json!(true), "{res}");
    assert_eq!(ids(&res).len(), 2);
    let warnings: Vec<&str> = res["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("Report 2 (serial \"LLL") && warnings[0].contains("at most 60"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].starts_with("Report 3 (serial \"NOPART-1\") not imported")
            && warnings[1].contains("Part number is required"),
        "{}",
        warnings[1]
    );
    assert!(warnings[1].ends_with("or import it again with allow_duplicate."));
    let serials: Vec<String> = serials_of(&srv, &org.user_key, &ids(&res)).await;
    assert_eq!(serials, ["OK-1", "OK-2"]);
    assert_eq!(
        all_runs(&srv, &org.user_key).await.len(),
        2,
        "skipped units left nothing"
    );
    // A retry answers the runs that exist; the rest is not completed.
    let again = import_text(&srv, &org.user_key, "mixed.xml", &doc, "WSXF").await;
    assert_eq!(again["already_imported"], json!(true));
    assert_eq!(ids(&again), ids(&res));
}

async fn serials_of(srv: &TestServer, key: &str, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let run = get_run(srv, key, id).await;
        out.push(run["unit"]["serial_number"].as_str().unwrap().to_string());
    }
    out
}

mod atml {
    use super::*;

    /// A run's content without ids and creation times.
    fn content(run: &Value) -> Value {
        let mut r = run.clone();
        fn strip(v: &mut Value) {
            match v {
                Value::Object(o) => {
                    for k in ["id", "created_at", "download_url", "name_of_upload"] {
                        o.remove(k);
                    }
                    o.values_mut().for_each(strip);
                }
                Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        r.as_object_mut().unwrap().remove("attachments");
        strip(&mut r);
        r
    }

    #[tokio::test]
    async fn three_versions_map_alike() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        let mut runs = Vec::new();
        for (name, doc) in [("v2.xml", ATML2), ("v5.xml", ATML5), ("v6.xml", ATML6)] {
            let res = import_text(&srv, &org.user_key, name, doc, "ATML").await;
            assert_eq!(res["success"], json!(true), "{name}: {res}");
            let run_ids = ids(&res);
            assert_eq!(
                run_ids.len(),
                if name == "v6.xml" { 2 } else { 1 },
                "{name}"
            );
            runs.push(get_run(&srv, &org.user_key, &run_ids[0]).await);
            if name == "v6.xml" {
                let second = get_run(&srv, &org.user_key, &run_ids[1]).await;
                assert_eq!(
                    second["outcome"], "ABORTED",
                    "Aborted, qualifier Terminated"
                );
                assert_eq!(second["unit"]["serial_number"], "ATML-0002");
                assert_eq!(second["unit"]["part"]["number"], "BRD-300", "model name");
                assert_eq!(
                    meas(phase(&second, "MainSequence"), "Loose check")["measured_value"],
                    json!(2)
                );
            }
        }
        assert_eq!(content(&runs[0]), content(&runs[1]), "2.02 and 5.00");
        assert_eq!(content(&runs[0]), content(&runs[2]), "2.02 and 6.01");

        let run = &runs[0];
        assert_eq!(run["outcome"], "FAIL");
        assert_eq!(run["started_at"], "2024-06-01T12:00:00.000000Z");
        assert_eq!(run["ended_at"], "2024-06-01T12:00:10.500000Z");
        assert_eq!(run["unit"]["serial_number"], "ATML-0001");
        assert_eq!(
            run["unit"]["part"]["number"], "BRD-300",
            "type Part preferred"
        );
        assert_eq!(run["unit"]["part"]["revision"]["number"], "D");
        assert_eq!(run["unit"]["batch"]["number"], "BATCH-5");
        assert_eq!(run["procedure"]["name"], "Board");
        assert_eq!(run["procedure"]["version"]["tag"], "4.2");
        let meta = &run["metadata"];
        assert_eq!(meta["operator"], "Åsa Öberg");
        assert_eq!(meta["station"], "STATION-9");
        assert_eq!(meta["station_model"], "PXIe-1082");
        assert_eq!(meta["test_socket"], "2");
        assert_eq!(meta["atml_uuid"], "a1");
        assert_eq!(meta["Lot"], "L-55");
        assert_eq!(meta["Cal.Gain"], json!(1.02));
        // Time order, then name (as runs.get returns them).
        assert_eq!(
            names(&run["phases"]),
            ["MainSequence", "Power tests", "Cleanup", "Inner"]
        );
        for (name, outcome) in [
            ("MainSequence", "PASS"),
            ("Power tests", "FAIL"),
            ("Cleanup", "PASS"),
            ("Inner", "SKIP"),
        ] {
            assert_eq!(phase(run, name)["outcome"], outcome, "{name}");
        }
        let power = phase(run, "Power tests");
        assert_eq!(power["started_at"], "2024-06-01T12:00:01.000000Z");
        assert_eq!(power["ended_at"], "2024-06-01T12:00:04.000000Z");
        assert_eq!(power["docstring"], "Main");
        let loose = meas(phase(run, "MainSequence"), "Loose check");
        assert_eq!(
            (loose["measured_value"].clone(), loose["units"].clone()),
            (json!(1.5), json!("V"))
        );
        assert_eq!(
            validators(loose),
            [(json!(">="), json!(1), json!("x >= 1"))]
        );
        let v = meas(power, "Voltage");
        assert_eq!(
            validators(v),
            [(
                json!("range"),
                json!([4.75, 5.25]),
                json!("4.75 <= x <= 5.25")
            )]
        );
        assert_eq!(v["outcome"], "PASS", "from the Test outcome");
        let ch1 = meas(power, "Ch1");
        assert_eq!(
            (ch1["measured_value"].clone(), ch1["units"].clone()),
            (json!(16), json!("Ampere"))
        );
        assert_eq!(
            validators(ch1),
            [
                (json!(">"), json!(10), json!("x > 10")),
                (json!("<"), json!(20), json!("x < 20"))
            ]
        );
        let ch2 = meas(power, "Ch2");
        assert_eq!(ch2["outcome"], "FAIL");
        assert_eq!(
            validators(ch2),
            [(Value::Null, Value::Null, json!("x < 1 or x > 5"))]
        );
        assert!(
            power["measurements"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["name"] != "Step time"),
            "additional result without limits dropped"
        );
        let mode = meas(power, "Mode");
        assert_eq!(mode["measured_value"], "Normal");
        assert_eq!(
            validators(mode),
            [(
                json!("=="),
                json!("NORMAL"),
                json!("x == 'NORMAL' (ignore case)")
            )]
        );
        assert_eq!(meas(power, "Flag")["measured_value"], json!(true));
        let noise = meas(power, "Noise");
        assert_eq!(
            (
                noise["measured_value"].clone(),
                noise["units"].clone(),
                noise["outcome"].clone()
            ),
            (Value::Null, json!("dB"), json!("UNSET"))
        );
    }

    #[tokio::test]
    async fn other_roots_are_refused() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        let old = ATML2.replace(
            "http://www.ieee.org/ATML/2007/TestResults",
            "urn:IEEE-1636.1:2009:TestResults",
        );
        let res = import_text(&srv, &org.user_key, "old.xml", &old, "ATML").await;
        let e = res["error"].as_str().unwrap();
        assert!(
            e.contains("urn:IEEE-1636.1:2009:TestResults is not a supported TestResults version"),
            "{e}"
        );
        let res = import_text(&srv, &org.user_key, "w.json", WATS, "ATML").await;
        assert_eq!(
            res["error"],
            "Not an ATML TestResults file: it is JSON, not XML; it looks like WATS; import it with importer WATS"
        );
        for importer in ["ATML", "WSXF", "TESTSTAND"] {
            let u = upload(&srv, &org.user_key, "b.bin", vec![0x02, 0, 0, 0x0A, 2, 4]).await;
            let res = import(&srv, &org.user_key, &[(&u, importer)], false)
                .await
                .remove(0);
            let e = res["error"].as_str().unwrap();
            assert!(e.contains("STDF") && e.starts_with("Not a"), "{e}");
            let u = upload(&srv, &org.user_key, "z.bin", b"\x00\x01zz".to_vec()).await;
            let res = import(&srv, &org.user_key, &[(&u, importer)], false)
                .await
                .remove(0);
            let e = res["error"].as_str().unwrap();
            assert!(
                e.contains("not XML (it starts with byte 0x00 at offset 0)"),
                "{e}"
            );
        }
        let res = import_text(&srv, &org.user_key, "ts.xml", TESTSTAND, "ATML").await;
        assert!(
            res["error"]
                .as_str()
                .unwrap()
                .contains("import it with importer TESTSTAND"),
            "{res}"
        );
    }
}

mod teststand {
    use super::*;

    #[tokio::test]
    async fn uut_reports_map_as_specified() {
        let srv = TestServer::start().await;
        let org = srv.org("Lab").await;
        let res = import_text(&srv, &org.user_key, "t.xml", TESTSTAND, "TESTSTAND").await;
        assert_eq!(res["success"], json!(true), "{res}");
        let run_ids = ids(&res);
        assert_eq!(
            run_ids.len(),
            2,
            "two UUT reports; batch and unfinished reports skipped"
        );
        assert!(res["warnings"].to_string().contains("TS-0003"), "{res}");

        let run = get_run(&srv, &org.user_key, &run_ids[0]).await;
        assert_eq!(run["outcome"], "FAIL");
        assert_eq!(
            run["started_at"], "2024-07-15T14:30:05.250000Z",
            "local date and time as UTC"
        );
        assert_eq!(
            run["ended_at"], "2024-07-15T14:30:09.000000Z",
            "+ TotalTime"
        );
        assert_eq!(run["unit"]["serial_number"], "TS-0001");
        assert_eq!(run["unit"]["part"]["number"], "MB-10");
        assert_eq!(run["unit"]["batch"]["number"], "BATCH-9");
        assert_eq!(run["procedure"]["name"], "Étuve Test");
        assert_eq!(run["procedure"]["version"]["tag"], "2.0.1");
        let meta = &run["metadata"];
        assert_eq!(meta["station"], "TS-BENCH-4");
        assert_eq!(meta["operator"], "jürgen");
        assert_eq!(meta["test_socket"], "3");
        assert_eq!(meta["sequence"], "MainSequence");
        assert_eq!(meta["Shift"], "Nacht");
        assert_eq!(meta["Cal.Gain"], json!(1.5));
        assert_eq!(
            run["logs"][0]["message"],
            "Flash: Programmer not found (code -2001)"
        );
        assert_eq!(
            names(&run["phases"]),
            [
                "Init", "Voltage", "Leakage", "Rails", "Button", "Label", "Popup", "Flash",
                "Optional"
            ]
        );
        for (name, outcome) in [
            ("Init", "PASS"),
            ("Voltage", "PASS"),
            ("Rails", "FAIL"),
            ("Popup", "PASS"),
            ("Optional", "SKIP"),
            ("Flash", "ERROR"),
        ] {
            assert_eq!(phase(&run, name)["outcome"], outcome, "{name}");
        }
        let init = phase(&run, "Init");
        assert_eq!(
            init["started_at"], "2024-07-15T14:30:05.750000Z",
            "engine times relative to the root"
        );
        assert_eq!(init["docstring"], "Setup");
        let voltage = phase(&run, "Voltage");
        assert_eq!(voltage["docstring"], "Rail nominal");
        let v = meas(voltage, "Voltage");
        assert_eq!(
            (v["measured_value"].clone(), v["units"].clone()),
            (json!(3.3), json!("V"))
        );
        assert_eq!(
            validators(v),
            [(json!("range"), json!([3.1, 3.5]), json!("3.1 <= x <= 3.5"))]
        );
        let leak = meas(phase(&run, "Leakage"), "Leakage");
        assert_eq!(leak["measured_value"], json!(10), "hex");
        assert_eq!(
            validators(leak),
            [(json!("<"), json!(12), json!("x < 12"))],
            "LT limit in High"
        );
        let rails = phase(&run, "Rails");
        assert_eq!(meas(rails, "5V")["outcome"], "PASS");
        let v12 = meas(rails, "12V");
        assert_eq!(
            (v12["outcome"].clone(), v12["measured_value"].clone()),
            (json!("FAIL"), Value::Null)
        );
        assert_eq!(phase(&run, "Button")["docstring"], "in: Subsystem");
        assert_eq!(
            meas(phase(&run, "Button"), "Button")["measured_value"],
            json!(true)
        );
        let label = meas(phase(&run, "Label"), "Label");
        assert_eq!(
            validators(label),
            [(
                json!("=="),
                json!("acme"),
                json!("x == 'acme' (ignore case)")
            )]
        );
        assert_eq!(
            meas(phase(&run, "Popup"), "response")["measured_value"],
            "Yes"
        );
        assert_eq!(phase(&run, "Optional")["measurements"], json!([]));
        assert_eq!(
            meas(phase(&run, "Flash"), "exit_code")["measured_value"],
            json!(2)
        );

        let second = get_run(&srv, &org.user_key, &run_ids[1]).await;
        assert_eq!(second["outcome"], "ABORTED");
        assert_eq!(
            phase(&second, "Voltage")["outcome"],
            "ERROR",
            "Terminated step"
        );
        assert_eq!(
            second["metadata"].get("test_socket"),
            None,
            "-1 is no socket"
        );
    }
}

/// One fixture per format, with its importer.
fn fixtures() -> [(&'static str, &'static str, &'static str, usize); 4] {
    [
        ("wats.json", WATS, "WATS", 1),
        ("wsxf.xml", WSXF, "WSXF", 2),
        ("atml.xml", ATML6, "ATML", 2),
        ("teststand.xml", TESTSTAND, "TESTSTAND", 2),
    ]
}

#[tokio::test]
async fn duplicates_and_allow_duplicate() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let mut uploads = Vec::new();
    for (name, text, importer, _) in fixtures() {
        uploads.push((
            upload(&srv, &org.user_key, name, text.as_bytes().to_vec()).await,
            importer,
        ));
    }
    let items: Vec<(&str, &str)> = uploads.iter().map(|(u, i)| (u.as_str(), *i)).collect();
    let first = import(&srv, &org.user_key, &items, false).await;
    for (res, (_, _, importer, n)) in first.iter().zip(fixtures()) {
        assert_eq!(
            (res["success"].clone(), ids(res).len()),
            (json!(true), n),
            "{importer}: {res}"
        );
    }
    let total = all_runs(&srv, &org.user_key).await.len();
    assert_eq!(total, 7);

    // Again, and the same bytes as another upload: already imported, the same runs.
    let again = import(&srv, &org.user_key, &items, false).await;
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(b["already_imported"], json!(true), "{b}");
        assert_eq!(ids(a), ids(b));
        assert_eq!(
            b.get("warnings").map_or(0, |w| w.as_array().unwrap().len()),
            0
        );
    }
    let copy = upload(
        &srv,
        &org.user_key,
        "copy.xml",
        TESTSTAND.as_bytes().to_vec(),
    )
    .await;
    let res = import(&srv, &org.user_key, &[(&copy, "TESTSTAND")], false)
        .await
        .remove(0);
    assert_eq!(
        (res["already_imported"].clone(), ids(&res)),
        (json!(true), ids(&first[3]))
    );
    assert_eq!(all_runs(&srv, &org.user_key).await.len(), total);

    // allow_duplicate: new runs next to the old ones.
    let dup = import(&srv, &org.user_key, &items, true).await;
    for (a, b) in first.iter().zip(&dup) {
        assert_eq!(b["already_imported"], json!(false), "{b}");
        assert_eq!(ids(a).len(), ids(b).len());
        assert!(ids(b).iter().all(|id| !ids(a).contains(id)));
    }
    assert_eq!(all_runs(&srv, &org.user_key).await.len(), 2 * total);

    // All runs of a file deleted: it imports as new.
    for id in ids(&first[0]).iter().chain(&ids(&dup[0])) {
        srv.delete(&format!("/api/v2/runs?ids={id}"), &org.user_key)
            .await
            .expect(200);
    }
    let u = upload(&srv, &org.user_key, "again.json", WATS.as_bytes().to_vec()).await;
    let res = import(&srv, &org.user_key, &[(&u, "WATS")], false)
        .await
        .remove(0);
    assert_eq!(
        (res["success"].clone(), res["already_imported"].clone()),
        (json!(true), json!(false)),
        "{res}"
    );
}

#[tokio::test]
async fn station_keys_import_only_into_linked_procedures() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let linked = "Lab Functional"; // the seeded procedure linked to the station
    unlinked_procedure(&srv, &org, "Unlinked").await;
    let named = |name: &str| {
        [
            ("wats.json", WATS.replace("Prüfung Endtest", name), "WATS"),
            (
                "atml.xml",
                ATML2.replace(
                    r"C:\Seq\Board.seq</c:ModelName>",
                    &format!("{name}</c:ModelName>"),
                ),
                "ATML",
            ),
            (
                "ts.xml",
                TESTSTAND.replace(r"C:\Tests\Étuve Test.seq", &format!("{name}.seq")),
                "TESTSTAND",
            ),
        ]
    };
    for (file, text, importer) in named(linked) {
        let res = import_text(&srv, &org.station_key, file, &text, importer).await;
        assert_eq!(res["success"], json!(true), "{importer}: {res}");
        let run = get_run(&srv, &org.station_key, res["id"].as_str().unwrap()).await;
        assert_eq!(run["procedure"]["name"], linked);
        assert_eq!(run["created_by_station"]["id"], json!(org.station_id));
    }
    for name in ["Unlinked", "Brand new"] {
        for (file, text, importer) in named(name) {
            let res = import_text(&srv, &org.station_key, file, &text, importer).await;
            assert_eq!(res["success"], json!(false), "{importer}: {res}");
            assert_eq!(
                res["error"],
                format!("Station is not authorized to create runs for procedure \"{name}\"")
            );
        }
    }
    // A station never creates a procedure.
    let r = srv.get("/api/v2/procedures?limit=100", &org.user_key).await;
    assert!(!r.expect(200).to_string().contains("Brand new"));
    // A WSXF file whose second report names no procedure (`WATS`): nothing is imported.
    let res = import_text(
        &srv,
        &org.station_key,
        "w.xml",
        &WSXF.replace("Funktionstest Ü", linked),
        "WSXF",
    )
    .await;
    assert_eq!(res["success"], json!(false), "{res}");
    assert_eq!(
        all_runs(&srv, &org.user_key).await.len(),
        4,
        "1 WSJF, 1 ATML, 2 TestStand"
    );
}

#[tokio::test]
async fn another_organizations_upload_is_not_found() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    for (name, text, importer, _) in fixtures() {
        let foreign = upload(&srv, &other.user_key, name, text.as_bytes().to_vec()).await;
        let res = import(&srv, &org.user_key, &[(&foreign, importer)], false)
            .await
            .remove(0);
        assert_eq!(res["success"], json!(false));
        assert_eq!(res["error"], format!("Upload {foreign} not found"));
        assert!(res.get("id").is_none() && res.get("ids").is_none());
        // Its owner imports it.
        let res = import(&srv, &other.user_key, &[(&foreign, importer)], false)
            .await
            .remove(0);
        assert_eq!(res["success"], json!(true), "{res}");
    }
    assert!(all_runs(&srv, &org.user_key).await.is_empty());
}

#[tokio::test]
async fn a_hundred_items_with_bad_files() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let key = &org.user_key;
    let truncated_wsxf = &WSXF[..WSXF.len() / 2];
    let malformed_atml = ATML6.replace("</tr:Personnel>", "</tr:Persnl>");
    let bad: Vec<(&str, String, &str, &str)> = vec![
        (
            "trunc.xml",
            truncated_wsxf.to_string(),
            "WSXF",
            "Invalid WSXF file",
        ),
        (
            "bad.xml",
            malformed_atml.clone(),
            "ATML",
            "Invalid ATML file",
        ),
        (
            "label.xml",
            TESTSTAND.to_string(),
            "ATML",
            "import it with importer TESTSTAND",
        ),
        (
            "trunc.json",
            WATS[..300].to_string(),
            "WATS",
            "Invalid WATS WSJF file",
        ),
        (
            "noserial.json",
            wsjf("", "P", "Mini"),
            "WATS",
            "serial number is empty",
        ),
    ];
    let mut items: Vec<(String, &str)> = Vec::new();
    for (name, text, importer, _) in &bad {
        items.push((
            upload(&srv, key, name, text.clone().into_bytes()).await,
            importer,
        ));
    }
    for (name, text, importer, _) in fixtures() {
        items.push((
            upload(&srv, key, name, text.as_bytes().to_vec()).await,
            importer,
        ));
    }
    let mut good = 4; // runs expected from the fixtures: 1 + 2 + 2 + 2 = 7
    let mut expected_runs = 7;
    while items.len() < 100 {
        let sn = format!("BULK-{}", items.len());
        items.push((
            upload(&srv, key, "b.json", wsjf(&sn, "P", "Mini").into_bytes()).await,
            "WATS",
        ));
        good += 1;
        expected_runs += 1;
    }
    let refs: Vec<(&str, &str)> = items.iter().map(|(u, i)| (u.as_str(), *i)).collect();
    let results = import(&srv, key, &refs, false).await;
    assert_eq!(results.len(), 100);
    for (i, (_, _, _, want)) in bad.iter().enumerate() {
        let res = &results[i];
        assert_eq!(res["upload_id"], json!(items[i].0), "request order");
        assert_eq!(res["success"], json!(false), "{res}");
        let e = res["error"].as_str().unwrap();
        assert!(e.contains(want), "{e}");
        assert!(res.get("id").is_none());
    }
    // Syntax errors say where.
    assert!(
        results[0]["error"].as_str().unwrap().contains("line "),
        "{}",
        results[0]
    );
    assert!(
        results[1]["error"].as_str().unwrap().contains("line "),
        "{}",
        results[1]
    );
    assert!(
        results[3]["error"].as_str().unwrap().contains("line "),
        "{}",
        results[3]
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r["success"] == json!(true))
            .count(),
        good
    );
    let created: usize = results.iter().map(|r| ids(r).len()).sum();
    assert_eq!(created, expected_runs);
    assert_eq!(
        all_runs(&srv, key).await.len(),
        expected_runs,
        "nothing half-imported"
    );

    // The fixed files import on retry; the good ones answer already imported.
    let fixed = [
        (
            upload(&srv, key, "trunc.xml", WSXF.as_bytes().to_vec()).await,
            "WSXF",
        ),
        (
            upload(&srv, key, "bad.xml", ATML5.as_bytes().to_vec()).await,
            "ATML",
        ),
        (items[2].0.clone(), "TESTSTAND"),
        (
            upload(
                &srv,
                key,
                "noserial.json",
                wsjf("FIXED-1", "P", "Mini").into_bytes(),
            )
            .await,
            "WATS",
        ),
    ];
    let refs: Vec<(&str, &str)> = fixed.iter().map(|(u, i)| (u.as_str(), *i)).collect();
    let retry = import(&srv, key, &refs, false).await;
    assert!(
        retry.iter().all(|r| r["success"] == json!(true)),
        "{retry:?}"
    );
    assert_eq!(
        retry[0]["already_imported"],
        json!(true),
        "same bytes as the good WSXF item"
    );
    assert_eq!(retry[1]["already_imported"], json!(false));
    assert_eq!(
        retry[2]["already_imported"],
        json!(true),
        "same bytes as the good TestStand item"
    );
    assert_eq!(retry[3]["already_imported"], json!(false));
}

/// Random byte mutations of every format's sample: the parser never panics, and
/// through the server the answer is 200 with each item either fully imported (its runs
/// readable) or failed with nothing created.
mod mutations {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::{Config, TestRunner};
    use tofulab::import::resultmap::ParsedFile;

    fn cases() -> u32 {
        std::env::var("TOFULAB_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32)
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Truncate(Index),
        Insert(Index, &'static str),
        Flip(Index, u8),
        Delete(Index, usize),
        /// Every occurrence of a value of the samples replaced (keeps the syntax).
        Replace(&'static str, &'static str),
    }

    const LONG: &str = "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL";

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            any::<Index>().prop_map(Edit::Truncate),
            (
                any::<Index>(),
                prop::sample::select(vec![
                    "<",
                    ">",
                    "</",
                    "/>",
                    "\"",
                    "'",
                    "&",
                    "&amp;",
                    "&#0;",
                    "<![CDATA[",
                    "<!--",
                    "<?x?>",
                    "xmlns:c=\"urn:x\"",
                    "c:",
                    "{",
                    "}",
                    "[",
                    "]",
                    ",",
                    "NaN",
                    "0x",
                    "1e999",
                    "\u{feff}",
                    "\u{0}",
                    "é",
                    "<Step>",
                    "<Value ID=\"[0]\">",
                ])
            )
                .prop_map(|(i, s)| Edit::Insert(i, s)),
            (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
            (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
            prop::sample::select(vec![
                ("WSJF-0001", ""),
                ("WSXF-0001", ""),
                ("WSXF-0002", LONG),
                ("ATML-0001", ""),
                ("ATML-0002", LONG),
                ("TS-0001", ""),
                ("TS-0002", LONG),
                ("PCBA-100", ""),
                ("PCBA-200", ""),
                ("BRD-300", ""),
                ("MB-10", ""),
                ("3.3", "NaN"),
                ("4.98", "-INF"),
                ("GELE", "XYZ"),
                ("Passed", "Bogus"),
                ("Failed", ""),
                ("2024-", "20x4-"),
                ("Board", LONG),
                ("MainSequence", ""),
                ("B-17", "B 17/x"),
            ])
            .prop_map(|(a, b)| Edit::Replace(a, b)),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
        for e in edits {
            match e {
                Edit::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
                Edit::Insert(i, s) => {
                    let at = i.index(bytes.len() + 1);
                    bytes.splice(at..at, s.bytes());
                }
                Edit::Flip(i, b) if !bytes.is_empty() => {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
                Edit::Delete(i, n) if !bytes.is_empty() => {
                    let at = i.index(bytes.len());
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
                Edit::Replace(from, to) => {
                    let text = String::from_utf8_lossy(bytes).replace(from, to);
                    *bytes = text.into_bytes();
                }
                _ => {}
            }
        }
    }

    type Parse = fn(&[u8]) -> Result<ParsedFile, tofulab::import::resultmap::FormatError>;

    fn parser(importer: &str) -> Parse {
        match importer {
            "WATS" => tofulab::import::wats::parse,
            "WSXF" => tofulab::import::wsxf::parse,
            "ATML" => tofulab::import::atml::parse,
            _ => tofulab::import::teststand::parse,
        }
    }

    #[test]
    fn parsers_never_panic_on_mutated_samples() {
        for (_, text, importer, _) in fixtures() {
            let parse = parser(importer);
            let mut runner = TestRunner::new(Config {
                cases: cases() * 8,
                failure_persistence: None,
                ..Config::default()
            });
            runner
                .run(&prop::collection::vec(edit(), 1..6), |edits| {
                    let mut bytes = text.as_bytes().to_vec();
                    apply(&mut bytes, &edits);
                    if let Ok(file) = parse(&bytes) {
                        prop_assert!(!file.units.is_empty(), "a parsed file has a unit");
                    }
                    Ok(())
                })
                .unwrap();
        }
    }

    #[test]
    fn mutated_files_never_give_a_5xx_or_a_partial_run() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let srv = rt.block_on(TestServer::start());
        let org = rt.block_on(srv.org("Lab"));
        for (_, text, importer, _) in fixtures() {
            let mut runner = TestRunner::new(Config {
                cases: cases(),
                failure_persistence: None,
                max_shrink_iters: 64,
                ..Config::default()
            });
            runner
                .run(&prop::collection::vec(edit(), 1..4), |edits| {
                    let mut bytes = text.as_bytes().to_vec();
                    apply(&mut bytes, &edits);
                    if bytes.is_empty() {
                        // An upload has at least one byte.
                        bytes.push(b' ');
                    }
                    rt.block_on(async {
                        let before = all_runs(&srv, &org.user_key).await.len();
                        let u = upload(&srv, &org.user_key, "m", bytes).await;
                        let r = srv
                            .post(
                                "/api/v2/imports/structured",
                                &org.user_key,
                                json!({"items": [{"upload_id": u, "importer": importer}],
                                       "allow_duplicate": true}),
                            )
                            .await;
                        prop_assert_eq!(r.status, 200, "{}", r.text);
                        let res = &r.json["results"][0];
                        let after = all_runs(&srv, &org.user_key).await.len();
                        if res["success"] == json!(true) {
                            prop_assert_eq!(after - before, ids(res).len());
                            for id in ids(res) {
                                get_run(&srv, &org.user_key, &id).await;
                            }
                        } else {
                            prop_assert_eq!(after, before, "{}", res);
                            prop_assert!(res["error"].as_str().is_some_and(|e| !e.is_empty()));
                            prop_assert!(res["error"] != json!("Internal server error"));
                        }
                        Ok(())
                    })
                })
                .unwrap();
        }
    }
}
