//! The sans-IO request-head parser: bytes in, a checked [`RequestHead`] (or need-more, or a
//! [`HeadError`] with its status) out. httparse reads the syntax; the checks it leaves to us
//! (bare line endings, smuggling shapes, targets, hosts, limits) are made here.

use crate::target::{Host, PortSource};

use super::HeadError;

/// Default longest request line (method, target, version), like nginx's 8 KiB buffers.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;
/// Default largest head (request line and all headers).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;
/// Default most header fields.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Bounds on a request head. Past them the answer is 414 or 431.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line in bytes, without its CRLF. Default: 8192.
    pub max_request_line: usize,
    /// Largest head in bytes, final blank line included. Default: 65536.
    pub max_head_bytes: usize,
    /// Most header fields. Default: 100.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// The answer of [`parse_request_head`].
#[derive(Debug)]
pub enum Parse {
    /// The head has not ended yet; read more and call again with all the bytes.
    NeedMore,
    /// The head is complete and valid.
    Complete(RequestHead),
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Which form the request target had (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestTarget {
    /// `/path?query`, the destination from the Host header (what a sidecar sends).
    Origin,
    /// `http://host:port/path`, what a configured proxy client sends.
    Absolute,
    /// `host:port`, for CONNECT.
    Authority,
    /// `*`, for `OPTIONS *`.
    Asterisk,
}

/// One header field as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name, spelled as received.
    pub name: String,
    /// The value, without surrounding whitespace.
    pub value: Vec<u8>,
}

impl From<&httparse::Header<'_>> for Header {
    fn from(header: &httparse::Header<'_>) -> Self {
        Self {
            name: header.name.to_owned(),
            value: header.value.to_vec(),
        }
    }
}

/// A checked request head: where it goes, how its body is framed, and what to send upstream.
#[derive(Debug, Clone)]
pub struct RequestHead {
    method: String,
    form: RequestTarget,
    path: String,
    version: Version,
    headers: Vec<Header>,
    host: Host,
    port: u16,
    port_source: PortSource,
    body: BodyFraming,
    connection: Vec<String>,
    websocket: bool,
    expect_continue: bool,
    len: usize,
}

/// Headers that describe one hop and never go upstream as received.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "host",
];

impl RequestHead {
    /// The method, as sent (methods are case-sensitive).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether this is a CONNECT request.
    pub fn is_connect(&self) -> bool {
        self.method == "CONNECT"
    }

    /// The request-target form the client used.
    pub fn form(&self) -> RequestTarget {
        self.form
    }

    /// The origin-form path and query sent upstream (`*` for `OPTIONS *`, empty for CONNECT).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Every header as received, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The destination host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The destination port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the destination port came from.
    pub fn port_source(&self) -> PortSource {
        self.port_source
    }

    /// How the body is framed.
    pub fn body(&self) -> BodyFraming {
        self.body
    }

