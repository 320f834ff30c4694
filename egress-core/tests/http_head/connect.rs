//! CONNECT (RFC 9110 §9.3.6): authority-form targets, strict ports, no body, and the
//! authority-form target refused for every other method.

use egress_core::http::{BodyFraming, RequestTarget, Version};

use crate::{HOST_SYNTAX, MALFORMED, bad, good};

/// (input, host, host is an IP, port, version)
const GOOD: &[(&[u8], &str, bool, u16, Version)] = &[
    (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "example.com",
        false,
        443,
        Version::Http11,
    ),
    // The Host header does not change the destination.
    (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: other.example:8443\r\nUser-Agent: curl/8.5.0\r\nProxy-Connection: Keep-Alive\r\n\r\n",
        "example.com",
        false,
        443,
        Version::Http11,
    ),
    (
        b"CONNECT Example.COM.:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "example.com",
        false,
        443,
        Version::Http11,
    ),
    (
        b"CONNECT example.com:1 HTTP/1.1\r\nHost: example.com:1\r\n\r\n",
        "example.com",
        false,
        1,
        Version::Http11,
    ),
    (
        b"CONNECT example.com:65535 HTTP/1.1\r\nHost: example.com:65535\r\n\r\n",
        "example.com",
        false,
        65535,
        Version::Http11,
    ),
    (
        b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "example.com",
        false,
        80,
        Version::Http11,
    ),
    // HTTP/1.0 needs no Host header.
    (
        b"CONNECT 10.1.2.3:8443 HTTP/1.0\r\n\r\n",
        "10.1.2.3",
        true,
        8443,
        Version::Http10,
    ),
    (
        b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
        "2001:db8::1",
        true,
        443,
        Version::Http11,
    ),
    (
        b"CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n\r\n",
        "::1",
        true,
        22,
        Version::Http11,
    ),
    (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nConnection: close\r\n\r\n",
        "example.com",
        false,
        443,
        Version::Http11,
    ),
];

#[test]
fn connect_targets() {
    for (input, host, is_ip, port, version) in GOOD {
        let h = good(input);
        let ctx = crate::show(input);
        assert!(h.is_connect(), "{ctx}");
        assert_eq!(h.method(), "CONNECT", "{ctx}");
        assert_eq!(h.form(), RequestTarget::Authority, "{ctx}");
        assert_eq!(h.path(), "", "{ctx}");
        assert_eq!(h.host().to_string(), *host, "{ctx}");
        assert_eq!(
            matches!(h.host(), egress_core::target::Host::Ip(_)),
            *is_ip,
            "{ctx}"
        );
        assert_eq!(h.port(), *port, "{ctx}");
        assert_eq!(h.version(), *version, "{ctx}");
        assert_eq!(h.body(), BodyFraming::None, "{ctx}");
    }
}

const INVALID_PORT: &[&str] = &["InvalidPort"];
const PORT_OR_MALFORMED: &[&str] = &["InvalidPort", "Malformed(_)"];
const NOT_AUTHORITY: &[&str] = &["Malformed(_)", "InvalidHost(_)", "InvalidPort"];

