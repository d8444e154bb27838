//! `/api/lab/v1`: the analytics endpoints over HTTP, on the worked examples of
//! ANALYTICS.md (§2.6 yield and volume, §4.8 capability, control chart and histogram)
//! built through the API, on random data checked against an independent computation
//! here, and their authentication, isolation and parameter errors.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

#[track_caller]
fn close(v: &Value, want: f64, tol: f64) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"));
    assert!((got - want).abs() <= tol, "{got} != {want}");
}

fn at(day: &str, hm: &str) -> String {
    format!("{day}T{hm}:00.000Z")
}

/// Posts a run of the org's procedure for `serial` with `outcome` started at `started`
/// (ISO), one minute long, with `phases`.
async fn post_run(
    srv: &TestServer,
    key: &str,
    procedure_id: &str,
    serial: &str,
    outcome: &str,
    started: &str,
    phases: Value,
) -> String {
    let start = chrono::DateTime::parse_from_rfc3339(started).unwrap();
    let end = (start + chrono::Duration::seconds(60))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let r = srv
        .post(
            "/api/v2/runs",
            key,
            json!({
                "serial_number": serial,
                "part_number": "PCB-1",
                "procedure_id": procedure_id,
                "outcome": outcome,
                "started_at": started,
                "ended_at": end,
                "phases": phases,
            }),
        )
        .await;
    r.expect(200)["id"].as_str().unwrap().to_string()
}

fn lab(endpoint: &str, procedure_id: &str, from: &str, to: &str, extra: &str) -> String {
    format!("/api/lab/v1/{endpoint}?procedure_id={procedure_id}&from={from}&to={to}{extra}")
}

