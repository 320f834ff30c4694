//! Half-close: a FIN one way is propagated while data keeps flowing the other way, and
//! bytes still on their way (in the relay's buffer or pipe) when the FIN arrives are
//! delivered before it.
//!
//! Roles: `a` half-closes first. With `a` the client this is the usual request/response
//! (the client sends, half-closes, the upstream sees EOF and then sends a large body);
//! with `a` the upstream it is the mirror (the upstream half-closes first, the client
//! keeps sending a large body).
//!
//! Each run checks that `b` sees EOF while `b` itself has not closed (the FIN is
//! propagated, not held until both ways end), that the relay is still running then, that
//! data sent after the half-close arrives (first a small chunk read on its own, then a
//! large body), and that the relay returns `Ok` with exact counts once `b` closes too, while
//! both peers still hold their sockets (only half-closed).

use std::time::Duration;

use egress_core::relay::RelayConfig;

use crate::harness::{
    Kind, Roles, Sockets, Tunnel, assert_bytes, half_close, pattern, read_exactly, read_to_eof,
    send, within,
};
use crate::streams::{End, Expect, receive_stream, send_stream};

const BODY_LEN: usize = 4 * 1024 * 1024;

async fn run(kind: Kind, roles: Roles, first_len: usize, b_closes_by_drop: bool) {
    let first = pattern(40, first_len);
    let opening = pattern(41, 1000);
    let body = pattern(42, BODY_LEN);
    let b_all = [opening.as_slice(), body.as_slice()].concat();

    let tunnel = Tunnel::start(kind, &pattern(43, 517), RelayConfig::default()).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let want_at_b = tunnel.expected_at(side_b, &first);
    let want_at_a = tunnel.expected_at(side_a, &b_all);
    let want_traffic = tunnel.traffic(side_a, first.len(), b_all.len());
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    send(&mut a, &first, "a sends").await;
    half_close(&mut a, "a half-closes").await;
    let at_b = read_to_eof(
        &mut b,
        "b reads a's data and sees EOF while b is still open",
    )
    .await;
    assert_bytes("received by b", &at_b, &want_at_b);
    assert!(
        relay.is_running(),
        "relay returned while b -> a was still open"
    );

    // Data keeps flowing the other way after the half-close.
    send(&mut b, &opening, "b sends after a's half-close").await;
    let head_len = want_at_a.len() - body.len();
    let head = read_exactly(&mut a, head_len, "a reads b's first chunk").await;
    assert_bytes("first chunk received by a", &head, &want_at_a[..head_len]);
    assert!(
        relay.is_running(),
        "relay returned while b -> a was still open"
    );

    let body_ref = &body;
    let b_part = async move {
        send(&mut b, body_ref, "b sends the body").await;
        if b_closes_by_drop {
            drop(b);
            None
        } else {
            half_close(&mut b, "b half-closes").await;
            Some(b)
        }
    };
    let (b_kept, rest) = tokio::join!(b_part, read_to_eof(&mut a, "a reads the body to EOF"));
    assert_bytes("body received by a", &rest, &want_at_a[head_len..]);

    assert_eq!(relay.expect_ok().await, want_traffic);
    // Both peers held their sockets open (only half-closed) until the relay returned.
    drop((a, b_kept));
}

/// `a` sends, half-closes; `b` sees EOF, then sends a large body and half-closes.
async fn half_close_then_body(kind: Kind, roles: Roles) {
    run(kind, roles, 1000, false).await;
}

/// `a` half-closes without sending anything (with `a` the client the upstream still gets
/// the prefix, then EOF).
async fn half_close_without_data(kind: Kind, roles: Roles) {
    run(kind, roles, 0, false).await;
}

/// `b` ends by closing its socket entirely (after reading to EOF, so with a FIN, not a
/// reset), as a server does after its response.
async fn half_close_then_peer_closes(kind: Kind, roles: Roles) {
    run(kind, roles, 1000, true).await;
}

const MIB: u64 = 1024 * 1024;

