//! Random valid requests (every form, method, version, host kind, port, header set and
//! body framing): they parse to exactly what was built, every sampled prefix waits for
//! more, limits set exactly to the request's sizes accept it and one less refuses it, and
//! `upstream_head()` parses again to origin form with the same destination, framing and
//! end-to-end headers and no hop-by-hop ones ([`crate::check_upstream`]).

use std::net::{Ipv4Addr, Ipv6Addr};

use egress_core::http::{BodyFraming, HeadError, HeadLimits, RequestTarget, Version};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{Outcome, check_upstream, limits, run, show};

#[derive(Debug, Clone)]
enum GenHost {
    /// As sent, and normalised.
    Name(String, String),
    V4(Ipv4Addr),
    /// The address, and whether to send its hex digits in upper case.
    V6(Ipv6Addr, bool),
}

impl GenHost {
    /// As it appears in an authority or a Host header.
    fn sent(&self) -> String {
        match self {
            GenHost::Name(sent, _) => sent.clone(),
            GenHost::V4(a) => a.to_string(),
            GenHost::V6(a, upper) => {
                let s = a.to_string();
                format!("[{}]", if *upper { s.to_uppercase() } else { s })
            }
        }
    }

    fn display(&self) -> String {
        match self {
            GenHost::Name(_, norm) => norm.clone(),
            GenHost::V4(a) => a.to_string(),
            GenHost::V6(a, _) => a.to_string(),
        }
    }

    fn is_ip(&self) -> bool {
        !matches!(self, GenHost::Name(..))
    }

    fn authority(&self, port: Option<u16>) -> String {
        match port {
            Some(p) => format!("{}:{p}", self.sent()),
            None => self.sent(),
        }
    }
}

