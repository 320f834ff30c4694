//! The HTTP proxy listener end to end on loopback, written from its specification: real
//! rustls clients and upstreams through CONNECT, an HTTP/1.1 origin server
//! ([`support::http_upstream`]) that records what arrives on each of its connections, and a
//! real DNS server.
//!
//! - `connect`: CONNECT tunnels: rustls handshakes (the ClientHello in the CONNECT's own
//!   write too), the bytes after the head delivered once, refused ports, CONNECT with a body.
//! - `forward`: plain HTTP in absolute and origin form: exact upstream heads, bodies both ways
//!   in every framing, HEAD, `100-continue`, hop-by-hop headers, URI against Host.
//! - `keepalive`: several requests on one client connection, each to its own upstream;
//!   upstream connections reused only for the same host and port; pipelining.
//! - `upgrade`: a WebSocket upgrade becomes a tunnel.
//! - `errors`: every refusal status with its `X-Egress-Error` header, and that a refused
//!   request reaches no upstream.
//!
//! "Reaches no upstream" is made deterministic by sending a valid request afterwards and
//! checking that it is the first and only thing the upstream ever saw.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod connect;
mod errors;
mod forward;
mod keepalive;
mod methods;
mod timeouts;
mod upgrade;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use support::http_upstream::{HttpUpstream, Wire, echo_line};

/// Bound on every wait in these tests: a bug fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

/// The two names the proxy's static hosts map to `127.0.0.1`.
const WWW: &str = "www.example.test";
const OTHER: &str = "other.example.test";

/// A proxy config with one `[[http]]` block allowing CONNECT to `connect_ports`, the two
/// test names mapped to `127.0.0.1`, a nameserver that is never reached, and `extra` lines
/// in the `[[http]]` block.
fn config(connect_ports: &[u16], extra: &str) -> String {
    with_resolver(
        &format!(
            "nameservers = [\"127.0.0.1:9\"]\nquery_timeout = \"1s\"\n\n[resolver.hosts]\n\"{WWW}\" = [\"127.0.0.1\"]\n\"{OTHER}\" = [\"127.0.0.1\"]\n"
        ),
        connect_ports,
        extra,
    )
}

/// A proxy config with the given `[resolver]` body.
fn with_resolver(resolver: &str, connect_ports: &[u16], extra: &str) -> String {
    let ports: Vec<String> = connect_ports.iter().map(u16::to_string).collect();
    format!(
        "[policy]\nallow_cidrs = [\"127.0.0.0/8\", \"::1\"]\n\n[resolver]\n{resolver}\n[[http]]\nlisten = [\"127.0.0.1:0\"]\nconnect_ports = [{}]\n{extra}\n",
        ports.join(", ")
    )
}

/// Bytes shown escaped in assertion messages.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 600;
        if self.0.len() <= MAX {
            write!(f, "b\"{}\"", self.0.escape_ascii())
        } else {
            write!(
                f,
                "b\"{}\"... ({} bytes)",
                self.0[..MAX].escape_ascii(),
                self.0.len()
            )
        }
    }
}

/// Asserts two byte strings are equal, showing them escaped.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(Bytes(got.to_vec()), Bytes(want.to_vec()), "{what}");
}

/// A response as the client read it.
struct Response {
    /// Every byte of it, head and body as sent (chunked framing included).
    raw: Vec<u8>,
    /// The head's text.
    head: String,
    status: u16,
    /// The body, de-chunked.
    body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("head", &self.head)
            .field("body", &Bytes(self.body.clone()))
            .finish()
    }
}

impl Response {
    /// The value of the first header called `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// A client connection to the proxy that reads responses exactly, leaving what follows.
struct Client {
    wire: Wire<TcpStream>,
}

impl Client {
    async fn connect(proxy: SocketAddr) -> Client {
        let stream = timeout(WAIT, TcpStream::connect(proxy))
            .await
            .unwrap()
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            wire: Wire::new(stream),
        }
    }

    /// Writes `bytes` in one write.
    async fn send(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.wire.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .unwrap();
    }

    /// Writes `bytes`, ignoring a failure (the proxy may have closed already).
    async fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = timeout(WAIT, self.wire.stream.write_all(bytes)).await;
    }

    /// Reads one head, through its blank line, and nothing more.
    async fn head(&mut self) -> String {
        let head = timeout(WAIT, self.wire.read_head())
            .await
            .expect("no response head")
            .unwrap_or_else(|partial| panic!("connection ended mid-head: {:?}", Bytes(partial)))
            .expect("connection closed without a response");
        String::from_utf8(head).unwrap()
    }

    /// Reads one complete response to a request that was not HEAD.
    async fn response(&mut self) -> Response {
        self.read_response(false).await
    }

    /// Reads one complete response to a HEAD request.
    async fn head_response(&mut self) -> Response {
        self.read_response(true).await
    }

    async fn read_response(&mut self, head_request: bool) -> Response {
        let head = self.head().await;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head:?}"));
        let mut response = Response {
            raw: head.clone().into_bytes(),
            head,
            status,
            body: Vec::new(),
        };
        let no_body = head_request || status < 200 || status == 204 || status == 304;
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length: Option<usize> = response
            .header("content-length")
            .map(|v| v.parse().unwrap());
        let (raw, body) = if no_body {
            (Vec::new(), Vec::new())
        } else if chunked {
            let body = timeout(WAIT, self.wire.read_chunked())
                .await
                .expect("chunked body did not end")
                .unwrap();
            (body.raw, body.body)
        } else if let Some(n) = length {
            let body = timeout(WAIT, self.wire.read_exact(n))
                .await
                .expect("body did not arrive")
                .unwrap_or_else(|e| panic!("body cut short ({e}) after {:?}", response.head));
            (body.clone(), body)
        } else {
            let body = self.read_to_close().await;
            (body.clone(), body)
        };
        response.raw.extend_from_slice(&raw);
        response.body = body;
        response
    }

    /// Reads until the proxy closes (a reset counts as a close); what was buffered first.
    async fn read_to_close(&mut self) -> Vec<u8> {
        timeout(WAIT, self.wire.read_to_end())
            .await
            .expect("the proxy never closed the connection")
    }

    /// Sends a request and reads its response.
    async fn exchange(&mut self, request: &[u8]) -> Response {
        self.send(request).await;
        self.response().await
    }
}

