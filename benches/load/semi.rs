//! Figure 5, STDF import: one STDF datalog of `parts` parts (`tests` PTRs each, about
//! `mib` MiB) uploaded, then imported with one `POST /api/v2/imports/structured`; runs/s
//! and the server's resident memory growth while importing (peak − resident before).
//!
//! Baseline: the same runs (same part, batch, phase, measurements with the same values,
//! units and limits, same metadata) posted through `POST /api/v2/runs` by 32 concurrent
//! clients. The ratio import ÷ posting says whether a file import is at least as fast
//! as posting its runs one by one; the memory growth must stay under 128 MiB whatever
//! the file's size (the import streams the file and writes runs in batches).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::drive::{client, drive};
use crate::fixture::{KEY, PROCEDURES};
use crate::ingest::CONCURRENCY;
use crate::server::Server;

pub struct SemiResult {
    pub parts: usize,
    pub tests: usize,
    pub file_bytes: usize,
    pub import_wall: Duration,
    pub post_wall: Duration,
    /// Server resident memory before the import and its peak during it, KiB.
    pub before_kib: u64,
    pub peak_kib: u64,
}

impl SemiResult {
    pub fn import_rate(&self) -> f64 {
        self.parts as f64 / self.import_wall.as_secs_f64()
    }

    pub fn post_rate(&self) -> f64 {
        self.parts as f64 / self.post_wall.as_secs_f64()
    }

    pub fn growth_kib(&self) -> u64 {
        self.peak_kib.saturating_sub(self.before_kib)
    }
}

/// Bytes of one PTR as written here (header included), for sizing.
const PTR_BYTES: usize = 4 + 4 + 4 + 4 + 7 + 1 + 1 + 3 + 8 + 2;
const START: u32 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// The measured value of test `t` of part `p` (exactly representable as `f32`).
fn value(p: usize, t: usize) -> f32 {
    1.0 + ((p + t) % 64) as f32 / 64.0
}

/// Writes an STDF V4 (little-endian) datalog: MIR, `parts` parts of `tests` PTRs on
/// four sites in turn, MRR.
pub fn datalog(parts: usize, tests: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts * (tests * PTR_BYTES + 64) + 256);
    let rec = |out: &mut Vec<u8>, typ: u8, sub: u8, body: &[u8]| {
        out.extend((body.len() as u16).to_le_bytes());
        out.push(typ);
        out.push(sub);
        out.extend_from_slice(body);
    };
    let cn = |b: &mut Vec<u8>, s: &str| {
        b.push(s.len() as u8);
        b.extend(s.as_bytes());
    };
    rec(&mut out, 0, 10, &[2, 4]);
    let mut mir = Vec::new();
    mir.extend(START.to_le_bytes());
    mir.extend(START.to_le_bytes());
    mir.extend([1, b'P', b' ', b' ', 0, 0, b' ']);
    for s in [
        "BENCH-LOT",
        "BENCH-PART",
        "bench-node",
        "93K",
        "Bench STDF",
        "1.0",
    ] {
        cn(&mut mir, s);
    }
    rec(&mut out, 1, 10, &mir);
    let mut body = Vec::with_capacity(64);
    for p in 0..parts {
        let site = (p % 4) as u8 + 1;
        rec(&mut out, 5, 10, &[1, site]);
        for t in 0..tests {
            body.clear();
            body.extend((t as u32).to_le_bytes());
            body.extend([1, site, 0, 0xC0]);
            body.extend(value(p, t).to_le_bytes());
            cn(&mut body, &format!("T{t:05}"));
            cn(&mut body, "");
            body.extend([0, 0, 0, 0]);
            body.extend(0.5f32.to_le_bytes());
            body.extend(2.5f32.to_le_bytes());
            cn(&mut body, "V");
            rec(&mut out, 15, 10, &body);
        }
        body.clear();
        body.extend([1, site, 0]);
        body.extend((tests as u16).to_le_bytes());
        body.extend(1u16.to_le_bytes());
        body.extend(1u16.to_le_bytes());
        body.extend((p as i16 % 100).to_le_bytes());
        body.extend((p as i16 / 100).to_le_bytes());
        body.extend(100u32.to_le_bytes());
        cn(&mut body, &format!("S-{p:06}"));
        cn(&mut body, "");
        rec(&mut out, 5, 20, &body);
    }
    rec(&mut out, 1, 20, &[0, 0, 0, 0, b'A', 0, 0]);
    out
}

/// The tests per part that make `parts` parts about `mib` MiB.
pub fn tests_for(parts: usize, mib: usize) -> usize {
    ((mib << 20) / parts.max(1) / PTR_BYTES).max(1)
}

