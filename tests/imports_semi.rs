//! `imports.structured` with the STDF and ATDF importers (IMPORTERS.md §1, §7, §8):
//! files written by the test's own STDF writer (both byte orders) and their ATDF twins,
//! imported over HTTP and read back with `runs.get`. Covers the part-to-run mapping,
//! outcomes, limits, units, non-ASCII names, several parts per file, duplicates,
//! permissions, organization scoping, many items at once, bad files, an import whose
//! client disconnects, and random byte mutations.

mod common;
mod legacy_support;
mod semi_support;

use common::*;
use legacy_support::get_run;
use semi_support::*;
use serde_json::{json, Value};

fn measurement<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["measurements"].as_array().unwrap())
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no measurement {name} in {run}"))
}

fn validators(m: &Value) -> Vec<(Value, Value)> {
    m["validators"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| (v["operator"].clone(), v["expected_value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// One part with every kind of limit, units, a non-ASCII name and a functional test.
fn one_part() -> Part {
    Part {
        x: 3,
        y: -4,
        hard_bin: 1,
        soft_bin: 12,
        ..Part::new(
            "DIE-001",
            0x00,
            vec![
                ptr(100, 3.3, "VDD", 3.1, 3.5, "V"),
                Test::Ptr {
                    num: 101,
                    test_flg: 0,
                    parm_flg: 0x40,
                    result: 0.25,
                    text: Some("Leakage".into()),
                    // No high limit: low only, inclusive.
                    limits: Some((0x80, 0.1, 0.0, "uA".into())),
                },
                Test::Ptr {
                    num: 102,
                    test_flg: 0,
                    parm_flg: 0x00,
                    result: 25.5,
                    text: Some("Température Ω".into()),
                    limits: Some((0xC0, 0.0, 0.0, "°C".into())),
                },
                Test::Ptr {
                    num: 103,
                    test_flg: 0,
                    parm_flg: 0x00,
                    result: 1.0,
                    text: Some("Strict".into()),
                    limits: Some((0x00, 0.5, 1.5, "A".into())),
                },
                Test::Ftr {
                    num: 200,
                    test_flg: 0,
                    text: "Scan".into(),
                },
            ],
        )
    }
}

#[tokio::test]
async fn one_part_maps_as_specified() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let mut lot = Lot::new("Wafer Sort");
    lot.lot = "LOT 42/A".into();
    let res = import_one(
        &srv,
        &org.user_key,
        "STDF",
        stdf(false, &lot, &[one_part()]),
    )
    .await;
    assert_eq!(res["success"], json!(true), "{res}");
    assert_eq!(res["already_imported"], json!(false));
    assert_eq!(ids(&res), [res["id"].as_str().unwrap()]);
    let warnings = res["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{res}");
    assert!(warnings[0].as_str().unwrap().contains("LOT_42_A"), "{res}");

    let run = get_run(&srv, &org.user_key, res["id"].as_str().unwrap()).await;
    assert_eq!(run["outcome"], "PASS");
    assert_eq!(run["unit"]["serial_number"], "DIE-001");
    assert_eq!(run["unit"]["part"]["number"], "PN-SEMI");
    assert_eq!(run["unit"]["part"]["revision"]["number"], "REV-B");
    assert_eq!(run["procedure"]["name"], "Wafer Sort");
    assert_eq!(run["procedure"]["version"]["tag"], "1.2", "{run}");
    assert_eq!(run["unit"]["batch"]["number"], "LOT_42_A", "{run}");
    assert_eq!(run["started_at"], "2024-01-02T03:04:05.000000Z");
    assert_eq!(run["ended_at"], "2024-01-02T03:04:06.500000Z");
    let meta = &run["metadata"];
    assert_eq!(meta["lot_id"], "LOT 42/A", "{run}");
    assert_eq!(meta["x"], 3);
    assert_eq!(meta["y"], -4);
    assert_eq!(meta["hard_bin"], 1);
    assert_eq!(meta["soft_bin"], 12);
    assert_eq!(meta["station"], "tester-7");
    assert_eq!(meta["operator"], "alice");
    assert_eq!(meta["lot_disposition"], "A");

    let phases = run["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 1);
    assert_eq!(phases[0]["name"], "Wafer Sort");
    assert_eq!(phases[0]["outcome"], "PASS");

    let vdd = measurement(&run, "VDD");
    assert_eq!(vdd["measured_value"], json!(3.3));
    assert_eq!(vdd["units"], "V");
    assert_eq!(vdd["outcome"], "PASS");
    assert_eq!(vdd["docstring"], "test_num=100");
    assert_eq!(validators(vdd), [(json!("range"), json!([3.1, 3.5]))]);

    let leak = measurement(&run, "Leakage");
    assert_eq!(leak["units"], "uA");
    assert_eq!(validators(leak), [(json!(">="), json!(0.1))]);

    let temp = measurement(&run, "Température Ω");
    assert_eq!(temp["units"], "°C");
    assert_eq!(temp["measured_value"], json!(25.5));
    assert!(validators(temp).is_empty(), "{temp}");

    let strict = measurement(&run, "Strict");
    assert_eq!(
        validators(strict),
        [(json!(">"), json!(0.5)), (json!("<"), json!(1.5))]
    );

    let scan = measurement(&run, "Scan");
    assert_eq!(scan["measured_value"], json!(true));
    assert_eq!(scan["outcome"], "PASS");
    assert_eq!(validators(scan), [(json!("=="), json!(true))]);
}

#[tokio::test]
async fn many_parts_on_interleaved_sites() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let lot = Lot::new("Final Test");
    // Two sites tested in parallel: PIR 1, PIR 2, tests of both, PRR 1, PRR 2.
    let mut s = Stdf::new(true);
    s.mir(&lot);
    let mut parts = Vec::new();
    for pair in 0..3 {
        let a = Part {
            site: 1,
            x: pair,
            y: 0,
            ..Part::new("", 0, vec![ptr(1, 1.0 + pair as f32, "I1", 0.0, 9.0, "mA")])
        };
        let b = Part {
            site: 2,
            ..Part::new(&format!("B-{pair}"), 0x08, vec![])
        };
        s.pir(1);
        s.pir(2);
        // The first PTR of test 1 carries its statics; later ones are short records.
        let short = Test::Ptr {
            num: 1,
            test_flg: 0x80,
            parm_flg: 0xC0,
            result: 20.0,
            text: None,
            limits: None,
        };
        s.test(1, &a.tests[0]);
        s.test(2, if pair == 0 { &a.tests[0] } else { &short });
        s.test(
            2,
            &Test::Ptr {
                num: 7,
                test_flg: 0,
                parm_flg: 0,
                result: 5.0,
                text: Some(String::new()),
                limits: None,
            },
        );
        s.prr(&a);
        s.prr(&b);
        parts.push(a);
        parts.push(b);
    }
    s.tsr(7, "Named by TSR");
    s.mrr();
    let res = import_one(&srv, &org.user_key, "STDF", s.out).await;
    assert_eq!(res["success"], json!(true), "{res}");
    let ids = ids(&res);
    assert_eq!(ids.len(), 6);
    assert_eq!(res["id"], json!(ids[0]));
    let mut serials = Vec::new();
    for id in &ids {
        let run = get_run(&srv, &org.user_key, id).await;
        serials.push(run["unit"]["serial_number"].as_str().unwrap().to_string());
    }
    assert_eq!(
        serials,
        [
            "LOT42-W-X0Y0",
            "B-0",
            "LOT42-W-X1Y0",
            "B-1",
            "LOT42-W-X2Y0",
            "B-2"
        ]
    );
    let b1 = get_run(&srv, &org.user_key, &ids[3]).await;
    assert_eq!(b1["outcome"], "FAIL");
    assert_eq!(b1["metadata"]["site"], 2);
    let inherited = measurement(&b1, "I1");
    assert_eq!(inherited["units"], "mA");
    assert_eq!(inherited["measured_value"], json!(20.0));
    assert_eq!(inherited["outcome"], "FAIL");
    assert_eq!(validators(inherited), [(json!("range"), json!([0.0, 9.0]))]);
    let named = measurement(&b1, "Named by TSR");
    assert_eq!(named["measured_value"], json!(5.0));
}

#[tokio::test]
async fn outcomes_follow_the_flags_and_bins() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let fail_test = Test::Ptr {
        num: 1,
        test_flg: 0x80,
        parm_flg: 0xC0,
        result: 9.0,
        text: Some("T".into()),
        limits: Some((0, 0.0, 1.0, "V".into())),
    };
    let unset_test = Test::Ptr {
        num: 2,
        test_flg: 0x40,
        parm_flg: 0,
        result: 1.0,
        text: Some("U".into()),
        limits: Some((0xC0, 0.0, 0.0, String::new())),
    };
    let alternate = Test::Ptr {
        num: 3,
        test_flg: 0x80,
        parm_flg: 0x20,
        result: 1.0,
        text: Some("Alt".into()),
        limits: Some((0xC0, 0.0, 0.0, String::new())),
    };
    let aborted_test = Test::Ptr {
        num: 4,
        test_flg: 0x20 | 0x02,
        parm_flg: 0,
        result: 0.0,
        text: Some("Aborted".into()),
        limits: Some((0xC0, 0.0, 0.0, String::new())),
    };
    let fn_fail = Test::Ftr {
        num: 5,
        test_flg: 0x80,
        text: "Func".into(),
    };
    let parts = [
        Part::new("P-PASS", 0x00, vec![unset_test.clone(), alternate.clone()]),
        Part::new("P-FAIL", 0x08, vec![fail_test.clone(), fn_fail.clone()]),
        Part::new("P-ABORT", 0x04, vec![aborted_test]),
        Part {
            hard_bin: 5,
            ..Part::new("P-BIN-F", 0x10, vec![])
        },
        Part {
            hard_bin: 6,
            ..Part::new("P-BIN-P", 0x10, vec![fail_test.clone()])
        },
        Part {
            hard_bin: 9,
            ..Part::new("P-DERIVED", 0x10, vec![fail_test])
        },
    ];
    let mut s = Stdf::new(false);
    s.mir(&Lot::new("Outcomes"));
    for p in &parts {
        s.part(p);
    }
    s.hbr(5, b'F', "Open");
    s.hbr(6, b'P', "Good");
    s.mrr();
    let res = import_one(&srv, &org.user_key, "STDF", s.out).await;
    assert_eq!(res["success"], json!(true), "{res}");
    let ids = ids(&res);
    let mut runs = Vec::new();
    for id in &ids {
        runs.push(get_run(&srv, &org.user_key, id).await);
    }
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["PASS", "FAIL", "ABORTED", "FAIL", "PASS", "FAIL"]
    );
    assert_eq!(measurement(&runs[0], "U")["outcome"], "UNSET");
    assert_eq!(measurement(&runs[0], "Alt")["outcome"], "PASS");
    assert_eq!(runs[0]["phases"][0]["outcome"], "PASS");
    assert_eq!(measurement(&runs[1], "T")["outcome"], "FAIL");
    assert_eq!(
        measurement(&runs[1], "Func")["measured_value"],
        json!(false)
    );
    assert_eq!(runs[1]["phases"][0]["outcome"], "FAIL");
    let aborted = measurement(&runs[2], "Aborted");
    assert_eq!(aborted["measured_value"], Value::Null);
    assert_eq!(runs[2]["phases"][0]["outcome"], "ERROR");
    assert_eq!(runs[3]["metadata"]["hard_bin_name"], "Open");
    assert_eq!(runs[4]["metadata"]["hard_bin_name"], "Good");
}

#[tokio::test]
async fn big_and_little_endian_and_atdf_twins_give_equal_runs() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let lot = Lot::new("Twins");
    let mut second = one_part();
    second.id = "DIE-002".into();
    second.flg = 0x08;
    let parts = [one_part(), second];
    let mut contents = Vec::new();
    for (importer, bytes) in [
        ("STDF", stdf(false, &lot, &parts)),
        ("STDF", stdf(true, &lot, &parts)),
        ("ATDF", atdf(&lot, &parts)),
    ] {
        let u = upload_file(&srv, &org.user_key, "twin", bytes).await;
        let res = import(&srv, &org.user_key, json!([item(&u, importer)]), true)
            .await
            .remove(0);
        assert_eq!(res["success"], json!(true), "{importer}: {res}");
        let mut runs = Vec::new();
        for id in ids(&res) {
            let run = get_run(&srv, &org.user_key, &id).await;
            runs.push(json!({
                "serial": run["unit"]["serial_number"],
                "outcome": run["outcome"],
                "started_at": run["started_at"],
                "ended_at": run["ended_at"],
                "batch": run["unit"]["batch"]["number"],
                "procedure": run["procedure"]["name"],
                "phases": run["phases"].as_array().unwrap().iter().map(|p| json!({
                    "name": p["name"],
                    "outcome": p["outcome"],
                    "measurements": p["measurements"].as_array().unwrap().iter().map(|m| json!({
                        "name": m["name"],
                        "value": m["measured_value"],
                        "units": m["units"],
                        "outcome": m["outcome"],
                        "validators": validators(m).iter().map(|(o, e)| json!([o, e])).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }));
        }
        contents.push(runs);
    }
    assert_eq!(contents[0].len(), 2);
    assert_eq!(contents[0], contents[1], "little vs big endian");
    assert_eq!(contents[0], contents[2], "STDF vs ATDF");
}

#[tokio::test]
async fn duplicates_and_allow_duplicate() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let bytes = stdf(
        false,
        &Lot::new("Dup"),
        &[one_part(), Part::new("DIE-9", 0, vec![])],
    );
    let u = upload_file(&srv, &org.user_key, "a.stdf", bytes.clone()).await;
    let first = import(&srv, &org.user_key, json!([item(&u, "STDF")]), false)
        .await
        .remove(0);
    assert_eq!(first["already_imported"], json!(false));
    // The same bytes again, through another upload and even as another importer.
    let u2 = upload_file(&srv, &org.user_key, "b.stdf", bytes).await;
    let again = import(
        &srv,
        &org.user_key,
        json!([item(&u2, "STDF"), item(&u, "ATDF")]),
        false,
    )
    .await;
    for r in &again {
        assert_eq!(r["success"], json!(true), "{r}");
        assert_eq!(r["already_imported"], json!(true));
        assert_eq!(r["ids"], first["ids"]);
        assert!(r["warnings"].as_array().unwrap().is_empty());
    }
    let dup = import(&srv, &org.user_key, json!([item(&u, "STDF")]), true)
        .await
        .remove(0);
    assert_eq!(dup["success"], json!(true), "{dup}");
    assert_eq!(dup["already_imported"], json!(false));
    let (a, b) = (ids(&first), ids(&dup));
    assert_eq!(b.len(), 2);
    assert!(a.iter().all(|id| !b.contains(id)));
    // Deleting every run of the first import makes the file new again... unless the
    // duplicate's runs survive: then those are the answer.
    let query: Vec<String> = a.iter().map(|id| format!("ids={id}")).collect();
    srv.delete(&format!("/api/v2/runs?{}", query.join("&")), &org.user_key)
        .await
        .expect(200);
    let after = import(&srv, &org.user_key, json!([item(&u2, "STDF")]), false)
        .await
        .remove(0);
    assert_eq!(after["already_imported"], json!(true), "{after}");
    assert_eq!(ids(&after), b);
}

#[tokio::test]
async fn station_keys_import_only_into_linked_procedures() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let linked = stdf(false, &Lot::new("fab functional"), &[one_part()]);
    let unlinked = stdf(false, &Lot::new("Somewhere Else"), &[one_part()]);
    let a = upload_file(&srv, &org.station_key, "a.stdf", linked).await;
    let b = upload_file(&srv, &org.station_key, "b.stdf", unlinked).await;
    let before = run_count(&srv).await;
    let res = import(
        &srv,
        &org.station_key,
        json!([item(&b, "STDF"), item(&a, "STDF")]),
        false,
    )
    .await;
    assert_eq!(res[0]["success"], json!(false));
    assert_eq!(
        res[0]["error"],
        "Station is not authorized to create runs for procedure \"Somewhere Else\""
    );
    assert_eq!(res[1]["success"], json!(true), "{}", res[1]);
    let run = get_run(&srv, &org.user_key, res[1]["id"].as_str().unwrap()).await;
    assert_eq!(run["procedure"]["id"], json!(org.procedure_id));
    assert_eq!(run_count(&srv).await, before + 1);
    // No procedure was created for the unlinked name.
    let r = srv
        .get("/api/v2/procedures?search_query=Somewhere", &org.user_key)
        .await;
    assert_eq!(
        r.expect(200)["data"].as_array().unwrap().len(),
        0,
        "{}",
        r.text
    );
}

#[tokio::test]
async fn another_organizations_upload_is_not_found() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let other = srv.org("Other").await;
    let u = upload_file(
        &srv,
        &other.user_key,
        "x.stdf",
        stdf(false, &Lot::new("X"), &[one_part()]),
    )
    .await;
    let res = import(
        &srv,
        &org.user_key,
        json!([item(&u, "STDF"), item("nope", "ATDF")]),
        false,
    )
    .await;
    assert_eq!(res[0]["success"], json!(false));
    assert_eq!(res[0]["error"], format!("Upload {u} not found"));
    assert_eq!(res[1]["error"], "Upload nope not found");
    assert_eq!(run_count(&srv).await, 0);
}

#[tokio::test]
async fn a_hundred_items_with_some_bad() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let mut items = Vec::new();
    let mut bad = Vec::new();
    for i in 0..100 {
        let lot = Lot::new("Hundred");
        let good = stdf(
            i % 2 == 0,
            &lot,
            &[Part::new(
                &format!("H-{i}"),
                0,
                vec![ptr(1, i as f32, "V", 0.0, 200.0, "V")],
            )],
        );
        let bytes = match i {
            7 => good[..good.len() - 30].to_vec(),
            33 => b"not a datalog".to_vec(),
            50 => atdf(&lot, &[Part::new("H-50", 0, vec![])]),
            _ => good,
        };
        if [7, 33, 50].contains(&i) {
            bad.push(i);
        }
        let u = upload_file(&srv, &org.user_key, &format!("f{i}.stdf"), bytes).await;
        items.push(item(&u, "STDF"));
    }
    let res = import(&srv, &org.user_key, Value::Array(items), false).await;
    assert_eq!(res.len(), 100);
    for (i, r) in res.iter().enumerate() {
        if bad.contains(&i) {
            assert_eq!(r["success"], json!(false), "item {i}: {r}");
        } else {
            assert_eq!(r["success"], json!(true), "item {i}: {r}");
        }
    }
    assert!(
        res[7]["error"].as_str().unwrap().contains("truncated"),
        "{}",
        res[7]
    );
    assert!(res[33]["error"]
        .as_str()
        .unwrap()
        .starts_with("Not an STDF file"));
    assert!(res[50]["error"]
        .as_str()
        .unwrap()
        .contains("import it with importer ATDF"));
    assert_eq!(run_count(&srv).await, 97);
}

#[tokio::test]
async fn truncated_and_malformed_files() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let lot = Lot::new("Broken");
    let parts: Vec<Part> = (0..3)
        .map(|i| Part::new(&format!("T-{i}"), 0, vec![ptr(1, 1.0, "V", 0.0, 2.0, "V")]))
        .collect();
    let whole = stdf(false, &lot, &parts);

    // Cut inside the third part's PRR: the two complete parts import, with a warning.
    let mut s = Stdf::new(false);
    s.mir(&lot);
    s.part(&parts[0]);
    s.part(&parts[1]);
    s.pir(1);
    s.test(1, &parts[2].tests[0]);
    let cut_at = s.out.len() + 6;
    s.prr(&parts[2]);
    let truncated = s.out[..cut_at].to_vec();
    let res = import_one(&srv, &org.user_key, "STDF", truncated).await;
    assert_eq!(res["success"], json!(true), "{res}");
    assert_eq!(ids(&res).len(), 2);
    let warnings: Vec<&str> = res["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("truncated")
            && w.contains("PRR")
            && w.contains(&format!("byte {}", cut_at - 6))),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("site 1") && w.contains("PRR")),
        "{warnings:?}"
    );

    // A text length pointing past its record: invalid, nothing created.
    let before = run_count(&srv).await;
    let mut s = Stdf::new(false);
    s.mir(&lot);
    s.part(&parts[0]);
    s.raw(15, 10, &[1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 40, b'a']);
    s.part(&parts[1]);
    let res = import_one(&srv, &org.user_key, "STDF", s.out).await;
    assert_eq!(res["success"], json!(false));
    let error = res["error"].as_str().unwrap();
    assert!(
        error.starts_with("Invalid STDF file: record 6 (PTR 15,10) at byte 160"),
        "{error}"
    );
    assert!(error.contains("TEST_TXT"), "{error}");
    assert_eq!(run_count(&srv).await, before);

    // Other versions, other formats, empty and cut-short files.
    let mut v3 = whole.clone();
    v3[5] = 3;
    for (importer, bytes, expected) in [
        ("STDF", v3, "STDF version 3 is not supported (V4 only)"),
        (
            "STDF",
            whole[..5].to_vec(),
            "Invalid STDF file: the file ends inside its FAR record",
        ),
        (
            "STDF",
            whole[..40].to_vec(),
            "The file is truncated (record 2 (MIR 1,10) at byte 6",
        ),
        (
            "ATDF",
            whole.clone(),
            "Not an ATDF file: it looks like STDF",
        ),
        (
            "ATDF",
            b"FAR:A|4|2|U\nPTR:1|1|1|abc|P\n".to_vec(),
            "Invalid ATDF file: line 2 (PTR): field RESULT is not a number: `abc`",
        ),
        (
            "STDF",
            stdf(false, &lot, &[]),
            "No test result found in file",
        ),
    ] {
        let res = import_one(&srv, &org.user_key, importer, bytes).await;
        assert_eq!(res["success"], json!(false), "{res}");
        let error = res["error"].as_str().unwrap();
        assert!(error.starts_with(expected), "{error} / {expected}");
    }
    assert_eq!(run_count(&srv).await, before);

    // Every part skipped: no run, the first reason in the error.
    let long = "S".repeat(61);
    let res = import_one(
        &srv,
        &org.user_key,
        "STDF",
        stdf(false, &lot, &[Part::new(&long, 0, vec![])]),
    )
    .await;
    assert_eq!(res["success"], json!(false));
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .starts_with("No run imported: 1 of 1 units failed; first: Part 1"),
        "{res}"
    );

    // A bad part among good ones is skipped with a warning.
    let mixed = stdf(
        false,
        &lot,
        &[
            parts[0].clone(),
            Part::new(&long, 0, vec![]),
            parts[1].clone(),
        ],
    );
    let u = upload_file(&srv, &org.user_key, "mixed.stdf", mixed).await;
    let res = import(&srv, &org.user_key, json!([item(&u, "STDF")]), false)
        .await
        .remove(0);
    assert_eq!(ids(&res).len(), 2, "{res}");
    assert!(
        res["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("Part 2 (serial"),
        "{res}"
    );

    // Retry after fixing: the good file imports.
    let res = import_one(&srv, &org.user_key, "STDF", whole).await;
    assert_eq!(res["success"], json!(true), "{res}");
    assert_eq!(ids(&res).len(), 3);
}

#[tokio::test]
async fn a_cancelled_import_leaves_nothing_claimed() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let parts: Vec<Part> = (0..400)
        .map(|i| {
            Part::new(
                &format!("C-{i}"),
                0,
                (0..40)
                    .map(|t| ptr(t, t as f32, "V", 0.0, 100.0, "V"))
                    .collect(),
            )
        })
        .collect();
    let bytes = stdf(false, &Lot::new("Cancel"), &parts);
    let u = upload_file(&srv, &org.user_key, "big.stdf", bytes).await;
    // The client gives up (drops the connection) long before the import can end.
    let cut = srv
        .raw(reqwest::Method::POST, "/api/v2/imports/structured")
        .bearer_auth(&org.user_key)
        .json(&json!({"items": [item(&u, "STDF")]}))
        .timeout(std::time::Duration::from_millis(50))
        .send()
        .await;
    assert!(cut.is_err(), "the request should have been cut: {cut:?}");
    // Importing again works: it waits for the first import and answers with its runs,
    // or imports the file itself.
    let res = import(&srv, &org.user_key, json!([item(&u, "STDF")]), false)
        .await
        .remove(0);
    assert_eq!(res["success"], json!(true), "{res}");
    assert_eq!(ids(&res).len(), 400);
    assert_eq!(run_count(&srv).await, 400);
    let last = get_run(&srv, &org.user_key, ids(&res).last().unwrap()).await;
    assert_eq!(last["unit"]["serial_number"], "C-399");
    assert_eq!(
        last["phases"][0]["measurements"].as_array().unwrap().len(),
        40
    );
}

