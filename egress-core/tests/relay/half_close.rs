//! Half-close: a FIN one way is propagated while data keeps flowing the other way.
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

use egress_core::relay::RelayConfig;

use crate::harness::{
    Roles, Tunnel, assert_bytes, half_close, pattern, read_exactly, read_to_eof, send,
};

const BODY_LEN: usize = 4 * 1024 * 1024;

async fn run(roles: Roles, first_len: usize, b_closes_by_drop: bool) {
    let first = pattern(40, first_len);
    let opening = pattern(41, 1000);
    let body = pattern(42, BODY_LEN);
    let b_all = [opening.as_slice(), body.as_slice()].concat();

    let tunnel = Tunnel::start(&pattern(43, 517), RelayConfig::default()).await;
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
async fn half_close_then_body(roles: Roles) {
    run(roles, 1000, false).await;
}

/// `a` half-closes without sending anything (with `a` the client the upstream still gets
/// the prefix, then EOF).
async fn half_close_without_data(roles: Roles) {
    run(roles, 0, false).await;
}

/// `b` ends by closing its socket entirely (after reading to EOF, so with a FIN, not a
/// reset), as a server does after its response.
async fn half_close_then_peer_closes(roles: Roles) {
    run(roles, 1000, true).await;
}

both_roles!(
    half_close_then_body,
    half_close_without_data,
    half_close_then_peer_closes
);
