//! Query parameters mean the same on every list: one table over every list operation
//! checks blank and malformed ids, booleans in every spelling, `sort_order` in any case,
//! dates and unknown values, through the real server.

mod common;

use common::*;
use serde_json::{json, Value};

/// What one list accepts: the name of its id filter, its boolean `include_metadata`, its
/// `sort_order`, and a date filter.
struct List {
    path: &'static str,
    ids: Option<&'static str>,
    include_metadata: bool,
    sort_order: bool,
    date: Option<&'static str>,
}

const LISTS: [List; 9] = [
    List {
        path: "/api/v2/runs",
        ids: Some("ids"),
        include_metadata: true,
        sort_order: true,
        date: Some("created_after"),
    },
    List {
        path: "/api/v2/units",
        ids: Some("ids"),
        include_metadata: true,
        sort_order: true,
        date: Some("created_after"),
    },
    List {
        path: "/api/v2/parts",
        ids: None,
        include_metadata: true,
        sort_order: true,
        date: None,
    },
    List {
        path: "/api/v2/batches",
        ids: Some("ids"),
        include_metadata: false,
        sort_order: true,
        date: Some("created_after"),
    },
    List {
        path: "/api/v2/procedures",
        ids: None,
        include_metadata: false,
        sort_order: false,
        date: Some("created_after"),
    },
    List {
        path: "/api/v2/stations",
        ids: Some("procedure_ids"),
        include_metadata: true,
        sort_order: false,
        date: None,
    },
    List {
        path: "/api/v2/phases",
        ids: Some("ids"),
        include_metadata: false,
        sort_order: true,
        date: Some("started_after"),
    },
    List {
        path: "/api/v2/measurements",
        ids: Some("ids"),
        include_metadata: false,
        sort_order: true,
        date: Some("started_after"),
    },
    List {
        path: "/api/v2/logs",
        ids: Some("run_ids"),
        include_metadata: false,
        sort_order: true,
        date: Some("timestamp_after"),
    },
];