    /// Whether the client wants the connection kept open after this exchange.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection.iter().any(|t| t == "close"),
            Version::Http10 => self.connection.iter().any(|t| t == "keep-alive"),
        }
    }

    /// Whether the client sent `Expect: 100-continue`.
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// Whether this is a WebSocket upgrade (GET, `Upgrade: websocket`, `Connection: upgrade`).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.websocket
    }

    /// The length of the head in bytes, blank line included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the head is empty (never: a head has at least a request line).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The head to send upstream: origin form, `Host` first and rewritten to the
    /// destination, hop-by-hop headers removed (a WebSocket upgrade keeps `Upgrade` and
    /// sends `Connection: Upgrade`).
    pub fn upstream_head(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len + 64);
        let version = match self.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        out.extend_from_slice(
            format!("{} {} {version}\r\nHost: ", self.method, self.path).as_bytes(),
        );
        match &self.host {
            Host::Ip(std::net::IpAddr::V6(ip)) => {
                out.extend_from_slice(format!("[{ip}]").as_bytes())
            }
            host => out.extend_from_slice(host.to_string().as_bytes()),
        }
        if self.port != 80 {
            out.extend_from_slice(format!(":{}", self.port).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        for header in &self.headers {
            let name = header.name.to_ascii_lowercase();
            let keep_upgrade = self.websocket && name == "upgrade";
            // Connection may name hop-by-hop extensions, never the body's framing: dropping
            // Content-Length or Transfer-Encoding would let the body pass as a new request.
            let framing = name == "content-length" || name == "transfer-encoding";
            if !keep_upgrade
                && (HOP_BY_HOP.contains(&name.as_str())
                    || (self.connection.contains(&name) && !framing))
            {
                continue;
            }
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&header.value);
            out.extend_from_slice(b"\r\n");
        }
        if self.websocket {
            out.extend_from_slice(b"Connection: Upgrade\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Parses a request head from the start of `buf`.
///
/// Call it again with all the bytes received so far until it answers; it is stateless. To
/// avoid rescanning on every byte of a slow client, call it only when the new bytes hold a
/// line feed or `buf` has passed a limit.
///
/// ```
/// use egress_core::http::{BodyFraming, HeadLimits, Parse, parse_request_head};
///
/// let raw = b"GET http://Example.com:8080/a?b HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n";
/// let Ok(Parse::Complete(head)) = parse_request_head(raw, &HeadLimits::default()) else { panic!() };
/// assert_eq!((head.host().to_string(), head.port(), head.path()), ("example.com".into(), 8080, "/a?b"));
/// assert_eq!(head.body(), BodyFraming::None);
/// assert!(!head.keep_alive());
/// assert_eq!(head.upstream_head(), b"GET /a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
/// ```
///
/// # Errors
///
/// A [`HeadError`] whose [`status`](HeadError::status) is the answer to send.
pub fn parse_request_head(buf: &[u8], limits: &HeadLimits) -> Result<Parse, HeadError> {
    let Some(line_end) = find(buf, b"\n") else {
        // A CR at the end may be the first half of the line's CRLF: it does not count.
        let line = buf.strip_suffix(b"\r").unwrap_or(buf);
        return if line.len() > limits.max_request_line {
            Err(HeadError::RequestLineTooLong {
                limit: limits.max_request_line,
            })
        } else if buf.len() > limits.max_head_bytes {
            Err(HeadError::HeadTooLarge {
                limit: limits.max_head_bytes,
            })
        } else {
            check_line_endings(buf)?;
            Ok(Parse::NeedMore)
        };
    };
    if line_end.saturating_sub(1) > limits.max_request_line {
        return Err(HeadError::RequestLineTooLong {
            limit: limits.max_request_line,
        });
    }
    let Some(end) = find(buf, b"\r\n\r\n").map(|at| at + 4) else {
        check_line_endings(buf)?;
        return if buf.len() > limits.max_head_bytes {
            Err(HeadError::HeadTooLarge {
                limit: limits.max_head_bytes,
            })
        } else {
            Ok(Parse::NeedMore)
        };
    };
    if end > limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge {
            limit: limits.max_head_bytes,
        });
    }
    let raw = &buf[..end];
    check_line_endings(raw)?;
    let count = check_header_lines(raw)?;
    if count > limits.max_headers {
        return Err(HeadError::TooManyHeaders {
            limit: limits.max_headers,
        });
    }
    let mut slots = vec![httparse::EMPTY_HEADER; count];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(raw) {
        Ok(httparse::Status::Complete(n)) if n == end => {}
        Ok(_) => return Err(HeadError::Malformed("request head does not parse")),
        // 505 only for a well-formed `HTTP/x.y` we do not speak; anything else there is a
        // malformed request line (a space in the target, say).
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        Err(_) => {
            return Err(HeadError::Malformed(
                "invalid request line or header syntax",
            ));
        }
    }
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HeadError::UnsupportedVersion),
    };
    let headers: Vec<Header> = request.headers.iter().map(Header::from).collect();
    build(method, target, version, headers, end).map(Parse::Complete)
}

