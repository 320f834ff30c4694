//! A small HTTP/1.1 origin server for the HTTP proxy tests, on tokio and httparse.
//!
//! It listens on an OS-chosen port of `127.0.0.1`, serves keep-alive connections, reads each
//! request head and its body (`Content-Length` or chunked, decoded here), and records, per
//! accepted connection, the requests that arrived on it, before answering. A client that has
//! its response therefore finds its request recorded. Dropping the server stops it.
//!
//! Each answer's body is derived from the request: `"<method> <path> host=<Host> body=<n>\n"`
//! (see [`echo_line`]), or, when the request carries `X-Reply-Bytes: <n>`, `n` bytes of
//! [`pattern`]. Each `X-Reply-Header: <name>: <value>` request header is copied into the
//! response head as `<name>: <value>`, so tests can make the upstream send any header.
//! How the answer is framed is the server's [`Mode`], which a test may change while it runs.
//!
//! [`Wire`], the buffered reader the server uses (heads, exact lengths, chunked bodies), is
//! public so that test clients read responses the same careful way.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Bound on [`HttpUpstream::wait_for`]: a missing request fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

/// Size of the chunks of a [`Mode::Chunked`] response body: small enough that a large body
/// is many chunks, so chunk boundaries fall across reads.
pub const RESPONSE_CHUNK: usize = 1000;

/// What a [`Mode::WebSocket`] upstream sends right after its `101` head, in the same write,
/// before it echoes anything.
pub const WS_GREETING: &[u8] = b"ws-ready\n";

/// The `Sec-WebSocket-Accept` value of the `101` answer (fixed: the proxy does not check it).
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// How the upstream frames its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `200 OK` with `Content-Length`; the connection stays open for the next request.
    Length,
    /// `200 OK` with `Transfer-Encoding: chunked`, in chunks of [`RESPONSE_CHUNK`] bytes.
    Chunked,
    /// `200 OK` with neither length nor chunking: the body ends when the upstream closes.
    Close,
    /// Like [`Mode::Length`], but a request with `Expect: 100-continue` and a body first gets
    /// `HTTP/1.1 100 Continue`, and only then is its body read.
    Continue,
    /// A request with `Upgrade: websocket` gets `101 Switching Protocols` followed by
    /// [`WS_GREETING`] in one write; from then on every byte is echoed back until EOF. Other
    /// requests are answered as in [`Mode::Length`].
    WebSocket,
    /// `200 OK` with `Content-Length`, but only the first half of the body is sent before
    /// the upstream closes (an upstream that dies mid-response).
    Truncated,
}

/// One request as the upstream received it.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The head as received, from the request line to the blank line included. For bytes
    /// that do not parse as a request, those bytes (and the method is empty).
    pub head: String,
    /// The method (empty for bytes that did not parse).
    pub method: String,
    /// The request target.
    pub path: String,
    /// The `Host` header's value, if there was one.
    pub host: Option<String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The trailer section of a chunked body, as received (each line with its CRLF).
    pub trailers: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("head", &self.head)
            .field("body_len", &self.body.len())
            .field("trailers", &self.trailers)
            .finish()
    }
}

impl Request {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.head, name).next()
    }
}

/// Every value of the headers called `name` in a head's text.
fn header_values<'a, 'n>(
    head: &'a str,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// What the server has seen: one entry per accepted connection, in accept order.
#[derive(Debug, Default)]
struct State {
    connections: Vec<Vec<Request>>,
}

/// A running origin server. Dropping it stops it and closes its connections.
pub struct HttpUpstream {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    state: Arc<watch::Sender<State>>,
    task: JoinHandle<()>,
}

impl fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("addr", &self.addr)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpUpstream {
    /// Starts a server on `127.0.0.1:0` answering in `mode`.
    pub async fn start(mode: Mode) -> HttpUpstream {
        Self::bind("127.0.0.1:0", mode).await
    }

    /// Starts a server on `addr` (`"[::1]:0"`, say) answering in `mode`.
    pub async fn bind(addr: &str, mode: Mode) -> HttpUpstream {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let state = Arc::new(watch::Sender::new(State::default()));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&mode), Arc::clone(&state)));
        HttpUpstream {
            addr,
            mode,
            state,
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How it answers now.
    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes how it answers the next requests.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.state.borrow().connections.len()
    }

    /// The requests of each accepted connection, in accept order.
    pub fn connections(&self) -> Vec<Vec<Request>> {
        self.state.borrow().connections.clone()
    }

    /// The heads of the requests of each accepted connection, in accept order.
    pub fn heads(&self) -> Vec<Vec<String>> {
        self.state
            .borrow()
            .connections
            .iter()
            .map(|c| c.iter().map(|r| r.head.clone()).collect())
            .collect()
    }

    /// Waits (at most 10 s, else panics) until `n` requests have arrived in all.
    pub async fn wait_for(&self, n: usize) {
        let mut seen = self.state.subscribe();
        let arrived = seen.wait_for(|s| s.connections.iter().map(Vec::len).sum::<usize>() >= n);
        tokio::time::timeout(WAIT, arrived)
            .await
            .unwrap_or_else(|_| panic!("{n} requests did not reach the upstream"))
            .unwrap();
    }
}

