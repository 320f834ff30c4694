//! Bulk transfers both ways at once, peers that write before they read, and buffer sizes
//! from 1 byte to 1 MiB; every byte is checked and the counts are exact.
//!
//! Roles: `a` sends the first (larger, or differently sized) payload, `b` the second, so
//! the two runs swap which direction carries which size (a count reported for the wrong
//! direction fails).

use egress_core::relay::{RelayConfig, Traffic};

use crate::harness::{
    Roles, Tunnel, assert_bytes, exchange, expect_eof, half_close, pattern, read_exactly, send,
    with_buffer,
};

const MIB: usize = 1024 * 1024;

/// Both peers write and read at the same time, through a relay with `config`.
async fn both_ways(
    roles: Roles,
    config: RelayConfig,
    a_len: usize,
    b_len: usize,
    prefix_len: usize,
) {
    let a_data = pattern(20, a_len);
    let b_data = pattern(21, b_len);
    let mut tunnel = Tunnel::start(&pattern(22, prefix_len), config).await;
    let (client_data, upstream_data) = roles.pick(&a_data, &b_data);
    exchange(&mut tunnel, client_data, upstream_data).await;
}

/// 8 MiB each way (a few bytes more one way) at once: no deadlock, no byte lost.
async fn bulk_both_ways(roles: Roles) {
    both_ways(roles, RelayConfig::default(), 8 * MIB, 8 * MIB + 4097, 517).await;
}

/// A 1-byte buffer.
async fn one_byte_buffer(roles: Roles) {
    both_ways(roles, with_buffer(1), 16 * 1024 + 3, 9 * 1024 + 1, 33).await;
}

/// A 7-byte buffer (sizes not multiples of it).
async fn seven_byte_buffer(roles: Roles) {
    both_ways(roles, with_buffer(7), 200 * 1024, 150 * 1024 + 1, 100).await;
}

/// A buffer larger than the kernel hands over in one read.
async fn large_buffer(roles: Roles) {
    both_ways(roles, with_buffer(MIB), 3 * MIB + 1, 2 * MIB, 517).await;
}

/// One byte each way, nothing else.
async fn one_byte_each_way(roles: Roles) {
    both_ways(roles, RelayConfig::default(), 1, 1, 1).await;
}

/// Both peers write everything before reading anything (without half-closing): the relay
/// must move both directions while neither peer reads yet and neither has closed. The
/// payloads are small enough to fit in the kernel buffers, so only the relay can deadlock.
async fn write_before_read(roles: Roles) {
    let a_data = pattern(30, 32 * 1024);
    let b_data = pattern(31, 32 * 1024 - 5);
    let mut tunnel = Tunnel::start(&pattern(32, 517), RelayConfig::default()).await;
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

both_roles!(
    bulk_both_ways,
    one_byte_buffer,
    seven_byte_buffer,
    large_buffer,
    one_byte_each_way,
    write_before_read,
);
