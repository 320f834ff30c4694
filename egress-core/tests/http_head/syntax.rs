//! Header-line syntax: obs-fold, bare CR and LF, whitespace before the colon, empty and
//! invalid names. Every bad head here still ends in CRLF CRLF, so that "the head has not
//! ended" is never a way out.

use crate::{MALFORMED, bad};

#[test]
fn obs_fold() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\n  \tb\r\nX-B: c\r\n\r\n",
        // A folded Host, Content-Length and Transfer-Encoding: each would be read
        // differently by a server that unfolds.
        b"GET / HTTP/1.1\r\nHost: example.com\r\n evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n example.com\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-A: a\r\n b\r\n\r\n",
    ];
    for input in cases {
        bad(input, &["ObsFold"]);
    }
    // Whitespace at the start of the first header line, or a fold with nothing in it.
    let either: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n Host: example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\n\tHost: example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\n \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\n\t\r\nX-B: b\r\n\r\n",
    ];
    for input in either {
        bad(input, &["ObsFold", "Malformed(_)"]);
    }
}

#[test]
fn bare_line_endings() {
    const BARE: &[&str] = &["BareLineEnding"];
    // Inside the request target a CR or LF is also a control byte there: either error.
    const BARE_OR_MALFORMED: &[&str] = &["BareLineEnding", "Malformed(_)"];
    let cases: &[(&[u8], &[&str])] = &[
        // Bare LF.
        (b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\nX-A: b\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\nb\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\n\r\nX-B: b\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\nX-A: b\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\n\nHost: example.com\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nX\nA: b\r\nHost: example.com\r\n\r\n", BARE),
        // The classic smuggle: a bare LF hides a second Content-Length from one reader.
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nX-A: a\nContent-Length: 5\r\n\r\n",
            BARE,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nX-A: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            BARE,
        ),
        (b"\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", BARE_OR_MALFORMED),
        (b"GET /a\nb HTTP/1.1\r\nHost: example.com\r\n\r\n", BARE_OR_MALFORMED),
        (b"GET\n/ HTTP/1.1\r\nHost: example.com\r\n\r\n", BARE_OR_MALFORMED),
        // Bare CR.
        (b"GET / HTTP/1.1\rHost: example.com\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\r\nHost: example.com\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\rb\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: \rb\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\rX-A: b\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX\r: b\r\n\r\n", BARE),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\r\r\n\r\n", BARE),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nX-A: a\rContent-Length: 5\r\n\r\n",
            BARE,
        ),
        (b"\rGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", BARE_OR_MALFORMED),
        (b"GET /a\rb HTTP/1.1\r\nHost: example.com\r\n\r\n", BARE_OR_MALFORMED),
        (b"GET\r/ HTTP/1.1\r\nHost: example.com\r\n\r\n", BARE_OR_MALFORMED),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\rX: y\r\n\r\n", BARE),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}

#[test]
fn whitespace_before_colon() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost\t: example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost  :example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A : b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length : 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding : chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding\t: chunked\r\nContent-Length: 5\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nHost : evil.example\r\n\r\n",
    ];
    for input in cases {
        bad(input, &["SpaceBeforeColon"]);
    }
}

#[test]
fn empty_header_name() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: example.com\r\n: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n:x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n:\r\n\r\n",
        b"GET / HTTP/1.1\r\n: example.com\r\nHost: example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n::\r\n\r\n",
    ];
    for input in cases {
        bad(input, &["EmptyHeaderName"]);
    }
}

#[test]
fn invalid_header_lines() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"GET / HTTP/1.1\r\nHost example.com\r\n\r\n", MALFORMED),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX(y): z\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX/y: z\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\"X\": z\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX\x00: z\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX\x7f: z\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\xc3\xa9: z\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x00b\r\n\r\n",
            MALFORMED,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX y: z\r\n\r\n",
            &["Malformed(_)", "SpaceBeforeColon"],
        ),
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nContent Length: 5\r\n\r\n",
            &["Malformed(_)", "SpaceBeforeColon"],
        ),
    ];
    for (input, want) in cases {
        bad(input, want);
    }
}
