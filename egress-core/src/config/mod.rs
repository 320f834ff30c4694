//! Typed configuration, read from TOML, and the running proxy built from it.
//! Unknown keys and bad values are errors that name their line; [`Config::bind`] turns a
//! valid config into a [`Server`] ready to run.
//!
//! ```
//! use egress_core::config::Config;
//!
//! let config = Config::from_toml(r#"
//! [resolver]
//! ip_family = "ipv4"
//!
//! [[sni]]
//! listen = ["127.0.0.1:9443", "127.0.0.1:10443"]
//! upstream_port = "listener"
//! "#).unwrap();
//! assert_eq!(config.sni[0].listen.len(), 2);
//!
//! let err = Config::from_toml("[[sni]]\nlisten = [\"127.0.0.1:8443\"]\nupstrem_port = 443\n").unwrap_err();
//! assert_eq!(err.mistakes[0].line, Some(3));
//! ```

mod duration;
mod error;
mod policy;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use toml::Spanned;

pub use error::{Error, Mistake, StartError};
pub use policy::PolicySection;

use crate::dial::DEFAULT_CONNECT_TIMEOUT;
use crate::http::{
    DEFAULT_MAX_HEAD_BYTES, DEFAULT_MAX_HEADERS, DEFAULT_MAX_REQUEST_LINE, HeadLimits,
};
use crate::relay::{
    DEFAULT_BUFFER_SIZE, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PIPES, DEFAULT_PIPE_SIZE, MAX_PIPE_SIZE,
    MIN_PIPE_SIZE, PipePool, RelayConfig,
};
use crate::resolve::{HickoryResolver, IpFamily, Resolve, ResolverConfig};
use crate::server::{
    ConnectionLimit, DEFAULT_CONNECT_PORTS, DEFAULT_HEADER_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_TIMEOUT, HttpOptions, OVERLOADED, Server, SniOptions,
    UpstreamPort, http_stack, sni_stack,
};
use crate::target::Name;
use crate::tls::{DEFAULT_CLIENT_HELLO_TIMEOUT, DEFAULT_MAX_CLIENT_HELLO};

/// The config the binary runs when given none: an SNI proxy on 127.0.0.1:8443 to port 443,
/// with the system resolver.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Smallest accepted `client_hello_max_bytes`: below this, real hellos do not fit.
const MIN_CLIENT_HELLO_BYTES: usize = 512;
/// Largest accepted `client_hello_max_bytes`: a hello is at most one 2^24 handshake message,
/// but nothing real needs more than this.
const MAX_CLIENT_HELLO_BYTES: usize = 1 << 20;
/// Port of a nameserver given without one.
const DNS_PORT: u16 = 53;

/// A whole egress config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub server: ServerSection,
    /// How names are resolved.
    #[serde(default)]
    pub resolver: ResolverSection,
    /// What may be reached, for every listener without its own `policy` table.
    #[serde(default)]
    pub policy: PolicySection,
    /// How tunnels move bytes, for every listener.
    #[serde(default)]
    pub relay: RelaySection,
    /// TLS passthrough listeners routed by SNI.
    #[serde(default)]
    pub sni: Vec<SniSection>,
    /// HTTP proxy listeners: CONNECT tunnels and plain HTTP forwarding.
    #[serde(default)]
    pub http: Vec<HttpSection>,
}

/// `[server]`: process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSection {
    /// How long open connections may run after a shutdown signal. Default: `"30s"`.
    #[serde(
        default = "default_shutdown_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub shutdown_timeout: Duration,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// `[relay]`: how tunnels (SNI, CONNECT, upgrades) move bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RelaySection {
    /// Zero-copy splice(2) between sockets on Linux; `false` always copies through user
    /// memory. Default: `true`.
    #[serde(default = "default_splice")]
    pub splice: bool,
    /// Most pipes at once, two per spliced tunnel; tunnels past the budget use the
    /// userspace copy. Default: 512.
    #[serde(default = "default_max_pipes")]
    pub max_pipes: Spanned<usize>,
    /// Bytes per pipe (4096 to 1048576). Default: 65536.
    #[serde(default = "default_pipe_size")]
    pub pipe_size: Spanned<usize>,
}

