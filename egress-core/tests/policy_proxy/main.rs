//! The policy engine end to end, through both listeners, on loopback: written from the
//! specification alone (not from the server, dial or config code).
//!
//! Every scenario is tried through the SNI listener, an HTTP CONNECT and a plain HTTP
//! forward where it applies:
//!
//! - `names`: denied names (deny list, not in the allow list, deny wins) and denied ports.
//! - `addresses`: names resolving to denied addresses, alternating answers (one lookup per
//!   connection), mixed answer sets (only the allowed address is dialed).
//! - `literals`: IP-literal targets, IPv4-mapped forms, non-canonical numeric hosts that
//!   must never be resolved, and the proxy's own listening sockets as targets.
//! - `report`: the same denials go through in report mode.
//! - `overrides`: `[sni.policy]` and `[http.policy]` replace the global policy entirely.
//! - `no_sni`: ClientHellos without a server name, with and without `default_host`.
//! - `config_errors`: bad patterns and unknown keys are config errors with their line.
//!
//! "The upstream saw no connection" is made deterministic by [`Upstream::proxied`]: it
//! connects a sentinel of its own and waits until the listener has accepted it. The accept
//! queue is FIFO, so any connection the proxy completed before is accepted first and counted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers outside #[test] functions fail their test by panicking"
)]

#[path = "../support/mod.rs"]
mod support;

mod addresses;
mod config_errors;
mod literals;
mod names;
mod no_sni;
mod overrides;
mod report;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use support::dns::DnsServer;
use support::hello;
use support::http_upstream::Wire;
use support::proxy::Proxy;

/// Bound on every wait in these tests: a bug fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

/// TLS alert description `unrecognized_name`: the name is denied (or absent).
const UNRECOGNIZED_NAME: u8 = 112;
/// TLS alert description `access_denied`: the name is allowed, its addresses are not.
const ACCESS_DENIED: u8 = 49;

/// What a connection through the proxy came to.
#[derive(Clone, PartialEq, Eq)]
enum Outcome {
    /// It reached an upstream: everything the client read (after a CONNECT's `200` head,
    /// or the body of a forwarded `200`), which is that upstream's [`Upstream::tag`].
    Through(String),
    /// An HTTP refusal (not 200): status, `X-Egress-Error` value, and then the proxy
    /// closed the connection with nothing after the response.
    Refused(u16, Option<String>),
    /// Exactly the 7 bytes of a fatal TLS alert record with this description, then EOF.
    Alert(u8),
    /// Anything else, described.
    Other(String),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Through(tag) => write!(f, "Through({tag:?})"),
            Self::Refused(status, reason) => write!(f, "Refused({status}, {reason:?})"),
            Self::Alert(desc) => write!(f, "Alert({desc})"),
            Self::Other(what) => write!(f, "Other({what})"),
        }
    }
}

/// An HTTP 403 refusal with this `X-Egress-Error` reason.
fn forbidden(reason: &str) -> Outcome {
    Outcome::Refused(403, Some(reason.to_owned()))
}

/// The three answers (SNI, CONNECT, plain forward) to a denial for `reason`: the SNI alert
/// is `unrecognized_name` for name-level reasons and `access_denied` for address ones.
fn denied3(reason: &str) -> [Outcome; 3] {
    let alert = match reason {
        "denied_name" | "denied_port" => UNRECOGNIZED_NAME,
        "denied_ip" | "no_allowed_address" => ACCESS_DENIED,
        other => panic!("not a denial reason: {other}"),
    };
    [Outcome::Alert(alert), forbidden(reason), forbidden(reason)]
}

/// Bytes shown escaped.
fn escaped(bytes: &[u8]) -> String {
    const MAX: usize = 300;
    let shown = &bytes[..bytes.len().min(MAX)];
    let more = if bytes.len() > MAX { "..." } else { "" };
    format!(
        "b\"{}\"{more} ({} bytes)",
        shown.escape_ascii(),
        bytes.len()
    )
}

/// Reads until EOF (a reset counts as EOF); `None` if the peer has not closed within
/// [`WAIT`].
async fn read_to_close(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(WAIT, read_all).await.ok().map(|()| out)
}

