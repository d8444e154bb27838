//! Operations: every answer carries `X-Request-Id` (the client's, or a new UUID) and
//! every log line of the request names it; API answers carry the caller's rate-limit
//! budget (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`); Prometheus metrics
//! move as requests are made.

mod common;
mod process_support;

use common::*;
use reqwest::Method;
use tofulab::Settings;

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let mut seen = std::collections::HashSet::new();
    for (path, key) in [
        ("/healthz", None),
        ("/api/v2/whoami", Some(org.user_key.as_str())),
        ("/api/v2/whoami", None),
        ("/api/v2/nothing-here", Some(org.user_key.as_str())),
    ] {
        let r = srv.call(Method::GET, path, key, None).await;
        let id = header(&r, "x-request-id").to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        assert!(seen.insert(id), "a new id per request");
    }
    let r = Resp::from(
        reqwest::Client::new()
            .get(format!("{}/api/v2/whoami", srv.url))
            .bearer_auth(&org.user_key)
            .header("x-request-id", "client-chosen-17")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(header(&r, "x-request-id"), "client-chosen-17");
}

#[tokio::test]
async fn log_lines_of_a_request_name_its_id() {
    let srv = process_support::Server::start(&["--ephemeral", "--rate-limit", "off"]);
    let r = reqwest::Client::new()
        .get(format!("{}/api/v2/whoami", srv.url))
        .header("x-request-id", "trace-me-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "trace-me-4242");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = srv.stderr.text();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("trace-me-4242"))
            .collect();
        if let Some(line) = lines.first() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
            assert_eq!(v["span"]["request_id"], "trace-me-4242", "{line}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line names it:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    srv.stop_with("TERM");
}

#[tokio::test]
async fn api_answers_carry_the_rate_limit_budget() {
    // 5 requests per second, bursts of 10.
    let srv = TestServer::start_with(Settings::default(), Some(5)).await;
    let org = srv.org("Lab").await;
    let first = srv.get("/api/v2/whoami", &org.user_key).await;
    first.expect(200);
    assert_eq!(header(&first, "ratelimit-limit"), "10");
    assert_eq!(header(&first, "ratelimit-remaining"), "9");
    let reset: u64 = header(&first, "ratelimit-reset").parse().unwrap();
    assert!(
        reset <= 1,
        "one request used: back within a fifth of a second, {reset}"
    );
    let mut last_remaining = 9;
    let limited = loop {
        let r = srv.get("/api/v2/whoami", &org.user_key).await;
        if r.status == 429 {
            break r;
        }
        let remaining: u32 = header(&r, "ratelimit-remaining").parse().unwrap();
        assert!(
            remaining <= last_remaining,
            "{remaining} after {last_remaining}"
        );
        last_remaining = remaining;
    };
    assert_error_envelope(&limited);
    assert_eq!(header(&limited, "ratelimit-remaining"), "0");
    assert_eq!(header(&limited, "ratelimit-limit"), "10");
    let retry: u64 = header(&limited, "retry-after").parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(header(&limited, "ratelimit-reset"), retry.to_string());

    // Without limits, no budget to announce.
    let open = TestServer::start().await;
    let org = open.org("Lab").await;
    let r = open.get("/api/v2/whoami", &org.user_key).await;
    assert!(r.headers.get("ratelimit-limit").is_none());
}

/// The value of the series `name` whose labels include every `k="v"` of `labels`
/// (0 when absent), from a scrape.
fn series(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            let head = l.rsplit_once(' ').map_or("", |(h, _)| h);
            let rest = &head[name.len()..];
            (rest.is_empty() || rest.starts_with('{'))
                && labels
                    .iter()
                    .all(|(k, v)| head.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

async fn scrape(srv: &TestServer) -> String {
    let r = srv.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        header(&r, "content-type").starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.headers
    );
    r.text.clone()
}

#[tokio::test]
async fn metrics_move_as_requests_are_made() {
    let settings = Settings {
        metrics: tofulab::monitoring::MetricsMode::On,
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings.clone(), None).await;
    let org = srv.org("Lab").await;
    let before = scrape(&srv).await;
    for _ in 0..3 {
        srv.get("/api/v2/whoami", &org.user_key).await.expect(200);
    }
    let t = "2026-01-01T00:00:00Z";
    let run = srv
        .post(
            "/api/v2/runs",
            &org.station_key,
            serde_json::json!({"serial_number": "SN-M", "part_number": "P", "outcome": "PASS",
                "procedure_id": org.procedure_id, "started_at": t, "ended_at": t,
                "phases": [{"name": "p", "outcome": "PASS", "started_at": t, "ended_at": t,
                            "measurements": [{"name": "a", "outcome": "PASS"},
                                             {"name": "b", "outcome": "PASS"},
                                             {"name": "c", "outcome": "PASS"}]}]}),
        )
        .await;
    let run_id = run.expect(200)["id"].as_str().unwrap().to_string();
    srv.get(&format!("/api/v2/runs/{run_id}"), &org.user_key)
        .await
        .expect(200);
    let upload = srv
        .post(
            "/api/v2/attachments",
            &org.user_key,
            serde_json::json!({"name": "a.bin"}),
        )
        .await
        .expect(200)
        .clone();
    let put = reqwest::Client::new()
        .put(upload["upload_url"].as_str().unwrap())
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let after = scrape(&srv).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        series(&after, name, labels) - series(&before, name, labels)
    };
    let whoami = [
        ("operation", "/api/v2/whoami"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert!(
        delta("tofulab_http_requests_total", &whoami) >= 3.0,
        "{after}"
    );
    let by_id = [("operation", "/api/v2/runs/{id}"), ("method", "GET")];
    assert!(
        delta("tofulab_http_requests_total", &by_id) >= 1.0,
        "{after}"
    );
    assert!(
        delta("tofulab_http_request_duration_seconds_count", &whoami[..2]) >= 3.0,
        "{after}"
    );
    assert!(delta("tofulab_runs_ingested_total", &[]) >= 1.0);
    assert!(delta("tofulab_measurements_ingested_total", &[]) >= 3.0);
    assert!(delta("tofulab_upload_bytes_total", &[]) >= 1000.0);
    assert!(
        after.contains("tofulab_db_connections{state=\"idle\"}"),
        "{after}"
    );
    assert!(!after.contains(&org.user_key), "no key in the metrics");

    // Rate-limited requests are counted.
    let limited = TestServer::start_with(settings, Some(1)).await;
    let org = limited.org("Lab").await;
    let before = series(&scrape(&limited).await, "tofulab_rate_limited_total", &[]);
    let mut refused = 0;
    for _ in 0..6 {
        if limited.get("/api/v2/whoami", &org.user_key).await.status == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 1);
    let after = series(&scrape(&limited).await, "tofulab_rate_limited_total", &[]);
    assert!(after - before >= refused as f64, "{before} → {after}");
}

#[tokio::test]
async fn metrics_are_off_unless_asked_for_and_may_have_their_own_listener() {
    let srv = TestServer::start().await;
    let r = srv.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 404);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let own = process_support::Server::start(&["--ephemeral", "--metrics", &addr]);
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("tofulab_db_connections"), "{text}");
    let on_api = reqwest::get(format!("{}/metrics", own.url)).await.unwrap();
    assert_eq!(on_api.status(), 404, "only on its own listener");
    own.stop_with("TERM");
}

/// Sends `head` then the body in `pieces` with `pause` between them (stopping after
/// `stop_after` pieces if given), and returns the raw answer.
async fn slow_request(
    addr: &str,
    head: String,
    body: &[u8],
    pieces: usize,
    pause: std::time::Duration,
    stop_after: Option<usize>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = body.len().div_ceil(pieces);
    for (i, piece) in body.chunks(chunk).enumerate() {
        if stop_after.is_some_and(|n| i >= n) {
            break;
        }
        tcp.write_all(piece).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tcp.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_a_moving_one_is_never_cut() {
    let settings = Settings {
        request_timeout: std::time::Duration::from_secs(1),
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Lab").await;
    let addr = srv.url.trim_start_matches("http://").to_string();
    let body = serde_json::to_vec(&serde_json::json!({
        "serial_number": "SN-SLOW", "part_number": "P", "outcome": "PASS",
        "procedure_id": org.procedure_id, "started_at": "2026-01-01T00:00:00Z",
        "ended_at": "2026-01-01T00:00:01Z"}))
    .unwrap();
    let head = |path: &str, len: usize, auth: bool| {
        let auth = if auth {
            format!("authorization: Bearer {}\r\n", org.user_key)
        } else {
            String::new()
        };
        format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\n\
             content-length: {len}\r\nconnection: close\r\n\r\n"
        )
    };
    let pause = std::time::Duration::from_millis(300);

    // Stalls after a few bytes: 408 in the envelope.
    let stalled = slow_request(
        &addr,
        head("/api/v2/runs", body.len(), true),
        &body,
        10,
        pause,
        Some(2),
    )
    .await;
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains("\"code\":\"TIMEOUT\""), "{stalled}");

    // Still moving, for three times the timeout in all: never cut.
    let moving = slow_request(
        &addr,
        head("/api/v2/runs", body.len(), true),
        &body,
        10,
        pause,
        None,
    )
    .await;
    assert!(moving.starts_with("HTTP/1.1 200"), "{moving}");

    // An upload that stalls: 408, and nothing is kept.
    let upload = srv
        .post(
            "/api/v2/attachments",
            &org.user_key,
            serde_json::json!({"name": "s.bin"}),
        )
        .await
        .expect(200)
        .clone();
    let url = upload["upload_url"].as_str().unwrap();
    let path = &url[url.find("/files/").unwrap()..];
    let bytes = vec![5u8; 10_000];
    let put = format!(
        "PUT {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bytes.len()
    );
    let stalled = slow_request(&addr, put, &bytes, 10, pause, Some(3)).await;
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
}