impl Default for RelaySection {
    fn default() -> Self {
        Self {
            splice: default_splice(),
            max_pipes: default_max_pipes(),
            pipe_size: default_pipe_size(),
        }
    }
}

fn default_splice() -> bool {
    true
}
fn default_max_pipes() -> Spanned<usize> {
    Spanned::new(0..0, DEFAULT_MAX_PIPES)
}
fn default_pipe_size() -> Spanned<usize> {
    Spanned::new(0..0, DEFAULT_PIPE_SIZE)
}

/// `[resolver]`: DNS settings shared by every listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ResolverSection {
    /// Nameservers as `"ip"` or `"ip:port"` (port 53 when absent). Default: the system's
    /// `/etc/resolv.conf`.
    #[serde(default, deserialize_with = "deserialize_nameservers")]
    pub nameservers: Option<Vec<SocketAddr>>,
    /// `"ipv4"`, `"ipv6"` or `"both"` (IPv4 first). nginx's `ipv6=off` is `"ipv4"`.
    /// Default: `"both"`.
    #[serde(default, deserialize_with = "deserialize_ip_family")]
    pub ip_family: IpFamily,
    /// Static answers, consulted before DNS: `"name" = ["10.1.2.3"]`. Default: none.
    #[serde(default)]
    pub hosts: HashMap<Name, Vec<IpAddr>>,
    /// Time for one DNS query. Default: `"5s"`.
    #[serde(
        default = "default_query_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub query_timeout: Duration,
    /// Longest time an answer is cached, whatever its TTL. Default: `"5m"`.
    #[serde(
        default = "default_cache_max_ttl",
        deserialize_with = "duration::deserialize"
    )]
    pub cache_max_ttl: Duration,
    /// Number of cached answers. Default: 1024.
    #[serde(default = "default_cache_size")]
    pub cache_size: u64,
}

impl Default for ResolverSection {
    fn default() -> Self {
        let defaults = ResolverConfig::default();
        Self {
            nameservers: defaults.nameservers,
            ip_family: defaults.ip_family,
            hosts: defaults.hosts,
            query_timeout: defaults.query_timeout,
            cache_max_ttl: defaults.cache_max_ttl,
            cache_size: defaults.cache_size,
        }
    }
}

/// The two kinds of listener block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// `[[sni]]`.
    Sni,
    /// `[[http]]`.
    Http,
}

/// `[[sni]]`: a TLS passthrough listener routed by the ClientHello's server name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SniSection {
    /// Addresses to listen on, `"ip:port"` (port 0: a free port). Required; an empty list
    /// makes a block that serves only connections an embedding program hands over
    /// ([`Server::handoff`], `egress_proxy_serve_fd`), which the `egress` binary refuses.
    pub listen: Vec<Spanned<SocketAddr>>,
    /// A port number, or `"listener"` for the port the client connected to. Default: 443.
    #[serde(default, deserialize_with = "deserialize_upstream_port")]
    pub upstream_port: UpstreamPort,
    /// Where a ClientHello without a server name goes (still subject to the policy).
    /// Default: none, such connections are refused with an `unrecognized_name` alert.
    #[serde(default)]
    pub default_host: Option<Name>,
    /// This listener's policy, replacing `[policy]` entirely. Default: `[policy]`.
    #[serde(default)]
    pub policy: Option<PolicySection>,
    /// Most bytes read for one ClientHello. Default: 16384.
    #[serde(default = "default_client_hello_max_bytes")]
    pub client_hello_max_bytes: Spanned<usize>,
    /// Time from accept for the ClientHello to arrive. Default: `"10s"`.
    #[serde(
        default = "default_client_hello_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub client_hello_timeout: Duration,
    /// Time for each upstream connect attempt. Default: `"10s"`.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub connect_timeout: Duration,
    /// Close a tunnel silent this long in both directions. Default: `"1h"`.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub idle_timeout: Duration,
    /// Most open connections across this block's addresses. Default: 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: Spanned<usize>,
}

