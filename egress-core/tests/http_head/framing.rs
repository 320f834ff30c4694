//! Body framing: Content-Length and Transfer-Encoding, and the request-smuggling shapes
//! (RFC 9112 §6).

use egress_core::http::BodyFraming;

use crate::{bad, good, show};

const LEN5: BodyFraming = BodyFraming::Length(5);
const CHUNKED: BodyFraming = BodyFraming::Chunked;

#[test]
fn framing_that_parses() {
    let cases: &[(&[u8], BodyFraming)] = &[
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", BodyFraming::None),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\n\r\n", BodyFraming::None),
        (b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n", BodyFraming::None),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n", BodyFraming::Length(0)),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\ncontent-length: 5\r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nCONTENT-LENGTH: 5\r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length:5\r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5 \r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5, 5\r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5,5\r\n\r\n", LEN5),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5 , 5 ,5\r\n\r\n", LEN5),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            LEN5,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nHost: example.com\r\ncontent-length: 5, 5\r\n\r\n",
            LEN5,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 18446744073709551615\r\n\r\n",
            BodyFraming::Length(u64::MAX),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4294967296\r\n\r\n",
            BodyFraming::Length(1 << 32),
        ),
        (b"POST / HTTP/1.0\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n", LEN5),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n", LEN5),
        (
            b"POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
            LEN5,
        ),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n", CHUNKED),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: Chunked\r\n\r\n", CHUNKED),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: CHUNKED\r\n\r\n", CHUNKED),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\ntransfer-encoding: chunked\r\n\r\n", CHUNKED),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", CHUNKED),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip,chunked\r\n\r\n", CHUNKED),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: deflate, gzip, chunked\r\n\r\n",
            CHUNKED,
        ),
        // Two field lines are one list (RFC 9110 §5.3): the final coding is chunked.
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            CHUNKED,
        ),
        (
            b"PUT http://example.com/ HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
            CHUNKED,
        ),
    ];
    for (input, want) in cases {
        let h = good(input);
        assert_eq!(h.body(), *want, "{}", show(input));
    }
}

#[test]
fn length_and_chunked() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\ncontent-length: 5\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for input in cases {
        bad(input, &["LengthAndChunked"]);
    }
    // Wrong in two ways: either error is right.
    let either: &[(&[u8], &[&str])] = &[
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n",
            &["LengthAndChunked", "BadTransferEncoding"],
        ),
        (
            b"POST / HTTP/1.0\r\nHost: example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["LengthAndChunked", "BadTransferEncoding"],
        ),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["LengthAndChunked", "BadContentLength"],
        ),
        (
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["LengthAndChunked", "BadContentLength"],
        ),
    ];
    for (input, want) in either {
        bad(input, want);
    }
}

#[test]
fn bad_content_length() {
    let values: &[&[u8]] = &[
        b"5, 6",
        b"5,6",
        b"6, 5",
        b"5, 5, 6",
        b"+5",
        b"-1",
        b"-0",
        b"0x5",
        b"0X5",
        b"5 5",
        b"",
        b" ",
        b"abc",
        b"5a",
        b"a5",
        b"5.0",
        b"1e3",
        b"5;",
        b"5;x=1",
        b"\"5\"",
        b"18446744073709551616",
        b"99999999999999999999999999",
        b"\xd9\xa5",
        b"\xef\xbc\x95",
    ];
    for v in values {
        let input = [
            &b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: "[..],
            v,
            b"\r\n\r\n",
        ]
        .concat();
        bad(&input, &["BadContentLength"]);
    }
    // Control bytes in the value: a bad length or a bad header line.
    for v in [&b"5\x0b"[..], b"\x0c5", b"5\x00"] {
        let input = [
            &b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: "[..],
            v,
            b"\r\n\r\n",
        ]
        .concat();
        bad(&input, &["BadContentLength", "Malformed(_)"]);
    }
    let headers: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\ncontent-length: 50\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 0\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 5, 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: +5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: \r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: example.com\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ];
    for input in headers {
        bad(input, &["BadContentLength"]);
    }
}

#[test]
fn bad_transfer_encoding() {
    let values: &[&[u8]] = &[
        b"gzip",
        b"identity",
        b"chunked, gzip",
        b"chunked,gzip",
        b"chunked, identity",
        b"xchunked",
        b"chunkedx",
        b"chunked-false",
        b"chunk",
        b"\"chunked\"",
        b"chunked;q=1",
        b"chunked; foo=bar",
        b"chunked\x0b",
        b"\x0bchunked",
        b"chunked, ,gzip",
        b"\xe2\x80\x8bchunked",
    ];
    for v in values {
        let input = [
            &b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: "[..],
            v,
            b"\r\n\r\n",
        ]
        .concat();
        bad(&input, &["BadTransferEncoding", "Malformed(_)"]);
    }
    let pinned: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        // Any Transfer-Encoding on HTTP/1.0.
        b"POST / HTTP/1.0\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST http://example.com/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for input in pinned {
        bad(input, &["BadTransferEncoding"]);
    }
    // An empty value names no coding, so not a final chunked.
    bad(
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: \r\n\r\n",
        &["BadTransferEncoding", "Malformed(_)"],
    );
}