#[tokio::test]
async fn worked_example_yield_and_volume() {
    let srv = TestServer::start().await;
    let org = srv.org("Alpha").await;
    let (d1, d2, d3) = ("2026-03-02", "2026-03-03", "2026-03-04");
    let runs: &[(&str, &str, &str, &str)] = &[
        ("A", d1, "08:00", "PASS"),
        ("A", d2, "09:00", "PASS"),
        ("A", d2, "09:30", "FAIL"),
        ("B", d1, "08:10", "FAIL"),
        ("B", d1, "08:40", "PASS"),
        ("B", d2, "10:00", "ABORTED"),
        ("C", d1, "09:00", "ERROR"),
        ("C", d1, "09:20", "ABORTED"),
        ("C", d1, "09:30", "TIMEOUT"),
        ("C", d1, "10:00", "PASS"),
        ("C", d2, "10:00", "FAIL"),
        ("C", d2, "10:20", "FAIL"),
        ("C", d2, "23:58", "FAIL"),
        ("C", d3, "00:02", "PASS"),
        ("D", d1, "11:00", "FAIL"),
        ("D", d1, "11:30", "FAIL"),
        ("D", d1, "12:00", "FAIL"),
        ("D", d1, "12:30", "PASS"),
        ("D", d2, "11:00", "FAIL"),
        ("D", d2, "11:15", "PASS"),
        ("E", d1, "13:00", "FAIL"),
        ("E", d1, "13:20", "PASS"),
        ("E", d2, "14:00", "PASS"),
    ];
    // Posted in reverse so that creation order is not time order.
    for (unit, day, hm, outcome) in runs.iter().rev() {
        post_run(
            &srv,
            &org.user_key,
            &org.procedure_id,
            unit,
            outcome,
            &at(day, hm),
            json!([]),
        )
        .await;
    }
    srv.patch(
        "/api/v2/units/E",
        &org.user_key,
        json!({"sample": "golden"}),
    )
    .await
    .expect(200);

    let y = srv
        .get(
            &lab("yield", &org.procedure_id, "2026-03-01", "2026-03-05", ""),
            &org.user_key,
        )
        .await;
    let y = y.expect(200);
    let data = y["data"].as_array().unwrap();
    let dates: Vec<&str> = data.iter().map(|r| r["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2026-03-01", d1, d2, d3, "2026-03-05"]);
    for empty in [&data[0], &data[4]] {
        assert_eq!(
            empty,
            &json!({"date": empty["date"], "group": null, "units": 0,
                    "fpy": null, "spy": null, "tpy": null, "lpy": null})
        );
    }
    let want = [
        (4, [0.25, 0.5, 0.75, 1.0]),
        (3, [1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]),
        (1, [1.0, 1.0, 1.0, 1.0]),
    ];
    for (row, (units, ratios)) in data[1..4].iter().zip(want) {
        assert_eq!(row["units"], json!(units), "{row}");
        assert_eq!(row["group"], json!(null));
        for (k, r) in ["fpy", "spy", "tpy", "lpy"].iter().zip(ratios) {
            close(&row[*k], r, 1e-9);
        }
    }
    let w = &y["window"];
    assert_eq!(w["units"], json!(8));
    for (k, r) in ["fpy", "spy", "tpy", "lpy"]
        .iter()
        .zip([0.375, 0.625, 0.75, 0.875])
    {
        close(&w[*k], r, 1e-9);
    }

    // Reference samples toggled in.
    let y = srv
        .get(
            &lab(
                "yield",
                &org.procedure_id,
                d1,
                d3,
                "&samples=production,golden,failing",
            ),
            &org.station_key,
        )
        .await;
    let y = y.expect(200);
    let data = y["data"].as_array().unwrap();
    assert_eq!(data[0]["units"], json!(5));
    for (k, r) in ["fpy", "spy", "tpy", "lpy"]
        .iter()
        .zip([0.2, 0.6, 0.8, 1.0])
    {
        close(&data[0][*k], r, 1e-9);
    }
    assert_eq!(data[1]["units"], json!(4));
    for (k, r) in ["fpy", "spy", "tpy", "lpy"]
        .iter()
        .zip([0.5, 0.75, 0.75, 0.75])
    {
        close(&data[1][*k], r, 1e-9);
    }
    assert_eq!(y["window"]["units"], json!(10));
    for (k, r) in ["fpy", "spy", "tpy", "lpy"]
        .iter()
        .zip([0.4, 0.7, 0.8, 0.9])
    {
        close(&y["window"][*k], r, 1e-9);
    }

    // Volume (production units).
    let v = srv
        .get(&lab("volume", &org.procedure_id, d1, d3, ""), &org.user_key)
        .await;
    let v = v.expect(200);
    assert_eq!(
        v["data"],
        json!([
            {"date": d1, "runs": 11, "pass": 4, "fail": 4, "error": 1, "timeout": 1,
             "aborted": 1, "units": 4, "retests": 7, "mean_duration_s": 60.0},
            {"date": d2, "runs": 8, "pass": 2, "fail": 5, "error": 0, "timeout": 0,
             "aborted": 1, "units": 4, "retests": 4, "mean_duration_s": 60.0},
            {"date": d3, "runs": 1, "pass": 1, "fail": 0, "error": 0, "timeout": 0,
             "aborted": 0, "units": 1, "retests": 0, "mean_duration_s": 60.0},
        ])
    );
}

fn phase(name: &str, outcome: &str, started: &str, measurements: Value) -> Value {
    let start = chrono::DateTime::parse_from_rfc3339(started).unwrap();
    let end =
        (start + chrono::Duration::seconds(5)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"name": name, "outcome": outcome, "started_at": started, "ended_at": end,
           "measurements": measurements})
}

fn numeric(name: &str, value: f64, validators: Value) -> Value {
    json!({"name": name, "outcome": "PASS", "measured_value": value, "units": "V",
           "validators": validators})
}

