//! Keep-alive: several requests on one client connection, each to its own upstream; an
//! upstream connection reused only for the same host and port; pipelined requests.

use crate::support::http_upstream::{HttpUpstream, Mode, Request, chunked, echo_line};
use crate::support::proxy::Proxy;
use crate::{Client, OTHER, WWW, assert_bytes, config, echo_response, get, length_response};

/// The paths of every request an upstream received, in order, across its connections.
fn paths(upstream: &HttpUpstream) -> Vec<String> {
    upstream
        .connections()
        .concat()
        .into_iter()
        .map(|r| r.path)
        .collect()
}

/// Panics if one upstream connection carried requests for different hosts.
#[track_caller]
fn assert_one_host_per_connection(connections: &[Vec<Request>]) {
    for (i, requests) in connections.iter().enumerate() {
        let hosts: Vec<&str> = requests
            .iter()
            .map(|r| r.host.as_deref().unwrap_or("-"))
            .collect();
        assert!(
            hosts.windows(2).all(|w| w[0] == w[1]),
            "upstream connection {i} carried requests for several hosts: {hosts:?}"
        );
    }
}

/// Requests alternating between two hosts (two upstream servers), in absolute and origin
/// form, on one client connection: each reaches its own upstream and no other.
#[tokio::test]
async fn each_request_on_a_kept_alive_connection_reaches_its_own_upstream() {
    let www = HttpUpstream::start(Mode::Length).await;
    let other = HttpUpstream::start(Mode::Length).await;
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let steps = [
        (WWW, www.port(), "/1", true),
        (OTHER, other.port(), "/2", true),
        (WWW, www.port(), "/3", false),
        (OTHER, other.port(), "/4", false),
        (OTHER, other.port(), "/5", true),
        (WWW, www.port(), "/6", true),
    ];
    for (host, port, path, absolute) in steps {
        let request = if absolute {
            get(host, port, path)
        } else {
            format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").into_bytes()
        };
        let response = client.exchange(&request).await;
        assert_bytes(&response.raw, &echo_response("GET", host, port, path), path);
    }
    assert_eq!(paths(&www), ["/1", "/3", "/6"]);
    assert_eq!(paths(&other), ["/2", "/4", "/5"]);
    for request in www.connections().concat() {
        assert_eq!(
            request.host.as_deref(),
            Some(format!("{WWW}:{}", www.port()).as_str())
        );
    }
}

/// Two names served by the same upstream server (same IP and port): a request for the
/// second name is never sent on the connection opened for the first.
#[tokio::test]
async fn two_names_on_one_upstream_server_never_share_a_connection() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    for (host, path) in [
        (WWW, "/a"),
        (OTHER, "/b"),
        (WWW, "/c"),
        ("127.0.0.1", "/d"),
        (WWW, "/e"),
    ] {
        let response = client.exchange(&get(host, port, path)).await;
        assert_bytes(&response.raw, &echo_response("GET", host, port, path), path);
    }
    let connections = upstream.connections();
    assert_one_host_per_connection(&connections);
    assert_eq!(connections.concat().len(), 5);
    // Three names, so at least three connections (more if the proxy keeps only one).
    assert!(connections.len() >= 3, "{connections:?}");
}