/// `[[http]]`: an HTTP proxy listener (CONNECT and plain HTTP on one port).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSection {
    /// Addresses to listen on, `"ip:port"` (port 0: a free port). Required; an empty list
    /// makes a block that serves only connections an embedding program hands over
    /// ([`Server::handoff`], `egress_proxy_serve_fd`), which the `egress` binary refuses.
    pub listen: Vec<Spanned<SocketAddr>>,
    /// Ports CONNECT may reach. Default: `[443, 563]`.
    #[serde(default = "default_connect_ports")]
    pub connect_ports: Spanned<Vec<u16>>,
    /// Methods served, case-sensitive (`["GET", "HEAD", "CONNECT"]`); others get 403.
    /// Default: every method.
    #[serde(default)]
    pub methods: Option<Spanned<Vec<String>>>,
    /// Time for each upstream connect attempt. Default: `"10s"`.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub connect_timeout: Duration,
    /// Time for a request head to arrive. Default: `"30s"`.
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub header_timeout: Duration,
    /// Time an idle keep-alive client connection is kept. Default: `"60s"`.
    #[serde(
        default = "default_keepalive_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub keepalive_timeout: Duration,
    /// Close a tunnel or stalled body transfer silent this long. Default: `"1h"`.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub idle_timeout: Duration,
    /// Longest request line in bytes (414 past it). Default: 8192.
    #[serde(default = "default_max_request_line")]
    pub max_request_line: usize,
    /// Largest request head in bytes (431 past it). Default: 65536.
    #[serde(default = "default_max_head_bytes")]
    pub max_head_bytes: usize,
    /// Most header fields (431 past it). Default: 100.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Most open connections across this block's addresses (503 past it). Default: 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: Spanned<usize>,
    /// This listener's policy, replacing `[policy]` entirely. Default: `[policy]`.
    #[serde(default)]
    pub policy: Option<PolicySection>,
}

impl HttpSection {
    /// This block's listener settings, under the default policy ([`Config::bind`] sets the
    /// configured one).
    pub fn options(&self) -> HttpOptions {
        HttpOptions {
            connect_ports: self.connect_ports.get_ref().clone(),
            methods: self.methods.as_ref().map(|m| m.get_ref().clone()),
            limits: HeadLimits {
                max_request_line: self.max_request_line,
                max_head_bytes: self.max_head_bytes,
                max_headers: self.max_headers,
            },
            connect_timeout: self.connect_timeout,
            header_timeout: self.header_timeout,
            keepalive_timeout: self.keepalive_timeout,
            relay: RelayConfig {
                idle_timeout: self.idle_timeout,
                buffer_size: DEFAULT_BUFFER_SIZE,
                pipes: None,
            },
            ..HttpOptions::default()
        }
    }
}

fn default_connect_ports() -> Spanned<Vec<u16>> {
    Spanned::new(0..0, DEFAULT_CONNECT_PORTS.to_vec())
}
fn default_header_timeout() -> Duration {
    DEFAULT_HEADER_TIMEOUT
}
fn default_keepalive_timeout() -> Duration {
    DEFAULT_KEEPALIVE_TIMEOUT
}
fn default_max_request_line() -> usize {
    DEFAULT_MAX_REQUEST_LINE
}
fn default_max_head_bytes() -> usize {
    DEFAULT_MAX_HEAD_BYTES
}
fn default_max_headers() -> usize {
    DEFAULT_MAX_HEADERS
}