fn gen_host() -> impl Strategy<Value = GenHost> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?";
    let name = (
        prop::collection::vec(label, 0..4),
        "[a-zA-Z]{1,8}",
        any::<bool>(),
    )
        .prop_map(|(mut labels, tld, dot)| {
            labels.push(tld);
            let name = labels.join(".");
            let norm = name.to_ascii_lowercase();
            let sent = if dot { format!("{name}.") } else { name };
            GenHost::Name(sent, norm)
        });
    let v6 = prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
        Just(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        Just(Ipv6Addr::new(0xfe80, 0, 0, 0, 0xabc, 0, 0, 1)),
    ];
    prop_oneof![
        4 => name,
        2 => any::<[u8; 4]>().prop_map(|b| GenHost::V4(Ipv4Addr::from(b))),
        2 => (v6, any::<bool>()).prop_map(|(a, u)| GenHost::V6(a, u)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Origin,
    Absolute,
    Connect,
    Asterisk,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Length(Vec<u8>),
    Chunked,
}

/// The request before its header lines are put in order.
#[derive(Debug, Clone)]
struct Draft {
    form: Form,
    method: String,
    v11: bool,
    host: GenHost,
    port: Option<u16>,
    scheme: String,
    /// As written in the target (absolute form: what follows the authority).
    target_path: String,
    /// The Host header's host and port, for absolute form and CONNECT (may be a decoy).
    host_header: (GenHost, Option<u16>),
    lines: Vec<(String, String)>,
    body: Body,
    /// Bytes after the head that are not a body (tunnel data, a pipelined request).
    trailing: Vec<u8>,
    connection_tokens: Vec<String>,
    websocket: bool,
    expect: bool,
}

/// Flips the case of the letters whose bit is set in `mask`.
fn recase(name: &str, mask: u32) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if (mask >> (i % 32)) & 1 == 1 {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

const END_TO_END: &[&str] = &[
    "Accept",
    "User-Agent",
    "X-Request-Id",
    "Cookie",
    "Accept-Encoding",
    "Cache-Control",
    "Authorization",
    "X-Forwarded-For",
    "Via",
    "Origin",
    "If-None-Match",
    "Range",
    "X_Under_Score",
    "x-custom!#$%&'*+.^`|~",
];

const METHODS: &[&str] = &[
    "GET",
    "GET",
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "HEAD",
    "OPTIONS",
    "PROPFIND",
    "M-SEARCH",
    "get",
    "X_CUSTOM!",
];

#[derive(Debug, Clone)]
struct Hops {
    proxy_connection: bool,
    proxy_authorization: bool,
    keep_alive: bool,
    te: bool,
    trailer: bool,
    upgrade_h2c: bool,
    close: bool,
    keep_alive_token: bool,
    /// Custom headers named by Connection, and whether each is present.
    hop_a: (bool, bool),
    hop_b: (bool, bool),
    /// Put the tokens in two Connection headers.
    split: bool,
    masks: [u32; 8],
}

fn hops() -> impl Strategy<Value = Hops> {
    (any::<[bool; 8]>(), any::<[bool; 5]>(), any::<[u32; 8]>()).prop_map(|(a, b, masks)| Hops {
        proxy_connection: a[0],
        proxy_authorization: a[1],
        keep_alive: a[2],
        te: a[3],
        trailer: a[4],
        upgrade_h2c: a[5],
        close: a[6],
        keep_alive_token: a[7],
        hop_a: (b[0], b[1]),
        hop_b: (b[2], b[3]),
        split: b[4],
        masks,
    })
}

fn draft() -> impl Strategy<Value = Draft> {
    let form = prop_oneof![
        4 => Just(Form::Origin),
        3 => Just(Form::Absolute),
        2 => Just(Form::Connect),
        1 => Just(Form::Asterisk),
    ];
    let origin_path = prop_oneof![
        Just("/".to_owned()),
        "/[a-zA-Z0-9._~-]{1,8}(/[a-zA-Z0-9._~!$&'()*+,;=:@-]{0,8}){0,3}(\\?[a-zA-Z0-9=&/?:@-]{0,10})?",
    ];
    let absolute_rest = prop_oneof![
        Just(String::new()),
        "\\?[a-zA-Z0-9=&/?:@-]{0,10}",
        origin_path.clone(),
    ];
    let end_to_end = prop::collection::vec(
        (
            prop::sample::select(END_TO_END),
            any::<u32>(),
            "[!-~]([ -~]{0,20}[!-~])?",
        ),
        0..6,
    );
    (
        (
            form,
            prop::sample::select(METHODS),
            any::<bool>(),
            gen_host(),
            prop::option::of(1u16..),
            prop::sample::select(&["http", "HTTP", "Http", "hTtP"][..]),
            origin_path,
            absolute_rest,
        ),
        (
            prop::option::of((gen_host(), prop::option::of(1u16..))),
            end_to_end,
            hops(),
            (0u8..3, prop::collection::vec(any::<u8>(), 0..40)),
            prop::collection::vec(any::<u8>(), 0..40),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (form, method, v11, host, port, scheme, origin_path, absolute_rest),
                (decoy, e2e, hops, (body_kind, body_bytes), trailing, ws, expect),
            )| {
                let method = match form {
                    Form::Connect => "CONNECT".to_owned(),
                    Form::Asterisk => "OPTIONS".to_owned(),
                    _ => method.to_owned(),
                };
                let port = match form {
                    Form::Connect => Some(port.unwrap_or(443)),
                    _ => port,
                };
                let target_path = match form {
                    Form::Origin => origin_path,
                    Form::Absolute => absolute_rest,
                    Form::Asterisk => "*".to_owned(),
                    Form::Connect => String::new(),
                };
                let host_header = match (form, decoy) {
                    (Form::Absolute | Form::Connect, Some(d)) => d,
                    _ => (host.clone(), port),
                };
                let websocket =
                    ws && method == "GET" && matches!(form, Form::Origin | Form::Absolute);
                let body = match (form, body_kind) {
                    (Form::Connect, _) | (_, 0) => Body::None,
                    (_, 2) if v11 => Body::Chunked,
                    _ => Body::Length(body_bytes),
                };
                let mut lines: Vec<(String, String)> = Vec::new();
                lines.push((
                    recase("Host", hops.masks[0]),
                    host_header.0.authority(host_header.1),
                ));
                for (name, mask, value) in e2e {
                    lines.push((recase(name, mask), value));
                }
                let m = &hops.masks;
                if hops.proxy_connection {
                    lines.push((recase("Proxy-Connection", m[1]), "keep-alive".into()));
                }
                if hops.proxy_authorization {
                    lines.push((
                        recase("Proxy-Authorization", m[2]),
                        "Basic dXNlcjpwdw==".into(),
                    ));
                }
                if hops.keep_alive {
                    lines.push((recase("Keep-Alive", m[3]), "timeout=5, max=100".into()));
                }
                if hops.te {
                    lines.push((recase("TE", m[4]), "trailers".into()));
                }
                if hops.trailer {
                    lines.push((recase("Trailer", m[5]), "X-Checksum".into()));
                }
                if websocket {
                    lines.push((recase("Upgrade", m[6]), recase("websocket", m[7])));
                    lines.push((
                        "Sec-WebSocket-Key".into(),
                        "dGhlIHNhbXBsZSBub25jZQ==".into(),
                    ));
                    lines.push(("Sec-WebSocket-Version".into(), "13".into()));
                } else if hops.upgrade_h2c {
                    lines.push((recase("Upgrade", m[6]), "h2c".into()));
                }
                let mut tokens: Vec<String> = Vec::new();
                if hops.close {
                    tokens.push(recase("close", m[1]));
                }
                if hops.keep_alive_token {
                    tokens.push(recase("keep-alive", m[2]));
                }
                if hops.hop_a.0 {
                    tokens.push("X-Hop-A".into());
                }
                if hops.hop_b.0 {
                    tokens.push("x-hop-b".into());
                }
                if websocket {
                    tokens.push(recase("Upgrade", m[3]));
                }
                if hops.hop_a.1 {
                    lines.push(("x-hop-a".into(), "dropped if named".into()));
                }
                if hops.hop_b.1 {
                    lines.push(("X-HOP-B".into(), "dropped if named".into()));
                }
                if !tokens.is_empty() {
                    if hops.split && tokens.len() > 1 {
                        let (a, b) = tokens.split_at(1);
                        lines.push((recase("Connection", m[4]), a.join(", ")));
                        lines.push((recase("Connection", m[5]), b.join(",")));
                    } else {
                        lines.push((recase("Connection", m[4]), tokens.join(", ")));
                    }
                }
                match &body {
                    Body::None => {}
                    Body::Length(b) => {
                        lines.push((recase("Content-Length", m[6]), b.len().to_string()))
                    }
                    Body::Chunked => lines.push((
                        recase("Transfer-Encoding", m[7]),
                        if m[0] & 1 == 1 {
                            "gzip, chunked".into()
                        } else {
                            "chunked".into()
                        },
                    )),
                }
                if expect {
                    lines.push((recase("Expect", m[5]), recase("100-continue", m[6])));
                }
                Draft {
                    form,
                    method,
                    v11,
                    host,
                    port,
                    scheme: scheme.to_owned(),
                    target_path,
                    host_header,
                    lines,
                    body,
                    trailing,
                    connection_tokens: tokens.iter().map(|t| t.to_ascii_lowercase()).collect(),
                    websocket,
                    expect,
                }
            },
        )
}

/// A draft with its header lines in a random order.
fn request() -> impl Strategy<Value = Draft> {
    draft().prop_flat_map(|d| {
        let n = d.lines.len();
        (Just(d), Just((0..n).collect::<Vec<usize>>()).prop_shuffle()).prop_map(|(mut d, order)| {
            let lines = order.iter().map(|i| d.lines[*i].clone()).collect();
            d.lines = lines;
            d
        })
    })
}

impl Draft {
    fn request_line(&self) -> String {
        let version = if self.v11 { "HTTP/1.1" } else { "HTTP/1.0" };
        let target = match self.form {
            Form::Origin | Form::Asterisk => self.target_path.clone(),
            Form::Absolute => format!(
                "{}://{}{}",
                self.scheme,
                self.host.authority(self.port),
                self.target_path
            ),
            Form::Connect => self.host.authority(self.port),
        };
        format!("{} {target} {version}", self.method)
    }

    fn head(&self) -> Vec<u8> {
        let mut h = self.request_line();
        h.push_str("\r\n");
        for (n, v) in &self.lines {
            h.push_str(&format!("{n}: {v}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    fn after_head(&self) -> Vec<u8> {
        match &self.body {
            Body::None => self.trailing.clone(),
            Body::Length(b) => [&b[..], &self.trailing].concat(),
            Body::Chunked => [&b"5\r\nhello\r\n0\r\n\r\n"[..], &self.trailing].concat(),
        }
    }

    fn want_path(&self) -> String {
        match self.form {
            Form::Connect => String::new(),
            Form::Asterisk => "*".to_owned(),
            Form::Origin => self.target_path.clone(),
            Form::Absolute if self.target_path.is_empty() => "/".to_owned(),
            Form::Absolute if self.target_path.starts_with('?') => format!("/{}", self.target_path),
            Form::Absolute => self.target_path.clone(),
        }
    }

    fn want_body(&self) -> BodyFraming {
        match &self.body {
            Body::None => BodyFraming::None,
            Body::Length(b) => BodyFraming::Length(b.len() as u64),
            Body::Chunked => BodyFraming::Chunked,
        }
    }

    fn want_keep_alive(&self) -> bool {
        let has = |t: &str| self.connection_tokens.iter().any(|x| x == t);
        if self.v11 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

/// 512 cases (enough to meet every combination of form, host kind and framing), or
/// `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Bytes to splice into a valid head: line ends, whitespace, separators, bytes outside
/// ASCII, and whole header lines that change the destination or the framing.
const SNIPPETS: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n ",
    b"\r\n\t",
    b" ",
    b"\t",
    b":",
    b"\0",
    b"\x7f",
    b"\x80",
    b"\xff",
    b",",
    b";",
    b"\"",
    b"@",
    b"/",
    b"?",
    b"#",
    b"[",
    b"]",
    b"%",
    b"+",
    b"-",
    b"0",
    b"9",
    b"a",
    b"Z",
    b".",
    b"\x0b",
    b"Content-Length: 5\r\n",
    b"content-length: 6\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Host: evil.example\r\n",
    b"Host: 127.1\r\n",
    // (Connection naming Content-Length is `upstream::connection_cannot_strip_body_framing`.)
    b"Connection: Host, X\r\n",
    b"Upgrade: websocket\r\nConnection: upgrade\r\n",
    b"X: y\r\n",
    b"\r\n\r\n",
    b"http://evil.example",
    b"https://",
    b"[::1]",
    b":443",
    b"CONNECT ",
    b" HTTP/1.0",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, &'static [u8]),
    Delete(Index, usize),
    Replace(Index, &'static [u8]),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), prop::sample::select(SNIPPETS)).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<Index>(), 1usize..4).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), prop::sample::select(SNIPPETS)).prop_map(|(i, s)| Mutation::Replace(i, s)),
    ]
}

fn mutate(head: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut h = head.to_vec();
    for m in mutations {
        match m {
            Mutation::Insert(i, s) => {
                let at = i.index(h.len() + 1);
                h.splice(at..at, s.iter().copied());
            }
            Mutation::Delete(i, n) if !h.is_empty() => {
                let at = i.index(h.len());
                let end = (at + n).min(h.len());
                h.drain(at..end);
            }
            Mutation::Replace(i, s) if !h.is_empty() => {
                let at = i.index(h.len());
                h.splice(at..=at, s.iter().copied());
            }
            _ => {}
        }
    }
    h
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What must hold of any head the parser accepts, whatever the input was.
fn check_accepted(input: &[u8], sum: &crate::Summary) -> Result<(), TestCaseError> {
    let ctx = show(input);
    let len = sum.len;
    prop_assert!(len <= input.len(), "{}: len() {} past the input", ctx, len);
    let head = &input[..len];
    prop_assert!(
        head.ends_with(b"\r\n\r\n"),
        "{}: head does not end in CRLF CRLF",
        ctx
    );
    let first_end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    prop_assert_eq!(
        first_end,
        Some(len),
        "{}: the head ends at the first blank line",
        ctx
    );
    for (i, b) in head.iter().enumerate() {
        if *b == b'\n' {
            prop_assert!(
                i > 0 && head[i - 1] == b'\r',
                "{}: bare LF at {} accepted",
                ctx,
                i
            );
        }
        if *b == b'\r' {
            prop_assert!(
                head.get(i + 1) == Some(&b'\n'),
                "{}: bare CR at {} accepted",
                ctx,
                i
            );
        }
    }
    prop_assert!(
        !head.windows(3).any(|w| w == b"\r\n " || w == b"\r\n\t"),
        "{}: obs-fold accepted",
        ctx
    );
    let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
    prop_assert!(
        head[..line_end]
            .iter()
            .all(|b| (0x21..0x7f).contains(b) || *b == b' '),
        "{}: control or non-ASCII byte in the request line accepted",
        ctx
    );
    // The same answer for the head alone.
    let alone = run(head, &HeadLimits::default());
    prop_assert!(
        matches!(&alone, Outcome::Complete(s) if **s == *sum),
        "{}: the head alone gives {:?}",
        ctx,
        alone
    );
    for (name, _) in &sum.headers {
        prop_assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "{}: header name {:?} accepted",
            ctx,
            name
        );
    }
    // The host is a valid normalised name or an IP address.
    if !sum.host_is_ip {
        let name = egress_core::target::Name::from_ascii(sum.host.as_bytes());
        prop_assert!(
            name.as_ref().is_ok_and(|n| n.as_str() == sum.host),
            "{}: host {:?} accepted ({:?})",
            ctx,
            sum.host,
            name
        );
    }
    prop_assert!(sum.port != 0, "{}: port 0", ctx);
    // Framing agrees with the headers.
    let values = |n: &str| -> Vec<Vec<u8>> {
        sum.headers
            .iter()
            .filter(|(h, _)| h.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.0.clone())
            .collect()
    };
    let cl = values("content-length");
    let te = values("transfer-encoding");
    prop_assert!(
        cl.is_empty() || te.is_empty(),
        "{}: CL and TE accepted",
        ctx
    );
    if sum.connect {
        prop_assert!(
            cl.is_empty() && te.is_empty(),
            "{}: CONNECT with a body accepted",
            ctx
        );
        prop_assert_eq!(sum.body, BodyFraming::None, "{}", ctx);
    } else if !cl.is_empty() {
        let BodyFraming::Length(n) = sum.body else {
            return Err(TestCaseError::fail(format!("{ctx}: CL but {:?}", sum.body)));
        };
        for v in &cl {
            for item in String::from_utf8_lossy(v).split(',') {
                let item = item.trim_matches([' ', '\t']);
                prop_assert!(
                    !item.is_empty()
                        && item.bytes().all(|b| b.is_ascii_digit())
                        && item.parse::<u64>().ok() == Some(n),
                    "{}: Content-Length {:?} accepted as {}",
                    ctx,
                    item,
                    n
                );
            }
        }
    } else if !te.is_empty() {
        prop_assert_eq!(sum.body, BodyFraming::Chunked, "{}", ctx);
        prop_assert_eq!(
            sum.version,
            Version::Http11,
            "{}: TE on HTTP/1.0 accepted",
            ctx
        );
        let all = te
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let last = all
            .rsplit(',')
            .next()
            .unwrap_or("")
            .trim_matches([' ', '\t'])
            .to_ascii_lowercase();
        prop_assert_eq!(
            last,
            "chunked",
            "{}: Transfer-Encoding {:?} accepted as chunked",
            ctx,
            all
        );
    } else {
        prop_assert_eq!(sum.body, BodyFraming::None, "{}", ctx);
    }
    if sum.form == RequestTarget::Origin || sum.form == RequestTarget::Asterisk {
        prop_assert_eq!(
            values("host").len(),
            1,
            "{}: origin form needs one Host",
            ctx
        );
    }
    check_upstream(sum, input);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Valid requests with a few bytes inserted, deleted or replaced: whatever the parser
    /// accepts satisfies every rule, and a head that has ended is never `NeedMore`.
    #[test]
    fn mutated_requests(
        d in request(),
        mutations in prop::collection::vec(mutation(), 1..4),
        cuts in prop::collection::vec(any::<Index>(), 6),
    ) {
        let head = mutate(&d.head(), &mutations);
        let input = [&head[..], &d.after_head()].concat();
        let got = run(&input, &HeadLimits::default());
        match &got {
            Outcome::Complete(sum) => check_accepted(&input, sum)?,
            Outcome::Error(e) => {
                // Prefixes: waiting, or refused (any error: the prefix may end early).
                for i in &cuts {
                    let n = i.index(input.len());
                    let p = run(&input[..n], &HeadLimits::default());
                    prop_assert!(
                        !matches!(p, Outcome::Complete(_)),
                        "{}: refused with {:?}, but its prefix of {} bytes is Complete", show(&input), e, n
                    );
                }
            }
            Outcome::NeedMore => {
                prop_assert!(
                    !head.windows(4).any(|w| w == b"\r\n\r\n"),
                    "{}: NeedMore although the head has ended", show(&input)
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_valid_requests(d in request(), cuts in prop::collection::vec(any::<Index>(), 12)) {
        let head = d.head();
        let input = [&head[..], &d.after_head()].concat();
        let ctx = show(&input);
        let defaults = HeadLimits::default();
        let got = run(&input, &defaults);
        let Outcome::Complete(sum) = &got else {
            panic!("{ctx}: want Complete, got {got:?}");
        };
        prop_assert_eq!(sum.len, head.len(), "{}: len()", ctx);
        prop_assert_eq!(&sum.method, &d.method, "{}", ctx);
        prop_assert_eq!(sum.connect, d.form == Form::Connect, "{}", ctx);
        let form = match d.form {
            Form::Origin => RequestTarget::Origin,
            Form::Absolute => RequestTarget::Absolute,
            Form::Connect => RequestTarget::Authority,
            Form::Asterisk => RequestTarget::Asterisk,
        };
        prop_assert_eq!(sum.form, form, "{}", ctx);
        prop_assert_eq!(&sum.path, &d.want_path(), "{}", ctx);
        prop_assert_eq!(
            sum.version,
            if d.v11 { Version::Http11 } else { Version::Http10 },
            "{}", ctx
        );
        prop_assert_eq!(&sum.host, &d.host.display(), "{}: host", ctx);
        prop_assert_eq!(sum.host_is_ip, d.host.is_ip(), "{}", ctx);
        prop_assert_eq!(sum.port, d.port.unwrap_or(80), "{}: port", ctx);
        prop_assert_eq!(sum.body, d.want_body(), "{}: body", ctx);
        prop_assert_eq!(sum.keep_alive, d.want_keep_alive(), "{}: keep_alive", ctx);
        prop_assert_eq!(sum.expects_continue, d.expect, "{}", ctx);
        prop_assert_eq!(sum.websocket, d.websocket, "{}", ctx);
        let headers: Vec<(String, Vec<u8>)> = sum
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.0.clone()))
            .collect();
        let want: Vec<(String, Vec<u8>)> = d
            .lines
            .iter()
            .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
            .collect();
        prop_assert_eq!(headers, want, "{}: headers", ctx);
        let _ = &d.host_header;

        // Prefixes of the head wait for more.
        let mut lens: Vec<usize> = cuts.iter().map(|i| i.index(head.len())).collect();
        lens.extend(head.len().saturating_sub(4)..head.len());
        for n in lens {
            let got = run(&head[..n], &defaults);
            prop_assert!(got == Outcome::NeedMore, "{}: prefix of {} bytes gives {:?}", ctx, n, got);
        }

        // Limits set exactly to this request's sizes accept it; one less refuses it.
        let line_len = d.request_line().len();
        let count = d.lines.len();
        let exact = limits(line_len, head.len(), count);
        let at = run(&input, &exact);
        prop_assert!(at == got, "{}: at the exact limits: {:?}", ctx, at);
        let less = limits(line_len - 1, head.len(), count);
        prop_assert_eq!(
            run(&input, &less),
            Outcome::Error(HeadError::RequestLineTooLong { limit: line_len - 1 }),
            "{}", ctx
        );
        let less = limits(line_len, head.len() - 1, count);
        prop_assert_eq!(
            run(&input, &less),
            Outcome::Error(HeadError::HeadTooLarge { limit: head.len() - 1 }),
            "{}", ctx
        );
        let less = limits(line_len, head.len(), count - 1);
        prop_assert_eq!(
            run(&input, &less),
            Outcome::Error(HeadError::TooManyHeaders { limit: count - 1 }),
            "{}", ctx
        );

        // upstream_head(): origin form, same destination and framing, no hop-by-hop.
        check_upstream(sum, &input);
        if let Some(up) = &sum.upstream {
            let lower = String::from_utf8_lossy(&up.0).to_ascii_lowercase();
            for needle in ["\r\nproxy-", "\r\nkeep-alive:", "\r\nte:", "\r\ntrailer:"] {
                prop_assert!(!lower.contains(needle), "{}: upstream {} has {:?}", ctx, show(&up.0), needle);
            }
        }
    }
}