/// Part `p` as a `POST /api/v2/runs` body holding what its import creates.
fn run_body(p: usize, tests: usize) -> Value {
    let ts = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(START as i64 * 1000 + ms)
            .expect("timestamp")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let measurements: Vec<Value> = (0..tests)
        .map(|t| {
            json!({
                "name": format!("T{t:05}"),
                "outcome": "PASS",
                "measured_value": value(p, t),
                "units": "V",
                "docstring": format!("test_num={t}"),
                "validators": [{"operator": "range", "expected_value": [0.5, 2.5],
                                "expression": "0.5 <= x <= 2.5"}],
            })
        })
        .collect();
    json!({
        "serial_number": format!("P-{p:06}"),
        "procedure_id": PROCEDURES[0],
        "procedure_version": "1.0",
        "part_number": "BENCH-PART",
        "batch_number": "BENCH-LOT",
        "outcome": "PASS",
        "started_at": ts(0),
        "ended_at": ts(100),
        "metadata": {"lot_id": "BENCH-LOT", "x": p % 100, "y": p / 100, "hard_bin": 1,
                     "soft_bin": 1, "head": 1, "site": p % 4 + 1, "station": "bench-node",
                     "tester_type": "93K", "mode_code": "P", "lot_disposition": "A"},
        "phases": [{
            "name": "Bench STDF",
            "outcome": "PASS",
            "started_at": ts(0),
            "ended_at": ts(100),
            "measurements": measurements,
        }],
    })
}

pub async fn measure(server: &Server, parts: usize, mib: usize) -> SemiResult {
    let tests = tests_for(parts, mib);
    let file = datalog(parts, tests);
    let file_bytes = file.len();
    eprintln!(
        "  STDF: {parts} parts × {tests} tests, {:.1} MiB",
        file_bytes as f64 / 1048576.0
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(6 * 3600))
        .build()
        .expect("HTTP client");
    let init: Value = http
        .post(format!("{}/api/v2/attachments", server.base))
        .bearer_auth(KEY)
        .json(&json!({"name": "bench.stdf"}))
        .send()
        .await
        .expect("attachments.initialize")
        .json()
        .await
        .expect("initialize body");
    let upload_id = init["id"].as_str().expect("upload id").to_string();
    let url = init["upload_url"].as_str().expect("upload url").to_string();
    let put = http.put(url).body(file).send().await.expect("upload PUT");
    assert!(put.status().is_success(), "upload: {}", put.status());

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_kib = server.rss_kib();
    server.reset_peak();
    let t = Instant::now();
    let r: Value = http
        .post(format!("{}/api/v2/imports/structured", server.base))
        .bearer_auth(KEY)
        .json(&json!({"items": [{"upload_id": upload_id, "importer": "STDF"}]}))
        .send()
        .await
        .expect("imports.structured")
        .json()
        .await
        .expect("import body");
    let import_wall = t.elapsed();
    let peak_kib = server.peak_kib();
    let result = &r["results"][0];
    assert_eq!(result["success"], json!(true), "import: {r}");
    assert_eq!(
        result["ids"].as_array().map(Vec::len),
        Some(parts),
        "import: {}",
        result["warnings"]
    );

    let client = client();
    let url = format!("{}/api/v2/runs", server.base);
    let (post_wall, _) = drive(parts, CONCURRENCY, move |p| {
        let req = client
            .post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(run_body(p, tests).to_string());
        async move {
            let r = req.send().await.expect("POST /api/v2/runs");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(status.is_success(), "POST /api/v2/runs: {status} {text}");
        }
    })
    .await;
    SemiResult {
        parts,
        tests,
        file_bytes,
        import_wall,
        post_wall,
        before_kib,
        peak_kib,
    }
}

/// The figure's rows of a backend's table (`goal` wraps a goal as the backend shows it).
pub fn rows(
    r: &SemiResult,
    goal: impl Fn(&str) -> String,
    yes_no: fn(bool) -> &'static str,
) -> String {
    let ratio = r.import_rate() / r.post_rate();
    let growth_mib = r.growth_kib() as f64 / 1024.0;
    format!(
        "| STDF import, {} parts × {} tests ({:.0} MiB), one request | {:.0} runs/s ({:.1} s) | \
         {:.0} runs/s ({:.1} s; the same runs via `POST /api/v2/runs`, {} clients) | {:.2}× | {} | {} |\n\
         | Resident memory growth while importing it | {:.1} MiB | {:.1} MiB (before the import) | | {} | {} |\n",
        r.parts,
        r.tests,
        r.file_bytes as f64 / 1048576.0,
        r.import_rate(),
        r.import_wall.as_secs_f64(),
        r.post_rate(),
        r.post_wall.as_secs_f64(),
        CONCURRENCY,
        ratio,
        goal("≥ 1×"),
        yes_no(ratio >= 1.0),
        growth_mib,
        r.before_kib as f64 / 1024.0,
        goal("< 128 MiB"),
        yes_no(growth_mib < 128.0),
    )
}
