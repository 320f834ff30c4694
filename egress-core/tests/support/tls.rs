//! TLS fixtures: a self-signed certificate from rcgen, a rustls upstream that answers each
//! connection, and a rustls client.

use std::net::SocketAddr;
use std::sync::{Arc, Once};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A certificate for some names and the matching client trust.
pub struct Pki {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Pki {
    pub fn new(names: &[&str]) -> Self {
        install_provider();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        Self {
            cert: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
        }
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    pub fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// Connects through `proxy` with `name` as SNI and completes the handshake.
    pub async fn connect(
        &self,
        proxy: SocketAddr,
        name: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(proxy).await?;
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        self.connector().connect(server_name, tcp).await
    }
}

/// A TLS upstream: for each connection, reads one line and answers `hello <line>` with the
/// SNI it saw, then closes.
pub async fn tls_echo_upstream(pki: &Pki, addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    let acceptor = pki.acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("-").to_string();
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while tls.read(&mut byte).await.unwrap_or(0) == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                let reply = format!("hello {} from {sni}\n", String::from_utf8_lossy(&line));
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    local
}
