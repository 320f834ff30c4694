//! The SNI proxy end to end on loopback: real rustls clients and upstreams, a real DNS
//! server, the captured ClientHellos, bad inputs, half-close, timeouts and shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions fail their test by panicking"
)]

#[path = "../support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use support::dns::DnsServer;
use support::hello::{self, CAPTURES};
use support::proxy::{Proxy, free_port};
use support::tls::{Pki, tls_echo_upstream};

/// Bound on every wait in these tests: a bug fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

/// Re-opens loopback, denied by the default policy, for the upstreams of these tests.
const LOOPBACK_POLICY: &str = "[policy]\nallow_cidrs = [\"127.0.0.0/8\", \"::1\"]\n\n";

/// A proxy config with one SNI block to `upstream_port`, mapping each name to 127.0.0.1.
fn config(listen: &str, upstream_port: &str, names: &[&str], extra: &str) -> String {
    let hosts: String = names
        .iter()
        .map(|n| format!("\"{n}\" = [\"127.0.0.1\"]\n"))
        .collect();
    format!(
        "{LOOPBACK_POLICY}[resolver]\nnameservers = [\"127.0.0.1:9\"]\nquery_timeout = \"1s\"\n\n[resolver.hosts]\n{hosts}\n\
         [[sni]]\nlisten = [\"{listen}\"]\nupstream_port = {upstream_port}\n{extra}\n"
    )
}

/// Reads until EOF or reset; returns what arrived.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("peer never closed")
        {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A plain TCP upstream that records what each connection sends until EOF.
struct Recorder {
    listener: TcpListener,
}

impl Recorder {
    async fn bind(ip: &str) -> Self {
        Self {
            listener: TcpListener::bind((ip, 0)).await.unwrap(),
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// The bytes of the next connection, up to its EOF.
    async fn next(&self) -> Vec<u8> {
        let (mut stream, _) = timeout(WAIT, self.listener.accept())
            .await
            .expect("no upstream connection")
            .unwrap();
        read_to_close(&mut stream).await
    }
}

/// Sends `chunks` as separate writes, half-closes, and returns what the proxy sent back.
async fn send(proxy: SocketAddr, chunks: &[&[u8]]) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.set_nodelay(true).unwrap();
    for chunk in chunks {
        if stream.write_all(chunk).await.is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let _ = stream.shutdown().await;
    read_to_close(&mut stream).await
}

/// A plain upstream listener, and a proxy routing `www.example.com` to it with extra
/// `[server]` and `[[sni]]` settings.
async fn proxy_to_listener(server: &str, sni: &str) -> (Proxy, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let text = format!(
        "[server]\n{server}\n\n{}",
        config("127.0.0.1:0", &port, &["www.example.com"], sni)
    );
    (Proxy::start(&text).await, listener)
}

/// Opens a tunnel through `proxy` to `listener`: the client sends the curl hello, and the
/// upstream has read it.
async fn open_tunnel(proxy: SocketAddr, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    client.write_all(hello::CURL).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut got = vec![0; hello::CURL.len()];
    upstream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, hello::CURL);
    (client, upstream)
}

#[tokio::test]
async fn rustls_client_reaches_rustls_upstream_by_static_override() {
    let pki = Pki::new(&["www.example.test"]);
    let upstream = tls_echo_upstream(&pki, "127.0.0.1:0").await;
    let proxy = Proxy::start(&config(
        "127.0.0.1:0",
        &upstream.port().to_string(),
        &["www.example.test"],
        "",
    ))
    .await;

    let mut tls = timeout(WAIT, pki.connect(proxy.addr(), "www.example.test"))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"ping\n").await.unwrap();
    let mut reply = String::new();
    timeout(WAIT, tls.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "hello ping from www.example.test\n");
}

#[tokio::test]
async fn rustls_client_reaches_upstream_resolved_by_a_real_dns_server() {
    let dns = DnsServer::start().await;
    dns.set("www.dns.test", vec!["127.0.0.1".parse().unwrap()]);
    let pki = Pki::new(&["www.dns.test"]);
    let upstream = tls_echo_upstream(&pki, "127.0.0.1:0").await;
    let proxy = Proxy::start(&format!(
        "{LOOPBACK_POLICY}[resolver]\nnameservers = [\"{}\"]\nip_family = \"ipv4\"\n\n[[sni]]\nlisten = [\"127.0.0.1:0\"]\nupstream_port = {}\n",
        dns.addr(),
        upstream.port()
    ))
    .await;

    let mut tls = timeout(WAIT, pki.connect(proxy.addr(), "WWW.dns.test"))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"dns\n").await.unwrap();
    let mut reply = String::new();
    timeout(WAIT, tls.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "hello dns from www.dns.test\n");
    assert!(dns.queries("www.dns.test") >= 1);
}

