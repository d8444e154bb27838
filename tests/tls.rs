//! HTTPS and HTTP/2 on the real binary: a private certificate authority made here, the
//! official Rust client trusting it, ALPN `h2` and `http/1.1`, h2c with prior knowledge
//! on plain HTTP, attachments (signed URLs, large streamed bodies) over each protocol,
//! a certificate reload on SIGHUP that keeps open connections, graceful shutdown over
//! HTTP/2, and clear errors for bad certificate files.

mod process_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use process_support::{ProcessDb, Server, BIN, PROCEDURE_ID, USER_KEY};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use reqwest::Version;
use serde_json::{json, Value};

/// A certificate authority of its own, as a lab would make one.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes a server certificate for `localhost` and 127.0.0.1 signed by this CA,
    /// and its key, to `cert` and `key`.
    fn issue(&self, cert: &Path, key: &Path) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "tofulab");
        let pair = KeyPair::generate().unwrap();
        let signed = params.signed_by(&pair, &self.issuer).unwrap();
        std::fs::write(cert, signed.pem()).unwrap();
        std::fs::write(key, pair.serialize_pem()).unwrap();
    }
}

/// A TLS server on its own database with the seed's keys, and the files it serves.
struct TlsServer {
    server: Server,
    /// `https://localhost:PORT`
    url: String,
    cert: PathBuf,
    key: PathBuf,
    _db: ProcessDb,
}

async fn tls_server(ca: &TestCa) -> TlsServer {
    let db = ProcessDb::new().await;
    let cert = db.dir.path().join("server.pem");
    let key = db.dir.path().join("server.key");
    ca.issue(&cert, &key);
    let server = Server::start_on_with(
        &db,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let port = server.url.rsplit(':').next().unwrap().to_string();
    TlsServer {
        url: format!("https://localhost:{port}"),
        server,
        cert,
        key,
        _db: db,
    }
}

/// A client that trusts only `ca` (no built-in roots), speaking what ALPN picks.
fn trusting(ca: &TestCa) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(60))
}

fn run_body(serial: &str) -> Value {
    json!({
        "serial_number": serial, "part_number": "P-TLS", "outcome": "PASS",
        "procedure_id": PROCEDURE_ID, "started_at": "2026-01-01T00:00:00Z",
        "ended_at": "2026-01-01T00:00:01Z"
    })
}

async fn whoami_version(http: &reqwest::Client, base: &str) -> Version {
    let r = http
        .get(format!("{base}/api/v2/whoami"))
        .bearer_auth(USER_KEY)
        .send()
        .await
        .expect("whoami");
    assert_eq!(r.status(), 200);
    let version = r.version();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "user", "{body}");
    version
}

