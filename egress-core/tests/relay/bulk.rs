//! Bulk transfers both ways at once, peers that write before they read, buffer sizes
//! from 1 byte to 1 MiB, and messages on both sides of the page and pipe sizes; every
//! byte is checked and the counts are exact.
//!
//! Roles: `a` sends the first (larger, or differently sized) payload, `b` the second, so
//! the two runs swap which direction carries which size (a count reported for the wrong
//! direction fails).

use egress_core::relay::{RelayConfig, Traffic};

use crate::harness::{
    Kind, Roles, Tunnel, assert_bytes, exchange, expect_eof, half_close, pattern, read_exactly,
    send, with_buffer,
};

const MIB: usize = 1024 * 1024;

/// Both peers write and read at the same time, through a relay with `config`.
async fn both_ways(
    kind: Kind,
    roles: Roles,
    config: RelayConfig,
    a_len: usize,
    b_len: usize,
    prefix_len: usize,
) {
    let a_data = pattern(20, a_len);
    let b_data = pattern(21, b_len);
    let mut tunnel = Tunnel::start(kind, &pattern(22, prefix_len), config).await;
    let (client_data, upstream_data) = roles.pick(&a_data, &b_data);
    exchange(&mut tunnel, client_data, upstream_data).await;
}

/// 8 MiB each way (a few bytes more one way) at once: no deadlock, no byte lost.
async fn bulk_both_ways(kind: Kind, roles: Roles) {
    both_ways(
        kind,
        roles,
        RelayConfig::default(),
        8 * MIB,
        8 * MIB + 4097,
        517,
    )
    .await;
}

/// A 1-byte buffer.
async fn one_byte_buffer(kind: Kind, roles: Roles) {
    both_ways(kind, roles, with_buffer(1), 16 * 1024 + 3, 9 * 1024 + 1, 33).await;
}

/// A 7-byte buffer (sizes not multiples of it).
async fn seven_byte_buffer(kind: Kind, roles: Roles) {
    both_ways(kind, roles, with_buffer(7), 200 * 1024, 150 * 1024 + 1, 100).await;
}

/// A buffer larger than the kernel hands over in one read.
async fn large_buffer(kind: Kind, roles: Roles) {
    both_ways(kind, roles, with_buffer(MIB), 3 * MIB + 1, 2 * MIB, 517).await;
}

/// One byte each way, nothing else.
async fn one_byte_each_way(kind: Kind, roles: Roles) {
    both_ways(kind, roles, RelayConfig::default(), 1, 1, 1).await;
}

/// Both peers write everything before reading anything (without half-closing): the relay
/// must move both directions while neither peer reads yet and neither has closed. The
/// payloads are small enough to fit in the kernel buffers, so only the relay can deadlock.
async fn write_before_read(kind: Kind, roles: Roles) {
    let a_data = pattern(30, 32 * 1024);
    let b_data = pattern(31, 32 * 1024 - 5);
    let mut tunnel = Tunnel::start(kind, &pattern(32, 517), RelayConfig::default()).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let want_at_a = tunnel.expected_at(side_a, &b_data);
    let want_at_b = tunnel.expected_at(side_b, &a_data);
    let want_traffic: Traffic = tunnel.traffic(side_a, a_data.len(), b_data.len());

    let (a, b) = tunnel.peers(roles);
    send(a, &a_data, "a sends before reading").await;
    send(b, &b_data, "b sends before reading").await;
    let at_a = read_exactly(a, want_at_a.len(), "a reads").await;
    let at_b = read_exactly(b, want_at_b.len(), "b reads").await;
    assert_bytes("received by a", &at_a, &want_at_a);
    assert_bytes("received by b", &at_b, &want_at_b);
    half_close(a, "a half-closes").await;
    expect_eof(b, "b sees a's FIN").await;
    half_close(b, "b half-closes").await;
    expect_eof(a, "a sees b's FIN").await;

    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}

/// Ping-pong over one tunnel with sizes on both sides of the page and pipe sizes (4 KiB,
/// 64 KiB, 128 KiB) and past a MiB: `a` sends a message, `b` reads exactly it, answers with
/// one byte more, `a` reads exactly that; no byte lost, repeated or held back at a
/// boundary, and the counts are exact.
async fn pipe_boundaries(kind: Kind, roles: Roles) {
    const SIZES: [usize; 10] = [
        1,
        4095,
        4096,
        4097,
        65535,
        65536,
        65537,
        131_072,
        131_075,
        MIB + 1,
    ];
    let mut tunnel = Tunnel::start(kind, &pattern(33, 517), RelayConfig::default()).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let a_total: usize = SIZES.iter().sum();
    let b_total = a_total + SIZES.len();
    let want_traffic = tunnel.traffic(side_a, a_total, b_total);
    let mut head_at_a = tunnel.expected_at(side_a, &[]);
    let mut head_at_b = tunnel.expected_at(side_b, &[]);

    let (a, b) = tunnel.peers(roles);
    for (i, size) in (0..).zip(SIZES) {
        let message = pattern(300 + 2 * i, size);
        let answer = pattern(301 + 2 * i, size + 1);
        let want_at_b = [std::mem::take(&mut head_at_b), message.clone()].concat();
        let want_at_a = [std::mem::take(&mut head_at_a), answer.clone()].concat();
        let ((), at_b) = tokio::join!(
            send(a, &message, "a sends"),
            read_exactly(b, want_at_b.len(), "b reads")
        );
        assert_bytes(
            &format!("message {i} ({size} bytes) at b"),
            &at_b,
            &want_at_b,
        );
        let ((), at_a) = tokio::join!(
            send(b, &answer, "b answers"),
            read_exactly(a, want_at_a.len(), "a reads")
        );
        assert_bytes(
            &format!("answer {i} ({} bytes) at a", size + 1),
            &at_a,
            &want_at_a,
        );
    }
    half_close(a, "a half-closes").await;
    expect_eof(b, "b sees a's FIN").await;
    half_close(b, "b half-closes").await;
    expect_eof(a, "a sees b's FIN").await;
    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}

both_roles!(
    pipe_boundaries,
    bulk_both_ways,
    one_byte_buffer,
    seven_byte_buffer,
    large_buffer,
    one_byte_each_way,
    write_before_read,
);
