//! The SNI listener's stack: read the ClientHello, route on its server name, dial, relay.
//! This replaces nginx's `ssl_preread on; proxy_pass $ssl_preread_server_name:443;`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::{Service, ServiceBuilder};

use super::{Accepted, Forward, Tunnel};
use crate::BoxError;
use crate::dial::{DEFAULT_CONNECT_TIMEOUT, Dial};
use crate::relay::{RelayConfig, Traffic};
use crate::resolve::Resolve;
use crate::target::{Host, PortSource, Target};
use crate::tls::{DEFAULT_CLIENT_HELLO_TIMEOUT, DEFAULT_MAX_CLIENT_HELLO, SniffLayer, Sniffed};

/// Which upstream port an SNI listener connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamPort {
    /// Always this port (nginx's `proxy_pass $ssl_preread_server_name:443`).
    Fixed(u16),
    /// The local port the client connected to (nginx's `$server_port`): one listener
    /// bound to many ports serves every non-standard TLS port.
    Listener,
}

impl Default for UpstreamPort {
    fn default() -> Self {
        Self::Fixed(443)
    }
}

/// Why a sniffed connection has no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The ClientHello carries no server name, so there is nothing to route on.
    NoServerName,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoServerName => f.write_str("ClientHello has no server name to route on"),
        }
    }
}

impl std::error::Error for RouteError {}

/// Turns a sniffed connection into a [`Tunnel`] to its server name on the upstream port.
///
/// # Errors
///
/// [`RouteError::NoServerName`] when the hello names no server.
pub fn route(port: UpstreamPort, sniffed: Sniffed) -> Result<Tunnel, RouteError> {
    let Sniffed {
        conn,
        hello,
        prefix,
    } = sniffed;
    let name = hello.server_name().ok_or(RouteError::NoServerName)?.clone();
    let (port, port_source) = match port {
        UpstreamPort::Fixed(port) => (port, PortSource::Fixed),
        UpstreamPort::Listener => (conn.local.port(), PortSource::Listener),
    };
    Ok(Tunnel {
        conn,
        target: Target {
            host: Host::Name(name),
            port,
            port_source,
        },
        prefix,
    })
}

/// Settings of one SNI listener's stack.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SniOptions {
    /// Where connections go. Default: port 443.
    pub upstream_port: UpstreamPort,
    /// Most bytes read for one ClientHello. Default: 16 KiB.
    pub client_hello_max_bytes: usize,
    /// Time from accept for the ClientHello to arrive. Default: 10 s.
    pub client_hello_timeout: Duration,
    /// Time for each upstream connect attempt. Default: 10 s.
    pub connect_timeout: Duration,
    /// The relay's settings (idle timeout: 1 h).
    pub relay: RelayConfig,
}

impl Default for SniOptions {
    fn default() -> Self {
        Self {
            upstream_port: UpstreamPort::default(),
            client_hello_max_bytes: DEFAULT_MAX_CLIENT_HELLO,
            client_hello_timeout: DEFAULT_CLIENT_HELLO_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            relay: RelayConfig::default(),
        }
    }
}

/// The stack of an SNI passthrough listener.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use egress_core::resolve::{HickoryResolver, ResolverConfig};
/// use egress_core::server::{Server, SniOptions, sni_stack};
///
/// let resolver = Arc::new(HickoryResolver::new(ResolverConfig::default())?);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let mut server = Server::new();
/// server.serve(vec![listener], sni_stack(&SniOptions::default(), resolver), 1024);
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
/// # Ok(()) }
/// ```
pub fn sni_stack(
    options: &SniOptions,
    resolver: Arc<dyn Resolve>,
) -> impl Service<Accepted, Response = Traffic, Error = BoxError, Future: Send> + Clone + Send + 'static
{
    let port = options.upstream_port;
    ServiceBuilder::new()
        // Read the ClientHello, bounded in bytes and time from accept.
        .layer(SniffLayer::new(
            options.client_hello_max_bytes,
            options.client_hello_timeout,
        ))
        // Route on the server name to the configured port.
        .filter(move |sniffed| route(port, sniffed))
        // Resolve and dial the target, then relay, replaying the hello first.
        .service(Forward::new(
            Dial::new(resolver, options.connect_timeout),
            options.relay,
        ))
}
