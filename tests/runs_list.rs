//! `GET /v2/runs`: every filter, every sort in both directions, paging, isolation
//! between organizations (BEHAVIOR.md §1.4, §19).

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use serde_json::{json, Value};
use tofupilot::types::*;

/// serial, part, revision, batch, version, outcome, start, duration, station key.
type FixtureRun = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    i64,
    i64,
    bool,
);

struct Fixture {
    srv: TestServer,
    org: TestOrg,
    other: TestOrg,
    /// Run ids in creation order.
    runs: Vec<String>,
    second_procedure: String,
}

/// Six runs with distinct values for every filterable field:
///
/// | # | serial  | part | rev | batch | version | outcome | start | duration | key     | extra |
/// |---|---------|------|-----|-------|---------|---------|-------|----------|---------|-------|
/// | 0 | Alpha-1 | P-A  | A   | B_1   | 1.0     | PASS    | 0     | 60 s     | user    | op, exec e1 slot s1 |
/// | 1 | Beta-2  | P-A  | B   | B_1   | 2.0     | FAIL    | 100   | 120 s    | user    | metadata |
/// | 2 | Gamma_3 | P-B  | A   | —     | —       | ERROR   | 200   | 30 s     | station | |
/// | 3 | Alpha-1 | P-A  | A   | B_2   | 1.0     | PASS    | 300   | 600 s    | user    | 2nd procedure |
/// | 4 | Delta%4 | P-C  | A   | —     | —       | TIMEOUT | 400   | 0 s      | station | |
/// | 5 | Beta-2  | P-A  | B   | B_1   | —       | ABORTED | 500   | 90 s     | user    | |
async fn fixture() -> Fixture {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let c = srv.client(&org.user_key);
    let second = c
        .procedures()
        .create()
        .name("Second Proc")
        .send()
        .await
        .unwrap()
        .id;
    let rows: Vec<FixtureRun> = vec![
        (
            "Alpha-1",
            "P-A",
            "A",
            Some("B_1"),
            Some("1.0"),
            "PASS",
            0,
            60,
            false,
        ),
        (
            "Beta-2",
            "P-A",
            "B",
            Some("B_1"),
            Some("2.0"),
            "FAIL",
            100,
            120,
            false,
        ),
        ("Gamma_3", "P-B", "A", None, None, "ERROR", 200, 30, true),
        (
            "Alpha-1",
            "P-A",
            "A",
            Some("B_2"),
            Some("1.0"),
            "PASS",
            300,
            600,
            false,
        ),
        ("Delta%4", "P-C", "A", None, None, "TIMEOUT", 400, 0, true),
        (
            "Beta-2",
            "P-A",
            "B",
            Some("B_1"),
            None,
            "ABORTED",
            500,
            90,
            false,
        ),
    ];
    let mut runs = Vec::new();
    for (i, (serial, part, rev, batch, version, outcome, start, dur, station)) in
        rows.into_iter().enumerate()
    {
        let mut body = json!({
            "serial_number": serial,
            "procedure_id": if i == 3 { second.clone() } else { org.procedure_id.clone() },
            "part_number": part,
            "revision_number": rev,
            "started_at": at(start),
            "ended_at": at(start + dur),
            "outcome": outcome,
        });
        if let Some(b) = batch {
            body["batch_number"] = json!(b);
        }
        if let Some(v) = version {
            body["procedure_version"] = json!(v);
        }
        if i == 0 {
            body["operated_by"] = json!(org.user_email);
            body["execution_id"] = json!("e1");
            body["slot_key"] = json!("s1");
            body["slot_name"] = json!("Slot One");
        }
        if i == 1 {
            body["metadata"] = json!({"station": "bench-7", "temp": 21.5, "ok": true});
        }
        let key = if station {
            &org.station_key
        } else {
            &org.user_key
        };
        runs.push(create(&srv, key, body).await);
    }
    // Another organization with look-alike data must never show up.
    create(
        &srv,
        &other.user_key,
        with(
            run_body(&other.procedure_id, "Alpha-1", "P-A"),
            json!({"batch_number": "B_1", "procedure_version": "1.0"}),
        ),
    )
    .await;
    Fixture {
        srv,
        org,
        other,
        runs,
        second_procedure: second,
    }
}

impl Fixture {
    /// The run numbers (indexes into `runs`) a query returns, in order.
    async fn query(&self, q: &str) -> Vec<usize> {
        let r = self
            .srv
            .get(&with_limit("/api/v2/runs", q), &self.org.user_key)
            .await;
        let body = r.expect(200);
        ids(body)
            .iter()
            .map(|id| {
                self.runs
                    .iter()
                    .position(|r| r == id)
                    .unwrap_or_else(|| panic!("{q}: foreign run {id}"))
            })
            .collect()
    }

