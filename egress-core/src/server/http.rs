//! The HTTP listener: CONNECT tunnels and plain HTTP forwarding (absolute and origin form) on
//! one port, with keep-alive. Each request picks its own upstream; an upstream connection is
//! reused only for the same host and port.

use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{Service, ServiceExt};
use tracing::Span;

use super::Accepted;
use super::body::{BodyError, READ_CHUNK, copy_body};
use super::forward::tunnel_relay;
use super::refuse::{PolicyDenied, admit, reply_and_close};
use crate::dial::{self, DEFAULT_CONNECT_TIMEOUT, Dial, Upstream};
use crate::http::{
    HeadError, HeadLimits, Parse, RequestHead, ResponseBody, Version, error_response,
    parse_request_head, parse_response_head,
};
use crate::policy::Policy;
use crate::relay::{self, RelayConfig};
use crate::resolve::{self, Resolve};
use crate::target::Target;
use crate::{BoxError, BoxFuture};

/// Default ports CONNECT may reach, like `proxy_connect_allow 443 563`.
pub const DEFAULT_CONNECT_PORTS: [u16; 2] = [443, 563];
/// Default time for a whole request head to arrive (slowloris bound), from accept or from
/// the first byte of a later request.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an idle keep-alive client connection is kept open.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of an HTTP listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Ports CONNECT may reach. Default: 443 and 563.
    pub connect_ports: Vec<u16>,
    /// Methods served (case-sensitive, `CONNECT` included); others get 403. Default: `None`,
    /// every method.
    pub methods: Option<Vec<String>>,
    /// Request-head limits (8 KiB request line, 64 KiB head, 100 headers).
    pub limits: HeadLimits,
    /// Time for each upstream connect attempt. Default: 10 s.
    pub connect_timeout: Duration,
    /// Time for a request head to arrive. Default: 30 s.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection waits for its next request. Default: 60 s.
    pub keepalive_timeout: Duration,
    /// Tunnels (CONNECT, WebSocket) and bodies: idle timeout (1 h) and buffer size.
    pub relay: RelayConfig,
    /// What may be reached. Default: [`Policy::default`], every public name and address.
    pub policy: Arc<Policy>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_ports: DEFAULT_CONNECT_PORTS.to_vec(),
            methods: None,
            limits: HeadLimits::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            relay: RelayConfig::default(),
            policy: Policy::shared_default(),
        }
    }
}

/// The response a listener sends to connections past its limit.
pub const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nX-Egress-Error: connection_limit\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\nproxy connection limit hit\n";

/// The stack of an HTTP proxy listener: one service that runs each client connection's
/// request loop, dialing through `Dial`.
pub fn http_stack(options: HttpOptions, resolver: Arc<dyn Resolve>) -> HttpProxy {
    let dial = Dial::new(resolver, options.connect_timeout).with_policy(options.policy.clone());
    HttpProxy {
        options: Arc::new(options),
        dial,
    }
}

/// Serves CONNECT and plain HTTP on accepted connections. Build it with [`http_stack`].
#[derive(Debug, Clone)]
pub struct HttpProxy {
    options: Arc<HttpOptions>,
    dial: Dial,
}

impl Service<Accepted> for HttpProxy {
    type Response = ();
    type Error = BoxError;
    type Future = BoxFuture<()>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, conn: Accepted) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.serve(conn).await })
    }
}

/// Why reading a request head stopped.
enum HeadRead {
    Head(RequestHead),
    /// The client closed or went idle between requests: a clean end.
    Idle,
}

/// A failure that still lets the proxy answer the client.
struct Refusal {
    status: u16,
    reason: &'static str,
    message: String,
}

impl Refusal {
    fn from_head(e: &HeadError) -> Self {
        Self {
            status: e.status(),
            reason: e.reason(),
            message: e.to_string(),
        }
    }

    fn from_policy(denied: PolicyDenied, target: &Target) -> Self {
        Self {
            status: 403,
            reason: denied.reason.as_str(),
            message: format!("the proxy's policy does not allow {target}"),
        }
    }

    fn from_dial(e: &dial::Error) -> Self {
        let (status, reason) = match e {
            dial::Error::NoAllowedAddress { .. } => (403, "no_allowed_address"),
            dial::Error::Resolve(resolve::Error::Timeout) => (504, "dns_timeout"),
            dial::Error::Resolve(_) => (502, "dns_error"),
            dial::Error::Timeout { .. } => (504, "connect_timeout"),
            _ => (502, "connect_failed"),
        };
        Self {
            status,
            reason,
            message: e.to_string(),
        }
    }
}