/// Creates a run, uploads `size` bytes to it through a signed URL as a streamed body,
/// finalizes it, downloads it back and checks every byte and the protocol of every exchange.
async fn attachment_round_trip(http: &reqwest::Client, base: &str, size: usize, want: Version) {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let r = http
        .post(format!("{base}/api/v2/runs"))
        .bearer_auth(USER_KEY)
        .json(&run_body(&format!("SN-{}", uuid::Uuid::new_v4().simple())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), want);
    let run: Value = r.json().await.unwrap();
    let run_id = run["id"].as_str().expect("run id").to_string();

    let r = http
        .post(format!("{base}/api/v2/runs/{run_id}/attachments"))
        .bearer_auth(USER_KEY)
        .json(&json!({"name": "waveform.bin"}))
        .send()
        .await
        .unwrap();
    let init: Value = r.json().await.unwrap();
    let upload_url = init["upload_url"].as_str().expect("upload_url").to_string();
    assert!(
        upload_url.starts_with(&format!("{base}/files/")),
        "signed URL on this server's scheme and host: {upload_url}"
    );
    // Streamed in 64 KiB pieces: no Content-Length, the body arrives as it is sent.
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let r = http
        .put(&upload_url)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), want);
    assert!(r.status().is_success(), "upload: {}", r.status());
    let id = init["id"].as_str().unwrap();
    let r = http
        .post(format!("{base}/api/v2/attachments/{id}/finalize"))
        .bearer_auth(USER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let run: Value = http
        .get(format!("{base}/api/v2/runs/{run_id}"))
        .bearer_auth(USER_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let download = run["attachments"][0]["download_url"]
        .as_str()
        .unwrap_or_else(|| panic!("download_url: {run}"))
        .to_string();
    assert!(
        download.starts_with(&format!("{base}/files/")),
        "{download}"
    );
    let r = http.get(&download).send().await.unwrap();
    assert_eq!(r.version(), want);
    assert_eq!(r.status(), 200);
    let mut got = Vec::with_capacity(size);
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(
        got == bytes,
        "downloaded {} bytes of {size}, or other bytes",
        got.len()
    );
}

// Multi-threaded: the clients' connections must keep answering (HTTP/2 PINGs of the
// closing handshake) while the test thread waits for the server to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_works_over_tls_with_a_private_ca() {
    let ca = TestCa::new("Lab Root CA");
    let srv = tls_server(&ca).await;
    let config =
        || tofupilot::config::ClientConfig::new(USER_KEY).base_url(format!("{}/api", srv.url));

    // Without the lab's CA the handshake fails: trusting it is what makes it work.
    let untrusting = tofupilot::TofuPilot::with_config(config().max_retries(0));
    assert!(untrusting.identity().whoami().send().await.is_err());

    let client = tofupilot::TofuPilot::with_config(
        config().add_root_certificate(ca.pem().as_bytes()).unwrap(),
    );
    let me = client
        .identity()
        .whoami()
        .send()
        .await
        .expect("whoami over TLS");
    assert!(me.user.is_some());
    let run = client
        .runs()
        .create()
        .serial_number("SN-TLS-1")
        .procedure_id(PROCEDURE_ID)
        .part_number("P-TLS")
        .started_at(chrono::Utc::now() - chrono::Duration::minutes(1))
        .ended_at(chrono::Utc::now())
        .outcome(tofupilot::types::LogGetOutcome::Pass)
        .send()
        .await
        .expect("create a run over TLS");

    // An attachment through the client's own signed-URL upload and download.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.csv");
    let content: String = (0..20_000).map(|i| format!("{i},{}\n", i * 3)).collect();
    std::fs::write(&file, &content).unwrap();
    client
        .runs()
        .attachments()
        .upload(&run.id, &file)
        .await
        .expect("upload over TLS");
    let got = client.runs().get().id(&run.id).send().await.unwrap();
    let got = serde_json::to_value(&got).unwrap();
    let url = got["attachments"][0]["download_url"].as_str().unwrap();
    assert!(url.starts_with("https://localhost:"), "{url}");
    let back = dir.path().join("back.csv");
    client
        .runs()
        .attachments()
        .download(url, &back)
        .await
        .expect("download over TLS");
    assert_eq!(std::fs::read_to_string(&back).unwrap(), content);

    // The container health check over TLS, trusting the lab's CA.
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let health = |extra: &[&std::ffi::OsStr]| {
        std::process::Command::new(BIN)
            .args(["healthcheck", "--url", &srv.url])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = health(&["--ca-cert".as_ref(), ca_file.as_os_str()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no_ca = health(&[]);
    assert!(!no_ca.status.success());
    assert!(String::from_utf8_lossy(&no_ca.stderr).contains("needs --ca-cert"));
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, TestCa::new("Other").pem()).unwrap();
    let wrong = health(&["--ca-cert".as_ref(), other_ca.as_os_str()]);
    assert!(
        !wrong.status.success(),
        "a CA that did not sign the server is not trusted"
    );
    stop_gracefully(srv.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_alpn_over_tls_and_by_prior_knowledge_on_plain_http() {
    let ca = TestCa::new("Lab Root CA");
    let srv = tls_server(&ca).await;

    // TLS: ALPN offers h2 first; a client that speaks only HTTP/1.1 still gets it.
    let h2 = trusting(&ca).build().unwrap();
    assert_eq!(whoami_version(&h2, &srv.url).await, Version::HTTP_2);
    let h1 = trusting(&ca).http1_only().build().unwrap();
    assert_eq!(whoami_version(&h1, &srv.url).await, Version::HTTP_11);
    attachment_round_trip(&h2, &srv.url, 6 << 20, Version::HTTP_2).await;
    attachment_round_trip(&h1, &srv.url, 6 << 20, Version::HTTP_11).await;
    // The session cookie of the dashboard is Secure over TLS.
    let no_redirects = trusting(&ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(format!("{}/login", srv.url))
        .form(&[("api_key", USER_KEY)])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    stop_gracefully(srv.server);

    // Plain HTTP: h2c with prior knowledge, and HTTP/1.1 as always.
    let db = ProcessDb::new().await;
    let plain = Server::start_on(&db);
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert_eq!(whoami_version(&h2c, &plain.url).await, Version::HTTP_2);
    let h1 = reqwest::Client::new();
    assert_eq!(whoami_version(&h1, &plain.url).await, Version::HTTP_11);
    attachment_round_trip(&h2c, &plain.url, 6 << 20, Version::HTTP_2).await;
    stop_gracefully(plain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let old_ca = TestCa::new("Old Root CA");
    let srv = tls_server(&old_ca).await;

    // An HTTP/1.1 keep-alive connection and an HTTP/2 one, opened under the old
    // certificate.
    let old_h1 = trusting(&old_ca).http1_only().build().unwrap();
    let old_h2 = trusting(&old_ca).build().unwrap();
    whoami_version(&old_h1, &srv.url).await;
    whoami_version(&old_h2, &srv.url).await;

    // The lab renews: a certificate from another CA lands in the same files.
    let new_ca = TestCa::new("New Root CA");
    new_ca.issue(&srv.cert, &srv.key);
    srv.server.signal("HUP");
    let fresh = trusting(&new_ca).build().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = fresh
            .get(format!("{}/readyz", srv.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if r.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New handshakes present the new certificate only...
    let fresh_old = trusting(&old_ca).build().unwrap();
    assert!(
        fresh_old
            .get(format!("{}/readyz", srv.url))
            .send()
            .await
            .is_err(),
        "a new connection trusting only the old CA must fail"
    );
    // ...while the connections opened before still answer (a new handshake would fail).
    assert_eq!(whoami_version(&old_h1, &srv.url).await, Version::HTTP_11);
    assert_eq!(whoami_version(&old_h2, &srv.url).await, Version::HTTP_2);

    // A reload that cannot read its files keeps the certificate in use.
    std::fs::write(&srv.key, "not a key").unwrap();
    srv.server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !srv.server.stderr.text().contains("TLS reload failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload failure logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let another = trusting(&new_ca).build().unwrap();
    assert_eq!(whoami_version(&another, &srv.url).await, Version::HTTP_2);
    stop_gracefully(srv.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_http2_upload_in_flight_finish() {
    let ca = TestCa::new("Lab Root CA");
    let srv = tls_server(&ca).await;
    let h2 = trusting(&ca).build().unwrap();
    let r = h2
        .post(format!("{}/api/v2/attachments", srv.url))
        .bearer_auth(USER_KEY)
        .json(&json!({"name": "slow.bin"}))
        .send()
        .await
        .unwrap();
    let init: Value = r.json().await.unwrap();
    let upload_url = init["upload_url"].as_str().unwrap().to_string();

    // 16 pieces of 256 KiB, 100 ms apart: in flight while SIGTERM arrives.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let mut started_tx = Some(started_tx);
    let body = futures_util::stream::iter(0..16).then(move |i| {
        let started = if i == 1 { started_tx.take() } else { None };
        async move {
            if let Some(s) = started {
                let _ = s.send(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, std::io::Error>(vec![b'z'; 256 << 10])
        }
    });
    let put = tokio::spawn(async move {
        h2.put(upload_url)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map(|r| (r.version(), r.status().as_u16()))
    });
    started_rx.await.unwrap();
    srv.server.signal("TERM");
    let (version, status) = put.await.unwrap().expect("the upload gets its answer");
    assert_eq!(version, Version::HTTP_2);
    assert!((200..300).contains(&status), "status {status}");
    exits_gracefully(srv.server);
}

#[tokio::test]
async fn an_http2_client_that_never_answers_does_not_hold_the_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = ProcessDb::new().await;
    let srv = Server::start_on_with(&db, &["--shutdown-timeout", "2"]);
    // An h2c connection: the preface and an empty SETTINGS frame, then silence (a
    // station whose machine froze). The server's closing handshake waits for a PING
    // answer that never comes.
    let addr = srv.url.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // The server's SETTINGS arrive: the connection is up.
    let mut first = [0u8; 9];
    tcp.read_exact(&mut first).await.unwrap();
    assert_eq!(first[3], 4, "a SETTINGS frame");
    srv.signal("TERM");
    let code = tokio::task::spawn_blocking(move || {
        let stderr = srv.stderr.clone();
        (srv.wait_exit("TERM with a silent HTTP/2 client"), stderr)
    })
    .await
    .unwrap();
    assert_eq!(code.0, 0);
    assert!(
        code.1
            .text()
            .contains("stopped after the 2s shutdown timeout"),
        "{}",
        code.1.text()
    );
    drop(tcp);
}

/// SIGTERM, then the exit: every connection closed in the graceful way (not by the
/// shutdown timeout).
fn stop_gracefully(server: Server) {
    server.signal("TERM");
    exits_gracefully(server);
}

/// The exit after a SIGTERM already sent, as `stop_gracefully`.
fn exits_gracefully(server: Server) {
    let stderr = server.stderr.clone();
    assert_eq!(server.wait_exit("TERM"), 0);
    let log = stderr.text();
    assert!(
        log.contains("\"message\":\"stopped\""),
        "not a graceful stop: {log}"
    );
}

#[tokio::test]
async fn bad_certificate_files_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Lab Root CA");
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    ca.issue(&cert, &key);
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let missing = dir.path().join("missing.pem");
    let start = |cert: &Path, key: &Path| {
        let out = std::process::Command::new(BIN)
            .args([
                "serve",
                "--ephemeral",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
            ])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = start(&missing, &key);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("cannot read the TLS certificate") && err.contains("missing.pem"),
        "{err}"
    );
    let (code, err) = start(&cert, &other_key);
    assert_ne!(code, Some(0));
    assert!(err.contains("does not fit the certificate"), "{err}");
    let (code, err) = start(&key, &key);
    assert_ne!(code, Some(0));
    assert!(err.contains("holds no certificate"), "{err}");
    // One without the other is refused by the argument parser.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--ephemeral", "--tls-cert"])
        .arg(&cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