#[tokio::test]
async fn nxdomain_closes_the_client() {
    let dns = DnsServer::start().await;
    let recorder = Recorder::bind("127.0.0.1").await;
    let proxy = Proxy::start(&format!(
        "{LOOPBACK_POLICY}[resolver]\nnameservers = [\"{}\"]\n\n[[sni]]\nlisten = [\"127.0.0.1:0\"]\nupstream_port = {}\n",
        dns.addr(),
        recorder.port()
    ))
    .await;
    let reply = send(
        proxy.addr(),
        &[&hello::hello_with_names(&[b"missing.dns.test"])],
    )
    .await;
    assert!(reply.is_empty());
    assert!(
        dns.queries("missing.dns.test") >= 1,
        "the name was looked up"
    );
}

#[tokio::test]
async fn listener_port_mode_dials_the_port_the_client_connected_to() {
    let pki = Pki::new(&["alt.example.test"]);
    // The upstream owns 127.0.0.1:P; the proxy listens on 127.0.0.2:P.
    let upstream = tls_echo_upstream(&pki, "127.0.0.1:0").await;
    let listen = format!("127.0.0.2:{}", upstream.port());
    let proxy = Proxy::start(&config(&listen, "\"listener\"", &["alt.example.test"], "")).await;
    assert_eq!(proxy.addr().port(), upstream.port());

    let mut tls = timeout(WAIT, pki.connect(proxy.addr(), "alt.example.test"))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"alt\n").await.unwrap();
    let mut reply = String::new();
    timeout(WAIT, tls.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "hello alt from alt.example.test\n");
}

/// Each capture, sent whole, one byte per write, split at every offset and re-framed
/// into small records, reaches the upstream unchanged (followed by the client's data).
#[tokio::test]
async fn captures_reach_the_upstream_byte_identical_however_they_arrive() {
    let recorder = Recorder::bind("127.0.0.1").await;
    let names: Vec<&str> = CAPTURES.iter().filter_map(|c| c.2).collect();
    let proxy = Proxy::start(&config(
        "127.0.0.1:0",
        &recorder.port().to_string(),
        &names,
        "",
    ))
    .await;
    let tail: &[u8] = b"\x17\x03\x03\x00\x03abc";

    for (who, bytes, sni) in CAPTURES {
        if sni.is_none() {
            continue;
        }
        let reframed = hello::records(hello::message_of(bytes), 7);
        let mut ways: Vec<(String, Vec<Vec<u8>>)> = vec![
            ("whole".into(), vec![[*bytes, tail].concat()]),
            (
                "byte by byte".into(),
                bytes
                    .iter()
                    .map(|b| vec![*b])
                    .chain([tail.to_vec()])
                    .collect(),
            ),
            (
                "7-byte records, 1-byte writes".into(),
                reframed.iter().map(|b| vec![*b]).collect(),
            ),
        ];
        for cut in 1..bytes.len() {
            ways.push((
                format!("split at {cut}"),
                vec![bytes[..cut].to_vec(), [&bytes[cut..], tail].concat()],
            ));
        }
        for (how, chunks) in ways {
            let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let sent: Vec<u8> = chunks.concat();
            let (reply, received) = tokio::join!(send(proxy.addr(), &chunks), recorder.next());
            assert!(reply.is_empty(), "{who} {how}");
            assert_eq!(received, sent, "{who} {how}: upstream bytes differ");
        }
    }
}