async fn accept_loop(
    listener: TcpListener,
    mode: Arc<Mutex<Mode>>,
    state: Arc<watch::Sender<State>>,
) {
    // Owned here, so that aborting the accept task (on drop) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => return,
            },
        };
        let _ = stream.set_nodelay(true);
        let mut index = 0;
        state.send_modify(|s| {
            index = s.connections.len();
            s.connections.push(Vec::new());
        });
        let record = {
            let state = Arc::clone(&state);
            move |request: Request| state.send_modify(|s| s.connections[index].push(request))
        };
        connections.spawn(serve(stream, Arc::clone(&mode), record));
    }
}

/// Serves one connection until the client closes or the mode ends it.
async fn serve(stream: TcpStream, mode: Arc<Mutex<Mode>>, record: impl Fn(Request)) {
    let mut wire = Wire::new(stream);
    loop {
        let head = match wire.read_head().await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(rest) => {
                // Not HTTP: record what came, answer 400 and close.
                record(Request {
                    head: String::from_utf8_lossy(&rest).into_owned(),
                    method: String::new(),
                    path: String::new(),
                    host: None,
                    body: Vec::new(),
                    trailers: String::new(),
                });
                let _ = wire.stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                return;
            }
        };
        let mode = *mode.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&head).into_owned();
        let (method, path, http10) = {
            let mut slots = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Request::new(&mut slots);
            let _ = parsed.parse(&head);
            (
                parsed.method.unwrap_or_default().to_owned(),
                parsed.path.unwrap_or_default().to_owned(),
                parsed.version == Some(0),
            )
        };
        let asked = Asked::from_head(&text, http10);
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        if mode == Mode::Continue
            && asked.continue_first
            && wire.stream.write_all(interim).await.is_err()
        {
            return;
        }
        let body = match asked.length {
            None => match wire.read_chunked().await {
                Ok(chunked) => chunked,
                Err(_) => return,
            },
            Some(n) => match wire.read_exact(n).await {
                Ok(body) => Chunked {
                    raw: body.clone(),
                    body,
                    trailers: Vec::new(),
                },
                Err(_) => return,
            },
        };
        let host = header_values(&text, "host").next().map(str::to_owned);
        let request = Request {
            host,
            head: text,
            method,
            path,
            body: body.body,
            trailers: String::from_utf8_lossy(&body.trailers).into_owned(),
        };
        let websocket = mode == Mode::WebSocket && asked.websocket;
        let answer = answer(&request, mode);
        record(request);
        if websocket {
            return echo(wire).await;
        }
        if wire.stream.write_all(&answer).await.is_err() {
            return;
        }
        if asked.close || matches!(mode, Mode::Close | Mode::Truncated) {
            let _ = wire.stream.shutdown().await;
            return;
        }
    }
}

/// What a request head asks of the upstream.
struct Asked {
    /// Close after answering: the client said so (or is HTTP/1.0 without keep-alive), or
    /// the test made the answer say `Connection: close`.
    close: bool,
    /// The body length; `None` for a chunked body.
    length: Option<usize>,
    /// `Expect: 100-continue` with a body.
    continue_first: bool,
    /// `Upgrade: websocket`.
    websocket: bool,
}

impl Asked {
    fn from_head(text: &str, http10: bool) -> Asked {
        let tokens = |name| -> Vec<String> {
            header_values(text, name)
                .flat_map(|v| v.split(','))
                .map(|t| t.trim().to_ascii_lowercase())
                .collect()
        };
        let connection = tokens("connection");
        let says_close = header_values(text, "x-reply-header").any(|h| {
            h.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("connection")
                    && v.trim().eq_ignore_ascii_case("close")
            })
        });
        let close = connection.iter().any(|t| t == "close")
            || (http10 && !connection.iter().any(|t| t == "keep-alive"))
            || says_close;
        let chunked = tokens("transfer-encoding")
            .last()
            .is_some_and(|t| t == "chunked");
        let length = if chunked {
            None
        } else {
            Some(
                header_values(text, "content-length")
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )
        };
        let expects = tokens("expect").iter().any(|t| t == "100-continue");
        Asked {
            close,
            length,
            continue_first: expects && length != Some(0),
            websocket: tokens("upgrade").iter().any(|t| t == "websocket"),
        }
    }
}

/// After a `101`: sends the greeting with the head, then echoes every byte until EOF.
async fn echo(mut wire: Wire<TcpStream>) {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {WS_ACCEPT}\r\n\r\n"
    );
    let first = [head.as_bytes(), WS_GREETING, &wire.buf].concat();
    wire.buf.clear();
    if wire.stream.write_all(&first).await.is_err() {
        return;
    }
    let mut buf = vec![0; 16 * 1024];
    loop {
        match wire.stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if wire.stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = wire.stream.shutdown().await;
}

