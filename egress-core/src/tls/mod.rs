//! TLS ClientHello sniffing: reads the first flight of a TLS connection, without
//! terminating TLS, and hands on the SNI and the exact bytes read.
//! [`ClientHelloReader`] is the sans-IO core; [`read_client_hello`] reads from a stream;
//! [`Sniff`] is the tower stage that does it for an accepted connection.

mod client_hello;
mod error;
mod layer;
mod read;

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tower::{Service, ServiceExt};

pub use client_hello::{ClientHello, ClientHelloReader, DEFAULT_MAX_CLIENT_HELLO, Progress};
pub use error::Error;
pub use layer::SniffLayer;
pub use read::read_client_hello;

use crate::server::Accepted;
use crate::{BoxError, BoxFuture};

/// Default time from accept for the whole ClientHello to arrive, like nginx's
/// `ssl_preread` and `proxy_connect` read timeouts.
pub const DEFAULT_CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted connection whose ClientHello has been read.
#[derive(Debug)]
pub struct Sniffed {
    /// The client connection.
    pub conn: Accepted,
    /// What the hello says.
    pub hello: ClientHello,
    /// Every byte read from the client so far; the upstream must receive them first.
    pub prefix: Bytes,
}

/// Reads the ClientHello of each accepted connection and calls the inner service with a
/// [`Sniffed`]. A connection that does not start with a valid hello fails with
/// [`Error`] and is closed.
#[derive(Debug, Clone)]
pub struct Sniff<S> {
    inner: S,
    max_bytes: usize,
    timeout: Duration,
}

impl<S> Sniff<S> {
    /// Wraps `inner`, reading at most `max_bytes` within `timeout` of accept.
    pub fn new(inner: S, max_bytes: usize, timeout: Duration) -> Self {
        Self {
            inner,
            max_bytes,
            timeout,
        }
    }
}

impl<S> Service<Accepted> for Sniff<S>
where
    S: Service<Sniffed> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut conn: Accepted) -> Self::Future {
        let inner = self.inner.clone();
        let max_bytes = self.max_bytes;
        let deadline = tokio::time::Instant::from_std(conn.accepted_at + self.timeout);
        Box::pin(async move {
            let (hello, prefix) = read_client_hello(&mut conn.stream, max_bytes, deadline).await?;
            if let Some(name) = hello.server_name() {
                tracing::Span::current().record("sni", tracing::field::display(name));
            }
            inner
                .oneshot(Sniffed {
                    conn,
                    hello,
                    prefix,
                })
                .await
                .map_err(Into::into)
        })
    }
}