/// Bad first flights end with a close, and the upstream never sees a connection: the next
/// connection it accepts is the good one sent afterwards.
#[tokio::test]
async fn bad_input_is_closed_before_any_upstream_is_dialed() {
    let recorder = Recorder::bind("127.0.0.1").await;
    let good_name = "www.example.com";
    let proxy = Proxy::start(&config(
        "127.0.0.1:0",
        &recorder.port().to_string(),
        &[good_name],
        "client_hello_max_bytes = 4096",
    ))
    .await;

    let mut overlong_extensions = hello::CURL.to_vec();
    // The curl hello's extensions length sits after version, random, session id, suites and
    // compression; claiming one byte more than is there must not read as "no SNI".
    let mut at = 5 + 4 + 2 + 32;
    at += 1 + overlong_extensions[at] as usize;
    at += 2 + u16::from_be_bytes([overlong_extensions[at], overlong_extensions[at + 1]]) as usize;
    at += 1 + overlong_extensions[at] as usize;
    let len = u16::from_be_bytes([overlong_extensions[at], overlong_extensions[at + 1]]) + 1;
    overlong_extensions[at..at + 2].copy_from_slice(&len.to_be_bytes());

    let go = CAPTURES[6].1;
    let with_sni = |name: &[u8; 14]| {
        let mut bytes = go.to_vec();
        let at = bytes
            .windows(14)
            .position(|w| w == b"go.example.com")
            .unwrap();
        bytes[at..at + 14].copy_from_slice(name);
        bytes
    };

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "plain HTTP",
            b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n".to_vec(),
        ),
        (
            "SSLv2 hello",
            vec![
                0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
            ],
        ),
        ("alert", vec![21, 3, 3, 0, 2, 2, 40]),
        (
            "handshake not a ClientHello",
            hello::records(&[2, 0, 0, 1, 0], 100),
        ),
        (
            "record length over the limit",
            vec![22, 3, 1, 0x40, 0x00, 1],
        ),
        ("overlong extensions length", overlong_extensions),
        (
            "two names in one list",
            hello::hello_with_names(&[b"www.example.com", b"other.example.com"]),
        ),
        (
            "SNI with NUL",
            hello::hello_with_names(&[b"www.example.com\0evil"]),
        ),
        ("SNI with space", with_sni(b"go example.com")),
        (
            "non-ASCII SNI",
            hello::hello_with_names(&["www.exämple.com".as_bytes()]),
        ),
        ("IPv4 literal SNI", with_sni(b"192.168.100.10")),
        ("IPv6 literal SNI", hello::hello_with_names(&[b"::1"])),
        ("no SNI", hello::NO_SNI.to_vec()),
    ];
    for (what, bytes) in &cases {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        // No half-close: the proxy must act on the bytes, not on an EOF.
        let reply = read_to_close(&mut stream).await;
        // A valid hello without a name is told why (a fatal unrecognized_name alert); what
        // is not a ClientHello gets no reply.
        let expected: &[u8] = if *what == "no SNI" {
            &[21, 3, 3, 0, 2, 2, 112]
        } else {
            b""
        };
        assert_eq!(reply, expected, "{what}: wrong reply");

        let good = [hello::CURL, b"after"].concat();
        let chunks = [good.as_slice()];
        let (_, received) = tokio::join!(send(proxy.addr(), &chunks), recorder.next());
        assert_eq!(
            received, good,
            "{what}: the upstream saw another connection first"
        );
    }
}

#[tokio::test]
async fn half_close_propagates_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = Proxy::start(&config(
        "127.0.0.1:0",
        &port.to_string(),
        &["www.example.com"],
        "",
    ))
    .await;

    // Client finishes first; the upstream keeps sending afterwards.
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(hello::CURL).await.unwrap();
    client.write_all(b"request").await.unwrap();
    client.shutdown().await.unwrap();
    let (mut upstream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    assert_eq!(
        read_to_close(&mut upstream).await,
        [hello::CURL, b"request"].concat()
    );
    let body = vec![b'x'; 1 << 20];
    upstream.write_all(&body).await.unwrap();
    upstream.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut client).await.len(), body.len());

    // Upstream finishes first; the client keeps sending afterwards.
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(hello::CURL).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    upstream.write_all(b"response").await.unwrap();
    upstream.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut client).await, b"response");
    client.write_all(&body).await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(
        read_to_close(&mut upstream).await.len(),
        hello::CURL.len() + body.len()
    );
}

#[tokio::test]
async fn idle_tunnels_are_closed() {
    let (proxy, listener) = proxy_to_listener("", "idle_timeout = \"300ms\"").await;
    let (mut client, mut upstream) = open_tunnel(proxy.addr(), &listener).await;
    // Nobody sends anything more: both sides are closed by the proxy.
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(read_to_close(&mut upstream).await.is_empty());
}

#[tokio::test]
async fn client_hello_timeout_closes_silent_clients() {
    let recorder = Recorder::bind("127.0.0.1").await;
    let proxy = Proxy::start(&config(
        "127.0.0.1:0",
        &recorder.port().to_string(),
        &["www.example.com"],
        "client_hello_timeout = \"200ms\"",
    ))
    .await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(&hello::CURL[..100]).await.unwrap();
    assert!(read_to_close(&mut client).await.is_empty());
}