fn default_shutdown_timeout() -> Duration {
    DEFAULT_SHUTDOWN_TIMEOUT
}
fn default_query_timeout() -> Duration {
    ResolverConfig::default().query_timeout
}
fn default_cache_max_ttl() -> Duration {
    ResolverConfig::default().cache_max_ttl
}
fn default_cache_size() -> u64 {
    ResolverConfig::default().cache_size
}
fn default_client_hello_max_bytes() -> Spanned<usize> {
    Spanned::new(0..0, DEFAULT_MAX_CLIENT_HELLO)
}
fn default_client_hello_timeout() -> Duration {
    DEFAULT_CLIENT_HELLO_TIMEOUT
}
fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}
fn default_idle_timeout() -> Duration {
    DEFAULT_IDLE_TIMEOUT
}
fn default_max_connections() -> Spanned<usize> {
    Spanned::new(0..0, DEFAULT_MAX_CONNECTIONS)
}

fn deserialize_nameservers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<SocketAddr>>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let addr = match (text.parse::<SocketAddr>(), text.parse::<IpAddr>()) {
            (Ok(addr), _) => addr,
            (_, Ok(ip)) => SocketAddr::new(ip, DNS_PORT),
            _ => {
                return Err(D::Error::custom(format_args!(
                    "nameserver `{text}` is not an IP address or `ip:port`"
                )));
            }
        };
        out.push(addr);
    }
    if out.is_empty() {
        return Err(D::Error::custom(
            "nameservers is empty: remove the key to use the system resolver",
        ));
    }
    Ok(Some(out))
}

fn deserialize_ip_family<'de, D: Deserializer<'de>>(d: D) -> Result<IpFamily, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    match &*text {
        "ipv4" => Ok(IpFamily::Ipv4),
        "ipv6" => Ok(IpFamily::Ipv6),
        "both" => Ok(IpFamily::Both),
        other => Err(D::Error::custom(format_args!(
            "ip_family `{other}` is not one of \"ipv4\", \"ipv6\", \"both\""
        ))),
    }
}

fn deserialize_upstream_port<'de, D: Deserializer<'de>>(d: D) -> Result<UpstreamPort, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Word(String),
    }
    match Raw::deserialize(d) {
        Ok(Raw::Number(n)) => match u16::try_from(n) {
            Ok(port) if port != 0 => Ok(UpstreamPort::Fixed(port)),
            _ => Err(D::Error::custom(format_args!(
                "upstream_port {n} is not a port (1 to 65535)"
            ))),
        },
        Ok(Raw::Word(w)) if w == "listener" => Ok(UpstreamPort::Listener),
        _ => Err(D::Error::custom(
            "upstream_port must be a port number or \"listener\" (the port the client connected to)",
        )),
    }
}

