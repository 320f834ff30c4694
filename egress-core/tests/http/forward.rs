//! Plain HTTP forwarding: absolute and origin form, exact upstream heads, bodies both ways in
//! every framing, HEAD, `100-continue`, hop-by-hop headers, URI against Host.

use crate::support::http_upstream::{
    HttpUpstream, Mode, RESPONSE_CHUNK, chunked, echo_line, pattern,
};
use crate::support::proxy::Proxy;
use crate::{
    Client, OTHER, WWW, assert_bytes, config, echo_response, get, length_response, upstream_get,
};

/// One MiB: large enough that bodies cross many reads and writes of the proxy.
const MIB: usize = 1 << 20;

#[tokio::test]
async fn absolute_form_get_reaches_the_upstream_in_origin_form() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let request = format!(
        "GET http://{WWW}:{port}/a/b?c=d&e HTTP/1.1\r\nHost: {WWW}:{port}\r\nAccept: */*\r\nUser-Agent: test\r\n\r\n"
    );
    let response = client.exchange(request.as_bytes()).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", WWW, port, "/a/b?c=d&e"),
        "response",
    );
    assert_eq!(
        upstream.heads(),
        [[format!(
            "GET /a/b?c=d&e HTTP/1.1\r\nHost: {WWW}:{port}\r\nAccept: */*\r\nUser-Agent: test\r\n\r\n"
        )]]
    );
}

#[tokio::test]
async fn absolute_form_without_a_path_asks_for_slash() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let request = format!("GET http://127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let response = client.exchange(request.as_bytes()).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", "127.0.0.1", port, "/"),
        "response",
    );
    assert_eq!(upstream.heads(), [[upstream_get("127.0.0.1", port, "/")]]);
}

#[tokio::test]
async fn origin_form_get_goes_where_host_says() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let request = format!(
        "GET /index.html?q=1 HTTP/1.1\r\nHost: {OTHER}:{port}\r\nAccept: text/html\r\n\r\n"
    );
    let response = client.exchange(request.as_bytes()).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", OTHER, port, "/index.html?q=1"),
        "response",
    );
    assert_eq!(
        upstream.heads(),
        [[format!(
            "GET /index.html?q=1 HTTP/1.1\r\nHost: {OTHER}:{port}\r\nAccept: text/html\r\n\r\n"
        )]]
    );
}

/// A 1 MiB `Content-Length` request body, written in pieces, arrives whole, in both forms.
#[tokio::test]
async fn content_length_request_bodies_stream_to_the_upstream() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;
    let body = pattern(MIB);

    let mut client = Client::connect(proxy.addr()).await;
    for (i, target) in [format!("http://{WWW}:{port}/upload"), "/upload".to_owned()]
        .iter()
        .enumerate()
    {
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {MIB}\r\n\r\n"
        );
        client.send(head.as_bytes()).await;
        for piece in body.chunks(64 * 1024) {
            client.send(piece).await;
        }
        let response = client.response().await;
        let line = echo_line("POST", "/upload", &format!("{WWW}:{port}"), MIB);
        assert_bytes(&response.raw, &length_response(line.as_bytes()), target);

        let connections = upstream.connections();
        let request = &connections[0][i];
        assert_eq!(
            request.head,
            format!(
                "POST /upload HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {MIB}\r\n\r\n"
            )
        );
        assert!(request.body == body, "{target}: the body differs");
    }
}