/// `b` streams to `a` from the start; meanwhile `a` sends 1 MiB and half-closes. `b`
/// reads `a`'s bytes and then EOF while its own stream is still going (the relay still
/// running); only then does `b` send the bulk of its stream, 6 MiB after the FIN, and
/// half-close. Every byte arrives and the counts are exact.
async fn fin_while_streaming(kind: Kind, roles: Roles) {
    const A_LEN: u64 = MIB + 11;
    const B_BEFORE: u64 = 2 * MIB;
    const B_LEN: u64 = 8 * MIB + 3;
    let tunnel = Tunnel::start(kind, &pattern(44, 517), RelayConfig::default()).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let head_at_a = tunnel.expected_at(side_a, &[]);
    let head_at_b = tunnel.expected_at(side_b, &[]);
    let want_traffic = tunnel.traffic(side_a, A_LEN as usize, B_LEN as usize);
    let (client, upstream, relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);
    let (mut a_read, mut a_write) = a.split();
    let (mut b_read, mut b_write) = b.split();
    let (eof_seen, wait_for_eof) = tokio::sync::oneshot::channel::<()>();
    let relay_ref = &relay;

    let ((), (), at_a, ()) = tokio::join!(
        async {
            send_stream(&mut a_write, 45, 0..A_LEN, "a sends").await;
            half_close(&mut a_write, "a half-closes").await;
        },
        async {
            send_stream(&mut b_write, 46, 0..B_BEFORE, "b streams before a's FIN").await;
            within("b to see a's FIN", wait_for_eof).await.unwrap();
            send_stream(&mut b_write, 46, B_BEFORE..B_LEN, "b streams after a's FIN").await;
            half_close(&mut b_write, "b half-closes").await;
        },
        receive_stream(
            &mut a_read,
            Expect::new(&head_at_a, 46),
            End::Eof,
            "a reads b's stream"
        ),
        async {
            let at_b = receive_stream(
                &mut b_read,
                Expect::new(&head_at_b, 45),
                End::Eof,
                "b reads a's bytes and FIN",
            )
            .await;
            assert_eq!(at_b, A_LEN, "stream length received by b");
            assert!(
                relay_ref.is_running(),
                "relay returned while b -> a was still open"
            );
            eof_seen.send(()).unwrap();
        },
    );
    assert_eq!(at_a, B_LEN, "stream length received by a");
    let mut relay = relay;
    assert_eq!(relay.expect_ok().await, want_traffic);
    drop((a, b));
}

/// All four sockets have small fixed buffers. `a` sends 4 MiB and half-closes while `b`
/// does not read yet (until `a` is done or a little while has passed), so the relay meets
/// `a`'s EOF with bytes still in its buffer or pipe toward `b`; they must all reach `b`
/// before the FIN. Then `b`, not closed yet, streams 4 MiB back and half-closes.
async fn fin_with_full_pipe(kind: Kind, roles: Roles) {
    const A_LEN: u64 = 4 * MIB + 1;
    const B_LEN: u64 = 4 * MIB + 2;
    let tunnel = Sockets::with_buffers(64 * 1024).await.start(
        kind,
        &pattern(47, 517),
        RelayConfig::default(),
    );
    let (side_a, side_b) = (roles.a(), roles.b());
    let head_at_a = tunnel.expected_at(side_a, &[]);
    let head_at_b = tunnel.expected_at(side_b, &[]);
    let want_traffic = tunnel.traffic(side_a, A_LEN as usize, B_LEN as usize);
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);
    let (mut a_read, mut a_write) = a.split();

    let (a_done, a_done_rx) = tokio::sync::oneshot::channel::<()>();
    let ((), at_b) = tokio::join!(
        async {
            send_stream(&mut a_write, 48, 0..A_LEN, "a sends").await;
            half_close(&mut a_write, "a half-closes").await;
            a_done.send(()).ok();
        },
        async {
            // Not a timing assertion: only lets the pipe and the buffers fill first.
            tokio::time::timeout(Duration::from_millis(300), a_done_rx)
                .await
                .ok();
            receive_stream(
                &mut b,
                Expect::new(&head_at_b, 48),
                End::Eof,
                "b reads to EOF",
            )
            .await
        },
    );
    assert_eq!(at_b, A_LEN, "stream length received by b");
    assert!(
        relay.is_running(),
        "relay returned while b -> a was still open"
    );

    let ((), at_a) = tokio::join!(
        async {
            send_stream(&mut b, 49, 0..B_LEN, "b streams back").await;
            half_close(&mut b, "b half-closes").await;
        },
        receive_stream(
            &mut a_read,
            Expect::new(&head_at_a, 49),
            End::Eof,
            "a reads to EOF"
        ),
    );
    assert_eq!(at_a, B_LEN, "stream length received by a");
    assert_eq!(relay.expect_ok().await, want_traffic);
}

both_roles!(
    fin_while_streaming,
    fin_with_full_pipe,
    half_close_then_body,
    half_close_without_data,
    half_close_then_peer_closes
);
