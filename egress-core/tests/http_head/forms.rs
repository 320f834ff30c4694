//! Origin, absolute and asterisk forms; schemes and userinfo; the request line's syntax,
//! methods, versions, and the bytes allowed in the request target.

use egress_core::http::{BodyFraming, RequestTarget, Version};

use crate::{HOST_SYNTAX, MALFORMED, VERSION, bad, good, show};

/// (input, method, form, path, host, port, version)
type Case = (
    &'static [u8],
    &'static str,
    RequestTarget,
    &'static str,
    &'static str,
    u16,
    Version,
);

const V10: Version = Version::Http10;
const V11: Version = Version::Http11;
const ORIGIN: RequestTarget = RequestTarget::Origin;
const ABSOLUTE: RequestTarget = RequestTarget::Absolute;
const ASTERISK: RequestTarget = RequestTarget::Asterisk;

const GOOD: &[Case] = &[
    // Origin form: destination from Host.
    (
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        "GET",
        ORIGIN,
        "/a/b?c=d&e",
        "example.com",
        8080,
        V11,
    ),
    (
        b"HEAD /x HTTP/1.0\r\nHost: example.com\r\n\r\n",
        "HEAD",
        ORIGIN,
        "/x",
        "example.com",
        80,
        V10,
    ),
    (
        b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET / HTTP/1.1\r\nHOST: Example.COM.\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET / HTTP/1.1\r\nHost:example.com\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: \texample.com \t\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "::1",
        8080,
        V11,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n",
        "GET",
        ORIGIN,
        "/",
        "10.1.2.3",
        80,
        V11,
    ),
    (
        b"GET /%2e%2e/%2F?x=%00 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ORIGIN,
        "/%2e%2e/%2F?x=%00",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET /? HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ORIGIN,
        "/?",
        "example.com",
        80,
        V11,
    ),
    // Any token is a method; methods are kept as sent.
    (
        b"get / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "get",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"PROPFIND /dav/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "PROPFIND",
        ORIGIN,
        "/dav/",
        "example.com",
        80,
        V11,
    ),
    (
        b"M-SEARCH / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "M-SEARCH",
        ORIGIN,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"OPTIONS /x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "OPTIONS",
        ORIGIN,
        "/x",
        "example.com",
        80,
        V11,
    ),
    // Absolute form: destination from the URI, default port 80, "/" when no path.
    (
        b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/?q=1",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET http://example.com:8080/a/b?c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/a/b?c",
        "example.com",
        8080,
        V11,
    ),
    (
        b"GET http://example.com:8080 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "example.com",
        8080,
        V11,
    ),
    (
        b"GET http://example.com:80/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/x",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET HTTP://Example.COM/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/x",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET Http://example.com./x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/x",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET http://example.com/a//b/../c HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/a//b/../c",
        "example.com",
        80,
        V11,
    ),
    (
        b"GET http://10.1.2.3:81/ HTTP/1.1\r\nHost: 10.1.2.3:81\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "10.1.2.3",
        81,
        V11,
    ),
    (
        b"GET http://[::1]/ HTTP/1.1\r\nHost: [::1]\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "::1",
        80,
        V11,
    ),
    (
        b"GET http://[2001:db8::1]:8080?x HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/?x",
        "2001:db8::1",
        8080,
        V11,
    ),
    // The URI wins over a Host header that disagrees (RFC 9112 §3.2.2).
    (
        b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "a.example",
        80,
        V11,
    ),
    (
        b"GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example:9090\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "a.example",
        8080,
        V11,
    ),
    (
        b"GET http://a.example/ HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "a.example",
        80,
        V11,
    ),
    (
        b"POST http://a.example/submit HTTP/1.1\r\nHost: b.example\r\nContent-Length: 3\r\n\r\n",
        "POST",
        ABSOLUTE,
        "/submit",
        "a.example",
        80,
        V11,
    ),
    // HTTP/1.0 in absolute form needs no Host header.
    (
        b"GET http://example.com/ HTTP/1.0\r\n\r\n",
        "GET",
        ABSOLUTE,
        "/",
        "example.com",
        80,
        V10,
    ),
    // Asterisk form: destination from Host.
    (
        b"OPTIONS * HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        "OPTIONS",
        ASTERISK,
        "*",
        "example.com",
        8080,
        V11,
    ),
    (
        b"OPTIONS * HTTP/1.0\r\nHost: example.com\r\n\r\n",
        "OPTIONS",
        ASTERISK,
        "*",
        "example.com",
        80,
        V10,
    ),
];

