//! The foundation's error paths (BEHAVIOR.md §13, §14, issue 2 point 7): every non-2xx
//! answer is the `{"message","code","issues"?}` envelope with the right status and code —
//! from extractors, the router, the body limit, the rate limiter and authentication —
//! plus health endpoints, graceful shutdown and key storage.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tofulab::db::Sql;
use tofulab::Settings;

async fn send(req: reqwest::RequestBuilder) -> Resp {
    Resp::from(req.send().await.expect("request")).await
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = srv
            .raw(Method::POST, "/api/v2/procedures")
            .bearer_auth(&org.user_key)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        send(req)
    };
    let json_ct = Some("application/json");

    for body in [
        "{\"name\": ",
        "{name: 1}",
        "not json",
        "{\"name\":\"x\"} trailing",
    ] {
        let r = post(body, json_ct).await;
        r.expect(400);
        assert!(
            r.message().starts_with("Malformed JSON"),
            "{body}: {}",
            r.text
        );
    }
    // Wrong types and missing fields name the field, in `issues[].path` too.
    for (body, field) in [
        ("{\"name\": 12}", "name"),
        ("{\"name\": [\"x\"]}", "name"),
        ("{}", "name"),
        ("", "name"),
        ("{\"nom\": \"x\"}", "name"),
    ] {
        let r = post(body, json_ct).await;
        r.expect(400);
        assert_eq!(r.message(), "Input validation failed", "{body}");
        assert!(r.error_text().contains(field), "{body}: {}", r.text);
    }
    let r = post("{\"name\": 12}", json_ct).await;
    assert_eq!(r.json["issues"][0]["path"], json!(["name"]));
    // Bodies are objects: serde alone would read `["x"]` as `{"name": "x"}`.
    for body in ["[\"x\"]", "\"x\"", "12", "null"] {
        let r = post(body, json_ct).await;
        r.expect(400);
        assert_eq!(
            r.message(),
            "The request body must be a JSON object",
            "{body}"
        );
    }
    // Nested paths carry indexes.
    let r = srv
        .post(
            "/api/v2/stations",
            &org.user_key,
            json!({"name": "x", "metadata": {"k": [1]}}),
        )
        .await;
    r.expect(400);
    assert_eq!(r.json["issues"][0]["path"], json!(["metadata"]));

    // Content types: JSON or nothing; anything else is 415.
    post("{\"name\": \"ok\"}", None).await.expect(200);
    post(
        "{\"name\": \"ok\"}",
        Some("application/json; charset=utf-8"),
    )
    .await
    .expect(200);
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = post("{\"name\": \"ok\"}", Some(ct)).await;
        r.expect(415);
        assert!(r.message().contains("application/json"), "{}", r.text);
    }
    // Query strings: bad values are 400 naming the parameter.
    let r = srv
        .get("/api/v2/procedures?limit=lots", &org.user_key)
        .await;
    r.expect(400);
    assert!(r.error_text().contains("limit"), "{}", r.text);
    // Malformed path ids.
    let r = srv.get("/api/v2/stations/42", &org.user_key).await;
    r.expect(400);
    assert!(r.message().contains("uuid"), "{}", r.text);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_envelope() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let k = Some(org.user_key.as_str());

    for path in [
        "/api/v2/nothing",
        "/api/v2/parts/",
        "/api/v2/units//children",
        "/api/v2/procedures/",
        "/api/v2/stations//",
        "/api/v3/procedures",
        "/api",
        "/api/",
        "/api/trpc/station.nothing",
        "/nothing",
        // (`/` is the dashboard: tests/web.rs.)
    ] {
        for key in [k, None] {
            let r = srv.call(Method::GET, path, key, None).await;
            assert!(
                r.status == 404 || (key.is_none() && r.status == 401),
                "{path}: {}",
                r.status
            );
            assert_error_envelope(&r);
        }
    }
    for (method, path) in [
        (Method::PUT, "/api/v2/procedures"),
        (Method::DELETE, "/api/v2/procedures"),
        (
            Method::POST,
            "/api/v2/procedures/00000000-0000-0000-0000-000000000000",
        ),
        (Method::DELETE, "/api/v2/stations"),
        (Method::PUT, "/api/v2/stations/current"),
        (Method::POST, "/api/v2/whoami"),
        (Method::PATCH, "/api/v2/users"),
        (Method::DELETE, "/api/v2/users/current"),
        (
            Method::GET,
            "/api/v2/procedures/00000000-0000-0000-0000-000000000000/versions",
        ),
        (Method::GET, "/api/trpc/station.linkProcedure"),
        (Method::POST, "/healthz"),
    ] {
        let r = srv.call(method.clone(), path, k, Some(json!({}))).await;
        r.expect(405);
        assert_eq!(
            r.message(),
            "Method not supported for this path",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let settings = Settings {
        max_body_size: 1024,
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Lab").await;
    let big = json!({"name": "x", "pad": "y".repeat(4096)});

    let r = srv
        .post("/api/v2/procedures", &org.user_key, big.clone())
        .await;
    r.expect(413);
    assert!(r.message().contains("1024"), "{}", r.text);
    // Without a Content-Length (chunked): the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"name\": \"x\", \"pad\": \"".to_vec()),
        Ok(vec![b'y'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let r = send(
        srv.raw(Method::POST, "/api/v2/stations")
            .bearer_auth(&org.user_key)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
    )
    .await;
    r.expect(413);
    // Just under the limit is fine.
    srv.post(
        "/api/v2/procedures",
        &org.user_key,
        json!({"name": "x", "pad": "y".repeat(900)}),
    )
    .await
    .expect(200);
}

/// Repeats `request` until it is rate limited (at most 20 times); every earlier answer
/// must have status `ok`. Returns the 429.
async fn until_limited<F, Fut>(request: F, ok: u16) -> Resp
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    for _ in 0..20 {
        let r = request().await;
        if r.status == 429 {
            r.expect(429);
            return r;
        }
        assert_eq!(r.status, ok, "{}", r.text);
    }
    panic!("never rate limited");
}

#[tokio::test]
async fn rate_limits_apply_per_key_and_per_ip_before_auth() {
    // 1 request per second per key, bursts of 2.
    let srv = TestServer::start_with(Settings::default(), Some(1)).await;
    let org = srv.org("Lab").await;

    // Within the burst requests pass; soon after, 429 with Retry-After. (Counted up to a
    // bound rather than exactly, so a slow machine refilling a token cannot fail it.)
    let limited = until_limited(|| srv.get("/api/v2/whoami", &org.user_key), 200).await;
    assert_eq!(limited.code(), "TOO_MANY_REQUESTS");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    // Another key has its own budget.
    srv.get("/api/v2/whoami", &org.station_key)
        .await
        .expect(200);

    // Failed authentication is limited per client address, with or without a key.
    let bad = "tp_user_doesnotexist000000000000000";
    let limited = until_limited(|| srv.get("/api/v2/whoami", bad), 401).await;
    assert!(limited.headers.contains_key("retry-after"));
    until_limited(|| srv.call(Method::GET, "/api/v2/whoami", None, None), 401).await;
    // Keyed state exists for the two keys and the address.
    assert_eq!(srv.state.limiter.tracked_keys(), 3);
}

#[tokio::test]
async fn missing_unknown_and_revoked_keys_are_401() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let k = &org.user_key;
    let truncated = &k[..k.len() - 1];
    let upper = k.to_uppercase();
    let extended = format!("{k}x");

    for (method, path) in [
        (Method::GET, "/api/v2/whoami"),
        (Method::GET, "/api/v2/stations/not-an-id"),
        (Method::POST, "/api/v2/stations"),
        (Method::POST, "/api/trpc/station.linkProcedure"),
    ] {
        let r = srv.call(method.clone(), path, None, Some(json!({}))).await;
        r.expect(401);
        assert!(r.message().contains("Missing API key"), "{}", r.text);
        for key in [
            "tp_user_unknown0000000000000000000000",
            truncated,
            upper.as_str(),
            extended.as_str(),
        ] {
            let r = srv
                .call(method.clone(), path, Some(key), Some(json!({})))
                .await;
            r.expect(401);
            assert_eq!(r.message(), "Invalid API key");
        }
    }
    // Other schemes and malformed headers.
    for header in [
        format!("Basic {k}"),
        k.to_string(),
        "Bearer ".to_string(),
        "Bearer".to_string(),
    ] {
        let r = send(
            srv.raw(Method::GET, "/api/v2/whoami")
                .header("authorization", header.clone()),
        )
        .await;
        r.expect(401);
    }
    // The scheme is case-insensitive.
    let r = send(
        srv.raw(Method::GET, "/api/v2/whoami")
            .header("authorization", format!("bearer {k}")),
    )
    .await;
    r.expect(200);
    // The official client sees a typed 401.
    let r = srv.client(truncated).users().list().send().await;
    assert!(matches!(r, Err(tofupilot::Error::Unauthorized(_))), "{r:?}");

    // Revoked: stops working at once.
    {
        let mut tx = srv.db.begin().await.unwrap();
        tx.execute(
            Sql::new("UPDATE api_keys SET revoked_at = $1 WHERE key_hash = $2")
                .bind(tofulab::db::Ts::now())
                .bind(tofulab::apikey::digest(k)),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let r = srv.get("/api/v2/whoami", k).await;
    r.expect(401);
    // The station's key is unaffected.
    srv.get("/api/v2/whoami", &org.station_key)
        .await
        .expect(200);
}

#[tokio::test]
async fn health_endpoints_need_no_key() {
    let srv = TestServer::start().await;
    let r = srv.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({"status": "ok"}));
    let r = srv.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({"status": "ready"}));
    // A key does not hurt.
    let r = srv
        .call(Method::GET, "/readyz", Some("garbage"), None)
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn server_errors_reveal_nothing() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    // The database goes away under the running server.
    srv.db.close().await;

    // A database that cannot answer is transient trouble: 503 with Retry-After (the
    // TofuPilot CLI's queue retries it), with a fixed body like every 5xx.
    let r = srv.get("/api/v2/procedures", &org.user_key).await;
    r.expect(503);
    assert_eq!(
        r.json,
        json!({"message": "Service temporarily unavailable, retry later", "code": "SERVICE_UNAVAILABLE"})
    );
    assert!(r.headers.get("retry-after").is_some());
    for word in ["sqlx", "pool", "closed", "sqlite", "postgres", "database"] {
        assert!(
            !r.text.to_lowercase().contains(word),
            "{word} in {}",
            r.text
        );
    }
    let r = srv.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.code(), "SERVICE_UNAVAILABLE");
    assert!(r.json["message"].is_string());
    let r = srv.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200, "the process itself is still up");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let url = format!("{}/api/v2/procedures", srv.url);

    // A large body sent slowly: in flight while the shutdown is triggered.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let mut started_tx = Some(started_tx);
    let pieces = 12usize;
    let body = futures_util::stream::iter(0..=pieces + 1).then(move |i| {
        let signal = if i == 1 { started_tx.take() } else { None };
        async move {
            if let Some(s) = signal {
                let _ = s.send(());
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let chunk: Vec<u8> = match i {
                0 => b"{\"name\": \"Slow\", \"pad\": \"".to_vec(),
                i if i <= pieces => vec![b'y'; 100_000],
                _ => b"\"}".to_vec(),
            };
            Ok::<_, std::io::Error>(chunk)
        }
    });
    let key = org.user_key.clone();
    let request = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .expect("the in-flight request completes");
        Resp::from(r).await
    });
    started_rx.await.unwrap();
    let base = srv.url.clone();
    srv.stop().await.expect("clean shutdown");

    let r = request.await.unwrap();
    let body: &Value = r.expect(200);
    assert!(body["id"].is_string(), "{}", r.text);
    // Nothing listens any more.
    let after = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(after.is_err(), "still answering after shutdown: {after:?}");
}

#[tokio::test]
async fn keys_are_stored_hashed() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let rows: Vec<(String, String)> = srv
        .db
        .read()
        .fetch_all(Sql::new("SELECT key_hash, prefix FROM api_keys"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    let keys = [&a.user_key, &a.station_key, &b.user_key, &b.station_key];
    for (hash, prefix) in &rows {
        for key in keys {
            assert!(!hash.contains(key.as_str()) && !prefix.contains(key.as_str()));
            // Nothing longer than the shown prefix of any key is stored.
            let secret = &key[key.rfind('_').unwrap() + 1..];
            assert!(!prefix.contains(&secret[..8]), "{prefix}");
        }
        assert_eq!(hash.len(), 64, "hex SHA-256");
    }
    for key in keys {
        let digest = tofulab::apikey::digest(key);
        assert!(rows.iter().any(|(h, _)| *h == digest));
    }
}
