//! The SNI listener's stack: read the ClientHello, route on its server name, dial, relay.
//! This replaces nginx's `ssl_preread on; proxy_pass $ssl_preread_server_name:443;`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceBuilder, ServiceExt};
use tracing::Span;

use super::refuse::{
    ALERT_ACCESS_DENIED, ALERT_UNRECOGNIZED_NAME, admit, reply_and_close, tls_alert,
};
use super::{Accepted, Forward, Tunnel};
use crate::dial::{DEFAULT_CONNECT_TIMEOUT, Dial};
use crate::policy::{Policy, Reason};
use crate::relay::{RelayConfig, Traffic};
use crate::resolve::Resolve;
use crate::target::{Host, Name, PortSource, Target};
use crate::tls::{DEFAULT_CLIENT_HELLO_TIMEOUT, DEFAULT_MAX_CLIENT_HELLO, SniffLayer, Sniffed};
use crate::{BoxError, BoxFuture};

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

/// The target of a sniffed connection: its server name (or `default_host` when the hello
/// names none) on the upstream port.
///
/// # Errors
///
/// [`RouteError::NoServerName`] when the hello names no server and there is no default.
pub fn route(
    sniffed: &Sniffed,
    port: UpstreamPort,
    default_host: Option<&Name>,
) -> Result<Target, RouteError> {
    let name = sniffed
        .hello
        .server_name()
        .or(default_host)
        .ok_or(RouteError::NoServerName)?
        .clone();
    let (port, port_source) = match port {
        UpstreamPort::Fixed(port) => (port, PortSource::Fixed),
        UpstreamPort::Listener => (sniffed.conn.local.port(), PortSource::Listener),
    };
    Ok(Target {
        host: Host::Name(name),
        port,
        port_source,
    })
}

/// Routes each sniffed connection and holds its target to the policy, then hands the
/// [`Tunnel`] to the inner service. A connection with nowhere to go is told so with a TLS
/// alert (`unrecognized_name` when the name is absent or denied, `access_denied` when its
/// address is) and closed.
#[derive(Debug, Clone)]
pub struct Admit<S> {
    inner: S,
    port: UpstreamPort,
    default_host: Option<Name>,
    policy: Arc<Policy>,
    reply_timeout: Duration,
}

impl<S> Admit<S> {
    /// Wraps `inner` with the routing and policy of `options`.
    pub fn new(inner: S, options: &SniOptions) -> Self {
        Self {
            inner,
            port: options.upstream_port,
            default_host: options.default_host.clone(),
            policy: options.policy.clone(),
            reply_timeout: options.client_hello_timeout,
        }
    }
}

impl<S> Service<Sniffed> for Admit<S>
where
    S: Service<Tunnel, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, sniffed: Sniffed) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let decided = route(&sniffed, this.port, this.default_host.as_ref())
                .map_err(|e| (ALERT_UNRECOGNIZED_NAME, BoxError::from(e)))
                .and_then(|target| {
                    Span::current().record("target", tracing::field::display(&target));
                    match admit(&this.policy, &target) {
                        Ok(()) => Ok(target),
                        Err(denied) => Err((alert_for(denied.reason), denied.into())),
                    }
                });
            let Sniffed {
                mut conn, prefix, ..
            } = sniffed;
            match decided {
                Ok(target) => {
                    let tunnel = Tunnel {
                        conn,
                        target,
                        prefix,
                    };
                    this.inner.oneshot(tunnel).await
                }
                Err((alert, error)) => {
                    reply_and_close(&mut conn.stream, &tls_alert(alert), this.reply_timeout).await;
                    Err(error)
                }
            }
        })
    }
}

/// The alert for a name whose every address the policy denies.
const DENIED_ADDRESS_ALERT: [u8; 7] = tls_alert(ALERT_ACCESS_DENIED);

/// The TLS alert that tells a client why the policy refused it.
fn alert_for(reason: Reason) -> u8 {
    match reason {
        Reason::DeniedIp | Reason::NoAllowedAddress => ALERT_ACCESS_DENIED,
        _ => ALERT_UNRECOGNIZED_NAME,
    }
}

/// Settings of one SNI listener's stack.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SniOptions {
    /// Where connections go. Default: port 443.
    pub upstream_port: UpstreamPort,
    /// Where a ClientHello without a server name goes. Default: `None`, such connections
    /// are refused.
    pub default_host: Option<Name>,
    /// What may be reached. Default: [`Policy::default`], every public name and address.
    pub policy: Arc<Policy>,
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
            default_host: None,
            policy: Policy::shared_default(),
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
    let dial = Dial::new(resolver, options.connect_timeout).with_policy(options.policy.clone());
    ServiceBuilder::new()
        // Read the ClientHello, bounded in bytes and time from accept.
        .layer(SniffLayer::new(
            options.client_hello_max_bytes,
            options.client_hello_timeout,
        ))
        // Route on the server name to the configured port; refuse what the policy denies.
        .layer_fn(|inner| Admit::new(inner, options))
        // Resolve, dial only allowed addresses, then relay, replaying the hello first.
        .service(
            Forward::new(dial, options.relay.clone())
                .with_denied_response(&DENIED_ADDRESS_ALERT, options.client_hello_timeout),
        )
}