/// Sends `hello` to an SNI listener (no half-close: the proxy must act on the bytes) and
/// classifies what comes back until the proxy closes.
async fn sni_try(proxy: SocketAddr, hello: &[u8]) -> Outcome {
    let mut stream = timeout(WAIT, TcpStream::connect(proxy))
        .await
        .expect("connect to the proxy timed out")
        .expect("connect to the proxy");
    stream.set_nodelay(true).unwrap();
    if let Err(e) = stream.write_all(hello).await {
        return Outcome::Other(format!("writing the ClientHello: {e}"));
    }
    let Some(bytes) = read_to_close(&mut stream).await else {
        return Outcome::Other("the proxy did not close the connection".into());
    };
    classify_sni(&bytes)
}

fn classify_sni(bytes: &[u8]) -> Outcome {
    match bytes {
        [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, desc] => Outcome::Alert(*desc),
        _ if bytes.starts_with(b"tag ") => Outcome::Through(String::from_utf8_lossy(bytes).into()),
        _ => Outcome::Other(escaped(bytes)),
    }
}

/// Sends one HTTP request (a CONNECT or a forward) on a new connection and classifies the
/// answer. A `200` is read to the end of its body (or, without framing, to EOF: a tunnel);
/// anything else must be followed by the proxy closing the connection.
async fn http_try(proxy: SocketAddr, request: &[u8]) -> Outcome {
    let stream = timeout(WAIT, TcpStream::connect(proxy))
        .await
        .expect("connect to the proxy timed out")
        .expect("connect to the proxy");
    stream.set_nodelay(true).unwrap();
    let mut wire = Wire::new(stream);
    // A write error is not an answer yet: the proxy may have replied and closed already.
    let _ = timeout(WAIT, wire.stream.write_all(request)).await;
    let head = match timeout(WAIT, wire.read_head()).await {
        Err(_) => return Outcome::Other("no response head".into()),
        Ok(Err(partial)) => return Outcome::Other(format!("cut mid-head: {}", escaped(&partial))),
        Ok(Ok(None)) => return Outcome::Other("closed without a response".into()),
        Ok(Ok(Some(head))) => String::from_utf8_lossy(&head).into_owned(),
    };
    let Some(status) = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) else {
        return Outcome::Other(format!("bad status line: {head:?}"));
    };
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let body = match length {
        Some(n) => match timeout(WAIT, wire.read_exact(n)).await {
            Ok(Ok(body)) => body,
            _ => return Outcome::Other(format!("body cut short after {head:?}")),
        },
        None => match timeout(WAIT, wire.read_to_end()).await {
            Ok(body) => body,
            Err(_) => return Outcome::Other(format!("no end to the body after {head:?}")),
        },
    };
    if status == 200 {
        return Outcome::Through(String::from_utf8_lossy(&body).into_owned());
    }
    match timeout(WAIT, wire.read_to_end()).await {
        Err(_) => Outcome::Other(format!("not closed after the refusal {head:?}")),
        Ok(rest) if !rest.is_empty() => Outcome::Other(format!(
            "bytes after the refusal {head:?}: {}",
            escaped(&rest)
        )),
        Ok(_) => Outcome::Refused(status, header("x-egress-error")),
    }
}

