//! A `whoami` while a large run body is being parsed: the latency of a cheap request
//! when another client keeps sending 60 MiB JSON bodies (close to the 64 MiB limit),
//! against the same `whoami` with nothing else running.
//!
//! The body is a run of ~850 000 measurements whose last one has an outcome no run may
//! have: the server reads, parses and validates all of it, then answers 400 and stores
//! nothing, so the figure is about parsing, not about the database.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::drive::client;
use crate::fixture::{KEY, PROCEDURES};
use crate::server::Server;
use crate::stats::Latencies;

/// The size of each body, in MiB.
pub const BODY_MIB: usize = 60;

pub struct StallResult {
    pub idle: Latencies,
    pub during: Latencies,
    /// Bodies answered while `during` was measured (at least three).
    pub bodies: usize,
}

/// A run body of about `BODY_MIB` MiB that fails validation at its very end.
fn body() -> Vec<u8> {
    let mut s = String::with_capacity(BODY_MIB << 20);
    s.push_str(&format!(
        r#"{{"serial_number":"STALL-1","procedure_id":"{}","part_number":"STALL","outcome":"PASS","started_at":"2026-03-01T10:00:00Z","ended_at":"2026-03-01T10:05:00Z","phases":[{{"name":"p","outcome":"PASS","started_at":"2026-03-01T10:00:00Z","ended_at":"2026-03-01T10:05:00Z","measurements":["#,
        PROCEDURES[0]
    ));
    let mut i = 0u64;
    while s.len() < (BODY_MIB << 20) - 200 {
        s.push_str(&format!(
            r#"{{"name":"m{i}","outcome":"PASS","measured_value":{i},"units":"V"}},"#
        ));
        i += 1;
    }
    s.push_str(r#"{"name":"last","outcome":"NOT-AN-OUTCOME"}]}]}"#);
    s.into_bytes()
}

/// `whoami`s, one at a time, until `requests` are done and `more()` says stop.
async fn whoamis(server: &Server, requests: usize, more: impl Fn() -> bool) -> Latencies {
    let client = client();
    let url = format!("{}/api/v2/whoami", server.base);
    let mut all = Vec::with_capacity(requests);
    while all.len() < requests || more() {
        let t = Instant::now();
        let r = client
            .get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .expect("whoami");
        assert!(r.status().is_success(), "whoami: {}", r.status());
        r.bytes().await.expect("whoami body");
        all.push(t.elapsed());
        // Spread the samples over the parses.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Latencies::new(all)
}

pub async fn measure(server: &Server, requests: usize) -> StallResult {
    let idle = whoamis(server, requests, || false).await;
    let body = bytes::Bytes::from(body());
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (stop, answered) = (stop.clone(), answered.clone());
        let url = format!("{}/api/v2/runs", server.base);
        tokio::spawn(async move {
            let client = client();
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("POST the large body");
                assert_eq!(r.status().as_u16(), 400, "the large body is refused");
                r.bytes().await.expect("answer");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the first body arrive before measuring.
    while answered.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Measure across at least three whole bodies.
    let before = answered.load(Ordering::Relaxed);
    let during = whoamis(server, requests, || {
        answered.load(Ordering::Relaxed) < before + 3
    })
    .await;
    let bodies = answered.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    sender.await.expect("sender");
    StallResult {
        idle,
        during,
        bodies,
    }
}
