//! Closed-loop load: `concurrency` tokio tasks take the next request number until `n`
//! are done; each request's latency is recorded.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Latencies;

/// Runs `op(0..n)` on `concurrency` tasks; returns the wall time and the latencies.
pub async fn drive<F, Fut>(n: usize, concurrency: usize, op: F) -> (Duration, Latencies)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut own = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return own;
                    }
                    let t = Instant::now();
                    op(i).await;
                    own.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("a load task panicked"));
    }
    (start.elapsed(), Latencies::new(all))
}

/// A `reqwest` client for the benchmark: keep-alive connections, enough of them for
/// every task.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}
