use super::*;

fn parse(raw: &[u8]) -> Result<Parse, HeadError> {
    parse_request_head(raw, &HeadLimits::default())
}

fn head(raw: &[u8]) -> RequestHead {
    match parse(raw) {
        Ok(Parse::Complete(head)) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn error(raw: &[u8]) -> HeadError {
    match parse(raw) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

#[test]
fn connect_reads_its_authority() {
    let h = head(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: ignored.example\r\n\r\nTLS...");
    assert!(h.is_connect());
    assert_eq!((h.host().to_string(), h.port()), ("::1".to_owned(), 8443));
    assert_eq!(h.len(), 54);
    assert_eq!(h.body(), BodyFraming::None);
}

#[test]
fn origin_form_goes_to_the_host_header() {
    let h = head(b"POST /upload HTTP/1.1\r\nHost: www.Example.com\r\nContent-Length: 5\r\nProxy-Connection: keep-alive\r\n\r\nhello");
    assert_eq!(
        (h.host().to_string(), h.port()),
        ("www.example.com".to_owned(), 80)
    );
    assert_eq!(h.body(), BodyFraming::Length(5));
    assert_eq!(
        h.upstream_head(),
        b"POST /upload HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5\r\n\r\n"
    );
}

#[test]
fn connection_named_headers_are_dropped_and_websocket_keeps_upgrade() {
    let h = head(b"GET /ws HTTP/1.1\r\nHost: a.example:8080\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\nTE: trailers\r\n\r\n");
    assert!(h.is_websocket_upgrade());
    assert_eq!(
        h.upstream_head(),
        b"GET /ws HTTP/1.1\r\nHost: a.example:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    );
}

#[test]
fn smuggling_shapes_are_refused() {
    let cases: &[(&[u8], HeadError)] = &[
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::LengthAndChunked),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HeadError::BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HeadError::BadTransferEncoding),
        (b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::BadTransferEncoding),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", HeadError::ObsFold),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", HeadError::BareLineEnding),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HeadError::SpaceBeforeColon),
        (b"GET / HTTP/1.1\r\n: a\r\n\r\n", HeadError::EmptyHeaderName),
        (b"CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", HeadError::ConnectWithBody),
        (b"GET https://a.example/ HTTP/1.1\r\n\r\n", HeadError::HttpsAbsoluteForm),
        (b"GET / HTTP/1.1\r\n\r\n", HeadError::MissingHost),
        (b"CONNECT a.example HTTP/1.1\r\n\r\n", HeadError::InvalidPort),
    ];
    for (raw, want) in cases {
        assert_eq!(&error(raw), want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn limits_answer_before_the_head_ends() {
    let limits = HeadLimits {
        max_request_line: 16,
        max_head_bytes: 64,
        max_headers: 2,
    };
    let long_line = b"GET /0123456789abcdef";
    assert_eq!(
        parse_request_head(long_line, &limits).unwrap_err(),
        HeadError::RequestLineTooLong { limit: 16 }
    );
    let big = [&b"GET / HTTP/1.1\r\nX: "[..], &[b'a'; 60]].concat();
    assert_eq!(
        parse_request_head(&big, &limits).unwrap_err(),
        HeadError::HeadTooLarge { limit: 64 }
    );
    let many = b"GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 1\r\n\r\n";
    assert_eq!(
        parse_request_head(many, &limits).unwrap_err(),
        HeadError::TooManyHeaders { limit: 2 }
    );
}

#[test]
fn non_canonical_numeric_hosts_are_invalid() {
    for host in ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"] {
        let raw = format!("CONNECT {host}:443 HTTP/1.1\r\n\r\n");
        assert!(
            matches!(error(raw.as_bytes()), HeadError::InvalidHost(_)),
            "{host}"
        );
    }
}