/// A CONNECT to `authority`.
fn connect_request(authority: &str) -> Vec<u8> {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

/// An absolute-form GET of `http://{authority}/`.
fn get_request(authority: &str) -> Vec<u8> {
    format!("GET http://{authority}/ HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

/// A ClientHello whose only extension is a server_name of `name`.
fn hello_for(name: &str) -> Vec<u8> {
    hello::hello_with_names(&[name.as_bytes()])
}

/// How an [`Upstream`] talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speak {
    /// Sends its tag as soon as it accepts, half-closes, then reads until EOF (for SNI
    /// tunnels and CONNECT).
    Raw,
    /// Reads one request head, answers `200` with its tag as a `Content-Length` body and
    /// `Connection: close`, then closes (for plain forwarding).
    Http,
}

/// A loopback upstream that records the peer of every connection it accepts, in order,
/// and answers with a tag naming itself.
struct Upstream {
    addr: SocketAddr,
    tag: String,
    peers: watch::Sender<Vec<SocketAddr>>,
    sentinels: Mutex<Vec<SocketAddr>>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Binds `addr` (`"127.0.0.1:0"`, `"[::1]:0"`).
    async fn bind(addr: &str, speak: Speak) -> Upstream {
        Self::serve(TcpListener::bind(addr).await.unwrap(), speak)
    }

    fn serve(listener: TcpListener, speak: Speak) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let tag = format!("tag {speak:?} upstream at {addr}\n");
        let (peers, _) = watch::channel(Vec::new());
        let task = tokio::spawn(accept_loop(listener, speak, tag.clone(), peers.clone()));
        Upstream {
            addr,
            tag,
            peers,
            sentinels: Mutex::new(Vec::new()),
            task,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What a client reaching this upstream reads.
    fn tag(&self) -> String {
        self.tag.clone()
    }

    /// [`Outcome::Through`] this upstream.
    fn through(&self) -> Outcome {
        Outcome::Through(self.tag())
    }

    /// How many connections other than its own sentinels it has accepted, counting every
    /// connection whose handshake completed before this call: a sentinel is connected and
    /// waited for first.
    async fn proxied(&self) -> usize {
        let sentinel = timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .expect("sentinel connect timed out")
            .expect("sentinel connect");
        let me = sentinel.local_addr().unwrap();
        self.sentinels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(me);
        let mut seen = self.peers.subscribe();
        timeout(WAIT, seen.wait_for(|peers| peers.contains(&me)))
            .await
            .expect("the upstream never accepted the sentinel")
            .unwrap();
        drop(sentinel);
        let sentinels = self
            .sentinels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.peers
            .borrow()
            .iter()
            .filter(|p| !sentinels.contains(p))
            .count()
    }
}

async fn accept_loop(
    listener: TcpListener,
    speak: Speak,
    tag: String,
    peers: watch::Sender<Vec<SocketAddr>>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            return;
        };
        peers.send_modify(|p| p.push(peer));
        let tag = tag.clone();
        tokio::spawn(async move {
            let _ = timeout(WAIT, answer(stream, speak, &tag)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, speak: Speak, tag: &str) {
    let mut buf = [0u8; 4096];
    match speak {
        Speak::Raw => {
            let _ = stream.write_all(tag.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Speak::Http => {
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{tag}",
                tag.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Upstreams listening on the same port of each of `ips` (`"127.0.0.1"`, `"127.0.0.2"`),
/// in that order: a name resolving to any of them is dialed on that one port.
async fn same_port(ips: &[&str], speak: Speak) -> Vec<Upstream> {
    'attempt: for _ in 0..100 {
        let first = TcpListener::bind((ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind((*ip, port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'attempt,
            }
        }
        return listeners
            .into_iter()
            .map(|l| Upstream::serve(l, speak))
            .collect();
    }
    panic!("no port free on all of {ips:?}");
}

/// Parsed addresses.
fn addrs(ips: &[&str]) -> Vec<IpAddr> {
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// The `[resolver]` table using `dns` alone.
fn resolver(dns: &DnsServer) -> String {
    format!(
        "[resolver]\nnameservers = [\"{}\"]\nquery_timeout = \"1s\"\n\n",
        dns.addr()
    )
}

/// An `[[sni]]` block on `listen` dialing `upstream_port`, with `extra` lines after its keys
/// (a `[sni.policy]` table, say).
fn sni_block(listen: &str, upstream_port: &str, extra: &str) -> String {
    format!("[[sni]]\nlisten = [\"{listen}\"]\nupstream_port = {upstream_port}\n{extra}\n\n")
}

/// An `[[http]]` block on `listen` with `connect_ports`, with `extra` lines after its keys.
fn http_block(listen: &str, connect_ports: &[u16], extra: &str) -> String {
    let ports: Vec<String> = connect_ports.iter().map(u16::to_string).collect();
    format!(
        "[[http]]\nlisten = [\"{listen}\"]\nconnect_ports = [{}]\n{extra}\n\n",
        ports.join(", ")
    )
}

/// A TOML string array.
fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The usual fixture: a DNS server, a raw upstream on `127.0.0.1` (for SNI and CONNECT) and
/// an HTTP upstream on `127.0.0.1` (for plain forwarding).
struct Rig {
    dns: DnsServer,
    raw: Upstream,
    http: Upstream,
}

impl Rig {
    async fn new() -> Rig {
        Rig {
            dns: DnsServer::start().await,
            raw: Upstream::bind("127.0.0.1:0", Speak::Raw).await,
            http: Upstream::bind("127.0.0.1:0", Speak::Http).await,
        }
    }

    /// Makes each of `names` resolve to `ips`.
    fn names(&self, names: &[&str], ips: &[&str]) {
        for name in names {
            self.dns.set(name, addrs(ips));
        }
    }

    /// Two proxies sharing `global` (TOML tables such as `[policy]`): one SNI listener
    /// dialing the raw upstream's port, one HTTP listener allowing CONNECT to it.
    async fn proxies(&self, global: &str) -> Proxies {
        self.proxies_with(global, "", "").await
    }

    /// [`Rig::proxies`] with `sni_extra` and `http_extra` after the listeners' keys.
    async fn proxies_with(&self, global: &str, sni_extra: &str, http_extra: &str) -> Proxies {
        Proxies::start(
            &self.dns,
            global,
            (self.raw.port(), self.http.port()),
            sni_extra,
            http_extra,
        )
        .await
    }

    /// The three answers when `name` gets through: the raw upstream's tag twice, the HTTP
    /// upstream's once.
    fn through3(&self) -> [Outcome; 3] {
        [self.raw.through(), self.raw.through(), self.http.through()]
    }

    /// Both upstreams' proxied connection counts (raw, http).
    async fn proxied(&self) -> (usize, usize) {
        (self.raw.proxied().await, self.http.proxied().await)
    }
}

/// A running SNI proxy and HTTP proxy, and the ports they aim at.
struct Proxies {
    sni: Proxy,
    http: Proxy,
    raw_port: u16,
    http_port: u16,
}

impl Proxies {
    /// Two proxies resolving with `dns` alone and sharing `global` (TOML tables such as
    /// `[policy]`): an SNI listener dialing `raw_port` with `sni_extra` after its keys, and an
    /// HTTP listener allowing CONNECT to `raw_port` with `http_extra` after its keys; plain
    /// forwards go to `http_port`.
    async fn start(
        dns: &DnsServer,
        global: &str,
        (raw_port, http_port): (u16, u16),
        sni_extra: &str,
        http_extra: &str,
    ) -> Proxies {
        let resolver = resolver(dns);
        let sni = format!(
            "{resolver}{global}\n{}",
            sni_block("127.0.0.1:0", &raw_port.to_string(), sni_extra)
        );
        let http = format!(
            "{resolver}{global}\n{}",
            http_block("127.0.0.1:0", &[raw_port], http_extra)
        );
        Proxies {
            sni: Proxy::start(&sni).await,
            http: Proxy::start(&http).await,
            raw_port,
            http_port,
        }
    }

    /// A ClientHello naming `name` through the SNI listener.
    async fn sni(&self, name: &str) -> Outcome {
        sni_try(self.sni.addr(), &hello_for(name)).await
    }

    /// `CONNECT host:<raw port>` (`host` bracketed if IPv6).
    async fn connect(&self, host: &str) -> Outcome {
        let request = connect_request(&format!("{host}:{}", self.raw_port));
        http_try(self.http.addr(), &request).await
    }

    /// `GET http://host:<http port>/`.
    async fn get(&self, host: &str) -> Outcome {
        let request = get_request(&format!("{host}:{}", self.http_port));
        http_try(self.http.addr(), &request).await
    }

    /// SNI, CONNECT and plain forward for `name`, in that order.
    async fn all(&self, name: &str) -> [Outcome; 3] {
        [
            self.sni(name).await,
            self.connect(name).await,
            self.get(name).await,
        ]
    }
}
