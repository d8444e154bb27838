//! `/readyz` answers 200 when the database answers, on either backend.

mod common;

use common::*;

#[tokio::test]
async fn readyz_is_ready_on_every_backend() {
    let srv = TestServer::start().await;
    let r = Resp::from(reqwest::get(format!("{}/readyz", srv.url)).await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ready");
}