#[tokio::test]
async fn worked_example_capability_chart_histogram_and_pareto() {
    let srv = TestServer::start().await;
    let org = srv.org("Alpha").await;
    let x = [4.96, 4.98, 4.97, 5.00, 5.01, 5.03, 5.02, 5.05];
    let both = json!([{"operator": ">=", "expected_value": 4.8},
                      {"operator": "<=", "expected_value": 5.2}]);
    let lower = json!([{"operator": ">=", "expected_value": 4.8}]);
    let mut run_ids = Vec::new();
    for (i, v) in x.iter().enumerate() {
        let started = at("2026-03-02", &format!("{:02}:00", 8 + i));
        // Phase outcomes for the Pareto: `power` fails in runs 0 and 1, `boot` in run 2;
        // `boot` fails twice in run 2 (a repeated name): 2 occurrences, 1 failed run.
        let power = if i < 2 { "FAIL" } else { "PASS" };
        let mut phases = vec![phase(
            "power",
            power,
            &started,
            json!([numeric("vout", *v, both.clone()), numeric("vmin", *v, lower.clone()),
                   {"name": "label", "outcome": "PASS", "measured_value": "ok"}]),
        )];
        if i == 2 {
            phases.push(phase("boot", "FAIL", &started, json!([])));
            phases.push(phase("boot", "FAIL", &started, json!([])));
        }
        let outcome = if i < 3 { "FAIL" } else { "PASS" };
        let serial = format!("SN-{i}");
        run_ids.push(
            post_run(
                &srv,
                &org.user_key,
                &org.procedure_id,
                &serial,
                outcome,
                &started,
                json!(phases),
            )
            .await,
        );
    }
    let (from, to) = ("2026-03-01", "2026-03-03");

    let c = srv
        .get(
            &lab("capability", &org.procedure_id, from, to, ""),
            &org.user_key,
        )
        .await;
    let rows = c.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Weakest Cpk first: vout (3.9986) before vmin (4.0998).
    let vout = &rows[0];
    assert_eq!(vout["phase"], json!("power"));
    assert_eq!(vout["measurement"], json!("vout"));
    assert_eq!(vout["units"], json!("V"));
    assert_eq!(vout["n"], json!(8));
    assert_eq!(vout["status"], json!("ok"));
    close(&vout["mean"], 5.0025, 1e-9);
    close(&vout["stdev"], 0.031053, 1e-6);
    close(&vout["sigma_within"], 0.13 / 7.0 / 1.128, 1e-9);
    close(&vout["lsl"], 4.8, 0.0);
    close(&vout["usl"], 5.2, 0.0);
    close(&vout["cp"], 4.0492, 1e-4);
    close(&vout["cpk"], 3.9986, 1e-4);
    close(&vout["pp"], 2.1469, 1e-4);
    close(&vout["ppk"], 2.1200, 1e-4);
    let vmin = &rows[1];
    assert_eq!(vmin["measurement"], json!("vmin"));
    assert_eq!(vmin["usl"], json!(null));
    assert_eq!(vmin["cp"], json!(null));
    assert_eq!(vmin["pp"], json!(null));
    close(&vmin["cpk"], 4.0998, 1e-4);
    close(&vmin["ppk"], 2.1737, 1e-4);

    let s = srv
        .get(
            &lab(
                "series",
                &org.procedure_id,
                from,
                to,
                "&phase=power&measurement=vout",
            ),
            &org.user_key,
        )
        .await;
    let s = s.expect(200);
    close(&s["cl"], 5.0025, 1e-9);
    close(&s["ucl"], 5.0519, 1e-4);
    close(&s["lcl"], 4.9531, 1e-4);
    assert_eq!(s["n"], json!(8));
    let values: Vec<f64> = s["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, x);
    let ids: Vec<&str> = s["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, run_ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(s["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["out_of_control"] == json!(false)));
    assert_eq!(
        s["limits"],
        json!([{"date": "2026-03-02", "lsl": 4.8, "usl": 5.2}])
    );
    assert_eq!(s["meta"], json!({"has_more": false, "next_cursor": null}));

    // Pages.
    let p = srv
        .get(
            &lab(
                "series",
                &org.procedure_id,
                from,
                to,
                "&phase=power&measurement=vout&limit=3&cursor=3",
            ),
            &org.user_key,
        )
        .await;
    let p = p.expect(200);
    let page: Vec<f64> = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(page, x[3..6]);
    assert_eq!(p["meta"], json!({"has_more": true, "next_cursor": 6}));
    close(&p["ucl"], 5.0519, 1e-4);

    let h = srv
        .get(
            &lab(
                "histogram",
                &org.procedure_id,
                from,
                to,
                "&phase=power&measurement=vout",
            ),
            &org.user_key,
        )
        .await;
    let h = h.expect(200);
    assert_eq!(h["counts"], json!([3, 1, 2, 2]));
    let edges = h["edges"].as_array().unwrap();
    for (e, want) in edges.iter().zip([4.96, 4.9825, 5.005, 5.0275, 5.05]) {
        close(e, want, 1e-9);
    }
    assert_eq!(h["n"], json!(8));
    close(&h["lsl"], 4.8, 0.0);

    let f = srv
        .get(
            &lab("failures", &org.procedure_id, from, to, ""),
            &org.user_key,
        )
        .await;
    assert_eq!(
        f.expect(200)["data"],
        json!([
            {"phase": "power", "measurement": null, "failed_runs": 2, "occurrences": 2,
             "share": 2.0 / 3.0, "cumulative_share": 2.0 / 3.0},
            {"phase": "boot", "measurement": null, "failed_runs": 1, "occurrences": 2,
             "share": 1.0 / 3.0, "cumulative_share": 1.0},
        ])
    );
    let f = srv
        .get(
            &lab("failures", &org.procedure_id, from, to, "&by=measurement"),
            &org.user_key,
        )
        .await;
    assert_eq!(f.expect(200)["data"], json!([]));

    // A measurement without data: empty chart, no 404.
    let s = srv
        .get(
            &lab(
                "series",
                &org.procedure_id,
                from,
                to,
                "&phase=power&measurement=nothing",
            ),
            &org.user_key,
        )
        .await;
    let s = s.expect(200);
    assert_eq!(s["data"], json!([]));
    assert_eq!(s["cl"], json!(null));
}

