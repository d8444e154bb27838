//! Figure 3, fixture start: how long a test suite waits for a fresh tofulab. From the
//! spawn of the process to the first `GET /readyz` that answers 200, on a database that
//! did not exist (so the migrations run): `serve --ephemeral` on SQLite, a new empty
//! database on Postgres (created before the clock starts). Median and p90 of 20.
//!
//! Baseline: spawning `tofulab --version` until it exits, median of 20: what starting
//! any process of this binary costs on this machine right now, which tofulab cannot go
//! below. Also recorded: the server's resident memory once ready.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::backend::{Backend, Database};
use crate::server::{Server, BIN};
use crate::stats::Latencies;

pub struct StartResult {
    pub ready: Latencies,
    pub version: Latencies,
    /// Resident memory at ready, largest of the starts, KiB.
    pub rss_kib: u64,
}

pub async fn measure(backend: Backend, scratch: &Path, times: usize) -> StartResult {
    let mut version = Vec::new();
    for _ in 0..times {
        let t = Instant::now();
        let status = Command::new(BIN)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .expect("run tofulab --version");
        version.push(t.elapsed());
        assert!(status.success());
    }

    let log = scratch.join("start.log");
    let mut ready = Vec::new();
    let mut rss_kib = 0;
    for _ in 0..times {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Database::fresh(backend, scratch, "start").await),
        };
        let mut args = vec!["--log-format", "json"];
        match &db {
            None => args.push("--ephemeral"),
            Some(d) => args.extend(["--database-url", d.url.as_str()]),
        }
        let t = Instant::now();
        let mut server = Server::spawn(&args, &log);
        server.wait_ready(Duration::from_secs(60), &log).await;
        ready.push(t.elapsed());
        rss_kib = rss_kib.max(server.rss_kib());
        server.stop();
        if let Some(d) = db {
            d.drop_now().await;
        }
    }
    StartResult {
        ready: Latencies::new(ready),
        version: Latencies::new(version),
        rss_kib,
    }
}
