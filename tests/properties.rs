//! Property-based tests of bad input (BEHAVIOR.md §13.3: never a 5xx for a client
//! mistake). For every request body of the API (every v2 write operation with a JSON
//! body, and the v1 ones) and the query string of every list operation, valid requests
//! are mutated at random — required fields dropped, wrong JSON types, `null`, huge,
//! negative and fractional numbers, long, empty and control-character strings, unknown
//! fields, deep nesting — and sent over HTTP to a real server. Every answer must be
//! below 500, every rejection must be the error envelope with the code of its status
//! (the legacy shape under `/api/v1`), and every 400 must name a field that was mutated
//! (an issue path or the message). Unknown extra fields alone must never be rejected
//! (unless they hold NUL characters: text with NUL is refused anywhere in a body or
//! query, since it cannot be stored). The OpenHTF and CSV import parsers must never
//! panic on arbitrary bytes or on mutations of a real record.
//!
//! Cases per property: `TOFULAB_PROPTEST_CASES` (default 32, which keeps CI short).
//! A longer run: `TOFULAB_PROPTEST_CASES=2000 cargo test --test properties`.
//! Each property runs against one server (not one per case).

mod common;
mod legacy_support;

use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use legacy_support::{record, upload, SAMPLE};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Runner

fn cases() -> u32 {
    std::env::var("TOFULAB_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        // Failures are reported with their minimal input; no regression files in the tree.
        failure_persistence: None,
        // Each case is an HTTP request: keep shrinking bounded.
        max_shrink_iters: 256,
        ..Config::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    // Server errors go to the test's output, shown when it fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("tofulab=error")
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A number no other case of this process used: keeps created names unique.
fn fresh() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// Hostile values

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_string()),
        Just("\t\r\n".to_string()),
        Just("\u{0}".to_string()),
        Just("a\u{0}b".to_string()),
        Just("\u{1}\u{1f}\u{7f}".to_string()),
        Just("\u{202e}\u{feff}\u{200b}🎉日本語ü".to_string()),
        Just("' OR 1=1 --".to_string()),
        Just("\"; DROP TABLE runs; --".to_string()),
        Just("%_\\".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("NaN".to_string()),
        Just("2026-13-45T99:99:99Z".to_string()),
        Just("PT-1S".to_string()),
        Just("00000000-0000-0000-0000-000000000000".to_string()),
        prop::sample::select(vec![61usize, 101, 256, 1001, 20_000]).prop_map(|n| "x".repeat(n)),
        any::<String>(),
        "[ -~]{0,80}",
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![i64::MIN, -1, 0, 1, i64::MAX]).prop_map(Value::from),
        Just(json!(u64::MAX)),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![0.5f64, -1.5, 1e308, -1e308, 5e-324, 1e-7, 1e20])
            .prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

/// `depth` levels of arrays (or objects) around a number.
fn nested(depth: usize, arrays: bool) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = if arrays {
            json!([v])
        } else {
            json!({ "k": v })
        };
    }
    v
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        hostile_number(),
        hostile_string().prop_map(Value::from),
    ]
}

/// Any hostile value; nesting up to `max_depth` levels.
fn hostile_value(max_depth: usize) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => leaf(),
        1 => prop::collection::vec(leaf(), 0..4).prop_map(Value::from),
        1 => prop::collection::btree_map("[a-z_]{1,8}", leaf(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => (1..=max_depth, any::<bool>()).prop_map(|(d, a)| nested(d, a)),
    ]
}

// ---------------------------------------------------------------------------------------
// Mutations of a JSON document

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

type JPath = Vec<Seg>;