#[test]
fn request_targets() {
    for (input, method, form, path, host, port, version) in GOOD {
        let h = good(input);
        let ctx = show(input);
        assert_eq!(h.method(), *method, "{ctx}: method");
        assert!(!h.is_connect(), "{ctx}: is_connect");
        assert_eq!(h.form(), *form, "{ctx}: form");
        assert_eq!(h.path(), *path, "{ctx}: path");
        assert_eq!(h.host().to_string(), *host, "{ctx}: host");
        assert_eq!(h.port(), *port, "{ctx}: port");
        assert_eq!(h.version(), *version, "{ctx}: version");
    }
}

#[test]
fn headers_are_kept_as_received() {
    let input = b"POST http://a.example/x HTTP/1.1\r\nhOsT: b.example\r\nProxy-Connection: keep-alive\r\nX-Mixed-CASE: Value With  Spaces\r\nConnection: X-Mixed-CASE\r\nX-Bin: caf\xc3\xa9 \xff\r\nContent-Length: 0\r\n\r\n";
    let h = good(input);
    let got: Vec<(&str, &[u8])> = h
        .headers()
        .iter()
        .map(|x| (x.name.as_str(), x.value.as_slice()))
        .collect();
    let want: Vec<(&str, &[u8])> = vec![
        ("hOsT", b"b.example"),
        ("Proxy-Connection", b"keep-alive"),
        ("X-Mixed-CASE", b"Value With  Spaces"),
        ("Connection", b"X-Mixed-CASE"),
        ("X-Bin", b"caf\xc3\xa9 \xff"),
        ("Content-Length", b"0"),
    ];
    assert_eq!(got, want);
    assert_eq!(h.body(), BodyFraming::Length(0));
    assert_eq!(h.host().to_string(), "a.example");
}

#[test]
fn https_in_absolute_form_is_refused() {
    let cases: &[&[u8]] = &[
        b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"GET HTTPS://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"GET hTtPs://example.com:443/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"POST https://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
        b"GET https://[::1]/ HTTP/1.1\r\nHost: [::1]\r\n\r\n",
        b"GET https://example.com/ HTTP/1.0\r\n\r\n",
    ];
    for input in cases {
        bad(input, &["HttpsAbsoluteForm"]);
    }
}

