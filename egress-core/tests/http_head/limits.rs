//! Request-line, head-size and header-count limits: exactly at each is accepted, one past
//! is refused, and the two size limits are enforced before the head has ended.

use egress_core::http::{HeadLimits, RequestTarget};

use crate::{Outcome, bad_with, good_with, limits, run, show};

fn small() -> HeadLimits {
    limits(64, 256, 4)
}

/// A request line of exactly `len` bytes (before its CRLF).
fn request_line(len: usize) -> Vec<u8> {
    let fixed = "GET / HTTP/1.1".len();
    assert!(len >= fixed);
    format!("GET /{} HTTP/1.1", "a".repeat(len - fixed)).into_bytes()
}

/// A CONNECT request line of exactly `len` bytes, the host padded.
fn connect_line(len: usize) -> Vec<u8> {
    let fixed = "CONNECT a.example:443 HTTP/1.1".len();
    assert!(len >= fixed);
    format!("CONNECT {}a.example:443 HTTP/1.1", "b".repeat(len - fixed)).into_bytes()
}

/// An absolute-form request line of exactly `len` bytes.
fn absolute_line(len: usize) -> Vec<u8> {
    let fixed = "GET http://a.example/ HTTP/1.1".len();
    assert!(len >= fixed);
    format!("GET http://a.example/{} HTTP/1.1", "c".repeat(len - fixed)).into_bytes()
}

/// A whole head (request line to blank line) of exactly `len` bytes, with `headers`
/// header fields in it (at least 2).
fn head(len: usize, headers: usize) -> Vec<u8> {
    assert!(headers >= 2);
    let mut h = b"GET / HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    for i in 0..headers - 2 {
        h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let fixed = h.len() + "X: \r\n\r\n".len();
    assert!(len >= fixed, "{len} < {fixed}");
    h.extend_from_slice(b"X: ");
    h.extend_from_slice("p".repeat(len - fixed).as_bytes());
    h.extend_from_slice(b"\r\n\r\n");
    assert_eq!(h.len(), len);
    h
}

fn with_rest(line: &[u8], rest: &[u8]) -> Vec<u8> {
    [line, rest].concat()
}

#[test]
fn defaults() {
    let l = HeadLimits::default();
    assert_eq!(
        (l.max_request_line, l.max_head_bytes, l.max_headers),
        (8192, 65536, 100)
    );
}

#[test]
fn request_line_at_and_past_the_limit() {
    let l = small();
    let rest = b"\r\nHost: example.com\r\n\r\n";
    let h = good_with(&with_rest(&request_line(64), rest), &l, 1);
    assert_eq!(h.path().len(), 64 - "GET  HTTP/1.1".len());
    good_with(&with_rest(&connect_line(64), rest), &l, 1);
    good_with(&with_rest(&absolute_line(64), rest), &l, 1);
    let want = &["RequestLineTooLong { limit: 64 }"];
    bad_with(&with_rest(&request_line(65), rest), &l, want, 1);
    bad_with(&with_rest(&connect_line(65), rest), &l, want, 1);
    bad_with(&with_rest(&absolute_line(65), rest), &l, want, 1);
    bad_with(&with_rest(&request_line(200), rest), &l, want, 1);
}

#[test]
fn request_line_limit_is_enforced_early() {
    let l = small();
    // At the limit with no line end yet, or with half of it: more may come.
    for buf in [request_line(64), with_rest(&request_line(64), b"\r")] {
        assert_eq!(run(&buf, &l), Outcome::NeedMore, "{}", show(&buf));
    }
    // One byte past the limit with no line end: refused now, not after the rest.
    for buf in [
        request_line(65),
        connect_line(65),
        absolute_line(65),
        request_line(10_000),
    ] {
        let got = run(&buf, &l);
        assert_eq!(
            got,
            Outcome::Error(egress_core::http::HeadError::RequestLineTooLong { limit: 64 }),
            "{}",
            show(&buf)
        );
    }
    // With the defaults: a megabyte of request line and no line end.
    let d = HeadLimits::default();
    let mut huge = b"GET /".to_vec();
    huge.resize(1 << 20, b'a');
    assert_eq!(
        run(&huge, &d),
        Outcome::Error(egress_core::http::HeadError::RequestLineTooLong { limit: 8192 })
    );
    assert_eq!(
        run(&huge[..8193], &d),
        Outcome::Error(egress_core::http::HeadError::RequestLineTooLong { limit: 8192 })
    );
    assert_eq!(run(&huge[..8192], &d), Outcome::NeedMore);
}

/// The request-line limit is about the request line only: a header line may be longer.
#[test]
fn header_lines_may_be_longer_than_the_request_line_limit() {
    let l = small();
    let input = head(200, 2);
    good_with(&input, &l, 1);
}