/// Every path in `v` below the root, parents before children.
fn paths(v: &Value) -> Vec<JPath> {
    fn walk(v: &Value, at: &mut JPath, out: &mut Vec<JPath>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    at.push(Seg::Key(k.clone()));
                    out.push(at.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    at.push(Seg::Index(i));
                    out.push(at.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The paths of every object in `v` (the root included) where an unknown key is just an
/// unknown field, not data: maps whose keys are data (metadata, value maps) are skipped.
fn field_objects(v: &Value) -> Vec<JPath> {
    let mut out = vec![Vec::new()];
    out.extend(paths(v));
    out.retain(|p| {
        get(v, p).is_some_and(Value::is_object)
            && !p.iter().any(|s| {
                matches!(s, Seg::Key(k) if k.contains("metadata") || k.contains("Metadata")
                    || k == "valueMap")
            })
    });
    out
}

fn get<'a>(v: &'a Value, p: &[Seg]) -> Option<&'a Value> {
    p.iter().try_fold(v, |v, s| match s {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(*i),
    })
}

fn get_mut<'a>(v: &'a mut Value, p: &[Seg]) -> Option<&'a mut Value> {
    p.iter().try_fold(v, |v, s| match s {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(*i),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove(Index),
    Replace(Index, Value),
    AddField(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Remove),
        5 => (any::<Index>(), hostile_value(300)).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => (any::<Index>(), "[a-z]{1,10}", hostile_value(300))
            .prop_map(|(i, k, v)| Mutation::AddField(i, k, v)),
    ]
}

/// Applies `m` to `doc`; returns the path it touched (`None` if it could not apply).
fn apply(doc: &mut Value, m: &Mutation) -> Option<JPath> {
    match m {
        Mutation::Remove(i) => {
            let all = paths(doc);
            if all.is_empty() {
                return None;
            }
            let p = i.get(&all).clone();
            let (last, parent) = p.split_last()?;
            match (get_mut(doc, parent)?, last) {
                (Value::Object(o), Seg::Key(k)) => {
                    o.remove(k);
                }
                (Value::Array(a), Seg::Index(i)) => {
                    a.remove(*i);
                }
                _ => return None,
            }
            Some(p)
        }
        Mutation::Replace(i, v) => {
            let all = paths(doc);
            if all.is_empty() {
                return None;
            }
            let p = i.get(&all).clone();
            *get_mut(doc, &p)? = v.clone();
            Some(p)
        }
        Mutation::AddField(i, k, v) => {
            let mut objects = vec![Vec::new()];
            objects.extend(paths(doc));
            objects.retain(|p| get(doc, p).is_some_and(Value::is_object));
            let mut p = i.get(&objects).clone();
            get_mut(doc, &p)?
                .as_object_mut()?
                .insert(k.clone(), v.clone());
            p.push(Seg::Key(k.clone()));
            Some(p)
        }
    }
}

// ---------------------------------------------------------------------------------------
// What every answer must be

const CODES: [&str; 14] = [
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_SUPPORTED",
    "TIMEOUT",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RANGE_NOT_SATISFIABLE",
    "UNPROCESSABLE_CONTENT",
    "TOO_MANY_REQUESTS",
    "BAD_GATEWAY",
    "SERVICE_UNAVAILABLE",
];

fn code_for(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_SUPPORTED",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        422 => "UNPROCESSABLE_CONTENT",
        429 => "TOO_MANY_REQUESTS",
        _ => "BAD_REQUEST",
    }
}