/// A 1 MiB chunked request body, with odd chunk sizes, an extension and a trailer, is
/// passed on as chunked and decodes to the same bytes.
#[tokio::test]
async fn chunked_request_bodies_stream_to_the_upstream() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;
    let body = pattern(MIB);
    let mut encoded = chunked(&body, 7777);
    // An extension on the first size line, and a trailer before the final CRLF.
    let first_line_end = encoded.windows(2).position(|w| w == b"\r\n").unwrap();
    encoded.splice(
        first_line_end..first_line_end,
        b";name=\"v\"".iter().copied(),
    );
    encoded.truncate(encoded.len() - 2);
    encoded.extend_from_slice(b"X-Checksum: 1234\r\n\r\n");

    let mut client = Client::connect(proxy.addr()).await;
    let head = format!(
        "POST http://{WWW}:{port}/chunks HTTP/1.1\r\nHost: {WWW}:{port}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    client.send(head.as_bytes()).await;
    for piece in encoded.chunks(10_000) {
        client.send(piece).await;
    }
    let response = client.response().await;
    let line = echo_line("POST", "/chunks", &format!("{WWW}:{port}"), MIB);
    assert_bytes(&response.raw, &length_response(line.as_bytes()), "response");

    let connections = upstream.connections();
    let request = &connections[0][0];
    assert_eq!(
        request.head,
        format!(
            "POST /chunks HTTP/1.1\r\nHost: {WWW}:{port}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
    );
    assert!(request.body == body, "the body differs");
    assert_eq!(request.trailers, "X-Checksum: 1234\r\n");
}

/// Small and 1 MiB responses with `Content-Length`, chunked and close-delimited reach the
/// client byte for byte (chunked framing passed through); the first two keep the client
/// connection, the last closes it after the body.
#[tokio::test]
async fn responses_stream_to_the_client_in_every_framing() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    for mode in [Mode::Length, Mode::Chunked, Mode::Close] {
        upstream.set_mode(mode);
        for size in [None, Some(MIB)] {
            let what = format!("{mode:?} {size:?}");
            let mut client = Client::connect(proxy.addr()).await;
            let size_header = size
                .map(|n| format!("X-Reply-Bytes: {n}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "GET http://{WWW}:{port}/r HTTP/1.1\r\nHost: {WWW}:{port}\r\n{size_header}\r\n"
            );
            let response = client.exchange(request.as_bytes()).await;
            let body = match size {
                Some(n) => pattern(n),
                None => echo_line("GET", "/r", &format!("{WWW}:{port}"), 0).into_bytes(),
            };
            let want = match mode {
                Mode::Chunked => [
                    &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                    &chunked(&body, RESPONSE_CHUNK),
                ]
                .concat(),
                Mode::Close => {
                    [&b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"[..], &body].concat()
                }
                _ => length_response(&body),
            };
            assert_bytes(&response.raw, &want, &what);

            if mode == Mode::Close {
                assert_bytes(
                    &client.read_to_close().await,
                    b"",
                    &format!("{what}: closed after"),
                );
            } else {
                // The client connection is still good for another request.
                let again = client.exchange(&get(WWW, port, "/again")).await;
                assert_eq!(again.status, 200, "{what}: {again:?}");
                let line = echo_line("GET", "/again", &format!("{WWW}:{port}"), 0);
                assert_bytes(&again.body, line.as_bytes(), &format!("{what}: again"));
            }
        }
    }
}

/// HEAD gets the head the upstream sends (its `Content-Length` or chunked header) and no
/// body; the next request on the connection is answered normally.
#[tokio::test]
async fn head_responses_have_no_body() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    for (mode, framing) in [
        (
            Mode::Length,
            format!(
                "Content-Length: {}",
                echo_line("HEAD", "/h", &format!("{WWW}:{port}"), 0).len()
            ),
        ),
        (Mode::Chunked, "Transfer-Encoding: chunked".to_owned()),
    ] {
        upstream.set_mode(mode);
        let mut client = Client::connect(proxy.addr()).await;
        let request = format!("HEAD http://{WWW}:{port}/h HTTP/1.1\r\nHost: {WWW}:{port}\r\n\r\n");
        client.send(request.as_bytes()).await;
        let response = client.head_response().await;
        assert_bytes(
            &response.raw,
            format!("HTTP/1.1 200 OK\r\n{framing}\r\n\r\n").as_bytes(),
            &format!("{mode:?}"),
        );
        upstream.set_mode(Mode::Length);
        let next = client.exchange(&get(WWW, port, "/next")).await;
        assert_bytes(
            &next.raw,
            &echo_response("GET", WWW, port, "/next"),
            &format!("{mode:?}: next"),
        );
    }
}

/// curl's way: the head with `Expect: 100-continue`, then wait for `100 Continue` before
/// sending the body. The expectation reaches the upstream, its 100 reaches the client, and
/// the body follows.
#[tokio::test]
async fn expect_100_continue_lets_the_client_wait_for_the_upstream() {
    let upstream = HttpUpstream::start(Mode::Continue).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;
    let big = pattern(MIB);

    let mut client = Client::connect(proxy.addr()).await;
    for (i, (framing, body)) in [
        ("Content-Length: 11".to_owned(), b"hello world".to_vec()),
        (format!("Content-Length: {MIB}"), big.clone()),
        ("Transfer-Encoding: chunked".to_owned(), big.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let head = format!(
            "PUT http://{WWW}:{port}/put HTTP/1.1\r\nHost: {WWW}:{port}\r\n{framing}\r\nExpect: 100-continue\r\n\r\n"
        );
        client.send(head.as_bytes()).await;
        assert_eq!(
            client.head().await,
            "HTTP/1.1 100 Continue\r\n\r\n",
            "{framing}"
        );
        assert!(client.wire.buf.is_empty());
        if framing.starts_with("Transfer") {
            client.send(&chunked(&body, 30_000)).await;
        } else {
            client.send(&body).await;
        }
        let response = client.response().await;
        let line = echo_line("PUT", "/put", &format!("{WWW}:{port}"), body.len());
        assert_bytes(&response.raw, &length_response(line.as_bytes()), &framing);

        let connections = upstream.connections();
        let request = &connections[0][i];
        assert_eq!(
            request.head,
            format!(
                "PUT /put HTTP/1.1\r\nHost: {WWW}:{port}\r\n{framing}\r\nExpect: 100-continue\r\n\r\n"
            )
        );
        assert!(request.body == body, "{framing}: body differs");
    }
}

/// `Connection` and every header it names, `Proxy-Connection`, `Proxy-Authorization`,
/// `Keep-Alive`, `TE`, `Trailer` and a non-WebSocket `Upgrade` never reach the upstream;
/// end-to-end headers do, in order, after the rewritten Host. Hop-by-hop headers of the
/// response do not reach the client either.
#[tokio::test]
async fn hop_by_hop_headers_are_removed() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    for target in [format!("http://{WWW}:{port}/hop"), "/hop".to_owned()] {
        upstream.set_mode(Mode::Length);
        let before = upstream.connections().len();
        let mut client = Client::connect(proxy.addr()).await;
        let request = format!(
            "GET {target} HTTP/1.1\r\n\
             Host: {WWW}:{port}\r\n\
             Connection: keep-alive, X-Hop, Upgrade\r\n\
             X-Hop: secret\r\n\
             Accept: */*\r\n\
             Proxy-Connection: keep-alive\r\n\
             Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\
             Keep-Alive: timeout=5\r\n\
             TE: trailers\r\n\
             Trailer: X-Checksum\r\n\
             Upgrade: h2c\r\n\
             connection: X-Other-Hop\r\n\
             X-Other-Hop: 1\r\n\
             X-End-To-End: kept\r\n\
             X-Reply-Header: Keep-Alive: timeout=9\r\n\
             X-Reply-Header: Connection: X-Upstream-Hop\r\n\
             X-Reply-Header: X-Upstream-Hop: 1\r\n\
             X-Reply-Header: Proxy-Connection: keep-alive\r\n\
             X-Reply-Header: X-Kept: yes\r\n\
             \r\n"
        );
        let response = client.exchange(request.as_bytes()).await;
        let body = echo_line("GET", "/hop", &format!("{WWW}:{port}"), 0);
        assert_bytes(
            &response.raw,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Kept: yes\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
            &format!("{target}: response"),
        );
        let heads = upstream.heads();
        assert_eq!(
            heads[before],
            [format!(
                "GET /hop HTTP/1.1\r\n\
                 Host: {WWW}:{port}\r\n\
                 Accept: */*\r\n\
                 X-End-To-End: kept\r\n\
                 X-Reply-Header: Keep-Alive: timeout=9\r\n\
                 X-Reply-Header: Connection: X-Upstream-Hop\r\n\
                 X-Reply-Header: X-Upstream-Hop: 1\r\n\
                 X-Reply-Header: Proxy-Connection: keep-alive\r\n\
                 X-Reply-Header: X-Kept: yes\r\n\
                 \r\n"
            )],
            "{target}"
        );
    }
}

/// When the absolute URI and Host disagree, the URI decides where the request goes and
/// the upstream's Host says so; the host named in Host sees nothing.
#[tokio::test]
async fn the_absolute_uri_wins_over_host() {
    let right = HttpUpstream::start(Mode::Length).await;
    let wrong = HttpUpstream::start(Mode::Length).await;
    let proxy = Proxy::start(&config(&[443], "")).await;

    let cases = [
        (WWW, OTHER),
        ("127.0.0.1", "127.0.0.1"),
        (OTHER, "evil.invalid"),
    ];
    let mut client = Client::connect(proxy.addr()).await;
    for (i, (uri_host, host_header)) in cases.into_iter().enumerate() {
        let request = format!(
            "GET http://{uri_host}:{}/u{i} HTTP/1.1\r\nHost: {host_header}:{}\r\n\r\n",
            right.port(),
            wrong.port()
        );
        let response = client.exchange(request.as_bytes()).await;
        assert_bytes(
            &response.raw,
            &echo_response("GET", uri_host, right.port(), &format!("/u{i}")),
            &request,
        );
        let requests: Vec<String> = right
            .connections()
            .concat()
            .into_iter()
            .map(|r| r.head)
            .collect();
        assert_eq!(
            requests.last(),
            Some(&upstream_get(uri_host, right.port(), &format!("/u{i}"))),
            "{request}"
        );
    }
    crate::assert_untouched(proxy.addr(), &wrong, 0, "the Host header's upstream").await;
}

/// An HTTP/1.0 request goes upstream as HTTP/1.0 and the client connection closes after
/// the response.
#[tokio::test]
async fn http_1_0_requests_are_forwarded_and_closed() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let request = format!("GET http://{WWW}:{port}/old HTTP/1.0\r\nHost: {WWW}:{port}\r\n\r\n");
    let response = client.exchange(request.as_bytes()).await;
    let body = echo_line("GET", "/old", &format!("{WWW}:{port}"), 0);
    assert_bytes(
        &response.raw,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
        "response",
    );
    assert_bytes(&client.read_to_close().await, b"", "closed after");
    assert_eq!(
        upstream.heads(),
        [[format!("GET /old HTTP/1.0\r\nHost: {WWW}:{port}\r\n\r\n")]]
    );
}

