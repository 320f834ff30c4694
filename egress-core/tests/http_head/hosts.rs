//! Host spellings, each tried in every place a destination comes from: the CONNECT
//! authority, the absolute URI (with and without a port) and the Host header (with and
//! without a port).

use egress_core::target::Host;

use crate::{bad, good, show};

/// Where the host under test goes, and the port that results.
#[derive(Debug, Clone, Copy)]
enum Place {
    Connect,
    AbsoluteWithPort,
    Absolute,
    HostWithPort,
    HostHeader,
}

const PLACES: [Place; 5] = [
    Place::Connect,
    Place::AbsoluteWithPort,
    Place::Absolute,
    Place::HostWithPort,
    Place::HostHeader,
];

/// A request with `host` in `place`; any other host in it is a valid decoy.
fn request(place: Place, host: &[u8]) -> (Vec<u8>, u16) {
    let parts: (&[&[u8]], u16) = match place {
        Place::Connect => (
            &[
                b"CONNECT ",
                host,
                b":443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n",
            ],
            443,
        ),
        Place::AbsoluteWithPort => (
            &[
                b"GET http://",
                host,
                b":8080/p HTTP/1.1\r\nHost: other.example\r\n\r\n",
            ],
            8080,
        ),
        Place::Absolute => (
            &[
                b"GET http://",
                host,
                b"/p HTTP/1.1\r\nHost: other.example\r\n\r\n",
            ],
            80,
        ),
        Place::HostWithPort => (
            &[b"GET /p HTTP/1.1\r\nHost: ", host, b":8080\r\n\r\n"],
            8080,
        ),
        Place::HostHeader => (&[b"GET /p HTTP/1.1\r\nHost: ", host, b"\r\n\r\n"], 80),
    };
    (parts.0.concat(), parts.1)
}

/// (as sent, `Display` of the normalised host, is an IP address)
const GOOD: &[(&str, &str, bool)] = &[
    ("example.com", "example.com", false),
    ("EXAMPLE.Com", "example.com", false),
    ("example.com.", "example.com", false),
    ("Example.COM.", "example.com", false),
    ("localhost", "localhost", false),
    ("a", "a", false),
    ("a-b.c-d.example", "a-b.c-d.example", false),
    ("1.example.com", "1.example.com", false),
    ("0x1.example", "0x1.example", false),
    ("a.b0x", "a.b0x", false),
    ("xn--caf-dma.example", "xn--caf-dma.example", false),
    ("10.1.2.3", "10.1.2.3", true),
    ("127.0.0.1", "127.0.0.1", true),
    ("0.0.0.0", "0.0.0.0", true),
    ("255.255.255.255", "255.255.255.255", true),
    ("169.254.169.254", "169.254.169.254", true),
    ("[::1]", "::1", true),
    ("[::]", "::", true),
    ("[2001:DB8::1]", "2001:db8::1", true),
    ("[2001:db8:0:0:0:0:0:1]", "2001:db8::1", true),
    ("[fe80::1]", "fe80::1", true),
];

#[test]
fn good_hosts_everywhere() {
    let long_label = format!("{}.example", "a".repeat(63));
    let long_name = ["abcdefghi"; 25].join(".") + ".abc"; // 253 bytes
    assert_eq!(long_name.len(), 253);
    let extra = [
        (long_label.as_str(), long_label.as_str(), false),
        (long_name.as_str(), long_name.as_str(), false),
    ];
    for (sent, display, is_ip) in GOOD.iter().chain(extra.iter()) {
        for place in PLACES {
            let (input, port) = request(place, sent.as_bytes());
            let h = good(&input);
            let ctx = format!("{place:?} {}", show(&input));
            assert_eq!(h.host().to_string(), *display, "{ctx}");
            assert_eq!(matches!(h.host(), Host::Ip(_)), *is_ip, "{ctx}");
            assert_eq!(h.port(), port, "{ctx}");
        }
    }
}

/// Numeric spellings glibc turns into an address: never a name, never resolved.
const NUMERIC: &[&str] = &[
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0177.0.0.1",
    "0177.0000.0000.0001",
    "017700000001",
    "127.1",
    "127.0.1",
    "127.0.0.01",
    "127.000.000.001",
    "0127.0.0.1",
    "0x7f.0.0.1",
    "0x7f.1",
    "0x7F.0x0.0x0.0x1",
    "1.2.3.4.5",
    "256.1.1.1",
    "4294967296",
    "4294967297",
    "example.123",
    "a.0x10",
    "0",
    "0x",
];

/// Not host names, and not IP literals.
const SYNTAX: &[&[u8]] = &[
    b"bad_host",
    b"bad_host.example",
    b"a..b",
    b".example.com",
    b"example.com..",
    b"-a.example",
    b"a-.example",
    b"caf\xc3\xa9.example",
    b"exa mple.com",
    b"exa\tmple.com",
    b"%65xample.com",
    b"ex%41mple.com",
    b"example\xe3\x80\x82com",
    b"\xef\xbd\x85xample.com",
    b"example.com\x00",
    b"a*b.example",
    b"example.com;x",
    b"example.com,evil.example",
    b"\"example.com\"",
    b"user@example.com",
    b"example.com\\evil.example",
];

/// Bracket and colon shapes: IPv6 only in brackets, brackets only around IPv6.
const BRACKETS: &[&str] = &[
    "::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "[::1",
    "::1]",
    "[10.1.2.3]",
    "[example.com]",
    "[fe80::1%25eth0]",
    "[fe80::1%eth0]",
    "[v1.fe]",
    "[[::1]]",
    "[::1]]",
    "[]",
    "[:::1]",
    "[::1]x",
    "[12345::1]",
    "[ ::1]",
    "[::1 ]",
    "http://example.com",
];

/// Empty or dot-only.
const EMPTY: &[&str] = &["", "."];

/// A host with whitespace in it splits the request line, and the spec does not say
/// whether that is reported as malformed or as an unsupported version.
fn with_ws(host: &[u8], want: &[&'static str]) -> Vec<&'static str> {
    let mut v = want.to_vec();
    if host.iter().any(|b| *b == b' ' || *b == b'\t') {
        v.push("UnsupportedVersion");
    }
    v
}

#[test]
fn numeric_hosts_are_invalid_everywhere() {
    for host in NUMERIC {
        for place in PLACES {
            bad(&request(place, host.as_bytes()).0, &["InvalidHost(_)"]);
        }
    }
}

#[test]
fn malformed_hosts_are_invalid_everywhere() {
    let long_label = format!("{}.example", "a".repeat(64));
    let long_name = ["abcdefghi"; 25].join(".") + ".abcd"; // 254 bytes
    let extra = [long_label.as_bytes(), long_name.as_bytes()];
    for host in SYNTAX.iter().chain(extra.iter()) {
        for place in PLACES {
            bad(
                &request(place, host).0,
                &with_ws(host, &["InvalidHost(_)", "Malformed(_)"]),
            );
        }
    }
}

#[test]
fn bracket_shapes_are_invalid_everywhere() {
    for host in BRACKETS {
        for place in PLACES {
            bad(
                &request(place, host.as_bytes()).0,
                &with_ws(
                    host.as_bytes(),
                    &["InvalidHost(_)", "Malformed(_)", "InvalidPort"],
                ),
            );
        }
    }
}

#[test]
fn empty_hosts_are_invalid_everywhere() {
    for host in EMPTY {
        for place in PLACES {
            bad(
                &request(place, host.as_bytes()).0,
                &[
                    "InvalidHost(_)",
                    "Malformed(_)",
                    "MissingHost",
                    "InvalidPort",
                ],
            );
        }
    }
}