/// Sends `request` on a new connection and returns the refusal, after checking its shape:
/// `status`, an `X-Egress-Error` header, `Connection: close`, a one-line body of the stated
/// length, and then the connection closed.
async fn refused(proxy: SocketAddr, request: &[u8], status: u16, what: &str) -> Response {
    try_refused(proxy, request, status)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// [`refused`], reporting a wrong answer (or none within [`WAIT`]) as an error instead of
/// panicking.
async fn try_refused(proxy: SocketAddr, request: &[u8], status: u16) -> Result<Response, String> {
    let request = request.to_vec();
    tokio::spawn(async move { refusal_of(proxy, &request, status).await })
        .await
        .unwrap_or_else(|e| Err(panic_message(e)))
}

/// What a panicked task said.
fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned()),
        Err(e) => e.to_string(),
    }
}

async fn refusal_of(proxy: SocketAddr, request: &[u8], status: u16) -> Result<Response, String> {
    let mut client = Client::connect(proxy).await;
    client.send_lossy(request).await;
    let response = client.response().await;
    check_refusal(&response, status)?;
    let rest = client.read_to_close().await;
    if !rest.is_empty() {
        return Err(format!("bytes after the refusal: {:?}", Bytes(rest)));
    }
    Ok(response)
}

/// Checks the shape of a refusal written by the proxy.
#[track_caller]
fn assert_refusal(response: &Response, status: u16, what: &str) {
    if let Err(e) = check_refusal(response, status) {
        panic!("{what}: {e}");
    }
}

fn check_refusal(response: &Response, status: u16) -> Result<(), String> {
    let reason = response.header("x-egress-error");
    let connection = response.header("connection").map(str::to_ascii_lowercase);
    let body = &response.body;
    let one_line = body.ends_with(b"\n") && !body[..body.len() - 1].contains(&b'\n');
    if response.status != status || !response.head.starts_with(&format!("HTTP/1.1 {status} ")) {
        Err(format!("want {status}, got {response:?}"))
    } else if reason.is_none_or(str::is_empty) {
        Err(format!("no X-Egress-Error header: {response:?}"))
    } else if connection.as_deref() != Some("close") {
        Err(format!("no Connection: close: {response:?}"))
    } else if !one_line {
        Err(format!("the body is not one line: {response:?}"))
    } else {
        Ok(())
    }
}

/// A `GET` in absolute form to `host:port` with no other header than `Host`.
fn get(host: &str, port: u16, path: &str) -> Vec<u8> {
    format!("GET http://{host}:{port}{path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").into_bytes()
}

/// The head an upstream gets for [`get`].
fn upstream_get(host: &str, port: u16, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n")
}

/// The response the proxy passes on from a [`Mode::Length`](support::http_upstream::Mode)
/// upstream answering `body`.
fn length_response(body: &[u8]) -> Vec<u8> {
    [
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
        body,
    ]
    .concat()
}

/// The response to a bodiless `method` of `path` from a Length-mode upstream at `host:port`.
fn echo_response(method: &str, host: &str, port: u16, path: &str) -> Vec<u8> {
    length_response(echo_line(method, path, &format!("{host}:{port}"), 0).as_bytes())
}

/// Asserts, after a refusal, that `upstream` never saw a connection: sends a valid request
/// to it through `proxy` and checks the upstream's whole history is `previous` connections
/// of one good request each, then this one.
async fn assert_untouched(proxy: SocketAddr, upstream: &HttpUpstream, previous: usize, what: &str) {
    if let Err(e) = check_untouched(proxy, upstream, previous).await {
        panic!("{what}: {e}");
    }
}

/// [`assert_untouched`], reporting what went wrong as an error instead of panicking.
async fn check_untouched(
    proxy: SocketAddr,
    upstream: &HttpUpstream,
    previous: usize,
) -> Result<(), String> {
    let path = format!("/after/{previous}");
    let mut client = Client::connect(proxy).await;
    let response = client.exchange(&get(WWW, upstream.port(), &path)).await;
    if response.status != 200 {
        return Err(format!(
            "the request after the refusal failed: {response:?}"
        ));
    }
    let heads = upstream.heads();
    let want: Vec<Vec<String>> = (0..=previous)
        .map(|i| vec![upstream_get(WWW, upstream.port(), &format!("/after/{i}"))])
        .collect();
    if heads != want {
        return Err(format!("the upstream saw something else: {heads:#?}"));
    }
    Ok(())
}
