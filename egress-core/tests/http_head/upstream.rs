//! The exact bytes of `upstream_head()`, and that it never changes how the body is framed.

use egress_core::http::{BodyFraming, HeadLimits, Parse, parse_request_head};

use crate::{Bytes, Outcome, good, huge_limits, outcome, run, show};

#[track_caller]
fn upstream_of(input: &[u8]) -> Vec<u8> {
    let h = good(input);
    h.upstream_head()
}

#[test]
fn exact_upstream_heads() {
    let cases: &[(&[u8], &[u8])] = &[
        // Absolute form: origin form upstream, Host from the URI, proxy headers gone.
        (
            b"GET http://example.com/a?b=1 HTTP/1.1\r\nHost: other.example\r\nUser-Agent: t/1\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nAccept: */*\r\n\r\n",
            b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
        ),
        // Origin form; Host normalised and moved first; every hop-by-hop header and the
        // ones Connection names removed; the rest in order.
        (
            b"POST /submit HTTP/1.1\r\nX-Before: 1\r\nHost: Example.COM.:8080\r\nConnection: X-Hop, close\r\nX-Hop: secret\r\nkeep-alive: timeout=5\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nContent-Length: 5\r\nX-After: 2\r\n\r\n",
            b"POST /submit HTTP/1.1\r\nHost: example.com:8080\r\nX-Before: 1\r\nContent-Length: 5\r\nX-After: 2\r\n\r\n",
        ),
        // The client's version is kept; IPv6 in brackets.
        (
            b"GET http://[2001:DB8::1]:8080/x HTTP/1.0\r\nHost: [2001:db8::1]:8080\r\n\r\n",
            b"GET /x HTTP/1.0\r\nHost: [2001:db8::1]:8080\r\n\r\n",
        ),
        (
            b"GET http://[::1]/ HTTP/1.1\r\nHost: x.example\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: 10.1.2.3:81\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: 10.1.2.3:81\r\n\r\n",
        ),
        // Port 80 is not written.
        (
            b"GET http://example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        ),
        (
            b"GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET /?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        ),
        // The URI wins: the client's Host goes nowhere.
        (
            b"GET http://a.example:8080/ HTTP/1.1\r\nHost: b.example:9090\r\nX: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.example:8080\r\nX: y\r\n\r\n",
        ),
        // Names are matched case-insensitively and sent as received; tokens from every
        // Connection header count.
        (
            b"GET / HTTP/1.1\r\nhOsT: example.com\r\nPROXY-AUTHORIZATION: x\r\nconnection: x-lower\r\nX-LOWER: 1\r\nx-KeEp: 2\r\nCONNECTION: Keep-Alive, X-Other\r\nproxy-connection: close\r\nx-other: 3\r\nKEEP-ALIVE: 1\r\nte: trailers\r\ntrailer: X\r\nupgrade: h2c\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\nx-KeEp: 2\r\n\r\n",
        ),
        // Names that merely start like hop-by-hop ones, or like a Connection token, stay.
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade-Insecure-Requests: 1\r\nProxy-Connection-X: 1\r\nTE2: 1\r\nKeep-Alive-X: 1\r\nTrailers: 1\r\nConnection-Id: 1\r\nX-Foo-Bar: 1\r\nX-Fo: 1\r\nConnection: X-Foo\r\nX-Foo: 1\r\nProxy-Authorization2: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade-Insecure-Requests: 1\r\nProxy-Connection-X: 1\r\nTE2: 1\r\nKeep-Alive-X: 1\r\nTrailers: 1\r\nConnection-Id: 1\r\nX-Foo-Bar: 1\r\nX-Fo: 1\r\nProxy-Authorization2: 1\r\n\r\n",
        ),
        // Empty list elements and odd whitespace in Connection.
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: ,, X-A ,\tX-B\t,\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-C: 3\r\n\r\n",
        ),
        // A Connection token naming Host does not lose the Host.
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close, Host\r\nA: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\nA: b\r\n\r\n",
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: example.com:8080\r\nMax-Forwards: 0\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: example.com:8080\r\nMax-Forwards: 0\r\n\r\n",
        ),
        // Bytes above 0x7f in a value go through untouched.
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n",
        ),
        (
            b"POST /u HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\nTE: trailers\r\n\r\n",
            b"POST /u HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ),
        // Not a WebSocket upgrade (POST): Upgrade and Connection both go.
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
        ),
        // Expect is end-to-end.
        (
            b"PUT /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        ),
        (
            b"connect /x HTTP/1.0\r\nHost: example.com\r\n\r\n",
            b"connect /x HTTP/1.0\r\nHost: example.com\r\n\r\n",
        ),
    ];
    for (input, want) in cases {
        let got = upstream_of(input);
        assert_eq!(Bytes(got), Bytes(want.to_vec()), "{}", show(input));
    }
}

