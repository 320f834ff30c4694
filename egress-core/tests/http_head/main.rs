//! Adversarial tests for the HTTP/1.x request-head parser in `egress_core::http`, written
//! from the specification alone (not from the implementation).
//!
//! - `connect`: CONNECT and authority-form targets, ports, CONNECT with a body.
//! - `forms`: origin, absolute and asterisk forms, schemes, userinfo, request-line syntax,
//!   versions, methods, the request-target bytes.
//! - `hosts`: every host spelling in every position (CONNECT authority, absolute URI with
//!   and without a port, Host header with and without a port).
//! - `framing`: Content-Length and Transfer-Encoding, the smuggling shapes.
//! - `syntax`: header-line syntax: obs-fold, bare CR and LF, whitespace before the colon.
//! - `flags`: `keep_alive`, `expects_continue`, `is_websocket_upgrade`.
//! - `limits`: request-line, head-size and header-count limits, exactly at and one past
//!   each, and refused early.
//! - `upstream`: the exact bytes of `upstream_head()`, and that it keeps body framing.
//! - `lenient`: shapes the spec leaves open, checked only for the safe outcomes.
//! - `props`: random valid requests, round-tripped through `upstream_head()`.
//!
//! Every table case goes through [`good`] or [`bad`], which also feed each proper prefix
//! of the head and the head followed by several bodies (see [`bodies`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod connect;
mod flags;
mod forms;
mod framing;
mod hosts;
mod lenient;
mod limits;
mod props;
mod syntax;
mod upstream;

use std::fmt;

use egress_core::http::{
    BodyFraming, HeadError, HeadLimits, Parse, RequestHead, RequestTarget, Version,
    parse_request_head,
};
use egress_core::target::Host;

/// Bytes shown escaped in assertion messages.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// An input, escaped and cut short for messages.
pub(crate) fn show(buf: &[u8]) -> String {
    const MAX: usize = 400;
    if buf.len() <= MAX {
        format!("\"{}\"", buf.escape_ascii())
    } else {
        format!("\"{}\"... ({} bytes)", buf[..MAX].escape_ascii(), buf.len())
    }
}

/// Everything observable about a parsed head.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) method: String,
    pub(crate) connect: bool,
    pub(crate) form: RequestTarget,
    pub(crate) path: String,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, Bytes)>,
    pub(crate) host: String,
    pub(crate) host_is_ip: bool,
    pub(crate) port: u16,
    pub(crate) body: BodyFraming,
    pub(crate) keep_alive: bool,
    pub(crate) expects_continue: bool,
    pub(crate) websocket: bool,
    pub(crate) len: usize,
    /// `upstream_head()`, except for CONNECT (which has none to send).
    pub(crate) upstream: Option<Bytes>,
}

pub(crate) fn summary(h: &RequestHead) -> Summary {
    Summary {
        method: h.method().to_owned(),
        connect: h.is_connect(),
        form: h.form(),
        path: h.path().to_owned(),
        version: h.version(),
        headers: h
            .headers()
            .iter()
            .map(|x| (x.name.clone(), Bytes(x.value.clone())))
            .collect(),
        host: h.host().to_string(),
        host_is_ip: matches!(h.host(), Host::Ip(_)),
        port: h.port(),
        body: h.body(),
        keep_alive: h.keep_alive(),
        expects_continue: h.expects_continue(),
        websocket: h.is_websocket_upgrade(),
        len: h.len(),
        upstream: (!h.is_connect()).then(|| Bytes(h.upstream_head())),
    }
}

/// The answer to one call, in comparable form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    NeedMore,
    Complete(Box<Summary>),
    Error(HeadError),
}

pub(crate) fn run(buf: &[u8], limits: &HeadLimits) -> Outcome {
    match parse_request_head(buf, limits) {
        Ok(Parse::Complete(h)) => Outcome::Complete(Box::new(summary(&h))),
        Ok(other) => {
            assert!(matches!(other, Parse::NeedMore));
            Outcome::NeedMore
        }
        Err(e) => Outcome::Error(e),
    }
}

