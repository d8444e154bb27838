//! A real S3-compatible server for the object-store tests: the one named by
//! `TOFULAB_TEST_S3_ENDPOINT`, or a `moto_server` (PyPI `moto[server]`) started here on a
//! free port and stopped when the test process exits. Without either the tests say so and
//! pass vacuously, unless `TOFULAB_REQUIRE_S3=1` (set by `.ci/run`) makes that a failure.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tofulab::db::objects::ObjectBlobs;

/// The bucket every test uses; each test gets its own key prefix in it.
pub const BUCKET: &str = "tofulab-test";

struct Server {
    endpoint: String,
    /// The wrapper shell: it stops moto when its stdin (held here) closes, that is when
    /// this process exits, however it exits.
    _child: Option<Mutex<Child>>,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

fn moto_server() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TOFULAB_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/moto_server");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    })
}

fn start() -> Option<Server> {
    if let Ok(endpoint) = std::env::var("TOFULAB_TEST_S3_ENDPOINT") {
        return Some(Server {
            endpoint,
            _child: None,
        });
    }
    let moto = moto_server()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = format!(
        "'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; cat >/dev/null; kill $m",
        moto.display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Keep the pipe open (and flushed) for the life of the process.
    let _ = child.stdin.as_mut().map(|s| s.flush());
    Some(Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Some(Mutex::new(child)),
    })
}

/// The endpoint of the test S3 server, or `None` (after saying so) when there is none.
pub fn endpoint(test: &str) -> Option<String> {
    let server = SERVER.get_or_init(start);
    match server {
        Some(s) => Some(s.endpoint.clone()),
        None => {
            assert!(
                std::env::var("TOFULAB_REQUIRE_S3").is_err(),
                "{test}: no S3-compatible server (install moto[server] or set TOFULAB_TEST_S3_ENDPOINT)"
            );
            eprintln!(
                "{test}: SKIPPED — no S3-compatible server (pip install 'moto[server]', or set \
                 TOFULAB_TEST_S3_ENDPOINT)"
            );
            None
        }
    }
}

/// The `AWS_*` settings for the test server (moto accepts any credentials).
pub fn vars(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A store on a fresh prefix of the test bucket (created when missing), or `None` when
/// there is no S3 server.
pub async fn fresh_store(test: &str) -> Option<(ObjectBlobs, String)> {
    let endpoint = endpoint(test)?;
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{BUCKET}"))
        .send()
        .await
        .expect("create the test bucket");
    assert!(
        r.status().is_success() || r.status() == 409,
        "create bucket: {}",
        r.status()
    );
    let url = format!("s3://{BUCKET}/{}", uuid::Uuid::new_v4().simple());
    let store = ObjectBlobs::from_url_with(&url, vars(&endpoint)).expect("object store");
    Some((store, endpoint))
}

/// Multipart uploads still open under `prefix` (started, neither completed nor aborted).
pub async fn open_uploads(endpoint: &str, prefix: &str) -> usize {
    let body = reqwest::Client::new()
        .get(format!("{endpoint}/{BUCKET}?uploads&prefix={prefix}"))
        .send()
        .await
        .expect("list multipart uploads")
        .text()
        .await
        .unwrap();
    body.matches("<Upload>").count()
}