#[test]
fn head_at_and_past_the_limit() {
    let l = small();
    let h = good_with(&head(256, 2), &l, 1);
    assert_eq!(h.len(), 256);
    assert_eq!(h.form(), RequestTarget::Origin);
    let want = &["HeadTooLarge { limit: 256 }"];
    bad_with(&head(257, 2), &l, want, 1);
    bad_with(&head(300, 4), &l, want, 1);
    bad_with(&head(5000, 2), &l, want, 7);
}

#[test]
fn head_limit_is_enforced_early() {
    let l = small();
    let big = head(5000, 2);
    for n in [257, 258, 300, 4000, 4990] {
        let got = run(&big[..n], &l);
        assert_eq!(
            got,
            Outcome::Error(egress_core::http::HeadError::HeadTooLarge { limit: 256 }),
            "prefix of {n} bytes"
        );
    }
    // Many short header lines, none of them long, no end.
    let mut lines = b"GET / HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    while lines.len() < 1 << 20 {
        lines.extend_from_slice(b"A: b\r\n");
    }
    let d = limits(8192, 65536, 100_000);
    assert_eq!(
        run(&lines, &d),
        Outcome::Error(egress_core::http::HeadError::HeadTooLarge { limit: 65536 })
    );
    let mut one = b"GET / HTTP/1.1\r\nHost: example.com\r\nX: ".to_vec();
    one.resize(1 << 20, b'v');
    assert_eq!(
        run(&one, &HeadLimits::default()),
        Outcome::Error(egress_core::http::HeadError::HeadTooLarge { limit: 65536 })
    );
}

/// The head limit also applies while the request line is still arriving, when the
/// request-line limit is the larger one.
#[test]
fn head_limit_applies_to_an_unfinished_request_line() {
    let l = limits(1000, 256, 4);
    let line = request_line(300);
    // Once the head has ended it is refused.
    let input = with_rest(&line, b"\r\nHost: example.com\r\n\r\n");
    assert_eq!(
        run(&input, &l),
        Outcome::Error(egress_core::http::HeadError::HeadTooLarge { limit: 256 })
    );
    // And before: more than 256 bytes have arrived with no end of head.
    assert_eq!(
        run(&line, &l),
        Outcome::Error(egress_core::http::HeadError::HeadTooLarge { limit: 256 })
    );
    assert_eq!(
        run(&line[..257], &l),
        Outcome::Error(egress_core::http::HeadError::HeadTooLarge { limit: 256 })
    );
}

#[test]
fn header_count_at_and_past_the_limit() {
    let big_enough = limits(64, 4096, 4);
    good_with(&head(100, 4), &big_enough, 1);
    let want = &["TooManyHeaders { limit: 4 }"];
    bad_with(&head(120, 5), &big_enough, want, 1);
    bad_with(&head(400, 40), &big_enough, want, 1);
    // No header fields at all, with a limit of zero.
    let zero = limits(64, 256, 0);
    good_with(b"GET http://example.com/ HTTP/1.0\r\n\r\n", &zero, 1);
    bad_with(
        b"GET http://example.com/ HTTP/1.0\r\nX: y\r\n\r\n",
        &zero,
        &["TooManyHeaders { limit: 0 }"],
        1,
    );
}

#[test]
fn default_limits_at_and_past() {
    let d = HeadLimits::default();
    let rest = b"\r\nHost: example.com\r\n\r\n";
    good_with(&with_rest(&request_line(8192), rest), &d, 61);
    bad_with(
        &with_rest(&request_line(8193), rest),
        &d,
        &["RequestLineTooLong { limit: 8192 }"],
        61,
    );
    let h = good_with(&head(65536, 2), &d, 997);
    assert_eq!(h.len(), 65536);
    bad_with(&head(65537, 2), &d, &["HeadTooLarge { limit: 65536 }"], 997);
    good_with(&head(2000, 100), &d, 13);
    bad_with(&head(2000, 101), &d, &["TooManyHeaders { limit: 100 }"], 13);
}

/// The limits are configurable upwards too: nothing smaller is hard-wired.
#[test]
fn raised_limits() {
    let l = limits(100_000, 1 << 20, 1000);
    let rest = b"\r\nHost: example.com\r\n\r\n";
    good_with(&with_rest(&request_line(50_000), rest), &l, 4999);
    good_with(&head(500_000, 2), &l, 49_999);
    let h = good_with(&head(20_000, 1000), &l, 1999);
    assert_eq!(h.headers().len(), 1000);
    bad_with(
        &head(20_000, 1001),
        &l,
        &["TooManyHeaders { limit: 1000 }"],
        1999,
    );
}
