//! Connection reuse: the official Rust client gets `Connection: close` (see
//! `middleware::connection`); other clients keep their connections alive.

mod common;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn the_rust_client_gets_one_request_per_connection() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for (ua, close) in [
        ("tofupilot-rust/2.26.1", true),
        ("python-httpx/0.27.0", false),
        ("curl/8.5.0", false),
    ] {
        let r = srv
            .raw(Method::GET, "/api/v2/parts")
            .bearer_auth(&org.user_key)
            .header("user-agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let connection = r
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            connection.as_deref() == Some("close"),
            close,
            "{ua}: {connection:?}"
        );
    }
    // Errors too (the retry that hurts follows a write, but any response may be the one
    // in flight).
    let r = srv
        .raw(Method::GET, "/api/v2/parts/NOPE")
        .bearer_auth(&org.user_key)
        .header("user-agent", "tofupilot-rust/2.26.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers().get("connection").unwrap(), "close");
    // And the official client works as before.
    let c = srv.client(&org.user_key);
    c.parts().create().number("P-1").send().await.unwrap();
    c.parts().get().number("P-1").send().await.unwrap();
}