#[test]
fn connect_ports_are_strict() {
    let cases: &[(&[u8], &[&str])] = &[
        // No port.
        (b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT [::1] HTTP/1.1\r\nHost: [::1]\r\n\r\n", INVALID_PORT),
        (b"CONNECT 10.1.2.3 HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n", INVALID_PORT),
        // Empty port.
        (b"CONNECT example.com: HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT [::1]: HTTP/1.1\r\nHost: [::1]\r\n\r\n", INVALID_PORT),
        // Zero, out of range, overflowing.
        (b"CONNECT example.com:0 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT [::1]:0 HTTP/1.1\r\nHost: [::1]\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:65536 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:99999 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        // 2^32 + 443 and 2^64 + 443: a wrapping parser would find 443.
        (b"CONNECT example.com:4294967739 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (
            b"CONNECT example.com:18446744073709552059 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            INVALID_PORT,
        ),
        // 65536 + 443 wraps to 443 in u16.
        (b"CONNECT example.com:65979 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        // Signs and other spellings `str::parse::<u16>` or C would take.
        (b"CONNECT example.com:+443 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:-443 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:-0 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:0x1bb HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:443a HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:44.3 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT example.com:1e3 HTTP/1.1\r\nHost: example.com\r\n\r\n", INVALID_PORT),
        (b"CONNECT [::1]:+443 HTTP/1.1\r\nHost: [::1]\r\n\r\n", INVALID_PORT),
        // Non-ASCII digits (Arabic-Indic four-four-three, fullwidth 443).
        (
            b"CONNECT example.com:\xd9\xa4\xd9\xa4\xd9\xa3 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT_OR_MALFORMED,
        ),
        (
            b"CONNECT example.com:\xef\xbc\x94\xef\xbc\x94\xef\xbc\x93 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT_OR_MALFORMED,
        ),
        // A path or query after the port.
        (b"CONNECT example.com:443/ HTTP/1.1\r\nHost: example.com\r\n\r\n", PORT_OR_MALFORMED),
        (b"CONNECT example.com:443?x HTTP/1.1\r\nHost: example.com\r\n\r\n", PORT_OR_MALFORMED),
        (b"CONNECT example.com:443#x HTTP/1.1\r\nHost: example.com\r\n\r\n", PORT_OR_MALFORMED),
        // Two ports.
        (b"CONNECT example.com:443:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", NOT_AUTHORITY),
        (b"CONNECT [::1]:443:443 HTTP/1.1\r\nHost: [::1]\r\n\r\n", NOT_AUTHORITY),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn connect_target_must_be_authority_form() {
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"CONNECT :443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"CONNECT http://example.com:443/ HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT https://example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT /example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT / HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT * HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            MALFORMED,
        ),
        (
            b"CONNECT user@example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"CONNECT user:pw@example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        // IPv6 only in brackets; brackets only around IPv6.
        (
            b"CONNECT ::1:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT 2001:db8::1:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT [10.1.2.3]:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT [example.com]:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT [::1:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT ::1]:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        (
            b"CONNECT []:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            NOT_AUTHORITY,
        ),
        // Numeric spellings glibc would resolve.
        (
            b"CONNECT 127.1:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &["InvalidHost(_)"],
        ),
        (
            b"CONNECT 2130706433:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &["InvalidHost(_)"],
        ),
        (
            b"CONNECT 0x7f000001:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &["InvalidHost(_)"],
        ),
        (
            b"CONNECT 0177.0.0.1:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &["InvalidHost(_)"],
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn connect_must_not_carry_a_body() {
    const BODY: &[&str] = &["ConnectWithBody"];
    let cases: &[(&[u8], &[&str])] = &[
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: 0\r\n\r\n", BODY),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: 5\r\n\r\n", BODY),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\ncontent-length: 0\r\n\r\n", BODY),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nTransfer-Encoding: chunked\r\n\r\n", BODY),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nTRANSFER-ENCODING: chunked\r\n\r\n", BODY),
        (b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nContent-Length: 0\r\n\r\n", BODY),
        (b"CONNECT example.com:443 HTTP/1.0\r\nContent-Length: 10\r\n\r\n", BODY),
        // Also wrong in another way: either error is right.
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nTransfer-Encoding: gzip\r\n\r\n",
            &["ConnectWithBody", "BadTransferEncoding"],
        ),
        (
            b"CONNECT example.com:443 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["ConnectWithBody", "BadTransferEncoding"],
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: x\r\n\r\n",
            &["ConnectWithBody", "BadContentLength"],
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            &["ConnectWithBody", "BadContentLength"],
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["ConnectWithBody", "LengthAndChunked"],
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

/// Methods are case-sensitive: only `CONNECT` takes an authority-form target.
#[test]
fn authority_form_only_for_connect() {
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"connect example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            MALFORMED,
        ),
        (
            b"Connect example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            MALFORMED,
        ),
        (
            b"CONNECTX example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET 10.1.2.3:80 HTTP/1.1\r\nHost: 10.1.2.3:80\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            MALFORMED,
        ),
        (
            b"POST 10.1.2.3:443 HTTP/1.1\r\nHost: 10.1.2.3:443\r\nContent-Length: 0\r\n\r\n",
            MALFORMED,
        ),
        // `example.com:443` is also the shape of a URI with scheme `example.com`: either
        // answer is a refusal.
        (
            b"GET example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &["Malformed(_)", "UnsupportedScheme"],
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

/// `connect` with an absolute or origin target is an ordinary (unknown) method and not a
/// CONNECT: `is_connect()` is false and it is forwarded like any other request.
#[test]
fn lower_case_connect_is_not_connect() {
    let h = good(b"connect /x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert!(!h.is_connect());
    assert_eq!(h.method(), "connect");
    assert_eq!(h.form(), RequestTarget::Origin);
    let h = good(b"connect http://example.com:8080/x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert!(!h.is_connect());
    assert_eq!(h.form(), RequestTarget::Absolute);
    assert_eq!(h.port(), 8080);
}
