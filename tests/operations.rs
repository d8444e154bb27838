//! Operations: every answer carries `X-Request-Id` (the client's, or a new UUID) and
//! every log line of the request names it; API answers carry the caller's rate-limit
//! budget (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`).

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
