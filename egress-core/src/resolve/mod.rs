//! Name resolution: turns a [`Name`] into the addresses to dial. The [`Resolve`] trait is the
//! seam; [`HickoryResolver`] is the implementation the binary uses, with static overrides
//! consulted before any query.

mod hickory;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

pub use hickory::HickoryResolver;

use crate::target::Name;

/// A boxed future returned by [`Resolve::resolve`].
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, Error>> + Send + 'a>>;

/// Something that resolves host names to IP addresses.
///
/// Implement it to put your own resolver in front of the dialer. The answer lists the
/// addresses in the order they should be tried; an empty list is an error
/// ([`Error::NoAddresses`]), never `Ok(vec![])`.
pub trait Resolve: Send + Sync + fmt::Debug {
    /// Resolves `name` as an absolute name (no search-domain expansion).
    fn resolve<'a>(&'a self, name: &'a Name) -> ResolveFuture<'a>;
}

/// Which address families to look up and return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IpFamily {
    /// A records only (nginx's `ipv6=off`).
    Ipv4,
    /// AAAA records only.
    Ipv6,
    /// A then AAAA, IPv4 addresses first.
    #[default]
    Both,
}

impl IpFamily {
    /// Whether `ip` belongs to this family.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Self::Ipv4 => ip.is_ipv4(),
            Self::Ipv6 => ip.is_ipv6(),
            Self::Both => true,
        }
    }
}

/// How to build a [`HickoryResolver`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// Nameservers to query over UDP (TCP on truncation). `None` reads the system
    /// configuration (`/etc/resolv.conf`). Default: `None`.
    pub nameservers: Option<Vec<SocketAddr>>,
    /// Address families to return. Default: [`IpFamily::Both`].
    pub ip_family: IpFamily,
    /// Static answers, consulted before any query, like `/etc/hosts`. Default: empty.
    pub hosts: HashMap<Name, Vec<IpAddr>>,
    /// Time for one query to one nameserver. Default: 5 s.
    pub query_timeout: Duration,
    /// Longest time a positive answer is cached, whatever its TTL says. Default: 300 s.
    pub cache_max_ttl: Duration,
    /// Number of answers kept in the cache. Default: 1024.
    pub cache_size: u64,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            nameservers: None,
            ip_family: IpFamily::Both,
            hosts: HashMap::new(),
            query_timeout: Duration::from_secs(5),
            cache_max_ttl: Duration::from_secs(300),
            cache_size: 1024,
        }
    }
}

/// Why a name could not be resolved.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name does not exist (NXDOMAIN).
    NotFound,
    /// The name exists but has no address in the configured family.
    NoAddresses,
    /// No nameserver answered in time.
    Timeout,
    /// The system resolver configuration could not be read.
    SystemConfig(std::io::Error),
    /// Any other resolver failure (SERVFAIL, refused, network error), with its message.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("name not found (NXDOMAIN)"),
            Self::NoAddresses => f.write_str("name has no addresses in the configured family"),
            Self::Timeout => f.write_str("DNS query timed out"),
            Self::SystemConfig(e) => write!(f, "cannot read system resolver configuration: {e}"),
            Self::Failed(msg) => write!(f, "DNS lookup failed: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::SystemConfig(e) => Some(e),
            _ => None,
        }
    }
}