/// A small deterministic generator (no dependency, same data on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn random_data_matches_an_independent_computation() {
    let srv = TestServer::start().await;
    let org = srv.org("Alpha").await;
    let mut rng = Lcg(20260302);
    let outcomes = ["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"];
    let days = ["2026-05-10", "2026-05-11", "2026-05-12"];
    let validators = json!([{"operator": ">=", "expected_value": 9.0},
                            {"operator": "<=", "expected_value": 11.0}]);
    // (day, minute, unit, outcome, station?, value, failing phase?)
    let mut runs = Vec::new();
    let mut used = std::collections::HashSet::new();
    while runs.len() < 70 {
        let day = days[rng.next(3) as usize];
        let minute = rng.next(24 * 60);
        if !used.insert((day, minute)) {
            continue;
        }
        let unit = format!("U{}", rng.next(7));
        let outcome = outcomes[[0, 0, 0, 1, 1, 2, 3, 4][rng.next(8) as usize]];
        let by_station = rng.next(2) == 0;
        let value = 9.5 + rng.next(1000) as f64 / 1000.0;
        let fails = ["", "", "flash", "rf", "rf"][rng.next(5) as usize];
        runs.push((day, minute, unit, outcome, by_station, value, fails));
    }
    for (day, minute, unit, outcome, by_station, value, fails) in &runs {
        let started = at(day, &format!("{:02}:{:02}", minute / 60, minute % 60));
        let mut phases = vec![phase(
            "measure",
            "PASS",
            &started,
            json!([numeric("v", *value, validators.clone())]),
        )];
        if !fails.is_empty() {
            phases.push(phase(fails, "FAIL", &started, json!([])));
        }
        let key = if *by_station {
            &org.station_key
        } else {
            &org.user_key
        };
        post_run(
            &srv,
            key,
            &org.procedure_id,
            unit,
            outcome,
            &started,
            json!(phases),
        )
        .await;
    }
    srv.patch(
        "/api/v2/units/U6",
        &org.user_key,
        json!({"sample": "failing"}),
    )
    .await
    .expect(200);
    let production: Vec<_> = runs.iter().filter(|r| r.2 != "U6").collect();

    // Yield, by day and by station slice, computed here from the histories.
    let expected = |slice: &dyn Fn(bool) -> bool| {
        let mut per: BTreeMap<(&str, &str), Vec<(u64, &str)>> = BTreeMap::new();
        for r in production.iter().filter(|r| slice(r.4) && r.3 != "ABORTED") {
            per.entry((r.0, r.2.as_str())).or_default().push((r.1, r.3));
        }
        let mut days_out: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
        for ((day, _), mut h) in per {
            h.sort();
            let a = h.iter().position(|(_, o)| *o == "PASS").map(|i| i + 1);
            let c = days_out.entry(day).or_default();
            c[0] += 1;
            for (k, lim) in [(1, 1), (2, 2), (3, 3)] {
                c[k] += u64::from(a.is_some_and(|a| a <= lim));
            }
            c[4] += u64::from(a.is_some());
        }
        days_out
    };
    let check = |row: &Value, c: Option<&[u64; 5]>| match c {
        None => {
            assert_eq!(row["units"], json!(0), "{row}");
            assert_eq!(row["fpy"], json!(null));
        }
        Some(c) => {
            assert_eq!(row["units"], json!(c[0]), "{row}");
            for (k, i) in [("fpy", 1), ("spy", 2), ("tpy", 3), ("lpy", 4)] {
                close(&row[k], c[i] as f64 / c[0] as f64, 1e-9);
            }
        }
    };
    let all = expected(&|_| true);
    let y = srv
        .get(
            &lab("yield", &org.procedure_id, days[0], days[2], ""),
            &org.user_key,
        )
        .await;
    let y = y.expect(200);
    for (row, day) in y["data"].as_array().unwrap().iter().zip(days) {
        assert_eq!(row["date"], json!(day));
        check(row, all.get(day));
    }
    let pooled: [u64; 5] = all.values().fold([0; 5], |mut a, c| {
        for i in 0..5 {
            a[i] += c[i];
        }
        a
    });
    check(&y["window"], Some(&pooled));

    let y = srv
        .get(
            &lab(
                "yield",
                &org.procedure_id,
                days[0],
                days[2],
                "&group_by=station",
            ),
            &org.user_key,
        )
        .await;
    let data = y.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 6, "{data:?}");
    let users = expected(&|s| !s);
    let stations = expected(&|s| s);
    for (i, day) in days.iter().enumerate() {
        // Sorted by date, then slice name with `null` (user runs) first.
        assert_eq!(data[2 * i]["date"], json!(day));
        assert_eq!(data[2 * i]["group"], json!(null));
        check(&data[2 * i], users.get(day));
        assert_eq!(data[2 * i + 1]["group"], json!("Alpha Bench"));
        check(&data[2 * i + 1], stations.get(day));
    }

    // Capability of `measure/v`: values in time order, two-pass here.
    let mut ordered: Vec<_> = production.iter().map(|r| (r.0, r.1, r.5)).collect();
    ordered.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let x: Vec<f64> = ordered.iter().map(|r| r.2).collect();
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let s = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let sw = x.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (n - 1.0) / 1.128;
    let c = srv
        .get(
            &lab("capability", &org.procedure_id, days[0], days[2], ""),
            &org.user_key,
        )
        .await;
    let row = c.expect(200)["data"][0].clone();
    assert_eq!(row["n"], json!(x.len()));
    close(&row["mean"], mean, 1e-9);
    close(&row["stdev"], s, 1e-9);
    close(&row["sigma_within"], sw, 1e-9);
    close(&row["cp"], 2.0 / (6.0 * sw), 1e-6);
    close(
        &row["cpk"],
        ((11.0 - mean) / (3.0 * sw)).min((mean - 9.0) / (3.0 * sw)),
        1e-6,
    );
    close(
        &row["ppk"],
        ((11.0 - mean) / (3.0 * s)).min((mean - 9.0) / (3.0 * s)),
        1e-6,
    );

    // Pareto of failing phases.
    let mut fails: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &production {
        if !r.6.is_empty() {
            *fails.entry(r.6).or_default() += 1;
        }
    }
    let total: u64 = fails.values().sum();
    let mut ranked: Vec<(&str, u64)> = fails.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let f = srv
        .get(
            &lab("failures", &org.procedure_id, days[0], days[2], ""),
            &org.user_key,
        )
        .await;
    let got = f.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(got.len(), ranked.len());
    let mut cum = 0;
    for (row, (name, count)) in got.iter().zip(&ranked) {
        cum += count;
        assert_eq!(row["phase"], json!(name));
        assert_eq!(row["failed_runs"], json!(count));
        close(&row["share"], *count as f64 / total as f64, 1e-12);
        close(&row["cumulative_share"], cum as f64 / total as f64, 1e-12);
    }
    assert_eq!(got.last().unwrap()["cumulative_share"], json!(1.0));
}