/// The text a rejection gives about where it is: issue paths and messages.
fn locations(r: &Resp) -> Vec<(Vec<String>, String)> {
    let mut out = vec![(Vec::new(), r.message().to_string())];
    if let Some(issues) = r.json["issues"].as_array() {
        for i in issues {
            let path = i["path"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| match s {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((path, i["message"].as_str().unwrap_or("").to_string()));
        }
    }
    out
}

fn seg_text(s: &Seg) -> String {
    match s {
        Seg::Key(k) => k.clone(),
        Seg::Index(i) => i.to_string(),
    }
}

/// True when a rejection points at `p`: an issue path on the way to or below `p`, or a
/// message that names one of the keys of `p`.
fn names(r: &Resp, p: &[Seg]) -> bool {
    let p: Vec<String> = p.iter().map(seg_text).collect();
    locations(r).iter().any(|(ip, msg)| {
        let prefix =
            !ip.is_empty() && ip.len().min(p.len()) > 0 && ip.iter().zip(&p).all(|(a, b)| a == b);
        // Only keys, not array indexes, are names.
        let named = p
            .iter()
            .any(|k| k.parse::<usize>().is_err() && !k.is_empty() && msg.contains(k.as_str()));
        prefix || named
    })
}

/// Checks an answer to a request with bad input (`legacy`: under `/api/v1`).
fn check(r: &Resp, legacy: bool, touched: &[JPath]) -> Result<(), String> {
    if r.status >= 500 {
        return Err(format!(
            "{} answered for a client mistake: {}",
            r.status, r.text
        ));
    }
    if r.status < 400 {
        return Ok(());
    }
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(format!("{} with content type {ct:?}: {}", r.status, r.text));
    }
    if legacy {
        let ok = r.json["success"] == json!(false)
            && r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        if !ok {
            return Err(format!("not the legacy error shape: {}", r.text));
        }
        let msg = r.json["error"]["message"].as_str().unwrap_or("");
        if r.status == 400
            && !touched.iter().any(|p| {
                p.iter()
                    .any(|s| matches!(s, Seg::Key(k) if msg.contains(k.as_str())))
            })
        {
            return Err(format!(
                "validation error names no mutated field: {}",
                r.text
            ));
        }
        return Ok(());
    }
    let code = r.code();
    if !CODES.contains(&code) || code != code_for(r.status) {
        return Err(format!("code {code:?} for status {}: {}", r.status, r.text));
    }
    if r.message().is_empty() {
        return Err(format!("no message: {}", r.text));
    }
    if let Some(issues) = r.json.get("issues") {
        let Some(issues) = issues.as_array() else {
            return Err(format!("issues is not an array: {}", r.text));
        };
        for i in issues {
            if !i["message"].is_string() || !(i["path"].is_null() || i["path"].is_array()) {
                return Err(format!("malformed issue: {}", r.text));
            }
        }
    }
    if r.status == 400 {
        let validation = r.message() == "Input validation failed";
        if validation && r.json["issues"].as_array().is_none_or(|i| i.is_empty()) {
            return Err(format!("validation failure without issues: {}", r.text));
        }
        // Every 400, not only validation failures, says which field is wrong.
        if !touched.iter().any(|p| names(r, p)) {
            return Err(format!(
                "400 names none of the mutated fields {touched:?}: {}",
                r.text
            ));
        }
    }
    Ok(())
}

/// Counts answers by status; printed with `--nocapture` to see what the cases reached.
fn tally(status: u16) {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static SEEN: Mutex<BTreeMap<u16, usize>> = Mutex::new(BTreeMap::new());
    let mut seen = SEEN.lock().unwrap();
    *seen.entry(status).or_default() += 1;
    if seen.values().sum::<usize>() % 200 == 0 {
        eprintln!("statuses so far: {seen:?}");
    }
}

async fn send(
    srv: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Result<Resp, String> {
    let mut req = srv.raw(method, path).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(b);
    }
    match req.send().await {
        Ok(r) => Ok(Resp::from(r).await),
        Err(e) => Err(format!("transport error (server down?): {e}")),
    }
}

/// The server still answers: `/healthz` and an authenticated read.
async fn assert_healthy(srv: &TestServer, fx: &Fx) {
    let r = srv.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    srv.get("/api/v2/whoami", &fx.org.user_key)
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------
// Fixture: one of each resource the operations address

struct Fx {
    org: TestOrg,
    run_id: String,
    upload_id: String,
    htf_upload: String,
    csv_upload: String,
}

const PART: &str = "PN-FIX";
const REVISION: &str = "R-FIX";
const UNIT: &str = "U-FIX";
const BATCH: &str = "B-FIX";
const CHILD: &str = "C-FIX";

const CSV: &str = "Serial,Result,Start,End,Step,Voltage\n\
    SN-CSV-1,ok,2026-01-02T03:04:05Z,2026-01-02T03:05:00Z,power,3.3\n";

async fn fixture(srv: &TestServer) -> Fx {
    let org = srv.org("Lab").await;
    let r = srv
        .post(
            "/api/v2/runs",
            &org.user_key,
            json!({"serial_number": UNIT, "procedure_id": org.procedure_id, "part_number": PART,
                   "revision_number": REVISION, "batch_number": BATCH,
                   "started_at": "2026-03-01T10:00:00Z", "ended_at": "2026-03-01T10:05:00Z",
                   "outcome": "PASS"}),
        )
        .await;
    let run_id = r.expect(200)["id"].as_str().unwrap().to_string();
    srv.post(
        "/api/v2/units",
        &org.user_key,
        json!({"serial_number": CHILD, "part_number": PART, "revision_number": REVISION}),
    )
    .await
    .expect(200);
    let upload_id = upload(srv, &org.user_key, "data.bin", vec![1, 2, 3]).await;
    let htf_upload = upload(
        srv,
        &org.user_key,
        "report.json",
        record(SAMPLE, "SN-HTF", Some(&org.procedure_id), Some("PN-HTF")),
    )
    .await;
    let csv_upload = upload(srv, &org.user_key, "results.csv", CSV.as_bytes().to_vec()).await;
    Fx {
        org,
        run_id,
        upload_id,
        htf_upload,
        csv_upload,
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies

struct BodyOp {
    method: Method,
    path: fn(&Fx) -> String,
    /// A valid body; `n` makes created names unique.
    body: fn(&Fx, u64) -> Value,
}

fn at(min: u32) -> String {
    format!("2026-03-01T10:{min:02}:00Z")
}

fn run_body(fx: &Fx, n: u64) -> Value {
    json!({
        "serial_number": format!("SN-{n}"),
        "procedure_id": fx.org.procedure_id,
        "part_number": PART,
        "revision_number": REVISION,
        "batch_number": BATCH,
        "procedure_version": "1.0.0",
        "operated_by": fx.org.user_email,
        "started_at": at(0),
        "ended_at": at(5),
        "outcome": "PASS",
        "docstring": "run",
        "phases": [{
            "name": "power", "outcome": "PASS", "started_at": at(0), "ended_at": at(1),
            "retry_count": 0, "docstring": "phase",
            "measurements": [
                {"name": "voltage", "outcome": "PASS", "measured_value": 3.3, "units": "V",
                 "lower_limit": 3.0, "upper_limit": 3.6,
                 "validators": [{"operator": ">=", "expected_value": 3.0,
                                 "expression": "x >= 3.0", "outcome": "PASS",
                                 "is_decisive": true}],
                 "aggregations": [{"type": "avg", "value": 3.3, "outcome": "PASS",
                                   "unit": "V"}],
                 "docstring": "m"},
                {"name": "curve", "outcome": "UNSET",
                 "x_axis": {"data": [0, 1, 2], "units": "s"},
                 "y_axis": [{"data": [1.0, 2.0, 3.0], "units": "V", "name": "y"}]}
            ]
        }],
        "logs": [{"level": "INFO", "timestamp": at(1), "message": "hello",
                  "source_file": "test.py", "line_number": 3}],
        "metadata": {"line": "L1", "temp": 21.5, "ok": true},
        "unit_metadata": {"fw": "1.2"},
    })
}

fn legacy_run_body(fx: &Fx, n: u64) -> Value {
    json!({
        "unit_under_test": {"serial_number": format!("LSN-{n}"), "part_number": PART,
                            "part_name": "Board", "revision": REVISION, "batch_number": BATCH},
        "run_passed": true,
        "procedure_id": fx.org.procedure_id,
        "procedure_name": "Final test",
        "procedure_version": "1.0",
        "started_at": "2024-01-02T03:04:05Z",
        "duration": "PT1M2.250000S",
        "phases": [{"name": "p", "outcome": "PASS", "start_time_millis": 1704164645000u64,
                    "end_time_millis": 1704164646000u64, "docstring": "d",
                    "measurements": [{"name": "m", "outcome": "PASS", "measured_value": 3.3,
                                      "units": "V", "lower_limit": 3.0, "upper_limit": 3.6,
                                      "validators": ["3.0 <= x <= 3.6"], "docstring": "d"}]}],
        "steps": [{"name": "s", "started_at": "2024-01-02T03:04:05Z", "duration": "PT1.5S",
                   "step_passed": true, "measurement_unit": "V", "measurement_value": 3.3,
                   "limit_low": 3.0, "limit_high": 3.6}],
        "logs": [{"level": "INFO", "timestamp": "2024-01-02T03:04:05Z", "message": "hi",
                  "source_file": "t.py", "line_number": 3}],
        "client": "Python",
        "client_version": "2.26.1",
    })
}

fn tabular_body(fx: &Fx, _: u64) -> Value {
    json!({
        "upload_id": fx.csv_upload,
        "procedure_id": fx.org.procedure_id,
        "mapping": {
            "fields": {
                "serial_number": {"column": "Serial"},
                "outcome": {"column": "Result", "valueMap": {"ok": "PASS", "nok": "FAIL"}},
                "started_at": {"column": "Start"},
                "ended_at": {"column": "End"},
                "part_number": {"value": PART},
            },
            "measurements": {"layout": "wide", "columns": [
                {"column": "Voltage", "name": "voltage", "units": "V",
                 "lowerLimit": 3.0, "upperLimit": 3.6},
            ]},
            "phases": {"nameColumn": "Step"},
            "metadata": [{"key": "line", "value": "L2"}],
        },
    })
}

/// The valid body with unknown fields added anywhere is accepted; mutated bodies never
/// get a 5xx and are rejected in the envelope naming the field. (Unknown fields first:
/// mutations may rename the resources the operation addresses.)
fn body_property(op: BodyOp) {
    let rt = runtime();
    let srv = rt.block_on(TestServer::start());
    let fx = rt.block_on(fixture(&srv));
    let path = (op.path)(&fx);
    let legacy = path.starts_with("/api/v1/");
    let key = fx.org.user_key.clone();

    // NUL characters are refused anywhere in a body (they cannot be stored), unknown
    // fields included: leave them to the mutation property.
    let extra = prop::collection::vec(
        (
            any::<Index>(),
            "[a-z]{1,10}",
            hostile_value(20).prop_filter("no NUL", |v| !v.to_string().contains("\\u0000")),
        ),
        1..4,
    );
    runner()
        .run(&extra, |extras| {
            let mut body = (op.body)(&fx, fresh());
            for (i, k, v) in &extras {
                let objects = field_objects(&body);
                let p = i.get(&objects).clone();
                get_mut(&mut body, &p)
                    .and_then(Value::as_object_mut)
                    .unwrap()
                    .insert(format!("zz_{k}"), v.clone());
            }
            let r = rt
                .block_on(send(&srv, op.method.clone(), &path, &key, Some(&body)))
                .map_err(TestCaseError::fail)?;
            if r.status != 200 {
                return Err(TestCaseError::fail(format!(
                    "unknown fields were refused: {} {path} -> {} {}\nbody: {body}",
                    op.method, r.status, r.text
                )));
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(assert_healthy(&srv, &fx));
    runner()
        .run(&prop::collection::vec(mutation(), 1..=3), |muts| {
            let mut body = (op.body)(&fx, fresh());
            let touched: Vec<JPath> = muts.iter().filter_map(|m| apply(&mut body, m)).collect();
            let r = rt
                .block_on(send(&srv, op.method.clone(), &path, &key, Some(&body)))
                .map_err(TestCaseError::fail)?;
            tally(r.status);
            check(&r, legacy, &touched).map_err(|e| {
                TestCaseError::fail(format!("{} {path}: {e}\nbody: {body}", op.method))
            })
        })
        .unwrap();
    rt.block_on(assert_healthy(&srv, &fx));
}

macro_rules! body_properties {
    ($($name:ident: $method:ident $path:expr, $body:expr;)*) => {$(
        #[test]
        fn $name() {
            body_property(BodyOp {
                method: Method::$method,
                path: $path,
                body: $body,
            });
        }
    )*};
}

body_properties! {
    attachments_initialize: POST |_| "/api/v2/attachments".into(),
        |_, n| json!({"name": format!("report-{n}.txt")});
    batches_create: POST |_| "/api/v2/batches".into(),
        |_, n| json!({"number": format!("B-{n}")});
    batches_update: PATCH |_| format!("/api/v2/batches/{BATCH}"),
        |_, _| json!({"new_number": BATCH});
    imports_structured: POST |_| "/api/v2/imports/structured".into(),
        |fx, _| json!({"items": [{"upload_id": fx.htf_upload, "importer": "OPENHTF"}],
                       "allow_duplicate": true});
    imports_tabular: POST |_| "/api/v2/imports/tabular".into(), tabular_body;
    parts_create: POST |_| "/api/v2/parts".into(),
        |_, n| json!({"number": format!("P-{n}"), "name": format!("Board {n}"),
                      "revision_number": "A", "metadata": {"line": "L1", "rev": 2, "ok": true}});
    parts_update: PATCH |_| format!("/api/v2/parts/{PART}"),
        |_, _| json!({"name": "Board", "metadata": {"k": "v", "gone": null}});
    revisions_create: POST |_| format!("/api/v2/parts/{PART}/revisions"),
        |_, n| json!({"number": format!("R-{n}"), "metadata": {"k": 1}});
    revisions_update: PATCH |_| format!("/api/v2/parts/{PART}/revisions/{REVISION}"),
        |_, _| json!({"number": REVISION, "metadata": {"k": true}});
    procedures_create: POST |_| "/api/v2/procedures".into(),
        |_, n| json!({"name": format!("Procedure {n}")});
    procedures_update: PATCH |fx| format!("/api/v2/procedures/{}", fx.org.procedure_id),
        |_, _| json!({"name": "Functional", "productionBranch": "main",
                      "autoPushEnabled": false, "excludedBranchPatterns": ["wip/*"],
                      "rootDirectory": null, "entryPoint": "main.py"});
    versions_create: POST |fx| format!("/api/v2/procedures/{}/versions", fx.org.procedure_id),
        |_, n| json!({"tag": format!("v{n}")});
    runs_create: POST |_| "/api/v2/runs".into(), run_body;
    runs_update: PATCH |fx| format!("/api/v2/runs/{}", fx.run_id),
        |fx, _| json!({"attachments": [fx.upload_id]});
    runs_create_attachment: POST |fx| format!("/api/v2/runs/{}/attachments", fx.run_id),
        |_, n| json!({"name": format!("log-{n}.txt")});
    runs_update_metadata: PATCH |fx| format!("/api/v2/runs/{}/metadata", fx.run_id),
        |_, _| json!({"metadata": {"k": "v", "n": 1, "b": true, "gone": null}});
    stations_create: POST |_| "/api/v2/stations".into(),
        |fx, n| json!({"name": format!("Bench {n}"), "procedure_id": fx.org.procedure_id,
                       "metadata": {"k": "v"}});
    stations_update: PATCH |fx| format!("/api/v2/stations/{}", fx.org.station_id),
        |_, _| json!({"name": "Bench", "metadata": {"k": 1}});
    units_create: POST |_| "/api/v2/units".into(),
        |_, n| json!({"serial_number": format!("SN-{n}"), "part_number": PART,
                      "revision_number": REVISION, "sample": "golden",
                      "metadata": {"k": "v"}});
    units_update: PATCH |_| format!("/api/v2/units/{UNIT}"),
        |_, _| json!({"part_number": PART, "revision_number": REVISION,
                      "batch_number": BATCH, "metadata": {"k": "v"}});
    units_create_attachment: POST |_| format!("/api/v2/units/{UNIT}/attachments"),
        |_, n| json!({"name": format!("photo-{n}.jpg")});
    units_add_child: PUT |_| format!("/api/v2/units/{UNIT}/children"),
        |_, _| json!({"child_serial_number": CHILD});
    v1_runs_create: POST |_| "/api/v1/runs".into(), legacy_run_body;
    v1_uploads_initialize: POST |_| "/api/v1/uploads/initialize".into(),
        |_, n| json!({"name": format!("f-{n}.json"), "mimeType": "application/json",
                      "sizeBytes": 3});
    v1_uploads_sync: POST |_| "/api/v1/uploads/sync".into(),
        |fx, _| json!({"upload_id": fx.upload_id, "run_id": fx.run_id});
    v1_import: POST |_| "/api/v1/import".into(),
        |fx, _| json!({"upload_id": fx.htf_upload, "importer": "OPENHTF",
                       "client": "Python", "client_version": "2.26.1"});
}

// ---------------------------------------------------------------------------------------
// Query strings of list operations

/// A query value: text to be percent-encoded, or raw bytes as they go on the wire.
#[derive(Debug, Clone)]
enum QValue {
    Text(String),
    Raw(&'static str),
}

fn qvalue() -> impl Strategy<Value = QValue> {
    prop_oneof![
        3 => hostile_string().prop_map(QValue::Text),
        1 => prop::sample::select(vec![
            "-1", "0", "1.5", "1e400", "99999999999999999999999", "NaN", "true", "yes",
            "PASS", "asc", "DESC", "created_at", "P1DT", "PT1S", "{}", "{\"k\":\"v\"}",
            "[1]", "2026-03-01", "2026-03-01T10:00:00",
        ])
        .prop_map(|s| QValue::Text(s.to_string())),
        1 => prop::sample::select(vec![
            "%FF", "%C3%28", "%ED%A0%80", "%00", "a%00b", "%", "%zz", "%%", "+", "&&", "==",
            "%E2%82", "%F0%9F%98%80", "%27%20OR%201%3D1%20--", "%25", "%5F",
        ])
        .prop_map(QValue::Raw),
    ]
}

#[derive(Debug, Clone)]
enum QMutation {
    Remove(Index),
    Replace(Index, QValue),
    Repeat(Index, QValue),
    Unknown(String, QValue),
}

fn qmutation() -> impl Strategy<Value = QMutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(QMutation::Remove),
        4 => (any::<Index>(), qvalue()).prop_map(|(i, v)| QMutation::Replace(i, v)),
        1 => (any::<Index>(), qvalue()).prop_map(|(i, v)| QMutation::Repeat(i, v)),
        1 => ("[a-z_]{1,12}", qvalue()).prop_map(|(k, v)| QMutation::Unknown(k, v)),
    ]
}

fn encode(v: &QValue) -> String {
    match v {
        QValue::Text(t) => form_urlencoded::byte_serialize(t.as_bytes()).collect(),
        QValue::Raw(r) => r.to_string(),
    }
}

/// A valid query of `(key, encoded value)` pairs mutated by `muts`; returns the query
/// and the keys touched.
fn mutate_query(base: &[(&str, String)], muts: &[QMutation]) -> (String, Vec<String>) {
    let mut pairs: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                form_urlencoded::byte_serialize(v.as_bytes()).collect(),
            )
        })
        .collect();
    let mut touched = Vec::new();
    for m in muts {
        match m {
            QMutation::Remove(i) if !pairs.is_empty() => {
                let k = i.index(pairs.len());
                touched.push(pairs.remove(k).0);
            }
            QMutation::Replace(i, v) if !pairs.is_empty() => {
                let k = i.index(pairs.len());
                pairs[k].1 = encode(v);
                touched.push(pairs[k].0.clone());
            }
            QMutation::Repeat(i, v) if !pairs.is_empty() => {
                let k = pairs[i.index(pairs.len())].0.clone();
                pairs.push((k.clone(), encode(v)));
                touched.push(k);
            }
            QMutation::Unknown(k, v) => {
                let k = format!("zz_{k}");
                pairs.push((k.clone(), encode(v)));
                touched.push(k);
            }
            _ => {}
        }
    }
    let q = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    (q, touched)
}

/// Mutated queries never get a 5xx; rejections are the envelope naming the parameter;
/// unknown parameters alone are ignored.
fn query_property(path: &str, base: fn(&Fx) -> Vec<(&'static str, String)>) {
    let rt = runtime();
    let srv = rt.block_on(TestServer::start());
    let fx = rt.block_on(fixture(&srv));
    let legacy = path.starts_with("/api/v1/");
    let base = base(&fx);
    let key = fx.org.user_key.clone();

    // The valid query itself is accepted.
    let (q, _) = mutate_query(&base, &[]);
    let r = rt
        .block_on(send(&srv, Method::GET, &format!("{path}?{q}"), &key, None))
        .unwrap();
    assert_eq!(r.status, 200, "{path}?{q}: {}", r.text);

    runner()
        .run(&prop::collection::vec(qmutation(), 1..=3), |muts| {
            let (q, touched) = mutate_query(&base, &muts);
            let url = format!("{path}?{q}");
            let r = rt
                .block_on(send(&srv, Method::GET, &url, &key, None))
                .map_err(TestCaseError::fail)?;
            tally(r.status);
            let touched: Vec<JPath> = touched.into_iter().map(|k| vec![Seg::Key(k)]).collect();
            check(&r, legacy, &touched)
                .map_err(|e| TestCaseError::fail(format!("GET {url}: {e}")))?;
            // Text that is not UTF-8 or holds NUL is refused in any parameter.
            let only_unknown = muts.iter().all(|m| match m {
                QMutation::Unknown(_, QValue::Text(t)) => !t.contains('\0'),
                QMutation::Unknown(_, QValue::Raw(r)) => percent_encoding::percent_decode_str(r)
                    .decode_utf8()
                    .is_ok_and(|t| !t.contains('\0')),
                _ => false,
            });
            if only_unknown && r.status != 200 {
                return Err(TestCaseError::fail(format!(
                    "unknown parameters were refused: GET {url} -> {} {}",
                    r.status, r.text
                )));
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(assert_healthy(&srv, &fx));
}

fn s(v: &str) -> String {
    v.to_string()
}

macro_rules! query_properties {
    ($($name:ident: $path:expr, $base:expr;)*) => {$(
        #[test]
        fn $name() {
            query_property($path, $base);
        }
    )*};
}

query_properties! {
    runs_list: "/api/v2/runs", |fx| vec![
        ("limit", s("50")), ("cursor", s("0")), ("sort_by", s("started_at")),
        ("sort_order", s("desc")), ("search_query", s("U-")), ("serial_numbers", s(UNIT)),
        ("part_numbers", s(PART)), ("revision_numbers", s(REVISION)),
        ("batch_numbers", s(BATCH)), ("procedure_ids", fx.org.procedure_id.clone()),
        ("outcomes", s("PASS")), ("ids", fx.run_id.clone()),
        ("started_after", s("2026-01-01T00:00:00Z")), ("duration_min", s("PT1S")),
        ("procedure_versions", s("1.0")), ("operated_by_names", s("x")),
        ("metadata", s("{\"line\":\"L1\"}")), ("include_metadata", s("true")),
        ("include_sequences", s("false")),
    ];
    units_list: "/api/v2/units", |fx| vec![
        ("latest_only", s("false")), ("exclude_units_with_parent", s("false")),
        ("limit", s("50")), ("sort_by", s("created_at")), ("sort_order", s("desc")),
        ("search_query", s("U")), ("serial_numbers", s(UNIT)), ("part_numbers", s(PART)),
        ("revision_numbers", s(REVISION)), ("batch_numbers", s(BATCH)),
        ("procedure_ids", fx.org.procedure_id.clone()), ("outcomes", s("PASS")),
        ("run_count_min", s("0")), ("run_count_max", s("10")),
        ("created_after", s("2020-01-01T00:00:00Z")), ("samples", s("golden")),
        ("metadata", s("")), ("include_metadata", s("false")),
    ];
    parts_list: "/api/v2/parts", |fx| vec![
        ("limit", s("50")), ("sort_by", s("created_at")), ("sort_order", s("desc")),
        ("search_query", s("PN")), ("procedure_ids", fx.org.procedure_id.clone()),
        ("metadata", s("")), ("include_metadata", s("true")),
    ];
    batches_list: "/api/v2/batches", |_| vec![
        ("limit", s("50")), ("sort_by", s("created_at")), ("sort_order", s("desc")),
        ("search_query", s("B")), ("numbers", s(BATCH)), ("part_numbers", s(PART)),
        ("revision_numbers", s(REVISION)), ("created_after", s("2020-01-01T00:00:00Z")),
    ];
    procedures_list: "/api/v2/procedures", |_| vec![
        ("limit", s("50")), ("cursor", s("0.0")), ("search_query", s("Lab")),
        ("created_after", s("2020-01-01T00:00:00Z")),
        ("created_before", s("2100-01-01T00:00:00Z")),
    ];
    stations_list: "/api/v2/stations", |fx| vec![
        ("limit", s("50")), ("search_query", s("Bench")),
        ("procedure_ids", fx.org.procedure_id.clone()), ("metadata", s("")),
        ("include_metadata", s("true")),
    ];
    logs_list: "/api/v2/logs", |fx| vec![
        ("limit", s("50")), ("search_query", s("hello")), ("levels", s("INFO")),
        ("procedure_ids", fx.org.procedure_id.clone()), ("run_ids", fx.run_id.clone()),
        ("serial_numbers", s(UNIT)), ("source_files", s("test.py")),
        ("timestamp_after", s("2020-01-01T00:00:00Z")), ("sort_order", s("asc")),
    ];
    phases_list: "/api/v2/phases", |fx| vec![
        ("procedure_id", fx.org.procedure_id.clone()), ("names", s("power")),
        ("outcomes", s("PASS")), ("limit", s("50")), ("serial_numbers", s(UNIT)),
        ("duration_max", s("PT1H")), ("exclude_retries", s("true")),
    ];
    measurements_list: "/api/v2/measurements", |fx| vec![
        ("procedure_id", fx.org.procedure_id.clone()), ("phase_name", s("power")),
        ("measurement_name", s("voltage")), ("value_min", s("1.5")),
        ("value_max", s("4")), ("limit", s("50")), ("serial_numbers", s(UNIT)),
        ("measurement_outcomes", s("PASS")),
    ];
    deployments_list: "/api/v2/deployments", |fx| vec![
        ("procedure_ids", fx.org.procedure_id.clone()), ("environments", s("prod")),
        ("pushed", s("true")), ("search_query", s("x")), ("limit", s("50")),
    ];
    users_list: "/api/v2/users", |_| vec![("current", s("false"))];
    v1_runs_list: "/api/v1/runs", |_| vec![("serial_number", s(UNIT))];
}

// ---------------------------------------------------------------------------------------
// Import parsers

use tofulab::db::Id;
use tofulab::import::openhtf::Record;
use tofulab::import::tabular::Table;

/// Everything the importer does with a parsed record.
fn exercise(bytes: &[u8]) {
    if let Ok(rec) = Record::parse(bytes) {
        let _ = rec.serial_number();
        let _ = rec.procedure_ref();
        let _ = rec.sub_units();
        let _ = rec.run_outcome();
        let _ = rec.meta("part_number");
        let _ = rec.to_new_run(Id::new());
    }
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Truncate(Index),
    Insert(Index, &'static str),
    Flip(Index, u8),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        any::<Index>().prop_map(ByteEdit::Truncate),
        (
            any::<Index>(),
            prop::sample::select(vec![
                "NaN",
                "Infinity",
                "-Infinity",
                "1e400",
                "-0",
                "\"\\u0000\"",
                "[",
                "{",
                "}",
                "]",
                ",",
                "\"",
                "\\",
                "null",
                "\u{feff}",
                "\"\\ud800\"",
            ])
        )
            .prop_map(|(i, s)| ByteEdit::Insert(i, s)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
    ]
}

#[test]
fn openhtf_parser_never_panics_on_arbitrary_bytes() {
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..1024), |bytes| {
            exercise(&bytes);
            let mut with_brace = b"{".to_vec();
            with_brace.extend_from_slice(&bytes);
            exercise(&with_brace);
            let _ = Table::parse(&bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn openhtf_parser_never_panics_on_mutated_records() {
    let sample: Value = serde_json::from_str(SAMPLE).unwrap();
    runner()
        .run(
            &(
                prop::collection::vec(mutation(), 1..=4),
                prop::collection::vec(byte_edit(), 0..3),
            ),
            |(muts, edits)| {
                let mut doc = sample.clone();
                for m in &muts {
                    apply(&mut doc, m);
                }
                let mut bytes = serde_json::to_vec(&doc).unwrap();
                exercise(&bytes);
                for e in &edits {
                    match e {
                        ByteEdit::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
                        ByteEdit::Insert(i, s) => {
                            let at = i.index(bytes.len() + 1);
                            bytes.splice(at..at, s.bytes());
                        }
                        ByteEdit::Flip(i, b) if !bytes.is_empty() => {
                            let at = i.index(bytes.len());
                            bytes[at] = *b;
                        }
                        ByteEdit::Flip(..) => {}
                    }
                }
                exercise(&bytes);
                Ok(())
            },
        )
        .unwrap();
}