/// The error for a request line whose version httparse refused.
fn version_error(buf: &[u8]) -> HeadError {
    let line = buf.split(|b| *b == b'\r').next().unwrap_or(buf);
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    match parts[..] {
        [_, _, version]
            if version.len() == 8
                && version.starts_with(b"HTTP/")
                && version[5].is_ascii_digit()
                && version[6] == b'.'
                && version[7].is_ascii_digit() =>
        {
            HeadError::UnsupportedVersion
        }
        _ => HeadError::Malformed("invalid request line"),
    }
}

/// Turns the parsed pieces into a [`RequestHead`], checking target, host and framing.
fn build(
    method: &str,
    target: &str,
    version: Version,
    headers: Vec<Header>,
    len: usize,
) -> Result<RequestHead, HeadError> {
    if target.contains('#') {
        return Err(HeadError::Malformed("fragment in the request target"));
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Malformed(
            "request target has bytes that must be percent-encoded",
        ));
    }
    let values = |name: &'static str| values(&headers, name);
    let hosts: Vec<&[u8]> = values("host").collect();
    if hosts.len() > 1 {
        return Err(HeadError::MissingHost);
    }
    let host_header = || -> Result<(Host, u16, PortSource), HeadError> {
        match hosts.first() {
            Some(value) if !value.is_empty() => authority(value, Some(80)),
            _ => Err(HeadError::MissingHost),
        }
    };
    let connect = method == "CONNECT";
    let (form, path, (host, port, port_source)) = if connect {
        if target.starts_with('/') || target.contains("://") || target == "*" {
            return Err(HeadError::Malformed(
                "CONNECT needs an authority-form target (host:port)",
            ));
        }
        (
            RequestTarget::Authority,
            String::new(),
            authority(target.as_bytes(), None)?,
        )
    } else if target == "*" {
        if method != "OPTIONS" {
            return Err(HeadError::Malformed(
                "asterisk-form target is only for OPTIONS",
            ));
        }
        (RequestTarget::Asterisk, "*".to_owned(), host_header()?)
    } else if target.starts_with('/') {
        (RequestTarget::Origin, target.to_owned(), host_header()?)
    } else if let Some((scheme, rest)) = target.split_once("://") {
        if scheme.eq_ignore_ascii_case("https") {
            return Err(HeadError::HttpsAbsoluteForm);
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(HeadError::UnsupportedScheme);
        }
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (auth, path) = rest.split_at(split);
        if auth.contains('@') {
            return Err(HeadError::Malformed("userinfo in the request URI"));
        }
        if path.contains('#') {
            return Err(HeadError::Malformed("fragment in the request URI"));
        }
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        (
            RequestTarget::Absolute,
            path,
            authority(auth.as_bytes(), Some(80))?,
        )
    } else {
        return Err(HeadError::Malformed(
            "authority-form target is only for CONNECT",
        ));
    };

    let lengths: Vec<&[u8]> = values("content-length").collect();
    let codings: Vec<&[u8]> = values("transfer-encoding").collect();
    if connect && !(lengths.is_empty() && codings.is_empty()) {
        return Err(HeadError::ConnectWithBody);
    }
    let body = match (lengths.is_empty(), codings.is_empty()) {
        (true, true) => BodyFraming::None,
        (false, false) => return Err(HeadError::LengthAndChunked),
        (false, true) => BodyFraming::Length(content_length(&lengths)?),
        (true, false) => {
            if version == Version::Http10 || !ends_in_chunked(&codings) {
                return Err(HeadError::BadTransferEncoding);
            }
            BodyFraming::Chunked
        }
    };
    let connection: Vec<String> = tokens(values("connection")).collect();
    let websocket = method == "GET"
        && connection.iter().any(|t| t == "upgrade")
        && tokens(values("upgrade")).any(|t| t == "websocket");
    let expect_continue = values("expect").any(|v| v.eq_ignore_ascii_case(b"100-continue"));
    Ok(RequestHead {
        method: method.to_owned(),
        form,
        path,
        version,
        headers,
        host,
        port,
        port_source,
        body,
        connection,
        websocket,
        expect_continue,
        len,
    })
}