/// What happened to one forwarded request, for the connection loop.
struct Exchange {
    close_client: bool,
    /// The final status the upstream answered.
    status: u16,
    /// Bytes sent upstream (head and body) and to the client (head and body).
    up: u64,
    down: u64,
    /// A failure after the response head was sent: the exchange is cut short.
    error: Option<BoxError>,
}

impl HttpProxy {
    async fn serve(&self, conn: Accepted) -> Result<(), BoxError> {
        let Accepted {
            mut stream,
            accepted_at,
            ..
        } = conn;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut pooled: Option<(Target, TcpStream)> = None;
        let mut deadline = accepted_at + self.options.header_timeout;
        let mut keepalive = false;
        loop {
            let head = match self
                .read_head(&mut stream, &mut buf, deadline, keepalive)
                .await
            {
                Ok(HeadRead::Head(head)) => head,
                Ok(HeadRead::Idle) => return Ok(()),
                Err(refusal) => return self.refuse(&mut stream, refusal).await,
            };
            let target = Target {
                host: head.host().clone(),
                port: head.port(),
                port_source: head.port_source(),
            };
            let started = Instant::now();
            if let Some(methods) = &self.options.methods {
                if !methods.iter().any(|m| m == head.method()) {
                    let message = format!("method {} is not allowed", head.method());
                    let refusal = Refusal {
                        status: 403,
                        reason: "method_not_allowed",
                        message,
                    };
                    return self.refuse(&mut stream, refusal).await;
                }
            }
            if head.is_connect() {
                return self.connect(stream, buf, head, target).await;
            }
            let result = match admit(&self.options.policy, &target) {
                Ok(()) => {
                    self.forward(&mut stream, &mut buf, &head, target.clone(), &mut pooled)
                        .await
                }
                Err(denied) => Err(Refusal::from_policy(denied, &target)),
            };
            let (status, up, down, error) = match &result {
                Ok(e) => (
                    e.status,
                    e.up,
                    e.down,
                    e.error.as_ref().map(ToString::to_string),
                ),
                Err(refusal) => (refusal.status, 0, 0, Some(refusal.message.clone())),
            };
            tracing::info!(
                method = head.method(),
                %target,
                path = head.path(),
                status,
                up,
                down,
                duration_ms = started.elapsed().as_millis(),
                error,
                "request"
            );
            match result {
                Ok(exchange) if !exchange.close_client => {}
                Ok(_) => return Ok(()),
                Err(refusal) => return self.refuse(&mut stream, refusal).await,
            }
            deadline = Instant::now() + self.options.keepalive_timeout;
            keepalive = true;
        }
    }

    /// Sends an error response and ends the connection with the refusal as its error.
    async fn refuse(&self, stream: &mut TcpStream, refusal: Refusal) -> Result<(), BoxError> {
        Span::current().record("status", refusal.status);
        let response = error_response(refusal.status, refusal.reason, &refusal.message);
        reply_and_close(stream, &response, self.options.header_timeout).await;
        Err(format!("{} {}: {}", refusal.status, refusal.reason, refusal.message).into())
    }

    /// Reads until `buf` holds a complete request head by `deadline`. On a keep-alive wait
    /// (`keepalive`), `deadline` bounds the wait for the first byte, and the head then gets
    /// the header timeout from that byte; the first request's deadline counts from accept.
    async fn read_head(
        &self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
        mut deadline: Instant,
        keepalive: bool,
    ) -> Result<HeadRead, Refusal> {
        let limits = &self.options.limits;
        let mut started = !keepalive || !buf.is_empty();
        let mut check = !buf.is_empty();
        let mut saw_line_end = buf.contains(&b'\n');
        loop {
            if check {
                match parse_request_head(buf, limits) {
                    Ok(Parse::Complete(head)) => return Ok(HeadRead::Head(head)),
                    Ok(Parse::NeedMore) => {}
                    Err(e) => return Err(Refusal::from_head(&e)),
                }
            }
            let room = (limits.max_head_bytes + 1)
                .saturating_sub(buf.len())
                .clamp(1, READ_CHUNK);
            buf.reserve(room);
            let before = buf.len();
            let mut space = (&mut *buf).limit(room);
            let n =
                match tokio::time::timeout_at(deadline.into(), stream.read_buf(&mut space)).await {
                    Err(_) if buf.is_empty() => return Ok(HeadRead::Idle),
                    Err(_) => {
                        return Err(Refusal {
                            status: 408,
                            reason: "header_timeout",
                            message: "request head not received in time".into(),
                        });
                    }
                    Ok(Err(_)) | Ok(Ok(0)) if buf.is_empty() => return Ok(HeadRead::Idle),
                    Ok(Err(e)) => {
                        return Err(Refusal {
                            status: 400,
                            reason: "client_error",
                            message: e.to_string(),
                        });
                    }
                    Ok(Ok(0)) => {
                        return Err(Refusal {
                            status: 400,
                            reason: "incomplete_head",
                            message: "client closed mid-head".into(),
                        });
                    }
                    Ok(Ok(n)) => n,
                };
            if !started {
                started = true;
                deadline = Instant::now() + self.options.header_timeout;
            }
            // Parse again only when a line may have ended or a limit may have passed, so a
            // client sending one byte at a time does not cost a rescan per byte.
            let new_line = buf[before..before + n].contains(&b'\n');
            check = new_line
                || (!saw_line_end && buf.len() > limits.max_request_line)
                || buf.len() > limits.max_head_bytes;
            saw_line_end |= new_line;
        }
    }