    async fn sorted(&self, q: &str) -> Vec<usize> {
        let mut v = self.query(q).await;
        v.sort();
        v
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn every_filter() {
    let f = fixture().await;
    let r = &f.runs;
    let cases: Vec<(String, Vec<usize>)> = vec![
        (String::new(), vec![0, 1, 2, 3, 4, 5]),
        (format!("ids={}&ids={}", r[1], r[4]), vec![1, 4]),
        ("ids=not-an-id".into(), vec![]),
        ("outcomes=PASS&outcomes=ERROR".into(), vec![0, 2, 3]),
        (format!("procedure_ids={}", f.second_procedure), vec![3]),
        (format!("procedure_ids={}", f.other.procedure_id), vec![]),
        ("procedure_versions=1.0".into(), vec![0, 3]),
        (
            "procedure_versions=2.0&procedure_versions=9".into(),
            vec![1],
        ),
        ("serial_numbers=alpha-1".into(), vec![0, 3]),
        ("serial_numbers=ALPHA".into(), vec![]),
        (
            "serial_numbers=beta-2&serial_numbers=GAMMA_3".into(),
            vec![1, 2, 5],
        ),
        ("part_numbers=p-a".into(), vec![0, 1, 3, 5]),
        ("part_numbers=P-B&part_numbers=p-c".into(), vec![2, 4]),
        ("revision_numbers=b".into(), vec![1, 5]),
        ("part_numbers=P-B&revision_numbers=A".into(), vec![2]),
        ("batch_numbers=b_1".into(), vec![0, 1, 5]),
        ("batch_numbers=B_2".into(), vec![3]),
        ("duration_min=PT1M&duration_max=PT2M".into(), vec![0, 1, 5]),
        ("duration_min=PT5M".into(), vec![3]),
        ("duration_max=PT0S".into(), vec![4]),
        (
            format!(
                "started_after={}&started_before={}",
                enc(&at(100)),
                enc(&at(300))
            ),
            vec![1, 2, 3],
        ),
        (format!("ended_after={}", enc(&at(590))), vec![3, 5]),
        (format!("ended_before={}", enc(&at(60))), vec![0]),
        (
            format!("created_by_station_ids={}", f.org.station_id),
            vec![2, 4],
        ),
        (
            "execution_ids=e1&slot_keys=s1&slot_names=Slot%20One".into(),
            vec![0],
        ),
        ("slot_keys=nope".into(), vec![]),
        ("search_query=alpha".into(), vec![0, 3]),
        ("search_query=%25".into(), vec![4]),
        ("search_query=_".into(), vec![2]),
        ("search_query=p-b".into(), vec![2]),
        ("search_query=second%20proc".into(), vec![3]),
        ("search_query=".into(), vec![0, 1, 2, 3, 4, 5]),
        (
            format!("search_query={}", &r[2][..24].to_uppercase()),
            vec![2],
        ),
        ("samples=production".into(), vec![0, 1, 2, 3, 4, 5]),
        ("samples=golden".into(), vec![]),
        (
            "environments=production&deployment_ids=".into(),
            vec![0, 1, 2, 3, 4, 5],
        ),
        ("metadata=".into(), vec![0, 1, 2, 3, 4, 5]),
        (
            format!(
                "metadata={}",
                enc(r#"{"station":{"in":["bench-7","x"]},"temp":{"gte":20.5},"ok":{"eq":true}}"#)
            ),
            vec![1],
        ),
        (format!("metadata={}", enc(r#"{"temp":{"lt":20}}"#)), vec![]),
        (
            format!("metadata={}", enc(r#"{"station":{"contains":"BENCH"}}"#)),
            vec![1],
        ),
        (
            format!("metadata={}", enc(r#"{"station":"bench-7"}"#)),
            vec![1],
        ),
        (
            format!("metadata={}", enc(r#"{"ok":{"eq":false}}"#)),
            vec![],
        ),
        (
            format!("metadata={}", enc(r#"{"temp":{"eq":21.5}}"#)),
            vec![1],
        ),
        (
            "part_numbers=P-A&outcomes=PASS&batch_numbers=B_2".into(),
            vec![3],
        ),
    ];
    for (q, expected) in cases {
        assert_eq!(f.sorted(&q).await, expected, "query: {q}");
    }
    // A 12-character id prefix finds the run (runs created in the same millisecond
    // share it, so only containment is certain).
    assert!(f
        .query(&format!("search_query={}", &r[2][..13]))
        .await
        .contains(&2));
    // Operator and creator filters by id.
    let me: Value = f
        .srv
        .get("/api/v2/users", &f.org.user_key)
        .await
        .expect(200)
        .clone();
    let user_id = me[0]["id"].as_str().unwrap();
    assert_eq!(
        f.sorted(&format!("operated_by_ids={user_id}")).await,
        vec![0]
    );
    assert_eq!(
        f.sorted(&format!("created_by_user_ids={user_id}")).await,
        vec![0, 1, 3, 5]
    );
    assert_eq!(f.sorted("operated_by_names=lab%20admin").await, vec![0]);
    // created_at bounds bracket the moment of creation (inclusive).
    let created: Vec<String> = {
        let body = f
            .srv
            .get(
                "/api/v2/runs?sort_by=created_at&sort_order=asc",
                &f.org.user_key,
            )
            .await;
        body.expect(200)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["created_at"].as_str().unwrap().to_string())
            .collect()
    };
    let q = format!(
        "created_after={}&created_before={}",
        enc(&created[1]),
        enc(&created[3])
    );
    assert_eq!(f.sorted(&q).await, vec![1, 2, 3]);
    // Bad filter values are 400s; unknown values are empty pages.
    for bad in [
        "outcomes=GOOD",
        "duration_min=4 minutes",
        "started_after=soon",
        "metadata=notjson",
        "metadata=%5B1%5D",
        "sort_by=color",
        "sort_order=up",
        "include_metadata=maybe",
        "limit=0",
        "cursor=-1",
    ] {
        f.srv
            .get(&format!("/api/v2/runs?{bad}"), &f.org.user_key)
            .await
            .expect(400);
    }
    let six_keys = enc(r#"{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1}"#);
    f.srv
        .get(
            &format!("/api/v2/runs?metadata={six_keys}"),
            &f.org.user_key,
        )
        .await
        .expect(400);
    let r = f
        .srv
        .get("/api/v2/runs?serial_numbers=NOPE", &f.org.user_key)
        .await;
    assert_eq!(
        r.expect(200).clone(),
        json!({"data": [], "meta": {"has_more": false, "next_cursor": null}})
    );
}

#[tokio::test]
async fn sorts_mirror_and_pages_never_repeat() {
    let f = fixture().await;
    let expectations: Vec<(&str, Vec<usize>)> = vec![
        ("started_at", vec![0, 1, 2, 3, 4, 5]),
        ("created_at", vec![0, 1, 2, 3, 4, 5]),
        ("duration", vec![4, 2, 0, 5, 1, 3]),
        ("outcome", vec![5, 2, 1, 0, 3, 4]),
        ("serial_number", vec![0, 3, 1, 5, 4, 2]),
        // Part number, then revision number, then start.
        ("part_number", vec![0, 3, 1, 5, 2, 4]),
        // Revision number, then the revision's part (in creation order), then start.
        ("revision_number", vec![0, 3, 2, 4, 1, 5]),
    ];
    for (sort, asc) in expectations {
        let got = f.query(&format!("sort_by={sort}&sort_order=asc")).await;
        assert_eq!(got, asc, "{sort} asc");
        let mut desc = asc.clone();
        desc.reverse();
        assert_eq!(
            f.query(&format!("sort_by={sort}&sort_order=desc")).await,
            desc,
            "{sort} desc mirrors asc"
        );
        // Paging one by one walks the same order without repeats or gaps.
        let mut walked = Vec::new();
        let mut cursor: Option<i64> = None;
        loop {
            let mut q = format!("/api/v2/runs?sort_by={sort}&sort_order=asc&limit=1");
            if let Some(c) = cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = f.srv.get(&q, &f.org.user_key).await;
            let body = page.expect(200);
            for id in ids(body) {
                walked.push(f.runs.iter().position(|r| *r == id).unwrap());
            }
            if !body["meta"]["has_more"].as_bool().unwrap() {
                assert_eq!(body["meta"]["next_cursor"], Value::Null);
                break;
            }
            cursor = body["meta"]["next_cursor"].as_i64();
        }
        assert_eq!(walked, asc, "{sort} paged");
    }
    // Default: newest start first. Python sends its defaults explicitly, cursor as float.
    assert_eq!(f.query("").await, vec![5, 4, 3, 2, 1, 0]);
    assert_eq!(
        f.query("limit=50&sort_by=started_at&sort_order=desc").await,
        vec![5, 4, 3, 2, 1, 0]
    );
    let r = f
        .srv
        .get("/api/v2/runs?limit=2&cursor=2.0", &f.org.user_key)
        .await;
    let body = r.expect(200);
    assert_eq!(ids(body), vec![f.runs[3].clone(), f.runs[2].clone()]);
    assert_eq!(body["meta"], json!({"has_more": true, "next_cursor": 4}));
    // Limits above 100 are clamped.
    f.srv
        .get("/api/v2/runs?limit=500", &f.org.user_key)
        .await
        .expect(200);
}

/// Filters on several values of one key (read on SQLite as one ordered branch per value)
/// keep the start order and page through it without repeats or gaps, both ways.
#[tokio::test]
async fn multi_value_filters_page_in_start_order() {
    let f = fixture().await;
    for q in [
        "outcomes=PASS&outcomes=ERROR",
        "part_numbers=p-a",
        "part_numbers=P-B&part_numbers=p-c",
        "serial_numbers=beta-2&serial_numbers=GAMMA_3",
        "serial_numbers=alpha-1&serial_numbers=beta-2&outcomes=PASS&outcomes=FAIL",
        "procedure_versions=1.0&procedure_versions=2.0",
    ] {
        // Run numbers follow start order.
        let asc = f.sorted(q).await;
        assert!(!asc.is_empty(), "{q}");
        let mut desc = asc.clone();
        desc.reverse();
        assert_eq!(f.query(q).await, desc, "{q}: newest first");
        for (order, expected) in [("asc", &asc), ("desc", &desc)] {
            let mut walked = Vec::new();
            let mut cursor: Option<i64> = None;
            loop {
                let mut path = format!("/api/v2/runs?{q}&sort_order={order}&limit=1");
                if let Some(c) = cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = f.srv.get(&path, &f.org.user_key).await;
                let body = page.expect(200);
                for id in ids(body) {
                    walked.push(f.runs.iter().position(|r| *r == id).unwrap());
                }
                if !body["meta"]["has_more"].as_bool().unwrap() {
                    break;
                }
                cursor = body["meta"]["next_cursor"].as_i64();
            }
            assert_eq!(&walked, expected, "{q} {order} paged");
        }
    }
}

#[tokio::test]
async fn list_items_carry_the_summary() {
    let f = fixture().await;
    let c = f.srv.client(&f.org.user_key);
    let page = c
        .runs()
        .list()
        .serial_numbers(vec!["ALPHA-1".to_string()])
        .sort_by(RunListSortBy::StartedAt)
        .sort_order(ListSortOrder::Asc)
        .send()
        .await
        .unwrap();
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.data[0].id, f.runs[0]);
    assert_eq!(page.data[0].unit.serial_number, "Alpha-1");
    let raw = f
        .srv
        .get(&format!("/api/v2/runs?ids={}", f.runs[0]), &f.org.user_key)
        .await;
    let item = raw.expect(200)["data"][0].clone();
    for k in [
        "id",
        "created_at",
        "started_at",
        "ended_at",
        "duration",
        "outcome",
        "procedure",
        "unit",
        "docstring",
        "created_by_user",
        "created_by_station",
        "operated_by",
        "execution_id",
        "slot_key",
        "slot_name",
    ] {
        assert!(item.get(k).is_some(), "{k} missing in {item}");
    }
    for k in ["phases", "logs", "metadata", "sequences"] {
        assert!(
            item.get(k).is_none(),
            "{k} must not be in list items by default"
        );
    }
    assert_eq!(item["duration"], "PT1M");
    assert_eq!(item["procedure"]["version"]["tag"], "1.0");
    assert_eq!(item["unit"]["batch"]["number"], "B_1");
    assert_eq!(item["unit"]["part"]["revision"]["number"], "A");
    assert_eq!(item["operated_by"]["email"], json!(f.org.user_email));
    assert_eq!(item["execution_id"], "e1");
    // include_metadata / include_sequences add the keys.
    let raw = f
        .srv
        .get(
            &format!(
                "/api/v2/runs?ids={}&include_metadata=true&include_sequences=true",
                f.runs[1]
            ),
            &f.org.user_key,
        )
        .await;
    let item = raw.expect(200)["data"][0].clone();
    assert_eq!(
        item["metadata"],
        json!({"station": "bench-7", "temp": 21.5, "ok": true})
    );
    assert_eq!(item["sequences"], json!([]));
    // Stations read the organization's whole list.
    let r = f
        .srv
        .get("/api/v2/runs?limit=100", &f.org.station_key)
        .await;
    assert_eq!(ids(r.expect(200)).len(), 6);
}

#[tokio::test]
async fn other_organizations_see_only_their_runs() {
    let f = fixture().await;
    let r = f.srv.get("/api/v2/runs?limit=100", &f.other.user_key).await;
    assert_eq!(ids(r.expect(200)).len(), 1);
    for q in [
        format!("ids={}", f.runs[0]),
        format!("procedure_ids={}", f.org.procedure_id),
        "serial_numbers=Gamma_3".to_string(),
        "part_numbers=P-B".to_string(),
        "batch_numbers=B_2".to_string(),
        "search_query=gamma".to_string(),
        format!("created_by_station_ids={}", f.org.station_id),
    ] {
        let r = f
            .srv
            .get(&format!("/api/v2/runs?{q}"), &f.other.user_key)
            .await;
        assert_eq!(ids(r.expect(200)), Vec::<String>::new(), "{q}");
    }
}