fn at(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(1_767_225_600_000 + ms).unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn data(v: &Value) -> &Vec<Value> {
    v["data"].as_array().expect("a list page")
}

fn ids_of(v: &Value) -> Vec<String> {
    data(v)
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

fn url(path: &str, query: &str) -> String {
    format!("{path}?limit=100&{query}")
}

/// Two of everything, created a few milliseconds apart so every order is strict.
async fn fixture(srv: &TestServer, org: &TestOrg) {
    for (i, (serial, part, batch)) in [("SN-1", "P-1", "B-1"), ("SN-2", "P-2", "B-2")]
        .into_iter()
        .enumerate()
    {
        let t = i as i64 * 1000;
        srv.post(
            "/api/v2/runs",
            &org.user_key,
            json!({
                "serial_number": serial, "part_number": part, "batch_number": batch,
                "procedure_id": org.procedure_id, "outcome": "PASS",
                "started_at": at(t), "ended_at": at(t + 100),
                "metadata": {"line": i},
                "phases": [{"name": format!("phase-{i}"), "outcome": "PASS",
                            "started_at": at(t), "ended_at": at(t + 50),
                            "measurements": [{"name": "v", "outcome": "PASS",
                                              "measured_value": i}]}],
                "logs": [{"level": "INFO", "timestamp": at(t + 1), "message": "hello",
                          "source_file": "t.py", "line_number": 1}]
            }),
        )
        .await
        .expect(200);
        srv.post(
            "/api/v2/procedures",
            &org.user_key,
            json!({"name": format!("Extra {i}")}),
        )
        .await
        .expect(200);
        srv.post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": format!("Extra {i}")}),
        )
        .await
        .expect(200);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    srv.patch(
        &format!("/api/v2/stations/{}", org.station_id),
        &org.user_key,
        json!({"metadata": {"room": "A"}}),
    )
    .await
    .expect(200);
}

/// A 400 in the envelope whose message or issue names `param`.
fn assert_names(r: &Resp, param: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    assert_error_envelope(r);
    assert!(r.error_text().contains(param), "{what}: {}", r.text);
}

#[tokio::test]
async fn every_list_parses_shared_parameters_the_same_way() {
    let srv = TestServer::start().await;
    let org = srv.org("Params").await;
    fixture(&srv, &org).await;
    let key = &org.user_key;
    let get = |path: String| {
        let srv = &srv;
        async move { srv.get(&path, key).await }
    };

    for list in &LISTS {
        let p = list.path;
        let all = get(url(p, "")).await.expect(200).clone();
        let n = data(&all).len();
        assert!(n >= 2, "{p}: the fixture has two or more items, got {n}");

        // A blank value is no filter; a malformed or unknown id matches nothing; a
        // blank among real values is ignored.
        if let Some(ids) = list.ids {
            let target = if ids == "procedure_ids" {
                org.procedure_id.clone()
            } else if ids == "run_ids" {
                let runs = get(url("/api/v2/runs", "")).await.expect(200).clone();
                ids_of(&runs)[0].clone()
            } else {
                ids_of(&all)[0].clone()
            };
            for blank in [
                format!("{ids}="),
                format!("{ids}=%20"),
                format!("{ids}=&{ids}="),
            ] {
                let r = get(url(p, &blank)).await;
                assert_eq!(data(r.expect(200)).len(), n, "{p}?{blank}");
            }
            for nothing in ["not-an-id", "00000000-0000-0000-0000-000000000000", "a,b"] {
                let r = get(url(p, &format!("{ids}={nothing}"))).await;
                assert_eq!(data(r.expect(200)).len(), 0, "{p}?{ids}={nothing}");
            }
            let one = get(url(p, &format!("{ids}=&{ids}={target}"))).await;
            let got = data(one.expect(200)).len();
            assert!(got >= 1 && got <= n, "{p}?{ids}=&{ids}={target}: {got}");
            if ids == "ids" {
                assert_eq!(ids_of(one.expect(200)), vec![target.clone()], "{p}");
                let two = get(url(p, &format!("{ids}={target}&{ids}=not-an-id"))).await;
                assert_eq!(ids_of(two.expect(200)), vec![target], "{p}");
            }
        }

        // Booleans: true/false in any case, 1/0; blank = false; anything else a 400.
        if list.include_metadata {
            for on in ["1", "true", "TRUE", "True"] {
                let r = get(url(p, &format!("include_metadata={on}"))).await;
                for item in data(r.expect(200)) {
                    assert!(
                        item["metadata"].is_object(),
                        "{p} include_metadata={on}: {item}"
                    );
                }
            }
            for off in ["0", "false", "FALSE", ""] {
                let r = get(url(p, &format!("include_metadata={off}"))).await;
                for item in data(r.expect(200)) {
                    assert!(item.get("metadata").is_none(), "{p} include_metadata={off}");
                }
            }
            let r = get(url(p, "include_metadata=maybe")).await;
            assert_names(&r, "include_metadata", p);
        }

        // sort_order in any case; blank = the default (desc); anything else a 400.
        if list.sort_order {
            let order = |q: &'static str| get(url(p, q));
            let desc = ids_of(order("sort_order=desc").await.expect(200));
            let asc = ids_of(order("sort_order=asc").await.expect(200));
            assert_ne!(asc, desc, "{p}: both directions");
            for q in ["sort_order=DESC", "sort_order=Desc", "sort_order=", ""] {
                assert_eq!(ids_of(order(q).await.expect(200)), desc, "{p}?{q}");
            }
            for q in ["sort_order=ASC", "sort_order=Asc", "sort_order=%20asc"] {
                assert_eq!(ids_of(order(q).await.expect(200)), asc, "{p}?{q}");
            }
            assert_names(&order("sort_order=sideways").await, "sort_order", p);
            assert_names(&order("sort_by=colour").await, "sort_by", p);
        }

        // Dates: blank = no filter; a date alone is midnight UTC; a bad one a 400.
        if let Some(date) = list.date {
            let count = |q: String| {
                let q = url(p, &q);
                async move { data(get(q).await.expect(200)).len() }
            };
            assert_eq!(count(format!("{date}=")).await, n, "{p}?{date}=");
            assert_eq!(count(format!("{date}=2000-01-01")).await, n, "{p}");
            assert_eq!(
                count(format!("{date}=2999-01-01T00:00:00Z")).await,
                0,
                "{p}"
            );
            assert_names(&get(url(p, &format!("{date}=soon"))).await, date, p);
        }

        // A blank search is no filter.
        if !p.ends_with("/phases") && !p.ends_with("/measurements") {
            let r = get(url(p, "search_query=%20")).await;
            assert_eq!(data(r.expect(200)).len(), n, "{p}?search_query=%20");
        }
    }
}

#[tokio::test]
async fn enum_and_number_parameters_name_the_bad_value() {
    let srv = TestServer::start().await;
    let org = srv.org("Enums").await;
    fixture(&srv, &org).await;
    let key = &org.user_key;
    for (path, param, good) in [
        ("/api/v2/runs", "outcomes", "PASS"),
        ("/api/v2/units", "outcomes", "PASS"),
        ("/api/v2/phases", "outcomes", "PASS"),
        ("/api/v2/phases", "run_outcomes", "PASS"),
        ("/api/v2/measurements", "measurement_outcomes", "PASS"),
        ("/api/v2/logs", "levels", "INFO"),
        ("/api/v2/runs", "samples", "production"),
        ("/api/v2/units", "samples", "production"),
        ("/api/v2/units", "run_count_min", "1"),
        ("/api/v2/measurements", "value_min", "0"),
        ("/api/v2/runs", "duration_min", "PT0S"),
        ("/api/v2/measurements", "exclude_retries", "TRUE"),
    ] {
        let ok = srv.get(&url(path, &format!("{param}={good}")), key).await;
        assert!(!data(ok.expect(200)).is_empty(), "{path}?{param}={good}");
        let blank = srv.get(&url(path, &format!("{param}=")), key).await;
        assert!(!data(blank.expect(200)).is_empty(), "{path}?{param}=");
        let bad = srv.get(&url(path, &format!("{param}=bogus")), key).await;
        assert_names(&bad, param, path);
        assert!(bad.error_text().contains("bogus"), "{path}: {}", bad.text);
    }
}

#[tokio::test]
async fn run_scope_filters_take_one_value_or_several_on_every_run_content_list() {
    let srv = TestServer::start().await;
    let org = srv.org("Scope").await;
    fixture(&srv, &org).await;
    for path in [
        "/api/v2/runs",
        "/api/v2/phases",
        "/api/v2/measurements",
        "/api/v2/logs",
    ] {
        let count = |q: &'static str| {
            let srv = &srv;
            let key = &org.user_key;
            async move { data(srv.get(&url(path, q), key).await.expect(200)).len() }
        };
        assert_eq!(count("serial_numbers=SN-1").await, 1, "{path}");
        assert_eq!(
            count("serial_numbers=SN-1&serial_numbers=SN-2").await,
            2,
            "{path}"
        );
        assert_eq!(
            count("part_numbers=P-2&serial_numbers=SN-1").await,
            0,
            "{path}"
        );
        assert_eq!(
            count("batch_numbers=B-2&samples=production").await,
            1,
            "{path}"
        );
        assert_eq!(count("serial_numbers=&part_numbers=").await, 2, "{path}");
    }
}