    /// Answers a CONNECT: checks the port and the policy, dials, says 200, then relays; bytes the client
    /// sent after the head go upstream first.
    async fn connect(
        &self,
        mut stream: TcpStream,
        buf: BytesMut,
        head: RequestHead,
        target: Target,
    ) -> Result<(), BoxError> {
        let span = Span::current();
        span.record("method", "CONNECT");
        span.record("target", tracing::field::display(&target));
        if !self.options.connect_ports.contains(&target.port) {
            let message = format!("CONNECT to port {} is not allowed", target.port);
            return self
                .refuse(
                    &mut stream,
                    Refusal {
                        status: 403,
                        reason: "port_not_allowed",
                        message,
                    },
                )
                .await;
        }
        if let Err(denied) = admit(&self.options.policy, &target) {
            let refusal = Refusal::from_policy(denied, &target);
            return self.refuse(&mut stream, refusal).await;
        }
        let mut upstream = match self.dial.clone().oneshot(target).await {
            Ok(upstream) => upstream,
            Err(e) => return self.refuse(&mut stream, Refusal::from_dial(&e)).await,
        };
        span.record("upstream", tracing::field::display(upstream.addr));
        stream
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        span.record("status", 200);
        // What the client sent past the head goes first; the read buffer itself is not kept
        // for the tunnel's life.
        let early = buf[head.len()..].to_vec();
        drop((buf, head));
        tunnel_relay(
            &mut stream,
            &mut upstream.stream,
            &early,
            &self.options.relay,
        )
        .await
        .map(drop)
        .map_err(Into::into)
    }

    /// Forwards one plain HTTP request and its response.
    async fn forward(
        &self,
        client: &mut TcpStream,
        buf: &mut BytesMut,
        head: &RequestHead,
        target: Target,
        pooled: &mut Option<(Target, TcpStream)>,
    ) -> Result<Exchange, Refusal> {
        buf.advance(head.len());
        let mut upstream = match pooled.take() {
            Some((t, stream)) if t == target && still_open(&stream) => stream,
            _ => match self.dial.clone().oneshot(target.clone()).await {
                Ok(Upstream { stream, .. }) => stream,
                Err(e) => return Err(Refusal::from_dial(&e)),
            },
        };
        let upstream_head = head.upstream_head();
        if let Err(e) = upstream.write_all(&upstream_head).await {
            return Err(Refusal {
                status: 502,
                reason: "upstream_write_failed",
                message: e.to_string(),
            });
        }
        let idle = self.options.relay.idle_timeout;
        let (request_done, response) = {
            let (mut client_read, mut client_write) = client.split();
            let (mut up_read, mut up_write) = upstream.split();
            let request = pin!(copy_body(
                &mut client_read,
                &mut up_write,
                buf,
                head.body().into(),
                idle
            ));
            let response = pin!(self.response(&mut up_read, &mut client_write, head));
            race_response(request, response).await
        };
        let Some(response) = response else {
            // The client's body failed before any response: answer it if it is still there.
            return match request_done {
                Some(Err(BodyError::Framing(e))) => Err(Refusal {
                    status: 400,
                    reason: "bad_chunked_body",
                    message: format!("malformed chunked body: {e}"),
                }),
                other => Ok(Exchange {
                    close_client: true,
                    status: 0,
                    up: upstream_head.len() as u64,
                    down: 0,
                    error: other.and_then(Result::err).map(Into::into),
                }),
            };
        };
        let response = response?;
        let mut exchange = Exchange {
            close_client: response.close_client,
            status: response.status,
            up: upstream_head.len() as u64,
            down: response.bytes,
            error: response.error,
        };
        match request_done {
            Some(Ok(sent)) => exchange.up += sent,
            // The body did not finish: the rest of it cannot be told from the next request.
            Some(Err(e)) => {
                exchange.close_client = true;
                exchange.error.get_or_insert(e.into());
            }
            None => exchange.close_client = true,
        }
        if let Some(leftover) = response.upgraded {
            // A WebSocket (or other) upgrade: the connection is a tunnel from here on.
            exchange.close_client = true;
            if let Err(e) = client.write_all(&leftover).await {
                exchange.error = Some(e.into());
                return Ok(exchange);
            }
            match relay::relay_tcp(client, &mut upstream, buf, &self.options.relay).await {
                Ok(traffic) => {
                    exchange.up += traffic.client_to_upstream;
                    exchange.down += leftover.len() as u64 + traffic.upstream_to_client;
                }
                Err(e) => exchange.error = Some(e.into()),
            }
            return Ok(exchange);
        }
        if response.reusable && !exchange.close_client && exchange.error.is_none() {
            *pooled = Some((target, upstream));
        }
        Ok(exchange)
    }

