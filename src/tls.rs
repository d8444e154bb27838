//! HTTPS: a listener that hands axum TLS streams (rustls), with ALPN `h2` and
//! `http/1.1`, and a certificate that is reloaded from its files on demand (SIGHUP).
//!
//! Handshakes run in their own tasks, so a slow or silent client holds up no one; a
//! handshake that takes longer than `HANDSHAKE_TIMEOUT` is dropped. A reload swaps the
//! certificate used by the *next* handshakes: open connections keep theirs and are not
//! dropped. A reload that fails (missing file, key not matching) keeps the old
//! certificate and says why.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake that has not finished by then is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to pick them up.
const ACCEPTED_QUEUE: usize = 64;

/// The server certificate and key files, and the certificate loaded from them.
#[derive(Clone)]
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    /// Loads the PEM certificate chain (server certificate first, then any
    /// intermediates) and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = load_pair(cert, key, &provider)?;
        Ok(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Arc::new(RwLock::new(Arc::new(current))),
            provider,
        })
    }

    /// Reads the files again; new handshakes use what they hold from now on. On error
    /// the certificate in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = load_pair(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// The rustls server configuration: TLS 1.2 and 1.3, no client certificates,
    /// ALPN `h2` preferred over `http/1.1`.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.current.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Accepts TCP connections on `tcp` and completes their handshakes in the
    /// background; the returned listener yields finished TLS streams.
    pub fn listen(&self, tcp: TcpListener) -> Result<TlsListener, String> {
        let local = tcp
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let acceptor = TlsAcceptor::from(Arc::new(self.server_config()?));
        let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { local, rx })
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "the TLS certificate file {} holds no certificate",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS key {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        format!(
            "the TLS key {} does not fit the certificate {}: {e}",
            key.display(),
            cert.display()
        )
    })
}

/// Hands every handshake the certificate loaded last.
#[derive(Debug)]
struct Resolver(Arc<RwLock<Arc<CertifiedKey>>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

type Accepted = (TlsStream<TcpStream>, SocketAddr);

/// Accepts until the listener is dropped (the receiving side closes).
async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<Accepted>) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = tx.closed() => return,
            accepted = tcp.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Finished TLS connections, for `axum::serve`.
pub struct TlsListener {
    local: SocketAddr,
    rx: mpsc::Receiver<Accepted>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accept loop ends only once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