#[tokio::test]
async fn connect_refused_closes_the_client() {
    let closed_port = free_port("127.0.0.1");
    let proxy = Proxy::start(&config(
        "127.0.0.1:0",
        &closed_port.to_string(),
        &["www.example.com"],
        "",
    ))
    .await;
    assert!(send(proxy.addr(), &[hello::CURL]).await.is_empty());
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    let (proxy, listener) = proxy_to_listener("", "max_connections = 1").await;
    let (mut first, mut upstream) = open_tunnel(proxy.addr(), &listener).await;

    let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = second.write_all(hello::CURL).await;
    assert!(read_to_close(&mut second).await.is_empty());

    // The first tunnel still works.
    first.write_all(b"still here").await.unwrap();
    let mut got = [0; 10];
    upstream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"still here");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_open_tunnels_finish() {
    let (proxy, listener) = proxy_to_listener("shutdown_timeout = \"1h\"", "").await;
    let addr = proxy.addr();
    let (mut client, mut upstream) = open_tunnel(addr, &listener).await;

    let stopped = proxy.stop();
    // The listener closes: new connections are refused (bounded retry while it closes).
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting after shutdown");
    assert!(!stopped.is_finished());

    // The open tunnel still carries bytes, and the server ends once it closes.
    upstream.write_all(b"late reply").await.unwrap();
    upstream.shutdown().await.unwrap();
    let mut got = [0; 10];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"late reply");
    client.shutdown().await.unwrap();
    timeout(WAIT, stopped)
        .await
        .expect("server did not stop after its last tunnel")
        .unwrap();
}

#[tokio::test]
async fn shutdown_deadline_closes_lingering_tunnels() {
    let (proxy, listener) = proxy_to_listener("shutdown_timeout = \"200ms\"", "").await;
    let addr = proxy.addr();
    let (mut client, mut upstream) = open_tunnel(addr, &listener).await;

    timeout(WAIT, proxy.stop())
        .await
        .expect("shutdown deadline not enforced")
        .unwrap();
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(read_to_close(&mut upstream).await.is_empty());
}

/// A proxy whose only `[[sni]]` block listens nowhere and routes `www.example.com` to
/// `listener`, with `extra` in that block.
async fn handoff_proxy(listener: &TcpListener, extra: &str) -> Proxy {
    let port = listener.local_addr().unwrap().port().to_string();
    let text = config("127.0.0.1:0", &port, &["www.example.com"], extra)
        .replace("listen = [\"127.0.0.1:0\"]", "listen = []");
    Proxy::start(&text).await
}

/// A connection accepted by the test itself, as an embedding program would: the client end
/// and the accepted end (a std stream, as handed over).
async fn accepted_elsewhere() -> (TcpStream, std::net::TcpStream) {
    let outside = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(outside.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = outside.accept().await.unwrap();
    (client, accepted.into_std().unwrap())
}

#[tokio::test]
async fn a_block_without_addresses_serves_handed_over_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = handoff_proxy(&listener, "").await;
    assert!(
        proxy.addrs.is_empty(),
        "listen = [] bound {:?}",
        proxy.addrs
    );

    let (mut client, accepted) = accepted_elsewhere().await;
    proxy.handoffs[0].serve(accepted).unwrap();
    client.write_all(hello::CURL).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut got = vec![0; hello::CURL.len()];
    upstream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, hello::CURL);
    upstream.write_all(b"reply").await.unwrap();
    upstream.shutdown().await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut client).await, b"reply");
}

#[tokio::test]
async fn handed_over_connections_count_against_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = handoff_proxy(&listener, "max_connections = 1").await;

    let (mut first, accepted) = accepted_elsewhere().await;
    proxy.handoffs[0].serve(accepted).unwrap();
    first.write_all(hello::CURL).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();

    let (mut second, accepted) = accepted_elsewhere().await;
    proxy.handoffs[0].serve(accepted).unwrap();
    let _ = second.write_all(hello::CURL).await;
    assert!(read_to_close(&mut second).await.is_empty());

    let mut got = vec![0; hello::CURL.len()];
    upstream.read_exact(&mut got).await.unwrap();
    first.write_all(b"still here").await.unwrap();
    let mut got = [0; 10];
    upstream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"still here");
}

#[tokio::test]
async fn handing_over_after_shutdown_is_refused_and_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = handoff_proxy(&listener, "").await;
    let handoff = proxy.handoffs[0].clone();
    timeout(WAIT, proxy.stop()).await.unwrap().unwrap();

    let (mut client, accepted) = accepted_elsewhere().await;
    let error = handoff.serve(accepted).unwrap_err();
    assert!(
        matches!(error, egress_core::server::HandoffError::Stopped),
        "{error:?}"
    );
    assert!(read_to_close(&mut client).await.is_empty());
}
