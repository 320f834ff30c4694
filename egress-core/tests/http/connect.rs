//! CONNECT: tunnels to rustls upstreams, the bytes after the head, refusals.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::support::hello;
use crate::support::http_upstream::{HttpUpstream, Mode, Wire, pattern};
use crate::support::proxy::Proxy;
use crate::support::tls::{Pki, tls_echo_upstream};
use crate::{Bytes, Client, WAIT, WWW, assert_bytes, assert_untouched, config, refused};

fn connect_head(authority: &str) -> Vec<u8> {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

/// Reads the proxy's answer to a CONNECT and checks it is a bare `200` head.
async fn expect_established(client: &mut Client) {
    let head = client.head().await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head:?}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length")
            && !head.to_ascii_lowercase().contains("transfer-encoding"),
        "a 200 to CONNECT has no body framing: {head:?}"
    );
}

#[tokio::test]
async fn rustls_client_tunnels_to_a_rustls_upstream() {
    let pki = Pki::new(&[WWW]);
    let upstream = tls_echo_upstream(&pki, "127.0.0.1:0").await;
    let proxy = Proxy::start(&config(&[upstream.port()], "")).await;

    let mut client = Client::connect(proxy.addr()).await;
    client
        .send(&connect_head(&format!("{WWW}:{}", upstream.port())))
        .await;
    expect_established(&mut client).await;
    assert!(client.wire.buf.is_empty(), "bytes after the 200 head");

    let name = ServerName::try_from(WWW.to_string()).unwrap();
    let mut tls = timeout(WAIT, pki.connector().connect(name, client.wire.stream))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"ping\n").await.unwrap();
    let mut reply = String::new();
    timeout(WAIT, tls.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, format!("hello ping from {WWW}\n"));
}

/// A client that sends its ClientHello in the same write as the CONNECT head (as some do,
/// to save a round trip) still completes the handshake: rustls is driven by hand so that
/// the first flight goes out with the head.
#[tokio::test]
async fn clienthello_in_the_connect_write_completes_a_rustls_handshake() {
    let pki = Pki::new(&[WWW]);
    let upstream = tls_echo_upstream(&pki, "127.0.0.1:0").await;
    let proxy = Proxy::start(&config(&[upstream.port()], "")).await;

    let config = Arc::clone(pki.connector().config());
    let name = ServerName::try_from(WWW.to_string()).unwrap();
    let mut tls = rustls::ClientConnection::new(config, name).unwrap();
    let mut first = connect_head(&format!("{WWW}:{}", upstream.port()));
    tls.write_tls(&mut first).unwrap();
    // Sent once the handshake is done.
    tls.writer().write_all(b"same write\n").unwrap();

    let mut client = Client::connect(proxy.addr()).await;
    client.send(&first).await;
    expect_established(&mut client).await;

    let Client {
        wire: Wire { mut stream, buf },
    } = client;
    let mut incoming = buf;
    let mut reply = Vec::new();
    loop {
        while tls.wants_write() {
            let mut out = Vec::new();
            tls.write_tls(&mut out).unwrap();
            stream.write_all(&out).await.unwrap();
        }
        match tls.reader().read_to_end(&mut reply) {
            Ok(_) => break, // close_notify: the upstream is done
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("TLS read: {e}"),
        }
        if incoming.is_empty() {
            let mut chunk = [0u8; 16 * 1024];
            let n = timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("handshake stalled")
                .unwrap();
            assert!(n > 0, "tunnel closed before close_notify");
            incoming.extend_from_slice(&chunk[..n]);
        }
        let mut rest = &incoming[..];
        while !rest.is_empty() {
            tls.read_tls(&mut rest).unwrap();
            tls.process_new_packets().unwrap();
        }
        incoming.clear();
    }
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        format!("hello same write from {WWW}\n")
    );
}

/// A plain TCP upstream that records what one connection sends.
struct Recorder {
    listener: TcpListener,
}