/// Rows written before the measurement points existed get theirs at the next start
/// (`Db::backfill_measurement_points`, run after the migrations), and the analytics
/// then answer as they do for rows written with their points.
#[tokio::test]
async fn points_missing_from_older_rows_are_backfilled_at_start() {
    let srv = TestServer::start().await;
    let org = srv.org("Alpha").await;
    let limits = json!([{"operator": "range", "expected_value": [0.0, 10.0]}]);
    for i in 0..30 {
        let started = at("2026-03-02", &format!("{:02}:{:02}", 8 + i / 60, i % 60));
        // A retried phase: only the last attempt counts.
        let phases = json!([
            phase("p", "FAIL", &started, json!([numeric("x", 99.0, limits.clone())])),
            {"name": "p", "outcome": "PASS", "started_at": started, "ended_at": started,
             "retry_count": 1,
             "measurements": [numeric("x", 1.0 + (i % 7) as f64, limits.clone()),
                              numeric("no_limit", 1.0, json!([{"operator": "==", "expected_value": 1.0}])),
                              {"name": "s", "outcome": "PASS", "measured_value": "text"}]},
        ]);
        let serial = format!("SN-{i}");
        post_run(
            &srv,
            &org.user_key,
            &org.procedure_id,
            &serial,
            "PASS",
            &started,
            phases,
        )
        .await;
    }
    let paths: Vec<String> = [
        ("capability", ""),
        ("series", "&phase=p&measurement=x"),
        ("histogram", "&phase=p&measurement=x"),
    ]
    .iter()
    .map(|(e, extra)| lab(e, &org.procedure_id, "2026-03-01", "2026-03-03", extra))
    .collect();
    let mut before = Vec::new();
    for p in &paths {
        before.push(srv.get(p, &org.user_key).await.expect(200).clone());
    }
    assert_eq!(
        before[0]["data"].as_array().unwrap().len(),
        1,
        "{}",
        before[0]
    );
    assert_eq!(before[0]["data"][0]["n"], json!(30), "final attempts only");

    // As a database from before the points table: none, and the backfill pending.
    let db = &srv.db;
    let mut tx = db.begin().await.unwrap();
    tx.execute(tofulab::db::Sql::new("DELETE FROM measurement_points"))
        .await
        .unwrap();
    tx.execute(tofulab::db::Sql::new(
        "INSERT INTO pending_backfills (name) VALUES ('measurement_points')",
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let empty = srv.get(&paths[0], &org.user_key).await;
    assert_eq!(empty.expect(200)["data"], json!([]));
    db.backfill_measurement_points().await.unwrap();
    for (p, want) in paths.iter().zip(&before) {
        assert_eq!(srv.get(p, &org.user_key).await.expect(200), want, "{p}");
    }
    let (pending,): (i64,) = db
        .read()
        .fetch_one(tofulab::db::Sql::new(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pending_backfills",
        ))
        .await
        .unwrap();
    assert_eq!(pending, 0, "the backfill runs once");
}

#[tokio::test]
async fn authentication_isolation_and_parameter_errors() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let path = lab("yield", &a.procedure_id, "2026-03-01", "2026-03-02", "");

    let r = srv.call(reqwest::Method::GET, &path, None, None).await;
    r.expect(401);
    let r = srv
        .call(reqwest::Method::GET, &path, Some("tp_user_nope"), None)
        .await;
    r.expect(401);
    for endpoint in [
        "yield",
        "volume",
        "capability",
        "failures",
        "series",
        "histogram",
    ] {
        let p = lab(
            endpoint,
            &a.procedure_id,
            "2026-03-01",
            "2026-03-02",
            "&phase=p&measurement=m",
        );
        for key in [&b.user_key, &b.station_key] {
            let r = srv.get(&p, key).await;
            r.expect(404);
            assert_eq!(r.message(), "Procedure not found");
        }
        srv.get(&p, &a.station_key).await.expect(200);
        srv.get(&p, &a.user_key).await.expect(200);
    }
    let unknown = lab("yield", &random_id(), "2026-03-01", "2026-03-02", "");
    srv.get(&unknown, &a.user_key).await.expect(404);

    let p = &a.procedure_id;
    let cases: Vec<(String, &str)> = vec![
        (
            "/api/lab/v1/yield?from=2026-03-01&to=2026-03-02".into(),
            "procedure_id",
        ),
        (
            "/api/lab/v1/yield?procedure_id=nope&from=2026-03-01&to=2026-03-02".into(),
            "procedure_id",
        ),
        (
            format!("/api/lab/v1/yield?procedure_id={p}&to=2026-03-02"),
            "from",
        ),
        (lab("yield", p, "2026-3-1", "2026-03-02", ""), "from"),
        (lab("yield", p, "2026-03-01", "2026-02-30", ""), "to"),
        (lab("yield", p, "2026-03-02", "2026-03-01", ""), "to"),
        (lab("yield", p, "2024-01-01", "2026-03-01", ""), "to"),
        (
            lab("yield", p, "2026-03-01", "2026-03-02", "&group_by=operator"),
            "group_by",
        ),
        (
            lab("yield", p, "2026-03-01", "2026-03-02", "&samples=shiny"),
            "samples",
        ),
        (
            lab("failures", p, "2026-03-01", "2026-03-02", "&by=unit"),
            "by",
        ),
        (
            lab("series", p, "2026-03-01", "2026-03-02", "&measurement=m"),
            "phase",
        ),
        (
            lab("series", p, "2026-03-01", "2026-03-02", "&phase=p"),
            "measurement",
        ),
        (
            lab(
                "series",
                p,
                "2026-03-01",
                "2026-03-02",
                "&phase=p&measurement=m&cursor=-1",
            ),
            "cursor",
        ),
        (
            lab(
                "series",
                p,
                "2026-03-01",
                "2026-03-02",
                "&phase=p&measurement=m&limit=0",
            ),
            "limit",
        ),
        (
            lab("histogram", p, "2026-03-01", "2026-03-02", "&phase=p"),
            "measurement",
        ),
    ];
    for (path, field) in cases {
        let r = srv.get(&path, &a.user_key).await;
        r.expect(400);
        assert_eq!(
            r.json["issues"][0]["path"],
            json!([field]),
            "{path}: {}",
            r.text
        );
    }
}
