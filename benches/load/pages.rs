//! Figure 2c, dashboard pages at scale: after the reads, the benchmark signs in like a
//! browser (`POST /login`, session cookie) and fetches each page of the dashboard, one
//! request at a time, on the same database (`read::seed`, 1 000 000 runs by default):
//! the Runs page unfiltered and filtered, a Run page (50 phases × 20 measurements), a
//! Unit page (about 200 runs of history), and the Procedure analytics page over 30 days
//! of the busiest procedure with its yield CSV. The goal is p95 < 500 ms per page.
//!
//! Baseline: `GET /api/v2/whoami`, measured in the read figure — the fixed cost of an
//! authenticated request.

use std::time::Duration;

use crate::drive::drive;
use crate::fixture::{KEY, PROCEDURES};
use crate::read::{post_detail_run, Measured};
use crate::server::Server;
use crate::stats::{ms, ratio, Latencies};

/// The analytics window: 30 whole days of 2025 (the bulk runs span that year).
pub const FROM: &str = "2025-06-01";
pub const TO: &str = "2025-06-30";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(8)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

/// The pages measured: a label and a path.
pub fn cases(run_id: &str) -> Vec<(&'static str, String)> {
    let p0 = PROCEDURES[0];
    vec![
        ("page: runs, no filter", "/".into()),
        ("page: runs, outcome", "/?outcome=FAIL".into()),
        ("page: runs, serial number", "/?serial=SN-001234".into()),
        (
            "page: runs, procedure",
            format!("/?procedure={}", PROCEDURES[2]),
        ),
        (
            "page: runs, part + date range",
            "/?part=BP-3&from=2025-06-01&to=2025-06-07".into(),
        ),
        ("page: runs, free text", "/?q=SN-00123".into()),
        ("page: runs, live refresh rows", "/runs/rows".into()),
        (
            "page: run (50 phases × 20 measurements)",
            format!("/runs/{run_id}"),
        ),
        ("page: unit", "/units/SN-001234".into()),
        (
            "page: procedure analytics (30 days)",
            format!("/procedures/{p0}?from={FROM}&to={TO}"),
        ),
        (
            "page: procedure yield CSV (30 days)",
            format!("/procedures/{p0}/csv/yield?from={FROM}&to={TO}"),
        ),
    ]
}

/// Signs in; returns the `Cookie` header.
async fn sign_in(server: &Server) -> String {
    let r = http()
        .post(format!("{}/login", server.base))
        .form(&[("api_key", KEY)])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(r.status().as_u16(), 303, "sign in");
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("session cookie");
    set.split(';').next().unwrap_or_default().to_string()
}

/// Measures every page, `requests` GETs each, one client.
pub async fn run(server: &Server, requests: usize) -> Vec<Measured> {
    let run_id = post_detail_run(server).await;
    let cookie = sign_in(server).await;
    let client = http();
    let mut out = Vec::new();
    for (label, path) in cases(&run_id) {
        let url = format!("{}{path}", server.base);
        let get = |client: reqwest::Client, url: String, cookie: String| async move {
            let r = client
                .get(&url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("GET");
            let status = r.status();
            let body = r.text().await.expect("body");
            assert!(status.is_success(), "GET {url}: {status}");
            body.matches("<tr").count()
        };
        let mut rows = 0;
        for _ in 0..3 {
            rows = get(client.clone(), url.clone(), cookie.clone()).await;
        }
        let (c, u, k) = (client.clone(), url.clone(), cookie.clone());
        let (_, latency) = drive(requests, 1, move |_| {
            let fut = get(c.clone(), u.clone(), k.clone());
            async move {
                fut.await;
            }
        })
        .await;
        eprintln!(
            "  {label:44} p50 {} p95 {}",
            ms(latency.p50()),
            ms(latency.pct(95.0))
        );
        out.push(Measured {
            label,
            concurrency: 1,
            latency,
            rows,
        });
    }
    out
}

/// The rows of the report: p50 / p95 of each page against whoami's, goal p95 < 500 ms.
pub fn rows(pages: &[Measured], whoami: Option<&Latencies>, out: &mut String) {
    use std::fmt::Write as _;
    for m in pages {
        let p95 = m.latency.pct(95.0);
        let _ = writeln!(
            out,
            "| {}, concurrency 1, p50 / p95 | {} / {} | {} (whoami) | {} | p95 < 500 ms | {} |",
            m.label,
            ms(m.latency.p50()),
            ms(p95),
            whoami.map_or("-".into(), |b| format!(
                "{} / {}",
                ms(b.p50()),
                ms(b.pct(95.0))
            )),
            whoami.map_or("-".into(), |b| ratio(
                p95.as_secs_f64(),
                b.pct(95.0).as_secs_f64()
            )),
            if p95 < Duration::from_millis(500) {
                "yes"
            } else {
                "**no**"
            },
        );
    }
}
