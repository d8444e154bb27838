//! `tofulab healthcheck [--url URL] [--ca-cert FILE]`: `GET URL/readyz`, success only
//! on `200`. Lets a container image check its server without shipping curl; an https://
//! URL is checked over TLS, trusting only the given CA.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

pub async fn check(url: &str, timeout_secs: u64, ca_cert: Option<&Path>) -> Result<(), String> {
    let timeout = Duration::from_secs(timeout_secs.max(1));
    match tokio::time::timeout(timeout, status_of_readyz(url, ca_cert)).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(status)) => Err(format!("{url}/readyz answered {status}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{url}/readyz did not answer within {timeout_secs} s"
        )),
    }
}

async fn status_of_readyz(url: &str, ca_cert: Option<&Path>) -> Result<u16, String> {
    let base: hyper::Uri = url
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let tls = match base.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "{url}: only http:// and https:// URLs can be checked"
            ))
        }
    };
    let host = base
        .host()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = base.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let authority = base.authority().map(|a| a.to_string()).unwrap_or_default();
    let request = Request::get(format!("{}/readyz", base.path().trim_end_matches('/')))
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("{url}: {e}"))?;
    if tls {
        let ca = ca_cert.ok_or_else(|| format!("{url}: an https:// URL needs --ca-cert"))?;
        let stream = tls_connect(stream, &host, ca).await?;
        send(stream, request, url).await
    } else {
        send(stream, request, url).await
    }
}

async fn send<S>(stream: S, request: Request<Empty<Bytes>>, url: &str) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{url}/readyz: {e}"))?;
    Ok(response.status().as_u16())
}

/// A TLS client connection to `host` that trusts only the certificates in `ca`.
async fn tls_connect(
    stream: tokio::net::TcpStream,
    host: &str,
    ca: &Path,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("cannot read {}: {e}", ca.display()))?
    {
        let cert = cert.map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: not a server name: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))
}
