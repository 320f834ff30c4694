//! [`HickoryResolver`], the [`Resolve`] implementation on hickory-resolver that the binary
//! uses. It answers from the static overrides first and pins what hickory 0.26 would otherwise
//! decide by default (PITFALLS.md):
//!
//! - Lookup order is set from [`IpFamily`]: `Ipv4` asks for A only, `Ipv6` for AAAA only,
//!   `Both` asks for both in parallel and returns the IPv4 addresses first
//!   (`LookupIpStrategy::Ipv4AndIpv6`; hickory 0.26 defaults to AAAA first).
//! - `/etc/hosts` is never read (`ResolveHosts::Never`); [`ResolverConfig::hosts`] replaces it
//!   and is consulted before hickory, so a name in it never causes a query.
//! - Names are resolved as absolute names (trailing dot), so the search list and `ndots` of
//!   `/etc/resolv.conf` never apply; the search list is also dropped from the configuration.
//! - Positive and negative answers are cached for at most [`ResolverConfig::cache_max_ttl`].
//! - Special-use names are answered by hickory itself without a query (RFC 6761):
//!   `localhost` and names under it give `127.0.0.1` and `::1`, names under `invalid` give
//!   NXDOMAIN. Rejecting loopback answers is the job of the address policy, not of the
//!   resolver.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts,
    ResolverConfig as HickoryConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Name as DnsName;

use super::{Error, IpFamily, Resolve, ResolveFuture, ResolverConfig};
use crate::target::Name;

/// Where the system resolver configuration is read from on Linux and the BSDs.
#[cfg(all(unix, not(any(target_os = "android", target_vendor = "apple"))))]
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A [`Resolve`] implementation on hickory-resolver, with static overrides consulted first.
///
/// Build it with [`HickoryResolver::new`]. It must be used from within a Tokio runtime;
/// connections to the nameservers are opened lazily by the first lookup.
#[derive(Debug)]
pub struct HickoryResolver {
    /// The hickory resolver, configured with the nameservers, family, timeout and cache.
    resolver: TokioResolver,
    /// Static answers, consulted before any query.
    hosts: HashMap<Name, Vec<IpAddr>>,
    /// Which addresses to return.
    family: IpFamily,
}

impl HickoryResolver {
    /// Builds a resolver from `config`.
    ///
    /// With `nameservers` set, queries go to those addresses over UDP, retried over TCP on the
    /// same port when an answer is truncated. With `nameservers` unset, the nameservers and the
    /// `attempts` and `edns0` options come from the system configuration (`/etc/resolv.conf`);
    /// its `search`, `domain` and `ndots` are ignored since names are resolved as absolute.
    ///
    /// `query_timeout` bounds one attempt against the nameserver pool; hickory retries a
    /// failed or timed-out attempt (twice by default, or `options attempts:n` from the system
    /// configuration), so a lookup against silent nameservers takes up to
    /// `(attempts + 1) * query_timeout` before it fails with [`Error::Timeout`].
    ///
    /// # Errors
    ///
    /// [`Error::SystemConfig`] when the system configuration cannot be read or lists no
    /// nameserver; [`Error::Failed`] when `nameservers` is an empty list.
    pub fn new(config: ResolverConfig) -> Result<Self, Error> {
        let (servers, options) = match &config.nameservers {
            Some(addrs) => (
                HickoryConfig::from_name_servers(addrs.iter().map(|a| name_server(*a)).collect()),
                ResolverOpts::default(),
            ),
            None => system_config()?,
        };
        Self::build(servers, options, config)
    }