impl Recorder {
    async fn bind(addr: &str) -> Recorder {
        Recorder {
            listener: TcpListener::bind(addr).await.unwrap(),
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    async fn accept(&self) -> TcpStream {
        timeout(WAIT, self.listener.accept())
            .await
            .expect("no upstream connection")
            .unwrap()
            .0
    }
}

/// Reads exactly `n` bytes.
async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    timeout(WAIT, stream.read_exact(&mut got))
        .await
        .expect("bytes did not arrive")
        .unwrap();
    got
}

/// Reads until EOF.
async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .expect("no EOF")
        .unwrap();
    got
}

/// What the client sends after the CONNECT head, in the head's own write, arrives upstream
/// exactly once and unchanged, followed by what it sends later; the upstream's bytes come
/// back after the `200` head and nothing else. Both an IPv4 and an `[IPv6]` authority, and a
/// prefix small (a ClientHello) and larger than one read of the proxy.
#[tokio::test]
async fn bytes_after_the_connect_head_reach_the_upstream_once_unchanged() {
    let big = [hello::CURL, &pattern(100_000)].concat();
    for (bind, authority_host) in [("127.0.0.1:0", "127.0.0.1"), ("[::1]:0", "[::1]")] {
        let recorder = Recorder::bind(bind).await;
        let proxy = Proxy::start(&config(&[recorder.port()], "")).await;
        for prefix in [hello::CURL, &big[..]] {
            let what = format!("{authority_host}, {} bytes", prefix.len());
            let authority = format!("{authority_host}:{}", recorder.port());
            let mut client = Client::connect(proxy.addr()).await;
            client
                .send(&[&connect_head(&authority)[..], prefix].concat())
                .await;

            let mut upstream = recorder.accept().await;
            let got = read_n(&mut upstream, prefix.len()).await;
            assert_bytes(&got, prefix, &format!("{what}: prefix"));
            expect_established(&mut client).await;
            // The prefix must not be written back to the client either.
            assert!(
                client.wire.buf.is_empty(),
                "{what}: {:?}",
                Bytes(client.wire.buf.clone())
            );

            client.send(b"later bytes").await;
            client.wire.stream.shutdown().await.unwrap();
            assert_bytes(
                &read_all(&mut upstream).await,
                b"later bytes",
                &format!("{what}: after the prefix"),
            );

            upstream.write_all(b"from upstream").await.unwrap();
            upstream.shutdown().await.unwrap();
            assert_bytes(
                &client.read_to_close().await,
                b"from upstream",
                &format!("{what}: downstream"),
            );
        }
    }
}

/// A CONNECT to a port not in `connect_ports` is refused with 403, and neither the CONNECT
/// nor the bytes sent with it reach the upstream listening there (by IP or by name).
#[tokio::test]
async fn connect_to_a_port_not_allowed_is_403_and_reaches_nobody() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let proxy = Proxy::start(&config(&[443], "")).await;
    let smuggled = format!(
        "GET /smuggled HTTP/1.1\r\nHost: {WWW}:{}\r\n\r\n",
        upstream.port()
    );
    for (i, host) in ["127.0.0.1", WWW].into_iter().enumerate() {
        let what = format!("CONNECT {host}:{}", upstream.port());
        let request = [
            connect_head(&format!("{host}:{}", upstream.port())),
            smuggled.clone().into_bytes(),
        ]
        .concat();
        refused(proxy.addr(), &request, 403, &what).await;
        assert_untouched(proxy.addr(), &upstream, i, &what).await;
    }
}

/// A CONNECT carrying `Content-Length` or `Transfer-Encoding` is 400 and reaches nobody,
/// even with the port allowed.
#[tokio::test]
async fn connect_with_a_body_is_400_and_reaches_nobody() {
    let upstream = HttpUpstream::start(Mode::Length).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[port], "")).await;
    let cases = [
        format!(
            "CONNECT {WWW}:{port} HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Length: 5\r\n\r\nhello"
        ),
        format!("CONNECT {WWW}:{port} HTTP/1.1\r\nHost: {WWW}:{port}\r\nContent-Length: 0\r\n\r\n"),
        format!(
            "CONNECT {WWW}:{port} HTTP/1.1\r\nHost: {WWW}:{port}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
    ];
    for (i, request) in cases.iter().enumerate() {
        refused(proxy.addr(), request.as_bytes(), 400, request).await;
        assert_untouched(proxy.addr(), &upstream, i, request).await;
    }
}