/// For a WebSocket upgrade, `Upgrade` stays and the only Connection header is exactly
/// `Connection: Upgrade` (where it goes among the headers is not pinned).
#[test]
fn websocket_upgrade_upstream() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (
            b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade, X-Hop\r\nX-Hop: 1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eA==\r\n\r\n",
            &[
                b"Upgrade: websocket",
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                b"Sec-WebSocket-Version: 13",
            ],
        ),
        (
            b"GET http://ws.example:8080/chat HTTP/1.1\r\nHost: ws.example:8080\r\nconnection: upgrade\r\nupgrade: WebSocket\r\nOrigin: http://ws.example\r\n\r\n",
            &[b"upgrade: WebSocket", b"Origin: http://ws.example"],
        ),
    ];
    for (input, rest) in cases {
        let h = good(input);
        assert!(h.is_websocket_upgrade(), "{}", show(input));
        let up = h.upstream_head();
        let text = up.strip_suffix(b"\r\n\r\n").expect("ends in CRLF CRLF");
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        assert_eq!(lines[0], format!("GET {} HTTP/1.1", h.path()).as_bytes());
        assert!(lines[1].starts_with(b"Host: "), "{}", show(&up));
        let connection: Vec<&&[u8]> = lines[2..]
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(b"connection:"))
            .collect();
        assert_eq!(
            connection,
            vec![&&b"Connection: Upgrade"[..]],
            "{}",
            show(&up)
        );
        let others: Vec<&[u8]> = lines[2..]
            .iter()
            .copied()
            .filter(|l| !l.to_ascii_lowercase().starts_with(b"connection:"))
            .collect();
        assert_eq!(others, rest.to_vec(), "{}", show(&up));
    }
}

/// The head never includes body bytes, and `upstream_head()` is the same with or without
/// a body after the head.
#[test]
fn body_bytes_never_in_the_upstream_head() {
    let input = b"POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world";
    let Ok(Parse::Complete(h)) = parse_request_head(input, &HeadLimits::default()) else {
        panic!("not complete");
    };
    assert_eq!(h.len(), input.len() - 11);
    assert_eq!(h.body(), BodyFraming::Length(11));
    assert_eq!(
        Bytes(h.upstream_head()),
        Bytes(b"POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\n".to_vec())
    );
}

/// A Connection header that names Content-Length or Transfer-Encoding must not make the
/// proxy forward a body the upstream cannot frame (the body would be read upstream as the
/// next request: a smuggling vector). Refusing the head is also fine.
#[test]
fn connection_cannot_strip_body_framing() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nConnection: close, content-length\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nConnection: TRANSFER-ENCODING\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade, Content-Length\r\nContent-Length: 5\r\n\r\n",
    ];
    // Collect every case before failing, so that one report shows them all.
    let mut failures = Vec::new();
    for input in cases {
        match outcome(input) {
            Outcome::Error(e) if e.status() == 400 => {}
            Outcome::Complete(sum) => {
                let up = sum.upstream.clone().expect("not CONNECT").0;
                match run(&up, &huge_limits()) {
                    Outcome::Complete(re) if re.body == sum.body => {}
                    Outcome::Complete(re) => failures.push(format!(
                        "{}: body {:?}, but upstream {} frames it as {:?}",
                        show(input),
                        sum.body,
                        show(&up),
                        re.body
                    )),
                    other => failures.push(format!(
                        "{}: upstream {} gives {other:?}",
                        show(input),
                        show(&up)
                    )),
                }
            }
            other => failures.push(format!("{}: {other:?}", show(input))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
