//! What every benchmark database starts with (a seed file the server applies at start,
//! or the benchmark through the library) and the run payloads clients send.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The user key of the benchmark organization.
pub const KEY: &str = "tp_user_benchmark0000000000000000000000";

/// Procedures of the benchmark organization: most runs go to the first.
pub const PROCEDURES: [&str; 4] = [
    "0b000000-0000-7000-8000-000000000001",
    "0b000000-0000-7000-8000-000000000002",
    "0b000000-0000-7000-8000-000000000003",
    "0b000000-0000-7000-8000-000000000004",
];

const PROCEDURE_NAMES: [&str; 4] = ["Functional test", "Burn-in", "Calibration", "Final QA"];

/// Writes the seed file into `dir` and returns its path.
pub fn seed_file(dir: &Path) -> PathBuf {
    let procedures: Vec<Value> = PROCEDURES
        .iter()
        .zip(PROCEDURE_NAMES)
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    let seed = json!({"organizations": [{
        "name": "Benchmark Lab",
        "slug": "benchmark-lab",
        "users": [{"email": "bench@lab.test", "name": "Bench", "api_key": KEY}],
        "procedures": procedures,
    }]});
    let path = dir.join("seed.json");
    std::fs::write(&path, seed.to_string()).expect("write the seed file");
    path
}

/// Run number `i` as a `POST /api/v2/runs` body: `phases` phases of `measurements`
/// numeric measurements each, with limits, on one of 2 000 units of 4 parts, mostly
/// passing, one run a second from 2026-01-01.
pub fn run_payload(i: usize, phases: usize, measurements: usize) -> Value {
    let start = 1_767_225_600 + i as i64; // 2026-01-01T00:00:00Z
    let ts = |s: i64, ms: i64| {
        chrono::DateTime::from_timestamp(s, (ms * 1_000_000) as u32)
            .expect("timestamp")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let unit = i % 2000;
    let phases: Vec<Value> = (0..phases)
        .map(|p| {
            let ms: Vec<Value> = (0..measurements)
                .map(|m| {
                    json!({
                        "name": format!("voltage_{m}"),
                        "outcome": "PASS",
                        "measured_value": 3.3 + ((i + m) % 7) as f64 * 0.01,
                        "units": "V",
                        "validators": [
                            {"operator": ">=", "expected_value": 3.0},
                            {"operator": "<=", "expected_value": 3.6}
                        ]
                    })
                })
                .collect();
            json!({
                "name": format!("phase_{p}"),
                "outcome": "PASS",
                "started_at": ts(start, p as i64 * 10),
                "ended_at": ts(start, p as i64 * 10 + 9),
                "measurements": ms,
            })
        })
        .collect();
    json!({
        "serial_number": format!("ING-{unit:05}"),
        "procedure_id": PROCEDURES[i % 3],
        "part_number": format!("ING-PART-{}", unit % 4),
        "revision_number": "A",
        "batch_number": format!("ING-LOT-{}", unit / 100),
        "outcome": if i % 10 == 9 { "FAIL" } else { "PASS" },
        "started_at": ts(start, 0),
        "ended_at": ts(start, 999),
        "phases": phases,
    })
}