impl Config {
    /// Reads a config from TOML text and checks it.
    ///
    /// # Errors
    ///
    /// An [`Error`] listing each mistake with its line: a TOML syntax error or unknown key
    /// (one at a time, as the parser stops there), or every invalid value found.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error {
            mistakes: vec![Mistake::at(text, e.span(), e.message().trim_end())],
        })?;
        let mistakes = config.check(text);
        if mistakes.is_empty() {
            Ok(config)
        } else {
            Err(Error { mistakes })
        }
    }

    /// The embedded default config ([`DEFAULT_CONFIG`]).
    pub fn embedded_default() -> Self {
        Self::from_toml(DEFAULT_CONFIG)
            .unwrap_or_else(|_| unreachable!("a unit test parses the embedded default"))
    }

    /// Checks what serde cannot: every listener has an address, no address is used twice,
    /// limits are in range.
    fn check(&self, text: &str) -> Vec<Mistake> {
        let mut mistakes = Vec::new();
        if self.sni.is_empty() && self.http.is_empty() {
            mistakes.push(Mistake::at(
                text,
                None,
                "no listener: add an [[sni]] or [[http]] block with `listen = [\"ip:port\"]`",
            ));
        }
        let mut empty: Vec<&Name> = self
            .resolver
            .hosts
            .iter()
            .filter(|(_, ips)| ips.is_empty())
            .map(|(name, _)| name)
            .collect();
        empty.sort();
        for name in empty {
            mistakes.push(Mistake::at(
                text,
                None,
                format!("[resolver.hosts] \"{name}\" lists no address"),
            ));
        }
        self.policy.check(text, &mut mistakes);
        let relay = &self.relay;
        if *relay.max_pipes.get_ref() < 2 {
            mistakes.push(Mistake::at(
                text,
                Some(relay.max_pipes.span()),
                "max_pipes must be at least 2 (one tunnel); set splice = false to never splice",
            ));
        }
        if !(MIN_PIPE_SIZE..=MAX_PIPE_SIZE).contains(relay.pipe_size.get_ref()) {
            mistakes.push(Mistake::at(
                text,
                Some(relay.pipe_size.span()),
                format!("pipe_size must be from {MIN_PIPE_SIZE} to {MAX_PIPE_SIZE}"),
            ));
        }
        let mut seen = HashSet::new();
        for block in &self.sni {
            if let Some(policy) = &block.policy {
                policy.check(text, &mut mistakes);
            }
            check_listener(
                text,
                &block.listen,
                &block.max_connections,
                &mut seen,
                &mut mistakes,
            );
            let max = &block.client_hello_max_bytes;
            if !(MIN_CLIENT_HELLO_BYTES..=MAX_CLIENT_HELLO_BYTES).contains(max.get_ref()) {
                mistakes.push(Mistake::at(
                    text,
                    Some(max.span()),
                    format!("client_hello_max_bytes must be from {MIN_CLIENT_HELLO_BYTES} to {MAX_CLIENT_HELLO_BYTES}"),
                ));
            }
        }
        for block in &self.http {
            if let Some(policy) = &block.policy {
                policy.check(text, &mut mistakes);
            }
            check_listener(
                text,
                &block.listen,
                &block.max_connections,
                &mut seen,
                &mut mistakes,
            );
            let ports = &block.connect_ports;
            if ports.get_ref().is_empty() || ports.get_ref().contains(&0) {
                mistakes.push(Mistake::at(
                    text,
                    Some(ports.span()),
                    "connect_ports must list ports from 1 to 65535 (at least one)",
                ));
            }
            if let Some(methods) = &block.methods {
                let token = |m: &String| {
                    !m.is_empty()
                        && m.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                };
                if methods.get_ref().is_empty() || !methods.get_ref().iter().all(token) {
                    mistakes.push(Mistake::at(
                        text,
                        Some(methods.span()),
                        "methods must list HTTP method tokens (like \"GET\", \"CONNECT\"), at least one",
                    ));
                }
            }
            if block.max_request_line < 64
                || block.max_head_bytes < block.max_request_line
                || block.max_headers == 0
            {
                mistakes.push(Mistake::at(
                    text,
                    None,
                    "an [[http]] block needs max_request_line >= 64, max_head_bytes >= max_request_line and max_headers >= 1",
                ));
            }
        }
        // Report in file order; mistakes without a place come last.
        mistakes.sort_by_key(|m| (m.line.is_none(), m.line, m.column));
        mistakes
    }

    /// The resolver settings as the library takes them.
    pub fn resolver_config(&self) -> ResolverConfig {
        let r = &self.resolver;
        ResolverConfig {
            nameservers: r.nameservers.clone(),
            ip_family: r.ip_family,
            hosts: r.hosts.clone(),
            query_timeout: r.query_timeout,
            cache_max_ttl: r.cache_max_ttl,
            cache_size: r.cache_size,
        }
    }

    /// The [`Server::handoff`] group of the `index`-th block of `kind` (from 0), or `None`
    /// when there is no such block.
    pub fn group(&self, kind: ListenerKind, index: usize) -> Option<usize> {
        match kind {
            ListenerKind::Sni => (index < self.sni.len()).then_some(index),
            ListenerKind::Http => (index < self.http.len()).then_some(self.sni.len() + index),
        }
    }

    /// Builds the resolver and binds every listener, ready to [`Server::run`]. The server's
    /// groups ([`Server::handoff`]) are the `[[sni]]` blocks in file order, then the
    /// `[[http]]` blocks: [`Config::group`] counts them.
    ///
    /// # Errors
    ///
    /// A [`StartError`] when the resolver cannot be built or an address cannot be bound.
    pub async fn bind(&self) -> Result<Server, StartError> {
        let resolver: Arc<dyn Resolve> =
            Arc::new(HickoryResolver::new(self.resolver_config()).map_err(StartError::Resolver)?);
        let mut sni = Vec::with_capacity(self.sni.len());
        for block in &self.sni {
            sni.push(bind_all(&block.listen).await?);
        }
        let mut http = Vec::with_capacity(self.http.len());
        for block in &self.http {
            http.push(bind_all(&block.listen).await?);
        }
        // Every policy denies every listener, so that no target can make the proxy loop.
        let own: Vec<SocketAddr> = sni
            .iter()
            .chain(&http)
            .flatten()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let policy = |section: Option<&PolicySection>| {
            let policy = section.unwrap_or(&self.policy).build()?;
            Ok::<_, StartError>(Arc::new(policy.with_own_listeners(own.iter().copied())))
        };
        // One pipe budget for every tunnel of the process.
        let pipes = self.relay.splice.then(|| {
            Arc::new(PipePool::new(
                *self.relay.max_pipes.get_ref(),
                *self.relay.pipe_size.get_ref(),
            ))
        });
        let mut server = Server::new();
        server.shutdown_timeout(self.server.shutdown_timeout);
        for (block, listeners) in self.sni.iter().zip(sni) {
            let mut options = block.options();
            options.policy = policy(block.policy.as_ref())?;
            options.relay.pipes.clone_from(&pipes);
            let stack = sni_stack(&options, resolver.clone());
            server.serve(listeners, stack, *block.max_connections.get_ref());
        }
        for (block, listeners) in self.http.iter().zip(http) {
            let mut options = block.options();
            options.policy = policy(block.policy.as_ref())?;
            options.relay.pipes.clone_from(&pipes);
            let stack = http_stack(options, resolver.clone());
            let limit = ConnectionLimit::new(*block.max_connections.get_ref())
                .with_overload_response(OVERLOADED);
            server.serve(listeners, stack, limit);
        }
        Ok(server)
    }
}

