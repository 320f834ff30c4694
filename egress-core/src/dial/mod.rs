//! Dialing: resolves a [`Target`] and connects to its addresses in turn, each attempt
//! bounded by a connect timeout. Hands on the connected [`Upstream`].

mod error;

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;
use tower::Service;

pub use error::Error;

use crate::BoxFuture;
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

/// Resolves a [`Target`] with a [`Resolve`] and connects to the first address that answers.
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
}

impl Dial {
    /// A dialer resolving with `resolver`, giving each connect attempt `connect_timeout`.
    pub fn new(resolver: Arc<dyn Resolve>, connect_timeout: Duration) -> Self {
        Self {
            resolver,
            connect_timeout,
        }
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
            let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, target.port));
            connect(addrs, this.connect_timeout).await
        })
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