// ---------------------------------------------------------------------------------------
// Random byte mutations (proptest): never a 5xx, a panic, or a run the answer does not
// account for; a failed item leaves no run behind.

mod mutations {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::{Config, TestRunner};
    use tofulab::import::semi::Records;

    fn cases() -> u32 {
        std::env::var("TOFULAB_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32)
    }

    fn runner(cases: u32) -> TestRunner {
        TestRunner::new(Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 64,
            ..Config::default()
        })
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Flip(Index, u8),
        Truncate(Index),
        Insert(Index, Vec<u8>),
        Delete(Index, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            4 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
            1 => any::<Index>().prop_map(Edit::Truncate),
            1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
                .prop_map(|(i, b)| Edit::Insert(i, b)),
            1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        ]
    }

    fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        for e in edits {
            match e {
                Edit::Flip(i, b) if !bytes.is_empty() => {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
                Edit::Flip(..) => {}
                Edit::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
                Edit::Insert(i, b) => {
                    let at = i.index(bytes.len() + 1);
                    bytes.splice(at..at, b.iter().copied());
                }
                Edit::Delete(i, n) => {
                    let at = i.index(bytes.len() + 1);
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        bytes
    }

    fn sample_parts() -> Vec<Part> {
        let mut second = one_part();
        second.id = "DIE-002".into();
        second.site = 2;
        vec![one_part(), second, Part::new("", 0x10, vec![])]
    }

    /// Reads every record (both readers) without panicking, whatever the bytes.
    fn read_all(bytes: &[u8]) {
        if let Ok(mut r) = tofulab::import::stdf::Reader::new(bytes) {
            while let Ok(Some(_)) = r.next_record() {}
        }
        if let Ok(mut r) = tofulab::import::atdf::Reader::new(bytes) {
            while let Ok(Some(_)) = r.next_record() {}
        }
    }

    #[test]
    fn readers_never_panic_on_mutated_files() {
        let lot = Lot::new("Mutations");
        let samples = [
            stdf(false, &lot, &sample_parts()),
            stdf(true, &lot, &sample_parts()),
            atdf(&lot, &sample_parts()[..1]),
        ];
        runner(cases() * 16)
            .run(
                &(0..samples.len(), prop::collection::vec(edit(), 1..6)),
                |(which, edits)| {
                    read_all(&apply(samples[which].clone(), &edits));
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn mutated_files_import_whole_or_not_at_all() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (srv, org) = rt.block_on(async {
            let srv = TestServer::start().await;
            let org = srv.org("Fab").await;
            (srv, org)
        });
        let lot = Lot::new("Mutations");
        let samples = [
            ("STDF", stdf(false, &lot, &sample_parts())),
            ("STDF", stdf(true, &lot, &sample_parts())),
            ("ATDF", atdf(&lot, &sample_parts()[..1])),
        ];
        runner(cases())
            .run(
                &(0..samples.len(), prop::collection::vec(edit(), 1..4)),
                |(which, edits)| {
                    let (importer, sample) = &samples[which];
                    let bytes = apply(sample.clone(), &edits);
                    rt.block_on(async {
                        if bytes.is_empty() {
                            // Truncated to nothing: the upload API refuses an empty file
                            // before any import can see it.
                            let r = srv
                                .post(
                                    "/api/v1/uploads/initialize",
                                    &org.user_key,
                                    json!({"name": "m", "mimeType": "application/octet-stream",
                                           "sizeBytes": 0}),
                                )
                                .await;
                            prop_assert_eq!(r.status, 400, "{}", r.text);
                            return Ok(());
                        }
                        let before = run_count(&srv).await;
                        let u = upload_file(&srv, &org.user_key, "m", bytes).await;
                        let r = srv
                            .post(
                                "/api/v2/imports/structured",
                                &org.user_key,
                                json!({"items": [item(&u, importer)], "allow_duplicate": true}),
                            )
                            .await;
                        prop_assert_eq!(r.status, 200, "{}", r.text);
                        let res = &r.json["results"][0];
                        let created = run_count(&srv).await - before;
                        if res["success"] == json!(true) {
                            let ids = ids(res);
                            prop_assert_eq!(created, ids.len() as i64, "{}", res);
                            for id in &ids {
                                let run =
                                    srv.get(&format!("/api/v2/runs/{id}"), &org.user_key).await;
                                prop_assert_eq!(run.status, 200, "{}", run.text);
                            }
                        } else {
                            prop_assert_eq!(created, 0, "{}", res);
                            let error = res["error"].as_str().unwrap_or("");
                            prop_assert!(!error.is_empty());
                            prop_assert!(error != "Internal server error", "{}", res);
                        }
                        Ok(())
                    })
                },
            )
            .unwrap();
        drop(srv);
    }
}

#[tokio::test]
async fn a_part_too_large_to_hold_is_skipped_not_truncated() {
    let srv = TestServer::start().await;
    let org = srv.org("Fab").await;
    let mut s = Stdf::new(false);
    s.mir(&Lot::new("Huge"));
    s.pir(1);
    s.test(1, &ptr(1, 1.0, "V", 0.0, 2.0, "V"));
    let short = Test::Ptr {
        num: 1,
        test_flg: 0,
        parm_flg: 0xC0,
        result: 1.0,
        text: None,
        limits: None,
    };
    for _ in 0..100_000 {
        s.test(1, &short);
    }
    s.prr(&Part::new("HUGE-1", 0, vec![]));
    s.part(&Part::new(
        "SMALL-1",
        0,
        vec![ptr(1, 1.0, "V", 0.0, 2.0, "V")],
    ));
    s.mrr();
    let res = import_one(&srv, &org.user_key, "STDF", s.out).await;
    assert_eq!(res["success"], json!(true), "{res}");
    assert_eq!(ids(&res).len(), 1);
    let warning = res["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("Part 1 (serial \"HUGE-1\") not imported: it holds more test results"),
        "{warning}"
    );
    let run = get_run(&srv, &org.user_key, &ids(&res)[0]).await;
    assert_eq!(run["unit"]["serial_number"], "SMALL-1");
}