/// Reads `host[:port]` or `[v6][:port]`. `default` is the port when none is given; `None`
/// makes the port required (CONNECT).
pub(crate) fn authority(
    bytes: &[u8],
    default: Option<u16>,
) -> Result<(Host, u16, PortSource), HeadError> {
    let (host, port) = if let Some(rest) = bytes.strip_prefix(b"[") {
        let close = rest
            .iter()
            .position(|b| *b == b']')
            .ok_or(HeadError::Malformed("unclosed [ in host"))?;
        let ip = std::str::from_utf8(&rest[..close])
            .ok()
            .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
            .ok_or(HeadError::Malformed("invalid IPv6 literal"))?;
        let port = match &rest[close + 1..] {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return Err(HeadError::Malformed("bytes after the IPv6 literal")),
        };
        (Host::Ip(ip.into()), port)
    } else {
        let (host, port) = match bytes.iter().rposition(|b| *b == b':') {
            Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
            None => (bytes, None),
        };
        if host.contains(&b':') {
            return Err(HeadError::Malformed("IPv6 literal without brackets"));
        }
        (
            Host::from_ascii(host).map_err(HeadError::InvalidHost)?,
            port,
        )
    };
    match (port, default) {
        (Some(port), _) => Ok((host, parse_port(port)?, PortSource::Request)),
        (None, Some(default)) => Ok((host, default, PortSource::SchemeDefault)),
        (None, None) => Err(HeadError::InvalidPort),
    }
}

/// A port: 1 to 5 decimal digits without a sign or leading zero, 1 to 65535.
fn parse_port(bytes: &[u8]) -> Result<u16, HeadError> {
    if bytes.is_empty()
        || bytes.len() > 5
        || bytes[0] == b'0'
        || !bytes.iter().all(u8::is_ascii_digit)
    {
        return Err(HeadError::InvalidPort);
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(HeadError::InvalidPort)
}

/// The one length every `Content-Length` value agrees on.
pub(super) fn content_length(values: &[&[u8]]) -> Result<u64, HeadError> {
    let mut length = None;
    for value in values {
        for item in value.split(|b| *b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return Err(HeadError::BadContentLength);
            }
            let n: u64 = std::str::from_utf8(item)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(HeadError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::BadContentLength);
            }
            length = Some(n);
        }
    }
    length.ok_or(HeadError::BadContentLength)
}

/// Whether the codings end in exactly one `chunked`, as the last one.
pub(super) fn ends_in_chunked(values: &[&[u8]]) -> bool {
    let codings: Vec<String> = tokens(values.iter().copied()).collect();
    let chunked = codings.iter().filter(|c| *c == "chunked").count();
    chunked == 1 && codings.last().is_some_and(|c| c == "chunked")
}

/// Comma-separated tokens of header values, trimmed and lower-cased; empty items included
/// (so `chunked,` does not end in `chunked`).
pub(super) fn tokens<'a>(
    values: impl Iterator<Item = &'a [u8]> + 'a,
) -> impl Iterator<Item = String> + 'a {
    values
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
}

/// The values of every header called `name` (case-insensitive).
pub(super) fn values<'a>(
    headers: &'a [Header],
    name: &'static str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| &h.value[..])
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Every LF must follow a CR and every CR precede an LF (a CR at the very end may still get
/// its LF).
fn check_line_endings(buf: &[u8]) -> Result<(), HeadError> {
    for (i, b) in buf.iter().enumerate() {
        let bare = match b {
            b'\n' => i == 0 || buf[i - 1] != b'\r',
            b'\r' => buf.get(i + 1).is_some_and(|next| *next != b'\n'),
            _ => false,
        };
        if bare {
            return Err(HeadError::BareLineEnding);
        }
    }
    Ok(())
}

/// Checks each header line's shape (httparse would accept or report these vaguely) and
/// counts them.
fn check_header_lines(head: &[u8]) -> Result<usize, HeadError> {
    let mut count = 0;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HeadError::ObsFold);
        }
        match line.iter().position(|b| *b == b':') {
            None => return Err(HeadError::Malformed("header line without a colon")),
            Some(0) => return Err(HeadError::EmptyHeaderName),
            Some(at) if matches!(line[at - 1], b' ' | b'\t') => {
                return Err(HeadError::SpaceBeforeColon);
            }
            Some(_) => count += 1,
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