/// An upstream that dies half-way through a `Content-Length` body: the client gets the
/// head and the bytes the upstream sent, then a close, and nothing the upstream did not
/// send (no error response spliced into the body).
#[tokio::test]
async fn an_upstream_dying_mid_body_closes_the_client_without_extra_bytes() {
    let upstream = HttpUpstream::start(Mode::Truncated).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let request = format!(
        "GET http://{WWW}:{port}/cut HTTP/1.1\r\nHost: {WWW}:{port}\r\nX-Reply-Bytes: 1000\r\n\r\n"
    );
    client.send(request.as_bytes()).await;
    let head = client.head().await;
    assert_eq!(head, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    let rest = client.read_to_close().await;
    assert_bytes(&rest, &pattern(500), "what followed the head");
}

/// An upstream whose response carries both `Transfer-Encoding: chunked` and
/// `Content-Length`, or two different lengths, never passes that ambiguity on: the client
/// gets either a 502 or a response with one framing whose body is the upstream's.
#[tokio::test]
async fn ambiguous_response_framing_never_reaches_the_client() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;
    let body = echo_line("GET", "/amb", &format!("{WWW}:{port}"), 0);

    let mut failures = Vec::new();
    for (mode, extra) in [
        (Mode::Chunked, "Content-Length: 5".to_owned()),
        (Mode::Length, format!("Content-Length: {}", body.len() + 5)),
    ] {
        upstream.set_mode(mode);
        let mut client = Client::connect(proxy.addr()).await;
        let request = format!(
            "GET http://{WWW}:{port}/amb HTTP/1.1\r\nHost: {WWW}:{port}\r\nX-Reply-Header: {extra}\r\n\r\n"
        );
        client.send(request.as_bytes()).await;
        let head = client.head().await.to_ascii_lowercase();
        if head.starts_with("http/1.1 502 ") {
            continue;
        }
        let lengths = head.matches("\r\ncontent-length:").count();
        let chunked = head.contains("\r\ntransfer-encoding:");
        if lengths + usize::from(chunked) != 1 {
            failures.push(format!(
                "{mode:?} with {extra}: the client got an ambiguous head: {head:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A client that sends part of a `Content-Length` body and leaves: the exchange cannot
/// complete, so the proxy closes the upstream connection instead of holding it until the
/// idle timeout.
#[tokio::test]
async fn a_client_leaving_mid_body_releases_the_upstream() {
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let head = format!(
        "POST http://{WWW}:{port}/half HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Length: 100\r\n\r\n"
    );
    client.send(&[head.as_bytes(), &[b'x'; 50]].concat()).await;
    let (mut upstream, _) = tokio::time::timeout(crate::WAIT, listener.accept())
        .await
        .expect("no upstream connection")
        .unwrap();
    drop(client);

    let mut got = Vec::new();
    let ended = tokio::time::timeout(crate::WAIT, upstream.read_to_end(&mut got)).await;
    assert!(
        ended.is_ok(),
        "the upstream connection was still open {} s after the client left",
        crate::WAIT.as_secs()
    );
    let want_head =
        format!("POST /half HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Length: 100\r\n\r\n");
    assert_bytes(
        &got,
        &[want_head.as_bytes(), &[b'x'; 50]].concat(),
        "what the upstream got",
    );
}

/// A target on IPv6 loopback, by literal in absolute form and in Host: the upstream's Host
/// keeps the brackets.
#[tokio::test]
async fn ipv6_literal_targets_keep_their_brackets() {
    let upstream = HttpUpstream::bind("[::1]:0", Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    for request in [
        format!("GET http://[::1]:{port}/six HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n"),
        format!("GET /six HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n"),
    ] {
        let response = client.exchange(request.as_bytes()).await;
        assert_bytes(
            &response.raw,
            &echo_response("GET", "[::1]", port, "/six"),
            &request,
        );
    }
    assert_eq!(
        upstream.heads().concat(),
        vec![upstream_get("[::1]", port, "/six"); 2]
    );
}

/// Port 80 is the default: a URI or Host without a port goes to 80, and the upstream's
/// Host then carries no port. Needs to bind port 80 (root); skipped otherwise.
#[tokio::test]
async fn the_default_port_is_80_and_left_out_of_host() {
    const IP: &str = "127.0.80.1";
    if let Err(e) = std::net::TcpListener::bind((IP, 80)) {
        eprintln!("skipped: cannot bind {IP}:80: {e}");
        return;
    }
    let upstream = HttpUpstream::bind(&format!("{IP}:80"), Mode::Length).await;
    let resolver =
        format!("nameservers = [\"127.0.0.1:9\"]\n\n[resolver.hosts]\n\"{WWW}\" = [\"{IP}\"]\n");
    let proxy = Proxy::start(&crate::with_resolver(&resolver, &[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let requests = [
        format!("GET http://{WWW}/p1 HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
        format!("GET /p2 HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
        format!("GET http://{WWW}:80/p3 HTTP/1.1\r\nHost: {WWW}:80\r\n\r\n"),
        // The URI (no port: 80) wins over a Host naming another port.
        format!("GET http://{WWW}/p4 HTTP/1.1\r\nHost: {WWW}:8080\r\n\r\n"),
    ];
    for (i, request) in requests.iter().enumerate() {
        let path = format!("/p{}", i + 1);
        let response = client.exchange(request.as_bytes()).await;
        let line = echo_line("GET", &path, WWW, 0);
        assert_bytes(&response.raw, &length_response(line.as_bytes()), request);
    }
    let want: Vec<String> = (1..=4)
        .map(|i| format!("GET /p{i} HTTP/1.1\r\nHost: {WWW}\r\n\r\n"))
        .collect();
    assert_eq!(upstream.heads().concat(), want);
}