    /// Applies the parts of `config` that hickory handles on top of `options` and builds the
    /// resolver. `servers` keeps any domain and search list it has (tests use that to prove
    /// they are not used).
    fn build(
        servers: HickoryConfig,
        mut options: ResolverOpts,
        config: ResolverConfig,
    ) -> Result<Self, Error> {
        if servers.name_servers().is_empty() {
            return Err(Error::Failed("no nameservers configured".to_owned()));
        }
        options.ip_strategy = match config.ip_family {
            IpFamily::Ipv4 => LookupIpStrategy::Ipv4Only,
            IpFamily::Ipv6 => LookupIpStrategy::Ipv6Only,
            IpFamily::Both => LookupIpStrategy::Ipv4AndIpv6,
        };
        options.use_hosts_file = ResolveHosts::Never;
        options.timeout = config.query_timeout;
        options.cache_size = config.cache_size;
        options.positive_max_ttl = Some(config.cache_max_ttl);
        options.negative_max_ttl = Some(config.cache_max_ttl);

        let resolver = TokioResolver::builder_with_config(servers, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(from_hickory)?;
        Ok(Self {
            resolver,
            hosts: config.hosts,
            family: config.ip_family,
        })
    }

    /// Asks hickory for the addresses of `name`, as an absolute name.
    async fn lookup(&self, name: &Name) -> Result<Vec<IpAddr>, Error> {
        let name = absolute(name).map_err(from_hickory)?;
        let answer = self.resolver.lookup_ip(name).await.map_err(from_hickory)?;
        admitted(answer.iter(), self.family)
    }
}

impl Resolve for HickoryResolver {
    fn resolve<'a>(&'a self, name: &'a Name) -> ResolveFuture<'a> {
        Box::pin(async move {
            match self.hosts.get(name) {
                Some(ips) => admitted(ips.iter().copied(), self.family),
                None => self.lookup(name).await,
            }
        })
    }
}

/// A nameserver at `addr`: UDP first, TCP on the same port when a UDP answer is truncated.
fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// Nameservers and options from `/etc/resolv.conf`, without its domain and search list.
#[cfg(all(unix, not(any(target_os = "android", target_vendor = "apple"))))]
fn system_config() -> Result<(HickoryConfig, ResolverOpts), Error> {
    let bytes = std::fs::read(RESOLV_CONF).map_err(Error::SystemConfig)?;
    let (config, options) =
        hickory_resolver::system_conf::parse_resolv_conf(bytes).map_err(|e| {
            Error::SystemConfig(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{RESOLV_CONF}: {e}"),
            ))
        })?;
    let (_domain, _search, servers) = config.into_parts();
    Ok((HickoryConfig::from_name_servers(servers), options))
}

/// Nameservers and options from the platform's resolver configuration, without its domain
/// and search list.
#[cfg(not(all(unix, not(any(target_os = "android", target_vendor = "apple")))))]
fn system_config() -> Result<(HickoryConfig, ResolverOpts), Error> {
    let (config, options) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| Error::SystemConfig(io::Error::other(e.to_string())))?;
    let (_domain, _search, servers) = config.into_parts();
    Ok((HickoryConfig::from_name_servers(servers), options))
}

/// `name` as an absolute DNS name (with the trailing dot), so no search domain is tried.
fn absolute(name: &Name) -> Result<DnsName, NetError> {
    let mut name = DnsName::from_ascii(name.as_str())?;
    name.set_fqdn(true);
    Ok(name)
}

/// The addresses of `ips` in `family`, in order, without duplicates; none is an error.
fn admitted(ips: impl Iterator<Item = IpAddr>, family: IpFamily) -> Result<Vec<IpAddr>, Error> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ips.filter(|ip| family.admits(*ip)) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    if out.is_empty() {
        Err(Error::NoAddresses)
    } else {
        Ok(out)
    }
}