/// Checks what every listener block shares: addresses (each used once) and the limit.
fn check_listener(
    text: &str,
    listen: &[Spanned<SocketAddr>],
    max_connections: &Spanned<usize>,
    seen: &mut HashSet<SocketAddr>,
    mistakes: &mut Vec<Mistake>,
) {
    for addr in listen {
        // Port 0 asks the kernel for a free port: two of them never collide.
        if addr.get_ref().port() != 0 && !seen.insert(*addr.get_ref()) {
            mistakes.push(Mistake::at(
                text,
                Some(addr.span()),
                format!("{} is listed twice", addr.get_ref()),
            ));
        }
    }
    if *max_connections.get_ref() == 0 {
        mistakes.push(Mistake::at(
            text,
            Some(max_connections.span()),
            "max_connections must be at least 1",
        ));
    }
}

/// Binds every address of a block.
async fn bind_all(
    listen: &[Spanned<SocketAddr>],
) -> Result<Vec<tokio::net::TcpListener>, StartError> {
    let mut listeners = Vec::with_capacity(listen.len());
    for addr in listen {
        let addr = *addr.get_ref();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

impl SniSection {
    /// This block's stack settings, under the default policy ([`Config::bind`] sets the
    /// configured one).
    pub fn options(&self) -> SniOptions {
        SniOptions {
            upstream_port: self.upstream_port,
            default_host: self.default_host.clone(),
            client_hello_max_bytes: *self.client_hello_max_bytes.get_ref(),
            client_hello_timeout: self.client_hello_timeout,
            connect_timeout: self.connect_timeout,
            relay: RelayConfig {
                idle_timeout: self.idle_timeout,
                buffer_size: DEFAULT_BUFFER_SIZE,
                pipes: None,
            },
            ..SniOptions::default()
        }
    }
}

#[cfg(test)]
mod tests;
