//! The last stage of a tunnel: dial the target, then relay the client to it.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tower::{Service, ServiceExt};
use tracing::Span;

use super::Accepted;
use super::refuse::reply_and_close;
use crate::dial::{self, Upstream};
use crate::relay::{self, RelayConfig, Traffic};
use crate::target::Target;
use crate::{BoxError, BoxFuture};

/// A client connection with a decided target, ready to be connected.
#[derive(Debug)]
pub struct Tunnel {
    /// The client connection.
    pub conn: Accepted,
    /// Where it goes.
    pub target: Target,
    /// Bytes already read from the client, for the upstream first.
    pub prefix: Bytes,
}

/// Dials each [`Tunnel`]'s target with the inner connector `D`, then relays until both
/// sides close. Records `upstream`, `up` and `down` on the connection's span.
#[derive(Debug, Clone)]
pub struct Forward<D> {
    dial: D,
    relay: RelayConfig,
    denied_response: Option<(&'static [u8], Duration)>,
}

impl<D> Forward<D> {
    /// Forwards with the connector `dial` and the relay settings `relay`.
    pub fn new(dial: D, relay: RelayConfig) -> Self {
        Self {
            dial,
            relay,
            denied_response: None,
        }
    }

    /// Writes `response` (a TLS alert, say), within `timeout`, to clients whose target has
    /// no address the policy allows ([`dial::Error::NoAllowedAddress`]) before closing.
    #[must_use]
    pub fn with_denied_response(mut self, response: &'static [u8], timeout: Duration) -> Self {
        self.denied_response = Some((response, timeout));
        self
    }
}

impl<D> Service<Tunnel> for Forward<D>
where
    D: Service<Target, Response = Upstream, Error = dial::Error> + Clone + Send + 'static,
    D::Future: Send,
{
    type Response = Traffic;
    type Error = BoxError;
    type Future = BoxFuture<Traffic>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.dial.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, tunnel: Tunnel) -> Self::Future {
        let dial = self.dial.clone();
        let config = self.relay.clone();
        let denied_response = self.denied_response;
        Box::pin(async move {
            let Tunnel {
                mut conn,
                target,
                prefix,
            } = tunnel;
            let span = Span::current();
            span.record("target", tracing::field::display(&target));
            let mut upstream = match dial.oneshot(target).await {
                Ok(upstream) => upstream,
                Err(e @ dial::Error::NoAllowedAddress { .. }) => {
                    if let Some((response, timeout)) = denied_response {
                        reply_and_close(&mut conn.stream, response, timeout).await;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            span.record("upstream", tracing::field::display(upstream.addr));
            Ok(tunnel_relay(&mut conn.stream, &mut upstream.stream, &prefix, &config).await?)
        })
    }
}

/// Relays a tunnel and records its byte counts (`up`, `down`) on the connection's span,
/// also when it fails: the one relay call of SNI tunnels and CONNECT.
pub(super) async fn tunnel_relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    prefix: &[u8],
    config: &RelayConfig,
) -> Result<Traffic, relay::Error> {
    let result = relay::relay_tcp(client, upstream, prefix, config).await;
    let traffic = result.as_ref().map_or_else(|e| e.traffic, |t| *t);
    let span = Span::current();
    span.record("up", traffic.client_to_upstream);
    span.record("down", traffic.upstream_to_client);
    result
}
