//! A WebSocket upgrade: the `101` is passed on and the connection becomes a tunnel.

use tokio::io::AsyncWriteExt;

use crate::support::http_upstream::{HttpUpstream, Mode, WS_ACCEPT, WS_GREETING, pattern};
use crate::support::proxy::Proxy;
use crate::{Client, OTHER, WWW, assert_bytes, config};

/// The upgrade request keeps `Upgrade: websocket` and says `Connection: Upgrade` upstream;
/// the client gets the `101` and the upstream's first bytes; then bytes go both ways,
/// including bytes that look like HTTP (never parsed as a request), 1 MiB of them, and a
/// half-close ends the tunnel.
#[tokio::test]
async fn websocket_upgrade_becomes_a_tunnel() {
    let upstream = HttpUpstream::start(Mode::WebSocket).await;
    let port = upstream.port();
    let proxy = Proxy::start(&config(&[443], "")).await;

    for (i, target) in [format!("http://{WWW}:{port}/chat"), "/chat".to_owned()]
        .into_iter()
        .enumerate()
    {
        let mut client = Client::connect(proxy.addr()).await;
        let request = format!(
            "GET {target} HTTP/1.1\r\n\
             Host: {WWW}:{port}\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             \r\n"
        );
        client.send(request.as_bytes()).await;
        let head = client.head().await;
        assert_eq!(
            head,
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {WS_ACCEPT}\r\nConnection: Upgrade\r\n\r\n"
            ),
            "{target}"
        );
        let greeting = client.wire.read_exact(WS_GREETING.len()).await.unwrap();
        assert_bytes(&greeting, WS_GREETING, &format!("{target}: greeting"));

        let connections = upstream.connections();
        assert_eq!(
            connections[i][0].head,
            format!(
                "GET /chat HTTP/1.1\r\n\
                 Host: {WWW}:{port}\r\n\
                 Upgrade: websocket\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\
                 Connection: Upgrade\r\n\
                 \r\n"
            ),
            "{target}"
        );

        let looks_like_http =
            format!("GET http://{OTHER}:{port}/not-a-request HTTP/1.1\r\nHost: {OTHER}\r\n\r\n");
        for message in [b"\x81\x05hello".to_vec(), looks_like_http.into_bytes()] {
            client.send(&message).await;
            let echo = client.wire.read_exact(message.len()).await.unwrap();
            assert_bytes(&echo, &message, &format!("{target}: echo"));
        }

        let big = pattern(1 << 20);
        let Client { mut wire } = client;
        let (mut read, mut write) = wire.stream.split();
        let mut reader = crate::support::http_upstream::Wire::new(&mut read);
        let (written, echoed) = tokio::join!(
            async {
                write.write_all(&big).await.unwrap();
                write.shutdown().await.unwrap();
            },
            async {
                tokio::time::timeout(crate::WAIT, reader.read_to_end())
                    .await
                    .expect("no EOF")
            }
        );
        let () = written;
        assert!(
            echoed == big,
            "{target}: the 1 MiB echo differs ({} bytes)",
            echoed.len()
        );
        assert!(wire.buf.is_empty());
        // The upstream saw one request on this connection: the tunnel bytes were not parsed.
        assert_eq!(upstream.connections()[i].len(), 1, "{target}");
    }
    assert_eq!(upstream.accepted(), 2);
}