/// Requests for the same host and port, in both forms and with bodies of both framings,
/// share one upstream connection, which stays in step.
#[tokio::test]
async fn requests_to_one_host_reuse_one_upstream_connection() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;
    let authority = format!("{WWW}:{port}");

    let mut client = Client::connect(proxy.addr()).await;
    let requests = [
        get(WWW, port, "/1"),
        format!("GET /2 HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes(),
        format!("POST http://{authority}/3 HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 5\r\n\r\nhello").into_bytes(),
        [
            format!("POST /4 HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
            &chunked(b"chunked body", 5),
        ]
        .concat(),
        get(WWW, port, "/5"),
    ];
    let bodies = [0, 0, 5, 12, 0];
    for (i, request) in requests.iter().enumerate() {
        let response = client.exchange(request).await;
        let method = if bodies[i] > 0 { "POST" } else { "GET" };
        let line = echo_line(method, &format!("/{}", i + 1), &authority, bodies[i]);
        assert_bytes(
            &response.raw,
            &length_response(line.as_bytes()),
            &format!("request {}", i + 1),
        );
    }
    let connections = upstream.connections();
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(paths(&upstream), ["/1", "/2", "/3", "/4", "/5"]);
    assert_eq!(connections[0][2].body, b"hello");
    assert_eq!(connections[0][3].body, b"chunked body");
}

/// Requests pipelined in one write (a body that looks like a request included) are each
/// routed on their own: the body stays a body, the next request goes to its own host.
#[tokio::test]
async fn pipelined_requests_are_each_routed() {
    let www = HttpUpstream::start(Mode::Length).await;
    let other = HttpUpstream::start(Mode::Length).await;
    let proxy = Proxy::start(&config(&[443], "")).await;
    let (w, o) = (www.port(), other.port());

    let inner = format!("GET /smuggled HTTP/1.1\r\nHost: {OTHER}:{o}\r\n\r\n");
    let pipeline = [
        format!(
            "POST http://{WWW}:{w}/1 HTTP/1.1\r\nHost: {WWW}:{w}\r\nContent-Length: {}\r\n\r\n{inner}",
            inner.len()
        )
        .into_bytes(),
        get(OTHER, o, "/2"),
        [
            format!("POST http://{WWW}:{w}/3 HTTP/1.1\r\nHost: {WWW}:{w}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
            &chunked(inner.as_bytes(), 10),
        ]
        .concat(),
        get(OTHER, o, "/4"),
    ]
    .concat();
    let mut client = Client::connect(proxy.addr()).await;
    client.send(&pipeline).await;
    let want = [
        echo_line("POST", "/1", &format!("{WWW}:{w}"), inner.len()),
        echo_line("GET", "/2", &format!("{OTHER}:{o}"), 0),
        echo_line("POST", "/3", &format!("{WWW}:{w}"), inner.len()),
        echo_line("GET", "/4", &format!("{OTHER}:{o}"), 0),
    ];
    for line in want {
        let response = client.response().await;
        assert_bytes(&response.raw, &length_response(line.as_bytes()), &line);
    }
    assert_eq!(paths(&www), ["/1", "/3"]);
    assert_eq!(paths(&other), ["/2", "/4"]);
    for request in www.connections().concat() {
        assert_eq!(request.body, inner.as_bytes());
    }
}

/// A refusal after good requests on a kept-alive connection answers the bad one and
/// closes; the upstream saw only the good ones.
#[tokio::test]
async fn a_bad_request_after_good_ones_is_refused_and_closes() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let response = client.exchange(&get(WWW, port, "/good")).await;
    assert_eq!(response.status, 200);
    let bad = format!(
        "POST http://{WWW}:{port}/bad HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let response = client.exchange(bad.as_bytes()).await;
    crate::assert_refusal(&response, 400, "CL and TE after a good request");
    assert_bytes(
        &client.read_to_close().await,
        b"",
        "closed after the refusal",
    );
    assert_eq!(paths(&upstream), ["/good"]);
}

/// A CONNECT after plain requests on the same client connection tunnels to its own target.
#[tokio::test]
async fn connect_after_plain_requests_tunnels_to_its_own_target() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let www = HttpUpstream::start(Mode::Length).await;
    let tunnel = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let t = tunnel.local_addr().unwrap().port();
    let proxy = Proxy::start(&config(&[t], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let response = client.exchange(&get(WWW, www.port(), "/before")).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", WWW, www.port(), "/before"),
        "before",
    );
    client
        .send(
            format!("CONNECT {OTHER}:{t} HTTP/1.1\r\nHost: {OTHER}:{t}\r\n\r\ntunnelled")
                .as_bytes(),
        )
        .await;
    let (mut upstream, _) = tokio::time::timeout(crate::WAIT, tunnel.accept())
        .await
        .unwrap()
        .unwrap();
    let head = client.head().await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head:?}");
    let mut got = [0u8; 9];
    tokio::time::timeout(crate::WAIT, upstream.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"tunnelled");
    upstream.write_all(b"back").await.unwrap();
    upstream.shutdown().await.unwrap();
    assert_bytes(&client.read_to_close().await, b"back", "through the tunnel");
    assert_eq!(paths(&www), ["/before"]);
}

/// An upstream that answers `Connection: close` is not reused: the next request for the
/// same host opens a new upstream connection, while the client's connection stays open.
#[tokio::test]
async fn an_upstream_saying_close_is_not_reused() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    let first = format!(
        "GET http://{WWW}:{port}/1 HTTP/1.1\r\nHost: {WWW}:{port}\r\nX-Reply-Header: Connection: close\r\n\r\n"
    );
    let response = client.exchange(first.as_bytes()).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("connection"),
        None,
        "the upstream's close is hop-by-hop"
    );
    let response = client.exchange(&get(WWW, port, "/2")).await;
    assert_bytes(
        &response.raw,
        &echo_response("GET", WWW, port, "/2"),
        "second",
    );
    let connections: Vec<Vec<String>> = upstream
        .connections()
        .into_iter()
        .map(|c| c.into_iter().map(|r| r.path).collect())
        .collect();
    assert_eq!(connections, [["/1"], ["/2"]]);
}
