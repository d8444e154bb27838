//! `GET /api/v1/streaming` (BEHAVIOR.md §11.5): the OpenHTF integration asks for live
//! streaming credentials when a test starts. tofulab has no MQTT broker, so it answers
//! with well-formed credentials for a broker that cannot be reached (`127.0.0.1:1`, no
//! reconnect): the client fails to connect, logs a warning and runs the test without
//! streaming. Any 4xx/5xx, an `error` key or `success: false` would instead be logged as
//! an error or retried forever.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use crate::extract::Caller;
use crate::routes::attachments::public_base;
use crate::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamingCredentials {
    token: String,
    operator_page: String,
    client_options: ClientOptions,
    will_options: WillOptions,
    connect_options: ConnectOptions,
    publish_options: PublishOptions,
    subscribe_options: SubscribeOptions,
}

#[derive(Debug, Serialize)]
pub struct ClientOptions {
    transport: &'static str,
    protocol: u8,
    reconnect_on_failure: bool,
}

#[derive(Debug, Serialize)]
pub struct WillOptions {
    topic: String,
    payload: &'static str,
    qos: u8,
    retain: bool,
}

#[derive(Debug, Serialize)]
pub struct ConnectOptions {
    host: &'static str,
    port: u16,
    keepalive: u16,
}

#[derive(Debug, Serialize)]
pub struct PublishOptions {
    topic: String,
    qos: u8,
    retain: bool,
}

#[derive(Debug, Serialize)]
pub struct SubscribeOptions {
    topic: String,
    qos: u8,
}

/// `GET /api/v1/streaming` — credentials for an unreachable broker (user and station keys).
pub async fn credentials(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> axum::Json<StreamingCredentials> {
    let who = caller
        .station_id()
        .or(caller.user_id())
        .map(|id| id.to_string())
        .unwrap_or_default();
    let topic = format!("tofulab/{}/{who}", caller.org_id);
    axum::Json(StreamingCredentials {
        token: "tofulab-has-no-streaming-broker".into(),
        operator_page: format!("{}/", public_base(&state, &headers)),
        client_options: ClientOptions {
            transport: "tcp",
            protocol: 5,
            reconnect_on_failure: false,
        },
        will_options: WillOptions {
            topic: format!("{topic}/will"),
            payload: "",
            qos: 0,
            retain: false,
        },
        // Port 1 on the loopback address: nothing listens there, so a connection attempt
        // fails at once instead of hanging.
        connect_options: ConnectOptions {
            host: "127.0.0.1",
            port: 1,
            keepalive: 60,
        },
        publish_options: PublishOptions {
            topic: format!("{topic}/events"),
            qos: 0,
            retain: false,
        },
        subscribe_options: SubscribeOptions {
            topic: format!("{topic}/commands"),
            qos: 0,
        },
    })
}