/// The whole answer to `request` in `mode` (for a WebSocket upgrade, unused).
fn answer(request: &Request, mode: Mode) -> Vec<u8> {
    let body = reply_body(request);
    let head_request = request.method == "HEAD";
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    let framing = match mode {
        Mode::Chunked => "Transfer-Encoding: chunked\r\n".to_owned(),
        Mode::Close => String::new(),
        Mode::Length | Mode::Continue | Mode::WebSocket | Mode::Truncated => {
            format!("Content-Length: {}\r\n", body.len())
        }
    };
    head.push_str(&framing);
    for extra in header_values(&request.head, "x-reply-header") {
        head.push_str(extra);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if head_request {
        return out;
    }
    match mode {
        Mode::Chunked => out.extend_from_slice(&chunked(&body, RESPONSE_CHUNK)),
        Mode::Truncated => out.extend_from_slice(&body[..body.len() / 2]),
        _ => out.extend_from_slice(&body),
    }
    out
}

/// The body of the answer to `request`: `n` bytes of [`pattern`] when it says
/// `X-Reply-Bytes: n`, else its [`echo_line`].
pub fn reply_body(request: &Request) -> Vec<u8> {
    match request.header("x-reply-bytes").and_then(|n| n.parse().ok()) {
        Some(n) => pattern(n),
        None => echo_line(
            &request.method,
            &request.path,
            request.host.as_deref().unwrap_or("-"),
            request.body.len(),
        )
        .into_bytes(),
    }
}

/// The default answer body: `"<method> <path> host=<host> body=<body_len>\n"`.
pub fn echo_line(method: &str, path: &str, host: &str, body_len: usize) -> String {
    format!("{method} {path} host={host} body={body_len}\n")
}

/// `n` bytes that are not all alike (a repeating run of 251 values), for large bodies.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// `body` chunked in pieces of at most `size` bytes, with the last chunk and final CRLF.
pub fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / size.max(1) * 8 + 8);
    for piece in body.chunks(size.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A chunked body as read by [`Wire::read_chunked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked {
    /// The bytes as they arrived, framing included.
    pub raw: Vec<u8>,
    /// The data, de-chunked.
    pub body: Vec<u8>,
    /// The trailer lines, each with its CRLF (the final empty line not included).
    pub trailers: Vec<u8>,
}

/// A buffered reader over a stream that reads HTTP/1.1 message parts exactly: what is read
/// past a part stays in [`Wire::buf`] for the next one.
#[derive(Debug)]
pub struct Wire<S> {
    /// The stream (write to it directly).
    pub stream: S,
    /// Bytes read and not yet consumed.
    pub buf: Vec<u8>,
}

impl<S: AsyncRead + Unpin> Wire<S> {
    /// A reader with nothing buffered.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF. A reset counts as EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The next head, through its blank line: `Ok(None)` at a clean EOF before any byte,
    /// `Err(bytes)` for bytes that end (EOF) or go wrong before a head is complete.
    pub async fn read_head(&mut self) -> Result<Option<Vec<u8>>, Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..at + 4).collect();
                return Ok(Some(head));
            }
            match self.fill().await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) | Err(_) => return Err(std::mem::take(&mut self.buf)),
                Ok(_) => {}
            }
        }
    }

    /// Exactly `n` bytes.
    pub async fn read_exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One line with its CRLF; a bare LF or a CR not before LF is an error.
    async fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let bad = line.len() < 2
                    || line[line.len() - 2] != b'\r'
                    || line[..line.len() - 2].contains(&b'\r');
                if bad {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "bare CR or LF in a chunked body",
                    ));
                }
                return Ok(line);
            }
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// A whole chunked body: sizes (extensions ignored), data, trailers, final CRLF.
    pub async fn read_chunked(&mut self) -> std::io::Result<Chunked> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut raw = Vec::new();
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            raw.extend_from_slice(&line);
            let text =
                std::str::from_utf8(&line[..line.len() - 2]).map_err(|_| invalid("size line"))?;
            let digits = text.split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(digits, 16).map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                break;
            }
            let data = self.read_exact(size + 2).await?;
            raw.extend_from_slice(&data);
            if !data.ends_with(b"\r\n") {
                return Err(invalid("no CRLF after chunk data"));
            }
            body.extend_from_slice(&data[..size]);
        }
        let mut trailers = Vec::new();
        loop {
            let line = self.read_line().await?;
            raw.extend_from_slice(&line);
            if line == b"\r\n" {
                return Ok(Chunked {
                    raw,
                    body,
                    trailers,
                });
            }
            trailers.extend_from_slice(&line);
        }
    }

    /// Everything until EOF (or a reset), the buffered bytes first.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        while matches!(self.fill().await, Ok(n) if n > 0) {}
        std::mem::take(&mut self.buf)
    }
}
