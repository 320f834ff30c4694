//! Reset: a peer aborts its connection with a RST (SO_LINGER 0, then close) and the relay
//! returns `Err` with `ErrorKind::Io` naming that peer's side, and counts.
//!
//! Roles: `a` is the peer that resets, `b` the survivor. With `a` the upstream the relay
//! must report `Side::Upstream`; with `a` the client, `Side::Client`.
//!
//! Which side reports is deterministic here: the survivor never closes, errs or resets
//! while the relay runs (its proxy-side socket is healthy until the relay returns and drops
//! it), so the only socket that can fail is the one facing the reset peer, whether the
//! relay notices on a read (ECONNRESET) or on a write (ECONNRESET/EPIPE). The `io::Error`
//! must be one of those "connection gone" kinds.
//!
//! What is deterministic about the counts: every run first exchanges a known amount both
//! ways and waits until each peer has read all of it (`base`, exact). After that, a count
//! can only grow by bytes that were really sent, and must cover bytes that were really
//! received: `received ≤ count − base ≤ sent`. Exactly how many bytes the relay wrote to a
//! socket that was then reset is racy, so the counts are checked against those bounds,
//! and exactly when no byte was sent after `base`.

use egress_core::relay::{Error, ErrorKind, RelayConfig, Side, Traffic};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::streams::{End, Expect, receive_stream, send_until};

use crate::harness::{
    Kind, Relay, Roles, Tunnel, assert_bytes, expect_eof, half_close, is_connection_gone, pattern,
    read_exactly, send, sent_by, within,
};

/// Aborts the connection: SO_LINGER 0, then close, which sends a RST.
fn reset(stream: TcpStream) {
    stream.set_zero_linger().unwrap();
    drop(stream);
}

/// Reads until the connection is closed (EOF or reset), returning what arrived.
async fn drain<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, what: &str) -> Vec<u8> {
    within(what, async {
        let mut out = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        for _ in 0..1_000_000 {
            match stream.read(&mut buf).await {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if is_connection_gone(&e) => return out,
                Err(e) => panic!("{what}: {e}"),
            }
        }
        panic!("{what}: the connection never closed");
    })
    .await
}

/// The relay's error must be `Io` on `side` with a "connection gone" kind; returns the
/// counts.
#[track_caller]
fn check_error(error: Error, side: Side) -> Traffic {
    match &error.kind {
        ErrorKind::Io(failed, e) => {
            assert_eq!(*failed, side, "wrong side reported: {error}");
            assert!(
                is_connection_gone(e),
                "unexpected io error kind {:?}: {error}",
                e.kind()
            );
        }
        other => panic!("expected ErrorKind::Io({side:?}, _), got {other:?}"),
    }
    error.traffic
}

/// A tunnel after the known exchange.
struct Setup {
    a: TcpStream,
    b: TcpStream,
    relay: Relay,
    side_a: Side,
    side_b: Side,
    /// Exact counts after the exchange.
    base: Traffic,
}