#[test]
fn other_schemes_are_refused() {
    const SCHEME: &[&str] = &["UnsupportedScheme"];
    const SCHEME_OR_MALFORMED: &[&str] = &["UnsupportedScheme", "Malformed(_)"];
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET ws://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET wss://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET gopher://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        // Prefixes and near misses of `http` and `https`.
        (
            b"GET httpx://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET htt://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET httpsx://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET http+unix://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET xhttp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME,
        ),
        (
            b"GET file:///etc/passwd HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME_OR_MALFORMED,
        ),
        (
            b"GET mailto:a@example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME_OR_MALFORMED,
        ),
        (
            b"GET javascript:alert(1) HTTP/1.1\r\nHost: example.com\r\n\r\n",
            SCHEME_OR_MALFORMED,
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn userinfo_is_refused() {
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET http://user:pass@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        // The classic confusion: which of the two is the host?
        (
            b"GET http://example.com@evil.example/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET http://example.com:80@evil.example:8080/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET http://user@example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET http://user@[::1]:8080/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET http://@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http://a%40b@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn bad_absolute_uris() {
    const PORT: &[&str] = &["InvalidPort"];
    const ANY_TARGET: &[&str] = &["Malformed(_)", "InvalidHost(_)", "InvalidPort"];
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"GET http:/example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http:example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http:// HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http:///x HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http://:8080/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http://example.com:0/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:+80/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:-80/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:65536/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:65616/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:0x50/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:8o/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            PORT,
        ),
        (
            b"GET http://example.com:80:80/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            ANY_TARGET,
        ),
        (
            b"GET http://example.com\\@evil.example/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            ANY_TARGET,
        ),
        (
            b"GET http://[::1]x/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            ANY_TARGET,
        ),
        (
            b"GET http://[::1/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            ANY_TARGET,
        ),
        (
            b"GET http://::1/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            ANY_TARGET,
        ),
        (
            b"GET http://[v1.fe]/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            ANY_TARGET,
        ),
        // Bytes outside the URI grammar in the target.
        (
            b"GET http://example.com/caf\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET http://exampl\xc3\xa9.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            HOST_SYNTAX,
        ),
        (
            b"GET http://example.com/\x7f HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn origin_form_needs_exactly_one_host() {
    const MISSING: &[&str] = &["MissingHost"];
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Host: example.com\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nHost: example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nhost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: evil.example\r\nX: y\r\nHOST: example.com\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    ];
    for input in cases {
        bad(input, MISSING);
    }
}

#[test]
fn bad_host_header_ports() {
    const PORT: &[&str] = &["InvalidPort"];
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: example.com:0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com:+80\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com:-80\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com:65536\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com:65616\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com:0x50\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com:80a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:+80\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: example.com:99999\r\n\r\n",
    ];
    for input in cases {
        bad(input, PORT);
    }
}

#[test]
fn asterisk_only_for_options() {
    let cases: &[&[u8]] = &[
        b"GET * HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"POST * HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
        b"options * HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS *x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS ** HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS */ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS *?x HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ];
    for input in cases {
        bad(input, MALFORMED);
    }
}

/// Targets that are none of the four forms, and bytes outside the URI grammar.
#[test]
fn bad_request_targets() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"GET a/b HTTP/1.1\r\nHost: example.com\r\n\r\n", MALFORMED),
        (
            b"GET example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (b"GET ?x HTTP/1.1\r\nHost: example.com\r\n\r\n", MALFORMED),
        (b"GET #x HTTP/1.1\r\nHost: example.com\r\n\r\n", MALFORMED),
        (
            b"GET /\x80 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /\xff HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /?q=\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /\x00 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /\x01 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /\x1b[0m HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /\x7f HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /a\x0bb HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /a\x0cb HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /a\tb HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n",
            &["Malformed(_)", "UnsupportedVersion"],
        ),
        (
            b"OPTIONS \x80 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn bad_request_lines() {
    // The spec does not say whether a broken request line is reported as malformed or as
    // an unsupported version when the damage is next to the version.
    const LINE: &[&str] = &["Malformed(_)", "UnsupportedVersion"];
    let cases: &[(&[u8], &[&str])] = &[
        (b"GET  / HTTP/1.1\r\nHost: example.com\r\n\r\n", LINE),
        (b"GET /  HTTP/1.1\r\nHost: example.com\r\n\r\n", LINE),
        (b" GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", LINE),
        (b"GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n", LINE),
        (b"GET\t/\tHTTP/1.1\r\nHost: example.com\r\n\r\n", LINE),
        (b"GET / HTTP/1.1\x00\r\nHost: example.com\r\n\r\n", LINE),
        (b"GET /\r\nHost: example.com\r\n\r\n", LINE),
        (b"GET\r\nHost: example.com\r\n\r\n", LINE),
        (b"/ HTTP/1.1\r\nHost: example.com\r\n\r\n", LINE),
        (b" / HTTP/1.1\r\nHost: example.com\r\n\r\n", LINE),
        (b"G@T / HTTP/1.1\r\nHost: example.com\r\n\r\n", MALFORMED),
        (b"GET(x) / HTTP/1.1\r\nHost: example.com\r\n\r\n", MALFORMED),
        (b"G\"T / HTTP/1.1\r\nHost: example.com\r\n\r\n", MALFORMED),
        (
            b"GET\x00 / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"\xc3\xa9 / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            MALFORMED,
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            MALFORMED,
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn only_http_1_0_and_1_1() {
    let versions: &[&[u8]] = &[
        b"HTTP/2.0",
        b"HTTP/2",
        b"HTTP/1.2",
        b"HTTP/1.9",
        b"HTTP/0.9",
        b"HTTP/3.0",
        b"HTTP/1",
        b"HTTP/1.",
        b"HTTP/1.1.1",
        b"HTTP/1.01",
        b"HTTP/01.1",
        b"HTTP/11",
        b"http/1.1",
        b"Http/1.1",
        b"HTTPS/1.1",
        b"HTTP 1.1",
        b"HTTP/\xef\xbc\x91.1",
        b"XTTP/1.1",
    ];
    for v in versions {
        for (pre, post) in [
            (&b"GET / "[..], &b"\r\nHost: example.com\r\n\r\n"[..]),
            (
                b"GET http://example.com/ ",
                b"\r\nHost: example.com\r\n\r\n",
            ),
            (
                b"CONNECT example.com:443 ",
                b"\r\nHost: example.com:443\r\n\r\n",
            ),
        ] {
            bad(&[pre, v, post].concat(), VERSION);
        }
    }
}