/// The one place where hickory's errors become ours.
fn from_hickory(error: NetError) -> Error {
    match &error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => match no_records.response_code {
            ResponseCode::NXDomain => Error::NotFound,
            ResponseCode::NoError => Error::NoAddresses,
            _ => Error::Failed(error.to_string()),
        },
        NetError::Timeout => Error::Timeout,
        NetError::Io(e) if e.kind() == io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::{Message, Query};
    use hickory_resolver::proto::rr::RecordType;
    use tokio::net::UdpSocket;

    use super::*;

    fn no_records(code: ResponseCode) -> NetError {
        let query = Query::query(DnsName::root(), RecordType::A);
        NetError::from(NoRecords::new(query, code))
    }

    #[test]
    fn maps_hickory_errors() {
        assert!(matches!(
            from_hickory(no_records(ResponseCode::NXDomain)),
            Error::NotFound
        ));
        assert!(matches!(
            from_hickory(no_records(ResponseCode::NoError)),
            Error::NoAddresses
        ));
        assert!(matches!(
            from_hickory(no_records(ResponseCode::ServFail)),
            Error::Failed(_)
        ));
        assert!(matches!(from_hickory(NetError::Timeout), Error::Timeout));
        let timed_out = NetError::Io(io::Error::from(io::ErrorKind::TimedOut).into());
        assert!(matches!(from_hickory(timed_out), Error::Timeout));
        let refused = NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused));
        match from_hickory(refused) {
            Error::Failed(msg) => assert!(msg.contains("Refused"), "{msg}"),
            other => panic!("expected Failed, got {other:?}"),
        }
        let io = NetError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(from_hickory(io), Error::Failed(_)));
    }

    #[test]
    fn names_are_absolute() {
        let name: Name = "www.example.test".parse().unwrap();
        let dns = absolute(&name).unwrap();
        assert!(dns.is_fqdn());
        assert_eq!(dns.to_string(), "www.example.test.");
    }

    #[test]
    fn admitted_filters_dedups_and_keeps_order() {
        let v4a = IpAddr::from([192, 0, 2, 1]);
        let v4b = IpAddr::from([192, 0, 2, 2]);
        let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        let ips = [v4b, v6, v4a, v4b, v6];
        assert_eq!(
            admitted(ips.into_iter(), IpFamily::Both).unwrap(),
            vec![v4b, v6, v4a]
        );
        assert_eq!(
            admitted(ips.into_iter(), IpFamily::Ipv4).unwrap(),
            vec![v4b, v4a]
        );
        assert_eq!(admitted(ips.into_iter(), IpFamily::Ipv6).unwrap(), vec![v6]);
        assert!(matches!(
            admitted([v6].into_iter(), IpFamily::Ipv4),
            Err(Error::NoAddresses)
        ));
    }

    #[test]
    fn empty_nameserver_list_is_an_error() {
        let config = ResolverConfig {
            nameservers: Some(Vec::new()),
            ..ResolverConfig::default()
        };
        assert!(matches!(
            HickoryResolver::new(config),
            Err(Error::Failed(_))
        ));
    }

    /// With a search domain and `ndots:5` in the configuration, hickory would try
    /// `www.corp.test.` before `www.`; an absolute name must be the only name asked for.
    #[tokio::test]
    async fn search_list_is_never_applied() {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let search = DnsName::from_ascii("corp.test.").unwrap();
        let servers =
            HickoryConfig::from_parts(Some(search.clone()), vec![search], vec![name_server(addr)]);
        let mut options = ResolverOpts::default();
        options.ndots = 5;
        options.attempts = 0;
        let config = ResolverConfig {
            ip_family: IpFamily::Ipv4,
            query_timeout: Duration::from_millis(300),
            ..ResolverConfig::default()
        };
        let resolver = HickoryResolver::build(servers, options, config).unwrap();

        let name: Name = "www".parse().unwrap();
        let result = resolver.resolve(&name).await;
        assert!(matches!(result, Err(Error::Timeout)), "{result:?}");

        let mut asked = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok((len, _)) = socket.try_recv_from(&mut buf) {
            let message = Message::from_vec(&buf[..len]).unwrap();
            asked.extend(message.queries.iter().map(|q| q.name().to_string()));
        }
        assert!(!asked.is_empty());
        assert!(asked.iter().all(|n| n == "www."), "{asked:?}");
    }
}
