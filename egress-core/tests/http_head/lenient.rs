//! Shapes the spec leaves open. Each test accepts every reasonable answer and checks only
//! that the one given is safe: a refusal is a 400, and an acceptance goes to the right
//! place and frames the body the same way upstream.

use egress_core::http::BodyFraming;

use crate::{Outcome, Summary, bad, check_upstream, error_matches, good, outcome, show};

/// The head is accepted with `accept` holding, or refused with one of `refuse`.
#[track_caller]
fn either(input: &[u8], refuse: &[&str], accept: impl Fn(&Summary) -> bool) {
    match outcome(input) {
        Outcome::Complete(sum) => {
            assert!(accept(&sum), "{}: accepted as {sum:#?}", show(input));
            // Accepted: then it must also behave like any good head.
            good(input);
        }
        Outcome::Error(e) => {
            assert!(
                error_matches(&e, refuse),
                "{}: refused with {e:?}, want one of {refuse:?}",
                show(input)
            );
            bad(input, refuse);
        }
        Outcome::NeedMore => panic!("{}: NeedMore for a complete head", show(input)),
    }
}

fn dest(sum: &Summary, host: &str, port: u16) -> bool {
    sum.host == host && sum.port == port
}

/// RFC 9112 §2.2 lets a server skip an empty line before the request line.
#[test]
fn leading_empty_line() {
    let input = b"\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    match outcome(input) {
        Outcome::Complete(sum) => {
            assert_eq!(sum.len, input.len(), "len() must count the skipped line");
            assert!(dest(&sum, "example.com", 80));
            check_upstream(&sum, input);
        }
        Outcome::Error(e) => assert_eq!(e.status(), 400, "{e:?}"),
        Outcome::NeedMore => panic!("NeedMore"),
    }
    // Only empty lines: not a request, but not a complete head either.
    for input in [&b"\r\n\r\n"[..], b"\r\n", b"\r\n\r\n\r\n\r\n"] {
        match outcome(input) {
            Outcome::NeedMore => {}
            Outcome::Error(e) => assert_eq!(e.status(), 400, "{}: {e:?}", show(input)),
            Outcome::Complete(sum) => panic!("{}: Complete {sum:?}", show(input)),
        }
    }
}

/// Floods of empty lines or bare-LF lines are refused, not waited on forever.
#[test]
fn floods_are_refused() {
    let crlf = b"\r\n".repeat(1 << 19);
    let mut lf = b"GET / HTTP/1.1\n".to_vec();
    while lf.len() < 1 << 20 {
        lf.extend_from_slice(b"A: b\n");
    }
    for input in [crlf, lf] {
        match outcome(&input) {
            Outcome::Error(e) => assert!(
                matches!(e.status(), 400 | 414 | 431),
                "{}: {e:?}",
                show(&input)
            ),
            other => panic!("{}: {other:?}", show(&input)),
        }
    }
}

/// A head that ends only in bare LFs: refused, or still waiting for a real end (which
/// the head limit bounds). Never accepted.
#[test]
fn head_ending_in_bare_lf() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\nHost: example.com\n\n",
        b"GET / HTTP/1.1\r\nHost: example.com\n\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\n",
        b"GET / HTTP/1.1\r\nHost: example.com\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\r\n",
        b"POST / HTTP/1.1\nHost: example.com\nContent-Length: 5\n\nhello",
    ];
    for input in cases {
        match outcome(input) {
            Outcome::NeedMore => {}
            Outcome::Error(e) => assert!(
                error_matches(&e, &["BareLineEnding"]),
                "{}: {e:?}",
                show(input)
            ),
            Outcome::Complete(sum) => panic!("{}: Complete {sum:?}", show(input)),
        }
        // Once a real end follows, it must be refused.
        let more = [*input, b"\r\n\r\n"].concat();
        match outcome(&more) {
            Outcome::Error(e) => assert!(
                error_matches(&e, &["BareLineEnding"]),
                "{}: {e:?}",
                show(&more)
            ),
            other => panic!("{}: {other:?}", show(&more)),
        }
    }
}

#[test]
fn http_1_1_without_host_outside_origin_form() {
    either(
        b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        &["MissingHost"],
        |s| dest(s, "example.com", 443),
    );
    either(
        b"GET http://example.com:8080/x HTTP/1.1\r\n\r\n",
        &["MissingHost"],
        |s| dest(s, "example.com", 8080) && s.path == "/x",
    );
}

#[test]
fn absolute_form_with_odd_host_headers() {
    const REFUSE: &[&str] = &[
        "MissingHost",
        "Malformed(_)",
        "InvalidHost(_)",
        "InvalidPort",
    ];
    let cases: &[&[u8]] = &[
        b"GET http://example.com/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nHost: bad_host\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nHost: 127.1\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nHost: a.example:0\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nHost:\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: 0x7f000001\r\n\r\n",
    ];
    for input in cases {
        either(input, REFUSE, |s| {
            let port = if s.connect { 443 } else { 80 };
            dest(s, "example.com", port)
        });
    }
}

