//! The async wrapper `read_client_hello` over real loopback TCP.

use crate::builder::{HelloBuilder, PADDING};
use crate::vectors::vector;
use crate::{DEFAULT, frame, record};
use egress_core::tls::{ClientHello, Error, read_client_hello};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};

/// Upper bound on any wrapper call, so that a wrapper ignoring its deadline fails the
/// test instead of hanging it.
const GUARD: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(200);

fn deadline_in(d: Duration) -> Instant {
    Instant::now() + d
}

/// A connected pair: (accepted server side, client side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.unwrap();
    client.set_nodelay(true).unwrap();
    (accepted.unwrap().0, client)
}

async fn read(
    server: &mut TcpStream,
    max: usize,
    deadline: Instant,
) -> Result<(ClientHello, Vec<u8>), Error> {
    tokio::time::timeout(GUARD, read_client_hello(server, max, deadline))
        .await
        .expect("read_client_hello ran past its deadline")
        .map(|(hello, bytes)| (hello, bytes.to_vec()))
}

/// Everything left on the socket until the client's FIN.
async fn rest(server: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, server.read_to_end(&mut out))
        .await
        .expect("client never closed")
        .unwrap();
    out
}

/// Writes each chunk in its own write (with a yield in between), then shuts down the
/// write side if asked; the task returns the socket, so that awaiting it and dropping
/// the result is what closes the connection.
fn client_writes(
    mut client: TcpStream,
    chunks: Vec<Vec<u8>>,
    shutdown: bool,
) -> JoinHandle<TcpStream> {
    tokio::spawn(async move {
        for chunk in chunks {
            client.write_all(&chunk).await.unwrap();
            client.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        if shutdown {
            client.shutdown().await.unwrap();
        }
        client
    })
}

fn bytes_one_by_one(data: &[u8]) -> Vec<Vec<u8>> {
    data.iter().map(|b| vec![*b]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_written_one_byte_at_a_time() {
    for name in ["chromium.bin", "go119.bin", "openssl-no-sni.bin"] {
        let v = vector(name);
        let (mut server, client) = pair().await;
        let writer = client_writes(client, bytes_one_by_one(v.bytes), false);
        let (hello, bytes) = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10)))
            .await
            .unwrap();
        v.check(&hello, v.bytes, "over TCP, one byte per write");
        // Nothing else was sent: exactly the hello.
        assert_eq!(bytes, v.bytes, "{name}: returned bytes");
        drop(writer.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_in_one_byte_records_written_one_byte_at_a_time() {
    let v = vector("go119.bin");
    let framed = frame(&v.handshake(), &[1]);
    let (mut server, client) = pair().await;
    let writer = client_writes(client, bytes_one_by_one(&framed), false);
    let (hello, bytes) = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10)))
        .await
        .unwrap();
    v.check(
        &hello,
        &framed,
        "over TCP, 1-byte records, one byte per write",
    );
    assert_eq!(bytes, framed);
    drop(writer.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_in_two_segments_with_a_pause() {
    let v = vector("chromium.bin");
    let (mut server, mut client) = pair().await;
    let writer = tokio::spawn(async move {
        client.write_all(&v.bytes[..1460]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.write_all(&v.bytes[1460..]).await.unwrap();
        client
    });
    let (hello, bytes) = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10)))
        .await
        .unwrap();
    v.check(&hello, v.bytes, "two segments");
    assert_eq!(bytes, v.bytes);
    drop(writer.await.unwrap());
}

/// Bytes after the hello are returned after `raw()` or left on the socket, never lost
/// and never duplicated: returned ++ rest == hello ++ extra.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_the_hello_in_the_same_write_follow_raw() {
    let extra = b"\x17\x03\x03\x00\x05hello and some early data after the ClientHello".to_vec();
    for name in ["curl-openssl3.bin", "chromium.bin"] {
        let v = vector(name);
        // (a) The whole hello and the extra bytes in one write.
        // (b) The hello one byte at a time, its last byte with the extra bytes.
        let n = v.bytes.len();
        let mut last = vec![v.bytes[n - 1]];
        last.extend_from_slice(&extra);
        let mut one_by_one = bytes_one_by_one(&v.bytes[..n - 1]);
        one_by_one.push(last);
        let mut together = v.bytes.to_vec();
        together.extend_from_slice(&extra);
        for (how, chunks) in [
            ("one write", vec![together]),
            ("last byte with the extra", one_by_one),
        ] {
            let (mut server, client) = pair().await;
            let writer = client_writes(client, chunks, true);
            let (hello, bytes) = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10)))
                .await
                .unwrap();
            v.check(&hello, v.bytes, how);
            assert!(
                bytes.starts_with(v.bytes),
                "{name} ({how}): returned bytes do not start with raw()"
            );
            let after = &bytes[n..];
            assert!(
                extra.starts_with(after),
                "{name} ({how}): bytes after raw() are not what the client sent: {after:?}"
            );
            let mut all = after.to_vec();
            all.extend(rest(&mut server).await);
            assert_eq!(
                all, extra,
                "{name} ({how}): bytes after the hello lost or duplicated"
            );
            if after.is_empty() {
                eprintln!(
                    "note: {name} ({how}): the wrapper left all {} extra bytes on the socket",
                    extra.len()
                );
            }
            drop(writer.await.unwrap());
        }
    }
}

#[tokio::test]
async fn silent_client_times_out() {
    let (mut server, client) = pair().await;
    let result = read(&mut server, DEFAULT, deadline_in(SHORT)).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    drop(client);
}

