//! Refusals: each status with its `X-Egress-Error` header, written by the proxy, and the
//! refused request reaching no upstream.

use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::support::dns::DnsServer;
use crate::support::http_upstream::{HttpUpstream, Mode};
use crate::support::proxy::{Proxy, free_port};
use crate::{
    Client, WWW, assert_bytes, assert_refusal, assert_untouched, check_untouched, config,
    echo_response, get, refused, try_refused, with_resolver,
};

/// Malformed heads and request-smuggling shapes, each aimed at an upstream listening at
/// port `p` (and hiding a request for it in the body where there is one).
fn bad_heads(p: u16) -> Vec<(&'static str, String)> {
    let start = format!("POST http://{WWW}:{p}/x HTTP/1.1\r\nHost: {WWW}:{p}\r\n");
    let hidden = format!("GET /smuggled HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n");
    vec![
        ("not HTTP", "HELLO THERE\r\n\r\n".into()),
        (
            "no version",
            format!("GET http://{WWW}:{p}/x\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        (
            "not an HTTP version",
            format!("GET http://{WWW}:{p}/x FOO/1.1\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        (
            "space in the target",
            format!("GET http://{WWW}:{p}/a b HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        ("origin form without Host", "GET /x HTTP/1.1\r\n\r\n".into()),
        ("empty Host", "GET /x HTTP/1.1\r\nHost:\r\n\r\n".into()),
        (
            "two Host headers",
            format!("GET /x HTTP/1.1\r\nHost: {WWW}:{p}\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        (
            "authority form without CONNECT",
            format!("GET {WWW}:{p} HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        (
            "userinfo in the URI",
            format!("GET http://user@{WWW}:{p}/x HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        (
            "ftp scheme",
            format!("GET ftp://{WWW}:{p}/x HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n"),
        ),
        (
            "port zero",
            format!("GET http://{WWW}:0/x HTTP/1.1\r\nHost: {WWW}:0\r\n\r\n"),
        ),
        (
            "bad host name",
            format!("GET http://www_ex%61mple!:{p}/x HTTP/1.1\r\nHost: x\r\n\r\n"),
        ),
        (
            "CL and TE",
            format!(
                "{start}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "TE and CL",
            format!(
                "{start}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "two differing CLs",
            format!(
                "{start}Content-Length: 4\r\nContent-Length: {}\r\n\r\nbody{hidden}",
                4 + hidden.len()
            ),
        ),
        (
            "a CL list that differs",
            format!("{start}Content-Length: 4, 5\r\n\r\nbody{hidden}"),
        ),
        (
            "a signed CL",
            format!("{start}Content-Length: +4\r\n\r\nbody{hidden}"),
        ),
        (
            "a negative CL",
            format!("{start}Content-Length: -1\r\n\r\n{hidden}"),
        ),
        (
            "a hex CL",
            format!("{start}Content-Length: 0x4\r\n\r\nbody{hidden}"),
        ),
        (
            "an empty CL",
            format!("{start}Content-Length:\r\n\r\n{hidden}"),
        ),
        (
            "TE gzip",
            format!("{start}Transfer-Encoding: gzip\r\n\r\n{hidden}"),
        ),
        (
            "TE chunked then gzip",
            format!("{start}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "TE chunked twice",
            format!("{start}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "TE chunked in two headers",
            format!(
                "{start}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "TE xchunked",
            format!("{start}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "TE chunked with a trailing comma",
            format!("{start}Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "TE on HTTP/1.0",
            format!(
                "POST http://{WWW}:{p}/x HTTP/1.0\r\nHost: {WWW}:{p}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "obs-fold",
            format!("{start}X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "obs-fold hiding TE",
            format!(
                "{start}X-A: 1\r\n\tTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nbody"
            ),
        ),
        (
            "bare LF everywhere",
            format!("GET http://{WWW}:{p}/x HTTP/1.1\nHost: {WWW}:{p}\n\n"),
        ),
        (
            "bare LF after a header",
            format!("{start}X-A: 1\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "bare LF ending the head",
            format!("{start}Content-Length: 0\r\n\n{hidden}"),
        ),
        (
            "bare CR in a value",
            format!("{start}X-A: 1\rTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "space before the colon",
            format!("{start}Content-Length : 4\r\n\r\nbody"),
        ),
        (
            "tab before the colon",
            format!("{start}Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "empty header name",
            format!("{start}: empty\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "header line without a colon",
            format!("{start}NoColonHere\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "NUL in a value",
            format!("{start}X-A: a\0b\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "space in a header name",
            format!("{start}Content Length: 4\r\n\r\nbody"),
        ),
    ]
}

/// Malformed heads and request-smuggling shapes are 400, and nothing of them (nor of the
/// request hidden in their body) reaches the upstream. Every case runs (against its own
/// upstream); the failures are reported together.
#[tokio::test]
async fn malformed_and_smuggling_heads_are_400_and_reach_nobody() {
    let proxy = Proxy::start(&config(&[443], "")).await;
    let mut failures = Vec::new();
    for i in 0..bad_heads(1).len() {
        let upstream = HttpUpstream::start(Mode::Length).await;
        let (what, request) = bad_heads(upstream.port()).swap_remove(i);
        if let Err(e) = try_refused(proxy.addr(), request.as_bytes(), 400).await {
            failures.push(format!("{what}: {e}"));
        }
        if let Err(e) = check_untouched(proxy.addr(), &upstream, 0).await {
            failures.push(format!("{what}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A chunked request body with broken framing is a smuggling shape too: the client gets a
/// 400 (nothing of the response has been sent yet) instead of waiting on an upstream that
/// waits for the rest of the body, and nothing past the bad framing reaches the upstream.
#[tokio::test]
async fn broken_chunked_request_bodies_are_refused() {
    let proxy = Proxy::start(&config(&[443], "")).await;
    let bodies: [(&str, &[u8]); 4] = [
        ("no CRLF after the data", b"5\r\nhelloXX\r\n0\r\n\r\n"),
        ("bare LF after the size", b"5\nhello\r\n0\r\n\r\n"),
        ("size not hex", b"5g\r\nhello\r\n0\r\n\r\n"),
        (
            "size overflowing 64 bits",
            b"10000000000000000\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    // Concurrently: a case that hangs costs the 10 s bound once, not once per case.
    let mut cases = tokio::task::JoinSet::new();
    for (what, body) in bodies {
        let proxy = proxy.addr();
        cases.spawn(async move {
            let upstream = HttpUpstream::start(Mode::Length).await;
            let p = upstream.port();
            let hidden = format!("GET /smuggled HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n");
            let request = [
                format!("POST http://{WWW}:{p}/x HTTP/1.1\r\nHost: {WWW}:{p}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
                body,
                hidden.as_bytes(),
            ]
            .concat();
            let mut failures = Vec::new();
            if let Err(e) = try_refused(proxy, &request, 400).await {
                failures.push(format!("{what}: {e}"));
            }
            let paths: Vec<String> = upstream.connections().concat().into_iter().map(|r| r.path).collect();
            if !paths.is_empty() {
                failures.push(format!("{what}: the upstream got requests {paths:?}"));
            }
            failures
        });
    }
    let failures: Vec<String> = cases.join_all().await.concat();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `https://` in absolute form is 400 (TLS goes through CONNECT) and reaches nobody.
#[tokio::test]
async fn https_absolute_form_is_400() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let p = upstream.port();
    let proxy = Proxy::start(&config(&[443, p], "")).await;
    for (i, scheme) in ["https", "HTTPS"].into_iter().enumerate() {
        let request =
            format!("GET {scheme}://{WWW}:{p}/secret HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n");
        refused(proxy.addr(), request.as_bytes(), 400, &request).await;
        assert_untouched(proxy.addr(), &upstream, i, &request).await;
    }
}

/// A request line past `max_request_line` is 414, also before its line ends, and also at
/// the default limit (8 KiB).
#[tokio::test]
async fn request_line_too_long_is_414() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let p = upstream.port();
    let small = Proxy::start(&config(&[443], "max_request_line = 128")).await;
    let default = Proxy::start(&config(&[443], "")).await;

    let long_path = format!("/{}", "a".repeat(200));
    let request = format!("GET http://{WWW}:{p}{long_path} HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n");
    refused(small.addr(), request.as_bytes(), 414, "whole request").await;
    let unfinished = format!("GET http://{WWW}:{p}{long_path}");
    refused(
        small.addr(),
        unfinished.as_bytes(),
        414,
        "line not ended yet",
    )
    .await;
    assert_untouched(small.addr(), &upstream, 0, "414").await;

    // Exactly at the limit is fine.
    let at_limit = format!("GET /{} HTTP/1.1", "b".repeat(128 - "GET / HTTP/1.1".len()));
    assert_eq!(at_limit.len(), 128);
    let mut client = Client::connect(small.addr()).await;
    let response = client
        .exchange(format!("{at_limit}\r\nHost: {WWW}:{p}\r\n\r\n").as_bytes())
        .await;
    assert_eq!(response.status, 200, "{response:?}");

    let huge = format!(
        "GET http://{WWW}:{p}/{} HTTP/1.1\r\nHost: {WWW}:{p}\r\n\r\n",
        "c".repeat(9000)
    );
    refused(default.addr(), huge.as_bytes(), 414, "default limit").await;
}

/// A head past `max_head_bytes` or with more than `max_headers` fields is 431, also at the
/// default limit (64 KiB); at the limits it is served.
#[tokio::test]
async fn headers_too_large_are_431() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let p = upstream.port();
    let small = Proxy::start(&config(
        &[443],
        "max_request_line = 512\nmax_head_bytes = 1024\nmax_headers = 5",
    ))
    .await;
    let default = Proxy::start(&config(&[443], "")).await;
    let start = format!("GET http://{WWW}:{p}/h HTTP/1.1\r\nHost: {WWW}:{p}\r\n");

    let big_value = format!("{start}X-Big: {}\r\n\r\n", "v".repeat(2000));
    refused(small.addr(), big_value.as_bytes(), 431, "one large header").await;
    let unfinished = format!("{start}X-Big: {}", "v".repeat(2000));
    refused(
        small.addr(),
        unfinished.as_bytes(),
        431,
        "head not ended yet",
    )
    .await;
    let many: String = (0..5).map(|i| format!("X-{i}: {i}\r\n")).collect();
    refused(
        small.addr(),
        format!("{start}{many}\r\n").as_bytes(),
        431,
        "six headers",
    )
    .await;
    assert_untouched(small.addr(), &upstream, 0, "431").await;

    let four: String = (0..4).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let mut client = Client::connect(small.addr()).await;
    let response = client
        .exchange(format!("{start}{four}\r\n").as_bytes())
        .await;
    assert_eq!(response.status, 200, "five headers: {response:?}");

    let huge: String = (0..100)
        .map(|i| format!("X-{i}: {}\r\n", "w".repeat(700)))
        .collect();
    refused(
        default.addr(),
        format!("{start}{huge}\r\n").as_bytes(),
        431,
        "default limit",
    )
    .await;
}

/// A name that does not exist (NXDOMAIN from a real DNS server) is 502, for plain HTTP
/// and for CONNECT.
#[tokio::test]
async fn unknown_names_are_502() {
    let dns = DnsServer::start().await;
    let resolver = format!("nameservers = [\"{}\"]\nip_family = \"ipv4\"\n", dns.addr());
    let proxy = Proxy::start(&with_resolver(&resolver, &[443], "")).await;

    refused(
        proxy.addr(),
        &get("missing.dns.test", 8080, "/"),
        502,
        "GET",
    )
    .await;
    let connect =
        b"CONNECT missing.dns.test:443 HTTP/1.1\r\nHost: missing.dns.test:443\r\n\r\nhello";
    refused(proxy.addr(), connect, 502, "CONNECT").await;
    assert!(
        dns.queries("missing.dns.test") >= 1,
        "the name was looked up"
    );
}

/// A port nobody listens on is 502, for plain HTTP and for CONNECT.
#[tokio::test]
async fn refused_connections_are_502() {
    let closed = free_port("127.0.0.1");
    let proxy = Proxy::start(&config(&[closed], "")).await;

    refused(
        proxy.addr(),
        &get("127.0.0.1", closed, "/"),
        502,
        "GET by IP",
    )
    .await;
    refused(proxy.addr(), &get(WWW, closed, "/"), 502, "GET by name").await;
    let connect = format!("CONNECT {WWW}:{closed} HTTP/1.1\r\nHost: {WWW}:{closed}\r\n\r\nhello");
    refused(proxy.addr(), connect.as_bytes(), 502, "CONNECT").await;
}

/// An upstream that accepts and closes without answering is 502.
#[tokio::test]
async fn an_upstream_closing_without_an_answer_is_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let proxy = Proxy::start(&config(&[443], "")).await;
    refused(proxy.addr(), &get(WWW, port, "/"), 502, "closed upstream").await;
}

/// A nameserver that never answers: the lookup times out, 504. Deterministic: nothing will
/// ever answer, so only the timeout (3 attempts of 200 ms) ends the wait.
#[tokio::test]
async fn dns_timeout_is_504() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let resolver = format!(
        "nameservers = [\"{}\"]\nquery_timeout = \"200ms\"\nip_family = \"ipv4\"\n",
        silent.local_addr().unwrap()
    );
    let proxy = Proxy::start(&with_resolver(&resolver, &[443], "")).await;
    refused(proxy.addr(), &get("slow.dns.test", 8080, "/"), 504, "GET").await;
    let connect = b"CONNECT slow.dns.test:443 HTTP/1.1\r\nHost: slow.dns.test:443\r\n\r\n";
    refused(proxy.addr(), connect, 504, "CONNECT").await;
}

/// A listener whose accept queue is full drops new SYNs (Linux), so a connect to it can
/// only end by the connect timeout: 504.
#[tokio::test]
async fn connect_timeout_is_504() {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue: these are never accepted.
    let mut held = Vec::new();
    for _ in 0..2 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
        {
            held.push(stream);
        }
    }
    let proxy = Proxy::start(&config(&[addr.port()], "connect_timeout = \"300ms\"")).await;
    refused(
        proxy.addr(),
        &get("127.0.0.1", addr.port(), "/"),
        504,
        "GET",
    )
    .await;
    let connect = format!(
        "CONNECT 127.0.0.1:{0} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
        addr.port()
    );
    refused(proxy.addr(), connect.as_bytes(), 504, "CONNECT").await;
    drop(listener);
}

/// With `max_connections = 1` and one connection open, the next gets 503; the open one
/// still works, and once it closes a new one is served again.
#[tokio::test]
async fn connections_over_the_limit_get_503() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let p = upstream.port();
    let proxy = Proxy::start(&config(&[443], "max_connections = 1")).await;

    let mut first = Client::connect(proxy.addr()).await;
    let response = first.exchange(&get(WWW, p, "/first")).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", WWW, p, "/first"),
        "first",
    );

    let response = refused(proxy.addr(), &get(WWW, p, "/second"), 503, "over the limit").await;
    assert_refusal(&response, 503, "over the limit");

    let response = first.exchange(&get(WWW, p, "/first-again")).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", WWW, p, "/first-again"),
        "first again",
    );
    drop(first);

    // The slot frees once the proxy sees the close; retry a bounded number of times.
    let mut served = false;
    for _ in 0..200 {
        let mut client = Client::connect(proxy.addr()).await;
        client.send_lossy(&get(WWW, p, "/third")).await;
        let response = client.response().await;
        if response.status == 200 {
            served = true;
            break;
        }
        assert_refusal(&response, 503, "while the first closes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no connection served after the first closed");
    let paths: Vec<String> = upstream
        .connections()
        .concat()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/first", "/first-again", "/third"]);
}