/// Starts a tunnel and exchanges 10 KiB each way (b first), each fully read.
async fn setup(kind: Kind, roles: Roles) -> Setup {
    let a_data = pattern(60, 10 * 1024);
    let b_data = pattern(61, 10 * 1024);
    let tunnel = Tunnel::start(kind, &pattern(62, 517), RelayConfig::default()).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let want_at_a = tunnel.expected_at(side_a, &b_data);
    let want_at_b = tunnel.expected_at(side_b, &a_data);
    let base = tunnel.traffic(side_a, a_data.len(), b_data.len());
    let (client, upstream, relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    send(&mut b, &b_data, "b sends").await;
    let at_a = read_exactly(&mut a, want_at_a.len(), "a reads").await;
    assert_bytes("received by a", &at_a, &want_at_a);
    send(&mut a, &a_data, "a sends").await;
    let at_b = read_exactly(&mut b, want_at_b.len(), "b reads").await;
    assert_bytes("received by b", &at_b, &want_at_b);

    Setup {
        a,
        b,
        relay,
        side_a,
        side_b,
        base,
    }
}

/// `a` resets while `b` waits for data: exact counts, `b` sees its connection closed with
/// no further byte.
async fn reset_while_peer_waits(kind: Kind, roles: Roles) {
    let Setup {
        a,
        mut b,
        mut relay,
        side_a,
        base,
        ..
    } = setup(kind, roles).await;
    reset(a);
    let (error, at_b) = tokio::join!(relay.expect_err(), drain(&mut b, "b until closed"));
    assert_eq!(check_error(error, side_a), base, "counts");
    assert_bytes("received by b after the reset", &at_b, &[]);
}

/// `b` has half-closed (and `a` has seen the FIN) when `a` resets: still an error on
/// `a`'s side, exact counts.
async fn reset_after_half_close(kind: Kind, roles: Roles) {
    let Setup {
        mut a,
        mut b,
        mut relay,
        side_a,
        base,
        ..
    } = setup(kind, roles).await;
    half_close(&mut b, "b half-closes").await;
    expect_eof(&mut a, "a sees b's FIN").await;
    reset(a);
    let (error, at_b) = tokio::join!(relay.expect_err(), drain(&mut b, "b until closed"));
    assert_eq!(check_error(error, side_a), base, "counts");
    assert_bytes("received by b after the reset", &at_b, &[]);
}

/// `b` keeps sending (and reading) while `a`, having read the first 64 KiB of that
/// stream, resets with more arriving.
async fn reset_while_peer_sends(kind: Kind, roles: Roles) {
    const CHUNK: usize = 16 * 1024;
    const READ_BY_A: usize = 4 * CHUNK;
    const MAX_SENT: usize = 8 * 1024 * 1024;
    let Setup {
        mut a,
        mut b,
        mut relay,
        side_a,
        side_b,
        base,
    } = setup(kind, roles).await;
    let chunk = pattern(63, CHUNK);

    let (mut b_read, mut b_write) = b.split();
    let writer = within("b sends until its connection fails", async {
        let mut sent = 0;
        for _ in 0..1_000_000 {
            if sent >= MAX_SENT {
                break;
            }
            let from = sent % CHUNK;
            match b_write.write(&chunk[from..]).await {
                Ok(n) => sent += n,
                Err(e) if is_connection_gone(&e) => break,
                Err(e) => panic!("b's write: {e}"),
            }
        }
        sent
    });
    let a_part = async move {
        let got = read_exactly(&mut a, READ_BY_A, "a reads part of b's stream").await;
        reset(a);
        got
    };
    let (sent, at_b, at_a, error) = tokio::join!(
        writer,
        drain(&mut b_read, "b until closed"),
        a_part,
        relay.expect_err()
    );

    assert_bytes(
        "received by a before its reset",
        &at_a,
        &chunk.repeat(READ_BY_A / CHUNK),
    );
    assert_bytes("received by b after the exchange", &at_b, &[]);
    let traffic = check_error(error, side_a);
    assert_eq!(
        sent_by(&traffic, side_a),
        sent_by(&base, side_a),
        "a sent nothing more: {traffic:?}"
    );
    let extra = sent_by(&traffic, side_b) - sent_by(&base, side_b);
    assert!(
        (READ_BY_A as u64..=sent as u64).contains(&extra),
        "b -> a count grew by {extra}, but a read {READ_BY_A} and b sent {sent}: {traffic:?}"
    );
}

/// `a` sends a burst and resets right after (its unsent bytes are discarded) while `b`
/// reads: what `b` received is an intact start of the burst and no more than counted.
async fn reset_with_data_in_flight(kind: Kind, roles: Roles) {
    let Setup {
        mut a,
        mut b,
        mut relay,
        side_a,
        side_b,
        base,
    } = setup(kind, roles).await;
    let burst = pattern(64, 1024 * 1024);
    let burst_ref = &burst;
    let a_part = async move {
        send(&mut a, burst_ref, "a sends a burst").await;
        reset(a);
    };
    let ((), at_b, error) =
        tokio::join!(a_part, drain(&mut b, "b until closed"), relay.expect_err());

    let traffic = check_error(error, side_a);
    assert_eq!(
        sent_by(&traffic, side_b),
        sent_by(&base, side_b),
        "b sent nothing more: {traffic:?}"
    );
    let extra = sent_by(&traffic, side_a) - sent_by(&base, side_a);
    assert!(
        (at_b.len() as u64..=burst.len() as u64).contains(&extra),
        "a -> b count grew by {extra}, but b received {} and a sent {}: {traffic:?}",
        at_b.len(),
        burst.len()
    );
    assert_bytes(
        "received by b after the exchange",
        &at_b,
        &burst[..at_b.len()],
    );
}

/// Both peers stream at full speed (buffers and pipes full both ways); `a`, having read
/// 1 MiB of `b`'s stream, stops and resets. `Io` on `a`'s side; each count grew by at
/// least what the receiving peer read and at most what the sending peer handed to its
/// kernel; what `b` received is an intact start of `a`'s stream.
async fn reset_mid_bulk_both_ways(kind: Kind, roles: Roles) {
    const READ_BY_A: u64 = 1024 * 1024;
    const CAP: u64 = 256 * 1024 * 1024;
    let Setup {
        mut a,
        mut b,
        mut relay,
        side_a,
        side_b,
        base,
    } = setup(kind, roles).await;

    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let a_part = async move {
        let (mut a_read, mut a_write) = a.split();
        let stop_writing = async move {
            a_stopped.await.ok();
        };
        let (a_sent, ()) = tokio::join!(
            send_until(&mut a_write, 110, CAP, stop_writing, "a streams"),
            async {
                let at = receive_stream(
                    &mut a_read,
                    Expect::new(&[], 111),
                    End::At(READ_BY_A),
                    "a reads part of b's stream",
                )
                .await;
                assert_eq!(at, READ_BY_A);
                stop_a.send(()).unwrap();
            },
        );
        reset(a);
        a_sent
    };
    let (mut b_read, mut b_write) = b.split();
    let (a_sent, b_sent, at_b, error) = tokio::join!(
        a_part,
        send_until(
            &mut b_write,
            111,
            CAP,
            std::future::pending(),
            "b streams until closed"
        ),
        receive_stream(
            &mut b_read,
            Expect::new(&[], 110),
            End::Closed,
            "b reads until closed"
        ),
        relay.expect_err(),
    );

    let traffic = check_error(error, side_a);
    let a_to_b = sent_by(&traffic, side_a) - sent_by(&base, side_a);
    let b_to_a = sent_by(&traffic, side_b) - sent_by(&base, side_b);
    assert!(
        (at_b..=a_sent).contains(&a_to_b),
        "a -> b count grew by {a_to_b}, but b received {at_b} and a sent {a_sent}: {traffic:?}"
    );
    assert!(
        (READ_BY_A..=b_sent).contains(&b_to_a),
        "b -> a count grew by {b_to_a}, but a read {READ_BY_A} and b sent {b_sent}: {traffic:?}"
    );
}

/// `b` sends 1 MiB and half-closes while `a` reads nothing, so the relay may meet `b`'s
/// EOF with bytes still to write toward `a` (draining its buffer or pipe); then `a`
/// resets. `Io` on `a`'s side; `a` read nothing more, so the `b -> a` count grew by at most
/// what `b` sent; `b` sees its connection closed.
async fn reset_while_draining(kind: Kind, roles: Roles) {
    const LEN: u64 = 1024 * 1024;
    let Setup {
        a,
        mut b,
        mut relay,
        side_a,
        side_b,
        base,
    } = setup(kind, roles).await;
    let b_part = async {
        // If the kernel buffers do not take it all, the reset ends the write.
        let sent = send_until(&mut b, 112, LEN, std::future::pending(), "b sends").await;
        if sent == LEN {
            half_close(&mut b, "b half-closes").await;
        }
        sent
    };
    let a_part = async move {
        // Not a timing assertion: lets the relay read as much of b's data and FIN as it can.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        reset(a);
    };
    let (sent, (), error) = tokio::join!(b_part, a_part, relay.expect_err());
    let at_b = drain(&mut b, "b until closed").await;
    assert_bytes("received by b after the reset", &at_b, &[]);
    let traffic = check_error(error, side_a);
    assert_eq!(
        sent_by(&traffic, side_a),
        sent_by(&base, side_a),
        "a sent nothing more: {traffic:?}"
    );
    let extra = sent_by(&traffic, side_b) - sent_by(&base, side_b);
    assert!(
        extra <= sent,
        "b -> a count grew by {extra}, but b sent {sent}: {traffic:?}"
    );
}

both_roles!(
    reset_while_draining,
    reset_mid_bulk_both_ways,
    reset_while_peer_waits,
    reset_after_half_close,
    reset_while_peer_sends,
    reset_with_data_in_flight
);