    /// Reads the upstream's response (passing 1xx interim responses on) and streams it to
    /// the client.
    async fn response<R, W>(
        &self,
        upstream: &mut R,
        client: &mut W,
        request: &RequestHead,
    ) -> Result<Response, Refusal>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let idle = self.options.relay.idle_timeout;
        let head = loop {
            let head = loop {
                match parse_response_head(&buf, &self.options.limits, request.method() == "HEAD") {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(e) => {
                        return Err(Refusal {
                            status: 502,
                            reason: "bad_upstream_response",
                            message: e.to_string(),
                        });
                    }
                }
                buf.reserve(READ_CHUNK);
                match tokio::time::timeout(idle, upstream.read_buf(&mut buf)).await {
                    Ok(Ok(0)) => {
                        return Err(Refusal {
                            status: 502,
                            reason: "upstream_closed",
                            message: "upstream closed before responding".into(),
                        });
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return Err(Refusal {
                            status: 502,
                            reason: "upstream_read_failed",
                            message: e.to_string(),
                        });
                    }
                    Err(_) => {
                        return Err(Refusal {
                            status: 504,
                            reason: "upstream_timeout",
                            message: "no response from upstream".into(),
                        });
                    }
                }
            };
            if (100..200).contains(&head.status()) && head.status() != 101 {
                // Interim responses go only to HTTP/1.1 clients (RFC 9110 §15.2).
                if request.version() == Version::Http11 {
                    client
                        .write_all(&head.client_head(false))
                        .await
                        .map_err(client_gone)?;
                }
                buf.advance(head.len());
                continue;
            }
            break head;
        };
        let close_client = !request.keep_alive() || head.body() == ResponseBody::UntilClose;
        let client_head = head.client_head(close_client);
        let mut response = Response {
            status: head.status(),
            close_client,
            reusable: false,
            upgraded: None,
            bytes: client_head.len() as u64,
            error: None,
        };
        // From here on the client has (part of) a response: failures cut it short, they
        // cannot become an error response.
        if let Err(e) = client.write_all(&client_head).await {
            response.close_client = true;
            response.error = Some(e.into());
            return Ok(response);
        }
        buf.advance(head.len());
        if head.status() == 101 {
            response.upgraded = Some(buf);
            return Ok(response);
        }
        match copy_body(upstream, client, &mut buf, head.body().into(), idle).await {
            Ok(n) => {
                response.bytes += n;
                response.reusable = head.upstream_reusable() && buf.is_empty();
            }
            Err(e) => {
                response.close_client = true;
                response.error = Some(e.into());
            }
        }
        Ok(response)
    }
}

/// What the response side reports.
struct Response {
    status: u16,
    close_client: bool,
    reusable: bool,
    /// After a 101, the bytes the upstream sent past the head.
    upgraded: Option<BytesMut>,
    /// Bytes written to the client.
    bytes: u64,
    /// A failure after the head was sent.
    error: Option<BoxError>,
}

fn client_gone(e: std::io::Error) -> Refusal {
    Refusal {
        status: 502,
        reason: "transfer_failed",
        message: e.to_string(),
    }
}

/// Runs the request body and the response side together (a client may wait for
/// `100 Continue` before sending its body). Returns once the response is done, with the
/// request side's result if it finished, or early (no response) when the client's body
/// failed: a client that left or sent broken framing will not get an answer from upstream.
async fn race_response<A, B>(
    mut request: std::pin::Pin<&mut A>,
    mut response: std::pin::Pin<&mut B>,
) -> (Option<Result<u64, BodyError>>, Option<B::Output>)
where
    A: Future<Output = Result<u64, BodyError>>,
    B: Future,
{
    let mut request_done = None;
    loop {
        tokio::select! {
            done = &mut request, if request_done.is_none() => {
                if matches!(done, Err(BodyError::Source(_) | BodyError::Framing(_))) {
                    return (Some(done), None);
                }
                request_done = Some(done);
            }
            done = &mut response => return (request_done, Some(done)),
        }
    }
}

/// Whether a pooled upstream connection is still open (no EOF or stray bytes waiting).
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
