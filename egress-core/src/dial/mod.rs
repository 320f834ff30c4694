//! Dialing: resolves a [`Target`], keeps the addresses the [`Policy`] allows, and connects to
//! them in turn, each attempt bounded by a connect timeout. The address checked is the
//! address dialed: there is no second lookup for a rebinding DNS server to answer
//! differently. Hands on the connected [`Upstream`].

mod error;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;
use tower::Service;

pub use error::Error;

use crate::BoxFuture;
use crate::policy::{Mode, Policy};
use crate::resolve::Resolve;
use crate::target::{Host, Target};

/// Default time for one TCP connect attempt, like nginx's `proxy_connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected upstream.
#[derive(Debug)]
pub struct Upstream {
    /// The connection, with `TCP_NODELAY` set.
    pub stream: TcpStream,
    /// The address it is connected to.
    pub addr: SocketAddr,
}

/// Resolves a [`Target`] with a [`Resolve`], checks every address with its [`Policy`] (by
/// default [`Policy::default`], which denies special-purpose ranges such as loopback and
/// RFC 1918), and connects to the first allowed address that answers.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use egress_core::dial::{Dial, DEFAULT_CONNECT_TIMEOUT};
/// use egress_core::resolve::{HickoryResolver, ResolverConfig};
/// use egress_core::target::{Host, PortSource, Target};
/// use tower::ServiceExt;
///
/// let resolver = Arc::new(HickoryResolver::new(ResolverConfig::default())?);
/// let dial = Dial::new(resolver, DEFAULT_CONNECT_TIMEOUT);
/// let target = Target { host: Host::Name("example.com".parse()?), port: 443, port_source: PortSource::Fixed };
/// let upstream = dial.oneshot(target).await?;
/// println!("connected to {}", upstream.addr);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Dial {
    resolver: Arc<dyn Resolve>,
    connect_timeout: Duration,
    policy: Arc<Policy>,
}

impl Dial {
    /// A dialer resolving with `resolver`, giving each connect attempt `connect_timeout`,
    /// under the default policy.
    pub fn new(resolver: Arc<dyn Resolve>, connect_timeout: Duration) -> Self {
        Self {
            resolver,
            connect_timeout,
            policy: Policy::shared_default(),
        }
    }

    /// Checks addresses with `policy` instead.
    #[must_use]
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }
}

impl Service<Target> for Dial {
    type Response = Upstream;
    type Error = Error;
    type Future = BoxFuture<Upstream, Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, target: Target) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let ips = match &target.host {
                Host::Name(name) => this.resolver.resolve(name).await.map_err(Error::Resolve)?,
                Host::Ip(ip) => vec![*ip],
            };
            let addrs = this.allowed(ips, target.port)?;
            connect(addrs, this.connect_timeout).await
        })
    }
}

impl Dial {
    /// The addresses to dial: those the policy allows, in resolver order. Denied ones are
    /// logged; under [`Mode::Report`] they are dialed all the same.
    fn allowed(&self, ips: Vec<IpAddr>, port: u16) -> Result<Vec<SocketAddr>, Error> {
        let (allowed, denied): (Vec<SocketAddr>, Vec<SocketAddr>) = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .partition(|addr| self.policy.check_socket(*addr).allowed);
        if denied.is_empty() {
            return Ok(allowed);
        }
        let reason = if allowed.is_empty() {
            "no_allowed_address"
        } else {
            "denied_ip"
        };
        if self.policy.mode() == Mode::Report {
            tracing::Span::current().record("would_deny", reason);
            tracing::warn!(
                policy = reason,
                ?denied,
                "report mode: dialing addresses the policy would deny"
            );
            return Ok(allowed.into_iter().chain(denied).collect());
        }
        if allowed.is_empty() {
            tracing::Span::current().record("policy", reason);
            return Err(Error::NoAllowedAddress {
                denied: denied.into_iter().map(|a| a.ip()).collect(),
            });
        }
        tracing::info!(
            ?allowed,
            ?denied,
            "dialing only the addresses the policy allows"
        );
        Ok(allowed)
    }
}

/// Connects to each address in turn until one answers, giving each `timeout`.
///
/// # Errors
///
/// The failure of the last attempt, or [`Error::NoAddresses`] when `addrs` is empty.
pub async fn connect(
    addrs: impl IntoIterator<Item = SocketAddr>,
    timeout: Duration,
) -> Result<Upstream, Error> {
    let mut last = Error::NoAddresses;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // A proxy must not add Nagle delays to what it forwards.
                stream
                    .set_nodelay(true)
                    .map_err(|source| Error::Connect { addr, source })?;
                return Ok(Upstream { stream, addr });
            }
            Ok(Err(source)) => last = Error::Connect { addr, source },
            Err(_) => {
                last = Error::Timeout {
                    addr,
                    after: timeout,
                }
            }
        }
        tracing::debug!(%addr, error = %last, "connect attempt failed");
    }
    Err(last)
}