/// The error with the free text of `Malformed` left out.
pub(crate) fn error_key(e: &HeadError) -> String {
    match e {
        HeadError::Malformed(_) => "Malformed(_)".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Does `e` match one of `patterns`? A pattern is the `Debug` form of an error
/// (`"BadContentLength"`, `"InvalidHost(Numeric)"`, `"HeadTooLarge { limit: 256 }"`), or
/// a variant name followed by `(_)` for any payload (`"Malformed(_)"`, `"InvalidHost(_)"`).
pub(crate) fn error_matches(e: &HeadError, patterns: &[&str]) -> bool {
    let debug = format!("{e:?}");
    patterns.iter().any(|p| match p.strip_suffix("(_)") {
        Some(variant) => debug.starts_with(&format!("{variant}(")),
        None => debug == *p,
    })
}

// Sets of acceptable errors used across modules.
pub(crate) const MALFORMED: &[&str] = &["Malformed(_)"];
/// Where the spec allows either for a bad host.
pub(crate) const HOST_SYNTAX: &[&str] = &["InvalidHost(_)", "Malformed(_)"];
/// Unsupported HTTP versions: the spec does not pin which.
pub(crate) const VERSION: &[&str] = &["UnsupportedVersion", "Malformed(_)"];

/// Limits with these values.
pub(crate) fn limits(
    max_request_line: usize,
    max_head_bytes: usize,
    max_headers: usize,
) -> HeadLimits {
    HeadLimits {
        max_request_line,
        max_head_bytes,
        max_headers,
    }
}

/// Limits large enough for anything: used to re-parse `upstream_head()`.
pub(crate) fn huge_limits() -> HeadLimits {
    limits(1 << 20, 1 << 24, 100_000)
}

/// What may follow a head: body bytes, pipelined requests, and bytes that would be
/// errors if they were part of the head. None of them may change the answer.
pub(crate) fn bodies() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"x"[..],
        b"hello",
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"\r",
        b" folded: no\r\n\r\n",
        b"\n\n\r\r\0\xff\x80 : \r\n",
        b"GET / HTTP/1.1\r\nHost: other.example\r\n\r\n",
        b"Content-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    // Larger than every default limit, with no line end.
    v.push(vec![b'a'; 200_000]);
    v
}

/// Prefix lengths to try: all of them with `stride == 1`, else every `stride`-th plus
/// the last 8.
fn prefix_lens(len: usize, stride: usize) -> Vec<usize> {
    let mut lens: Vec<usize> = (0..len).step_by(stride.max(1)).collect();
    lens.extend(len.saturating_sub(8)..len);
    lens.sort_unstable();
    lens.dedup();
    lens
}

/// `input` is one complete, valid head: it parses to `Complete` with `len()` equal to
/// its length; every proper prefix gives `NeedMore`; any body after it changes nothing;
/// `upstream_head()` passes [`check_upstream`]. Returns the parsed head.
#[track_caller]
pub(crate) fn good(input: &[u8]) -> RequestHead {
    good_with(input, &HeadLimits::default(), 1)
}

#[track_caller]
pub(crate) fn good_with(input: &[u8], limits: &HeadLimits, stride: usize) -> RequestHead {
    let whole = run(input, limits);
    let Outcome::Complete(sum) = &whole else {
        panic!("{}: want Complete, got {whole:?}", show(input));
    };
    assert_eq!(sum.len, input.len(), "{}: len()", show(input));
    for n in prefix_lens(input.len(), stride) {
        let got = run(&input[..n], limits);
        assert!(
            got == Outcome::NeedMore,
            "{}: the prefix of {n} bytes ({}) must give NeedMore, got {got:?}",
            show(input),
            show(&input[..n])
        );
    }
    for body in bodies() {
        let mut buf = input.to_vec();
        buf.extend_from_slice(&body);
        let got = run(&buf, limits);
        assert!(
            got == whole,
            "{} followed by the body {}: want {whole:?}, got {got:?}",
            show(input),
            show(&body)
        );
    }
    check_upstream(sum, input);
    match parse_request_head(input, limits) {
        Ok(Parse::Complete(h)) => h,
        _ => panic!("{}: not Complete on a second call", show(input)),
    }
}

/// `input` is refused with an error matching `want`; every prefix gives `NeedMore` or an
/// error matching `want`; with any body after it, the same error as without.
#[track_caller]
pub(crate) fn bad(input: &[u8], want: &[&str]) {
    bad_with(input, &HeadLimits::default(), want, 1);
}

#[track_caller]
pub(crate) fn bad_with(input: &[u8], limits: &HeadLimits, want: &[&str], stride: usize) {
    let whole = run(input, limits);
    let Outcome::Error(e) = &whole else {
        panic!("{}: want one of {want:?}, got {whole:?}", show(input));
    };
    assert!(
        error_matches(e, want),
        "{}: want one of {want:?}, got {e:?}",
        show(input)
    );
    assert_eq!(e.status(), expected_status(e));
    for n in prefix_lens(input.len(), stride) {
        match run(&input[..n], limits) {
            Outcome::NeedMore => {}
            Outcome::Error(e2) if error_matches(&e2, want) => {}
            other => panic!(
                "{}: the prefix of {n} bytes ({}) must give NeedMore or one of {want:?}, got {other:?}",
                show(input),
                show(&input[..n])
            ),
        }
    }
    for body in bodies() {
        let mut buf = input.to_vec();
        buf.extend_from_slice(&body);
        match run(&buf, limits) {
            Outcome::Error(e3) if error_key(&e3) == error_key(e) => {}
            other => panic!(
                "{} followed by the body {}: want {e:?} as without it, got {other:?}",
                show(input),
                show(&body)
            ),
        }
    }
}

/// The status each error must map to (from the issue: 400, 414, 431, 505).
fn expected_status(e: &HeadError) -> u16 {
    match e {
        HeadError::RequestLineTooLong { .. } => 414,
        HeadError::HeadTooLarge { .. } | HeadError::TooManyHeaders { .. } => 431,
        HeadError::UnsupportedVersion => 505,
        _ => 400,
    }
}

/// What `parse_request_head` answers for `input` with the default limits, for the
/// `lenient` cases that accept more than one outcome.
pub(crate) fn outcome(input: &[u8]) -> Outcome {
    run(input, &HeadLimits::default())
}

/// Header names that never go upstream (besides `Host`, which is regenerated, and the
/// ones a `Connection` header names).
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

/// The tokens of every `Connection` header, lower-cased.
pub(crate) fn connection_tokens(headers: &[(String, Bytes)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(&v.0)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `Host` header value the upstream head must carry for this destination.
pub(crate) fn upstream_host(sum: &Summary) -> String {
    let host = if sum.host.contains(':') {
        format!("[{}]", sum.host)
    } else {
        sum.host.clone()
    };
    if sum.port == 80 {
        host
    } else {
        format!("{host}:{}", sum.port)
    }
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    }
}

/// Checks `upstream_head()` of a parsed non-CONNECT head against the spec: request line
/// `METHOD SP path SP version`, then `Host`, then the end-to-end headers in order (hop-by-
/// hop ones and those named by `Connection` removed, `Upgrade` and `Connection: Upgrade`
/// kept for a WebSocket upgrade), CRLF CRLF; and that it parses again, in origin form (or
/// asterisk form), to the same destination, method, path, version and body framing.
#[track_caller]
pub(crate) fn check_upstream(sum: &Summary, input: &[u8]) {
    let Some(Bytes(up)) = &sum.upstream else {
        return;
    };
    let ctx = format!("{}: upstream_head() {}", show(input), show(up));
    let line = format!(
        "{} {} {}\r\nHost: {}\r\n",
        sum.method,
        sum.path,
        version_str(sum.version),
        upstream_host(sum)
    );
    assert!(
        up.starts_with(line.as_bytes()),
        "{ctx}: must start with {}",
        show(line.as_bytes())
    );
    assert!(up.ends_with(b"\r\n\r\n"), "{ctx}: must end with CRLF CRLF");
    let again = run(up, &huge_limits());
    let Outcome::Complete(re) = &again else {
        panic!("{ctx}: does not parse again: {again:?}");
    };
    assert_eq!(re.len, up.len(), "{ctx}: len() of the re-parse");
    let want_form = if sum.form == RequestTarget::Asterisk {
        RequestTarget::Asterisk
    } else {
        RequestTarget::Origin
    };
    assert_eq!(re.form, want_form, "{ctx}: form");
    assert_eq!(re.method, sum.method, "{ctx}: method");
    assert_eq!(re.path, sum.path, "{ctx}: path");
    assert_eq!(re.version, sum.version, "{ctx}: version");
    assert_eq!(
        (&re.host, re.host_is_ip, re.port),
        (&sum.host, sum.host_is_ip, sum.port),
        "{ctx}: destination"
    );
    assert_eq!(re.body, sum.body, "{ctx}: body framing");
    assert_eq!(re.expects_continue, sum.expects_continue, "{ctx}: Expect");
    assert_eq!(re.websocket, sum.websocket, "{ctx}: WebSocket upgrade");

    // Headers.
    let hosts = re
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .count();
    assert_eq!(hosts, 1, "{ctx}: exactly one Host header");
    let tokens = connection_tokens(&sum.headers);
    let dropped = |name: &str| {
        let lower = name.to_ascii_lowercase();
        if lower == "host" {
            return true;
        }
        if sum.websocket && lower == "upgrade" {
            return false;
        }
        // Body framing must survive even when a Connection token names it (checked
        // above through `body`); the spec leaves open whether such a head is refused.
        if lower == "content-length" || lower == "transfer-encoding" {
            return false;
        }
        HOP_BY_HOP.contains(&lower.as_str()) || tokens.contains(&lower)
    };
    let want: Vec<&(String, Bytes)> = sum.headers.iter().filter(|(n, _)| !dropped(n)).collect();
    let got: Vec<&(String, Bytes)> = re.headers[1..]
        .iter()
        .filter(|(n, _)| !(sum.websocket && n.eq_ignore_ascii_case("connection")))
        .collect();
    assert_eq!(got, want, "{ctx}: end-to-end headers in order");
    let connections: Vec<&(String, Bytes)> = re
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .collect();
    if sum.websocket {
        assert_eq!(
            connections,
            vec![&("Connection".to_owned(), Bytes(b"Upgrade".to_vec()))],
            "{ctx}: a WebSocket upgrade sends exactly `Connection: Upgrade`"
        );
        assert!(
            up.windows(21).any(|w| w == b"\r\nConnection: Upgrade"),
            "{ctx}: `Connection: Upgrade` spelled so"
        );
    } else {
        assert!(connections.is_empty(), "{ctx}: no Connection header");
    }
}
