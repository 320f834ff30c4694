//! Large transfers: tens of MiB both ways at once, and a prefix larger than the socket
//! buffers; every byte is checked on the fly against the pattern stream it came from and
//! the counts are exact.
//!
//! Roles: `a` sends the (slightly) longer stream, so the two runs swap which direction
//! carries which length and a count reported for the wrong direction fails.

use egress_core::relay::{RelayConfig, Side};

use crate::harness::{
    Kind, Roles, Sockets, Tunnel, assert_bytes, half_close, pattern, read_to_eof, send,
};
use crate::streams::{End, Expect, receive_stream, send_stream};

const MIB: u64 = 1024 * 1024;

/// Each way at once: far beyond any socket or pipe buffer, and small enough that the six
/// runs of this scenario (three relays, two roles) take a few seconds in a debug build.
const EACH_WAY: u64 = 32 * MIB;

/// `a` sends `EACH_WAY + 3` bytes and `b` `EACH_WAY - 5` at the same time, each
/// half-closing after its last byte and reading the other's stream to EOF.
async fn large_both_ways(kind: Kind, roles: Roles) {
    let (a_len, b_len) = (EACH_WAY + 3, EACH_WAY - 5);
    let mut tunnel = Tunnel::start(kind, &pattern(72, 517), RelayConfig::default()).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let head_at_a = tunnel.expected_at(side_a, &[]);
    let head_at_b = tunnel.expected_at(side_b, &[]);
    let want_traffic = tunnel.traffic(side_a, a_len as usize, b_len as usize);

    let (a, b) = tunnel.peers(roles);
    let (mut a_read, mut a_write) = a.split();
    let (mut b_read, mut b_write) = b.split();
    let ((), (), at_a, at_b) = tokio::join!(
        async {
            send_stream(&mut a_write, 70, 0..a_len, "a streams").await;
            half_close(&mut a_write, "a half-closes").await;
        },
        async {
            send_stream(&mut b_write, 71, 0..b_len, "b streams").await;
            half_close(&mut b_write, "b half-closes").await;
        },
        receive_stream(
            &mut a_read,
            Expect::new(&head_at_a, 71),
            End::Eof,
            "a reads b's stream"
        ),
        receive_stream(
            &mut b_read,
            Expect::new(&head_at_b, 70),
            End::Eof,
            "b reads a's stream"
        ),
    );
    assert_eq!(
        (at_a, at_b),
        (b_len, a_len),
        "stream lengths received (by a, by b)"
    );
    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}

/// A 3 MiB prefix (far more than the upstream socket takes before the upstream reads)
/// with 32 KiB of client data already waiting when the relay starts, then 4 MiB more from
/// the client, while the upstream sends 4 MiB the other way at the same time: the
/// upstream reads the prefix, once, then the client's stream in order.
async fn huge_prefix_with_early_data(kind: Kind) {
    const EARLY: u64 = 32 * 1024;
    let prefix = pattern(73, 3 * MIB as usize + 1);
    let client_len = EARLY + 4 * MIB;
    let upstream_len = 4 * MIB + 7;

    let mut sockets = Sockets::new().await;
    send_stream(
        &mut sockets.client,
        74,
        0..EARLY,
        "client sends before the relay starts",
    )
    .await;
    let mut tunnel = sockets.start(kind, &prefix, RelayConfig::default());
    let want_traffic = tunnel.traffic(Side::Client, client_len as usize, upstream_len as usize);

    let (mut client_read, mut client_write) = tunnel.client.split();
    let (mut upstream_read, mut upstream_write) = tunnel.upstream.split();
    let ((), (), at_client, at_upstream) = tokio::join!(
        async {
            send_stream(&mut client_write, 74, EARLY..client_len, "client streams").await;
            half_close(&mut client_write, "client half-closes").await;
        },
        async {
            send_stream(&mut upstream_write, 75, 0..upstream_len, "upstream streams").await;
            half_close(&mut upstream_write, "upstream half-closes").await;
        },
        receive_stream(
            &mut client_read,
            Expect::new(&[], 75),
            End::Eof,
            "client reads"
        ),
        receive_stream(
            &mut upstream_read,
            Expect::new(&prefix, 74),
            End::Eof,
            "upstream reads the prefix, then the client's stream"
        ),
    );
    assert_eq!(
        (at_client, at_upstream),
        (upstream_len, client_len),
        "stream lengths received (by the client, by the upstream)"
    );
    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}

/// The upstream talks first and does not read until the client has its 4 MiB and its
/// FIN, while the relay still has a 3 MiB prefix to write to it: the relay must move the
/// upstream's bytes while the prefix waits (each direction on its own), then deliver the
/// prefix and the client's data once the upstream reads.
async fn upstream_talks_first_with_huge_prefix(kind: Kind) {
    let prefix = pattern(76, 3 * MIB as usize + 1);
    let upstream_len = 4 * MIB + 1;
    let client_data = pattern(77, 1000);
    let mut tunnel = Tunnel::start(kind, &prefix, RelayConfig::default()).await;
    let want_at_upstream = tunnel.expected_at(Side::Upstream, &client_data);
    let want_traffic = tunnel.traffic(Side::Client, client_data.len(), upstream_len as usize);

    let client = &mut tunnel.client;
    let upstream = &mut tunnel.upstream;
    let ((), at_client) = tokio::join!(
        async {
            send_stream(
                upstream,
                78,
                0..upstream_len,
                "upstream talks before reading",
            )
            .await;
            half_close(upstream, "upstream half-closes").await;
        },
        receive_stream(client, Expect::new(&[], 78), End::Eof, "client reads"),
    );
    assert_eq!(
        at_client, upstream_len,
        "stream length received by the client"
    );

    send(client, &client_data, "client answers").await;
    half_close(client, "client half-closes").await;
    let at_upstream = read_to_eof(upstream, "upstream reads").await;
    assert_bytes("received by the upstream", &at_upstream, &want_at_upstream);
    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}

both_roles!(large_both_ways);
each_kind!(
    huge_prefix_with_early_data,
    upstream_talks_first_with_huge_prefix
);