#[test]
fn ports_with_leading_zeros_or_empty() {
    either(
        b"CONNECT example.com:0443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        &["InvalidPort"],
        |s| dest(s, "example.com", 443),
    );
    either(
        b"GET http://example.com:080/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["InvalidPort"],
        |s| dest(s, "example.com", 80),
    );
    either(
        b"GET / HTTP/1.1\r\nHost: example.com:00080\r\n\r\n",
        &["InvalidPort"],
        |s| dest(s, "example.com", 80),
    );
    // RFC 3986 allows an empty port, meaning the default.
    either(
        b"GET http://example.com:/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["InvalidPort"],
        |s| dest(s, "example.com", 80),
    );
    either(
        b"GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n",
        &["InvalidPort"],
        |s| dest(s, "example.com", 80),
    );
    either(
        b"GET / HTTP/1.1\r\nHost: [::1]:\r\n\r\n",
        &["InvalidPort"],
        |s| dest(s, "::1", 80),
    );
}

/// `//evil.example/x` is a valid origin-form path; it must not be read as an authority.
#[test]
fn network_path_in_origin_form() {
    either(
        b"GET //evil.example/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["Malformed(_)"],
        |s| dest(s, "example.com", 80) && s.path == "//evil.example/x",
    );
    either(
        b"GET //evil.example:8080 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["Malformed(_)"],
        |s| dest(s, "example.com", 80),
    );
}

/// Fragments are not part of a request target; if accepted, the host is what precedes
/// the `#`.
#[test]
fn fragments() {
    either(
        b"GET http://evil.example#@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["Malformed(_)", "InvalidHost(_)", "InvalidPort"],
        |s| dest(s, "evil.example", 80) && !s.path.contains("example.com"),
    );
    either(
        b"GET http://evil.example/#@example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["Malformed(_)"],
        |s| dest(s, "evil.example", 80),
    );
    either(
        b"GET /x#frag HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &["Malformed(_)"],
        |s| dest(s, "example.com", 80),
    );
}

/// RFC 9112 §3.2.4: OPTIONS to an absolute URI with no path goes out as `*`.
#[test]
fn options_absolute_without_path() {
    either(
        b"OPTIONS http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &[],
        |s| dest(s, "example.com", 80) && (s.path == "/" || s.path == "*"),
    );
}

#[test]
fn transfer_encoding_edges() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked \r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\tchunked\t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked,\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: ,chunked\r\n\r\n",
    ];
    for input in cases {
        either(input, &["BadTransferEncoding", "Malformed(_)"], |s| {
            s.body == BodyFraming::Chunked
        });
    }
}

#[test]
fn content_length_edges() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 005\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5,\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: , 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length:\t5\t\r\n\r\n",
    ];
    for input in cases {
        either(input, &["BadContentLength"], |s| {
            s.body == BodyFraming::Length(5)
        });
    }
}

#[test]
fn ip_spellings_the_spec_does_not_pin() {
    // An IPv4 literal with the one trailing dot a name may have.
    for input in [
        &b"GET / HTTP/1.1\r\nHost: 127.0.0.1.\r\n\r\n"[..],
        b"CONNECT 127.0.0.1.:443 HTTP/1.1\r\nHost: x.example\r\n\r\n",
    ] {
        either(input, &["InvalidHost(_)", "Malformed(_)"], |s| {
            s.host_is_ip && s.host == "127.0.0.1"
        });
    }
    // A v4-mapped IPv6 literal: an IP either way, as is or canonicalised.
    for input in [
        &b"GET / HTTP/1.1\r\nHost: [::ffff:127.0.0.1]\r\n\r\n"[..],
        b"CONNECT [::ffff:127.0.0.1]:443 HTTP/1.1\r\nHost: x.example\r\n\r\n",
        b"GET http://[::FFFF:7F00:1]/ HTTP/1.1\r\nHost: x.example\r\n\r\n",
    ] {
        either(input, &[], |s| {
            s.host_is_ip && (s.host == "::ffff:127.0.0.1" || s.host == "127.0.0.1")
        });
    }
}

/// Control bytes in a header value (other than HTAB) are not field content.
#[test]
fn control_bytes_in_values() {
    for input in [
        &b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x01b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x1bb\r\n\r\n",
    ] {
        either(input, &["Malformed(_)"], |s| dest(s, "example.com", 80));
    }
    // The Host value itself: never accepted with the control byte in the name.
    for input in [
        &b"GET / HTTP/1.1\r\nHost: exa\x01mple.com\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: example.com\x7f\r\n\r\n",
    ] {
        bad(input, &["Malformed(_)", "InvalidHost(_)"]);
    }
}

#[test]
fn empty_header_values_are_fine() {
    let h = good(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Blank:   \r\n\r\n");
    let values: Vec<&[u8]> = h.headers().iter().map(|x| x.value.as_slice()).collect();
    assert_eq!(values[1], b"");
}
