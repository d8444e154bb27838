//! Figure 1, ingest: `POST /api/v2/runs` with 5 phases × 10 measurements from 32
//! concurrent clients, a fixed number of runs on a fresh database: runs/s and p50/p99
//! latency, and the server's peak resident memory meanwhile (figure 4).
//!
//! Baseline: the same runs written by the same storage code with no HTTP — the request
//! bodies are turned into `NewRun`s beforehand (the route's own conversion) and 32 tasks
//! call `Db::create_run` (one transaction per run) on another fresh database. The ratio
//! HTTP ÷ baseline is what the HTTP layer, JSON parsing, validation, authentication and
//! the client itself cost; the database work is the same in both.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tofulab::db::runs::NewRun;
use tofulab::db::seed::SeedFile;
use tofulab::db::Db;
use tofulab::routes::runs::create::RunCreateRequest;

use crate::backend::{Backend, Database};
use crate::drive::{client, drive};
use crate::fixture::{run_payload, seed_file, KEY};
use crate::server::Server;
use crate::stats::Latencies;

pub const CONCURRENCY: usize = 32;
pub const PHASES: usize = 5;
pub const MEASUREMENTS: usize = 10;

pub struct Throughput {
    pub runs: usize,
    pub wall: Duration,
    pub latency: Latencies,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        self.runs as f64 / self.wall.as_secs_f64()
    }
}

pub struct IngestResult {
    pub http: Throughput,
    pub baseline: Throughput,
    /// Server resident memory: peak while ingesting, and once idle before it, KiB.
    pub peak_kib: u64,
    pub idle_kib: u64,
}

/// The baseline: `n` runs through `Db::create_run` on a fresh database.
pub async fn baseline(backend: Backend, scratch: &Path, n: usize) -> Throughput {
    let database = Database::fresh(backend, scratch, "ingest_lib").await;
    let db = Db::connect(&database.url).await.expect("open the database");
    let seed = std::fs::read_to_string(seed_file(scratch)).expect("seed file");
    db.apply_seed(&SeedFile::parse(&seed).expect("seed"))
        .await
        .expect("apply the seed");
    let caller = db
        .find_caller_by_key_digest(&tofulab::apikey::digest(KEY))
        .await
        .expect("key lookup")
        .expect("the seeded key");
    let runs: Arc<Vec<NewRun>> = Arc::new(
        (0..n)
            .map(|i| {
                let body: RunCreateRequest =
                    serde_json::from_value(run_payload(i, PHASES, MEASUREMENTS)).expect("body");
                body.into_new_run().expect("valid run")
            })
            .collect(),
    );
    let db2 = db.clone();
    let (wall, latency) = drive(n, CONCURRENCY, move |i| {
        let db = db2.clone();
        let run = runs[i].clone();
        let caller = caller.clone();
        async move {
            db.create_run(&caller, run).await.expect("create_run");
        }
    })
    .await;
    db.close().await;
    database.drop_now().await;
    Throughput {
        runs: n,
        wall,
        latency,
    }
}

/// The HTTP figure: `n` runs posted to `server` (fresh database, seeded).
pub async fn http(server: &Server, n: usize) -> (Throughput, u64, u64) {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..n)
            .map(|i| {
                run_payload(i, PHASES, MEASUREMENTS)
                    .to_string()
                    .into_bytes()
            })
            .collect(),
    );
    let client = client();
    let url = format!("{}/api/v2/runs", server.base);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_kib = server.rss_kib();
    server.reset_peak();
    let (wall, latency) = drive(n, CONCURRENCY, move |i| {
        let req = client
            .post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(bodies[i].clone());
        async move {
            let r = req.send().await.expect("POST /api/v2/runs");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(status.is_success(), "POST /api/v2/runs: {status} {text}");
        }
    })
    .await;
    let peak_kib = server.peak_kib();
    (
        Throughput {
            runs: n,
            wall,
            latency,
        },
        peak_kib,
        idle_kib,
    )
}