#[tokio::test]
async fn deadline_already_passed_times_out() {
    let (mut server, client) = pair().await;
    let result = read(&mut server, DEFAULT, Instant::now()).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_stalling_mid_hello_times_out() {
    let v = vector("python-ssl.bin");
    for sent in [1usize, 5, 9, 200, v.bytes.len() - 1] {
        let (mut server, client) = pair().await;
        let writer = client_writes(client, vec![v.bytes[..sent].to_vec()], false);
        let result = read(&mut server, DEFAULT, deadline_in(SHORT)).await;
        assert!(
            matches!(result, Err(Error::Timeout)),
            "after {sent} bytes: {result:?}"
        );
        drop(writer.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_closing_mid_hello_is_eof() {
    let v = vector("node.bin");
    for sent in [0usize, 1, 5, 100, v.bytes.len() - 1] {
        let (mut server, client) = pair().await;
        let writer = client_writes(client, vec![v.bytes[..sent].to_vec()], true);
        let result = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10))).await;
        match result {
            Err(Error::Eof { received }) => assert_eq!(received, sent, "Eof after {sent} bytes"),
            other => panic!("close after {sent} bytes: {other:?}"),
        }
        drop(writer.await.unwrap());
    }
    // Closed by dropping the socket, in byte-by-byte writes.
    let (mut server, client) = pair().await;
    let writer = client_writes(client, bytes_one_by_one(&v.bytes[..50]), false);
    drop(writer.await.unwrap());
    let result = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10))).await;
    assert!(
        matches!(result, Err(Error::Eof { received: 50 })),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_errors_come_through() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "http",
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
        ),
        ("alert", record(21, 0x0303, &[2, 40])),
        (
            "two names",
            HelloBuilder::new()
                .ext(0, crate::builder::sni_body(&[b"a.example", b"b.example"]))
                .record(),
        ),
        ("IP literal", HelloBuilder::with_sni(b"127.0.0.1").record()),
    ];
    for (what, input) in cases {
        let (mut server, client) = pair().await;
        // The client keeps the connection open: the error must not wait for more.
        let writer = client_writes(client, vec![input], false);
        let result = read(&mut server, DEFAULT, deadline_in(Duration::from_secs(10))).await;
        let ok = match what {
            "http" => matches!(result, Err(Error::NotTls { first_byte: b'G' })),
            "alert" => matches!(result, Err(Error::Alert)),
            "two names" => matches!(result, Err(Error::MultipleServerNames)),
            _ => matches!(
                result,
                Err(Error::InvalidServerName(
                    egress_core::target::NameError::IpLiteral
                ))
            ),
        };
        assert!(ok, "{what}: {result:?}");
        drop(writer.await.unwrap());
    }
}

/// A hello of 904 handshake bytes in 1-byte records (5424 bytes) with a limit of 1000:
/// nothing in the first 1000 bytes says it is too large, so the wrapper must stop at the
/// limit by itself, and must not have taken more than 1000 bytes off the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_much_without_completing_is_refused_without_reading_past_the_limit() {
    let base = HelloBuilder::with_sni(b"a.example")
        .ext(PADDING, Vec::new())
        .handshake()
        .len();
    let hs = HelloBuilder::with_sni(b"a.example")
        .ext(PADDING, vec![0; 904 - base])
        .handshake();
    assert_eq!(hs.len(), 904);
    let framed = frame(&hs, &[1]);
    assert_eq!(framed.len(), 904 * 6);
    // A record header that claims more than the limit, followed by more than the limit.
    let mut claims = vec![22, 3, 1, 0x3f, 0xf0];
    claims.extend(vec![0x42; 0x3ff0]);
    for (what, input, chunks) in [
        (
            "1-byte records, one write",
            framed.clone(),
            vec![framed.clone()],
        ),
        (
            "1-byte records, many writes",
            framed.clone(),
            framed.chunks(7).map(<[u8]>::to_vec).collect(),
        ),
        ("large record header", claims.clone(), vec![claims.clone()]),
    ] {
        let (mut server, client) = pair().await;
        let writer = client_writes(client, chunks, true);
        let result = read(&mut server, 1000, deadline_in(Duration::from_secs(10))).await;
        assert!(
            matches!(result, Err(Error::TooLarge { limit: 1000 })),
            "{what}: {result:?}"
        );
        drop(writer.await.unwrap());
        let left = rest(&mut server).await;
        let consumed = input.len() - left.len();
        assert!(
            consumed <= 1000,
            "{what}: the wrapper read {consumed} bytes with a limit of 1000"
        );
        assert_eq!(left, input[consumed..], "{what}: the rest of the stream");
    }
}

/// A complete hello followed by more data: the wrapper takes at most `max_bytes` off the
/// socket in total, and with `max_bytes` equal to the hello exactly the hello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reads_past_max_bytes_after_a_complete_hello() {
    let v = vector("openssl-s_client-tls13.bin");
    let extra: Vec<u8> = (0..200u8).collect();
    let mut input = v.bytes.to_vec();
    input.extend_from_slice(&extra);
    for max in [v.bytes.len(), v.bytes.len() + 3, v.bytes.len() + 100] {
        let (mut server, client) = pair().await;
        let writer = client_writes(client, vec![input.clone()], true);
        let (hello, bytes) = read(&mut server, max, deadline_in(Duration::from_secs(10)))
            .await
            .unwrap();
        v.check(&hello, v.bytes, &format!("max {max}"));
        assert!(
            bytes.len() <= max,
            "max {max}: the wrapper returned {} bytes",
            bytes.len()
        );
        assert!(bytes.starts_with(v.bytes), "max {max}");
        if max == v.bytes.len() {
            assert_eq!(bytes, v.bytes, "max = hello size");
        }
        drop(writer.await.unwrap());
        let mut all = bytes.clone();
        all.extend(rest(&mut server).await);
        assert_eq!(all, input, "max {max}: bytes lost or duplicated");
    }
}
