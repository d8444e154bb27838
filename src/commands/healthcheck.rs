//! `tofulab healthcheck [--url URL]`: `GET URL/readyz`, success only on `200`. Lets a
//! container image check its server without shipping curl.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

pub async fn check(url: &str, timeout_secs: u64) -> Result<(), String> {
    let timeout = Duration::from_secs(timeout_secs.max(1));
    match tokio::time::timeout(timeout, status_of_readyz(url)).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(status)) => Err(format!("{url}/readyz answered {status}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{url}/readyz did not answer within {timeout_secs} s"
        )),
    }
}

async fn status_of_readyz(url: &str) -> Result<u16, String> {
    let base: hyper::Uri = url
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if base.scheme_str() != Some("http") {
        return Err(format!("{url}: only http:// URLs can be checked"));
    }
    let host = base
        .host()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = base.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(connection);
    let authority = base.authority().map(|a| a.to_string()).unwrap_or_default();
    let request = Request::get(format!("{}/readyz", base.path().trim_end_matches('/')))
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{url}/readyz: {e}"))?;
    Ok(response.status().as_u16())
}
