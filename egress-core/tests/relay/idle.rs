//! Idle timeout: a tunnel that carries no byte in either direction for the idle timeout is
//! closed with `ErrorKind::Idle` and the counts so far; one that carries a byte now and
//! then, in one direction only, stays open.
//!
//! These tests use a short idle timeout (200 ms). The only timing assertions are that the
//! relay does not close a tunnel before it has been silent for the timeout, and that a
//! byte every 50 ms keeps it open; every wait is bounded.

use std::time::{Duration, Instant};

use egress_core::relay::{ErrorKind, Side, Traffic};

use crate::streams::{End, Expect, receive_stream, send_stream};

use crate::harness::{
    Kind, Relay, Roles, Tunnel, assert_bytes, expect_closed, expect_eof, half_close, pattern,
    read_exactly, read_to_eof, send, with_idle,
};

const IDLE: Duration = Duration::from_millis(200);
/// Allowance for timer granularity when checking that the relay waited the whole timeout.
const TIMER_SLACK: Duration = Duration::from_millis(10);
const TRICKLE_GAP: Duration = Duration::from_millis(50);
/// 12 bytes 50 ms apart: about 600 ms, three idle timeouts.
const TRICKLE_BYTES: u8 = 12;

/// The relay must end with `Idle`, no earlier than `IDLE` after `quiet_since`, with
/// exactly `want` as counts.
async fn expect_idle(relay: &mut Relay, quiet_since: Instant, want: Traffic) {
    let error = relay.expect_err().await;
    let waited = quiet_since.elapsed();
    match error.kind {
        ErrorKind::Idle(after) => assert!(
            after >= IDLE,
            "Idle({after:?}) is shorter than the {IDLE:?} timeout"
        ),
        other => panic!("expected ErrorKind::Idle, got {other:?}"),
    }
    assert_eq!(error.traffic, want, "counts reported with the idle error");
    assert!(
        waited + TIMER_SLACK >= IDLE,
        "closed after only {waited:?} of silence (idle timeout {IDLE:?})"
    );
}

/// A few exchanges both ways, 100 ms apart (so the last byte moves well after the relay
/// started and after its first idle deadline would have been), then silence: `Idle` with
/// the exact counts, then both peers see their connection closed. Roles: `a` speaks
/// first, `b` answers last.
async fn idle_closes(kind: Kind, roles: Roles) {
    const ROUNDS: u64 = 3;
    const A_LEN: usize = 100;
    const B_LEN: usize = 50;
    let tunnel = Tunnel::start(kind, &pattern(52, 517), with_idle(IDLE)).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let want_traffic = tunnel.traffic(side_a, ROUNDS as usize * A_LEN, ROUNDS as usize * B_LEN);
    // What each peer reads in a round: the prefix comes first, to the upstream, in round 0.
    let prefix = tunnel.prefix.clone();
    let expected_at = |side: Side, data: &[u8], round: u64| {
        if round == 0 && side == Side::Upstream {
            [prefix.as_slice(), data].concat()
        } else {
            data.to_vec()
        }
    };
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    let mut quiet_since = Instant::now();
    for round in 0..ROUNDS {
        if round > 0 {
            tokio::time::sleep(IDLE / 2).await;
            assert!(
                relay.is_running(),
                "relay returned after {:?} of silence",
                IDLE / 2
            );
        }
        let a_data = pattern(50 + 10 * round, A_LEN);
        let b_data = pattern(51 + 10 * round, B_LEN);
        let want_at_b = expected_at(side_b, &a_data, round);
        let want_at_a = expected_at(side_a, &b_data, round);
        send(&mut a, &a_data, "a sends").await;
        let at_b = read_exactly(&mut b, want_at_b.len(), "b reads").await;
        assert_bytes("received by b", &at_b, &want_at_b);
        // The relay moves b's bytes after this instant, so its silence starts later.
        quiet_since = Instant::now();
        send(&mut b, &b_data, "b answers").await;
        let at_a = read_exactly(&mut a, want_at_a.len(), "a reads").await;
        assert_bytes("received by a", &at_a, &want_at_a);
    }

    expect_idle(&mut relay, quiet_since, want_traffic).await;
    expect_closed(&mut a, "a after the idle close").await;
    expect_closed(&mut b, "b after the idle close").await;
}

/// `a` sends and half-closes, `b` stays open but silent: one direction closed and the
/// other silent is still idle.
async fn idle_after_half_close(kind: Kind, roles: Roles) {
    let a_data = pattern(53, 300);
    let tunnel = Tunnel::start(kind, &pattern(54, 517), with_idle(IDLE)).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let want_at_b = tunnel.expected_at(side_b, &a_data);
    // The prefix, if `a` is the upstream.
    let want_at_a = tunnel.expected_at(side_a, &[]);
    let want_traffic = tunnel.traffic(side_a, a_data.len(), 0);
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    let quiet_since = Instant::now();
    send(&mut a, &a_data, "a sends").await;
    half_close(&mut a, "a half-closes").await;
    let at_b = read_to_eof(&mut b, "b reads to EOF").await;
    assert_bytes("received by b", &at_b, &want_at_b);
    let at_a = read_exactly(&mut a, want_at_a.len(), "a reads the prefix, if any").await;
    assert_bytes("received by a", &at_a, &want_at_a);

    expect_idle(&mut relay, quiet_since, want_traffic).await;
    expect_closed(&mut a, "a after the idle close").await;
    expect_closed(&mut b, "b after the idle close").await;
}

/// Only the prefix moves: `Idle` with the prefix counted. (Not symmetric: the prefix
/// only goes to the upstream.)
async fn idle_prefix_only(kind: Kind) {
    let prefix = pattern(55, 517);
    let quiet_since = Instant::now();
    let Tunnel {
        mut client,
        mut upstream,
        mut relay,
        ..
    } = Tunnel::start(kind, &prefix, with_idle(IDLE)).await;
    let at_upstream = read_exactly(&mut upstream, prefix.len(), "upstream reads the prefix").await;
    assert_bytes("received by the upstream", &at_upstream, &prefix);

    let want = Traffic {
        client_to_upstream: prefix.len() as u64,
        upstream_to_client: 0,
    };
    expect_idle(&mut relay, quiet_since, want).await;
    expect_closed(&mut client, "client after the idle close").await;
    expect_closed(&mut upstream, "upstream after the idle close").await;
}

/// `a` sends one byte every 50 ms for about 600 ms while `b` stays silent, idle timeout
/// 200 ms: the tunnel stays open. With `b_closed_first`, `b` has half-closed before the
/// trickle starts. Then both close normally: `Ok` with exact counts.
async fn trickle(kind: Kind, roles: Roles, b_closed_first: bool) {
    let tunnel = Tunnel::start(kind, &pattern(56, 517), with_idle(IDLE)).await;
    let side_a = roles.a();
    let want_traffic = tunnel.traffic(side_a, usize::from(TRICKLE_BYTES), 0);
    let prefix = tunnel.prefix.clone();
    let (client, mut upstream, mut relay) = tunnel.into_parts();
    let at_upstream = read_exactly(&mut upstream, prefix.len(), "upstream reads the prefix").await;
    assert_bytes("prefix received by the upstream", &at_upstream, &prefix);
    let (mut a, mut b) = roles.pick(client, upstream);

    if b_closed_first {
        half_close(&mut b, "b half-closes").await;
        expect_eof(&mut a, "a sees b's FIN").await;
    }
    for i in 0..TRICKLE_BYTES {
        tokio::time::sleep(TRICKLE_GAP).await;
        assert!(
            relay.is_running(),
            "relay returned after {i} bytes sent {TRICKLE_GAP:?} apart (idle timeout {IDLE:?})"
        );
        send(&mut a, &[i], "a sends one byte").await;
        let got = read_exactly(&mut b, 1, "b reads the byte").await;
        assert_eq!(got, [i], "byte {i}");
    }

    half_close(&mut a, "a half-closes").await;
    expect_eof(&mut b, "b sees a's FIN").await;
    if !b_closed_first {
        half_close(&mut b, "b half-closes").await;
        expect_eof(&mut a, "a sees b's FIN").await;
    }
    assert_eq!(relay.expect_ok().await, want_traffic);
    drop((a, b));
}

/// A trickle one way keeps the tunnel open although the other way is silent.
async fn trickle_keeps_tunnel_open(kind: Kind, roles: Roles) {
    trickle(kind, roles, false).await;
}

/// Same after the other way has been closed (half-closed tunnel).
async fn trickle_after_half_close(kind: Kind, roles: Roles) {
    trickle(kind, roles, true).await;
}

/// 2 MiB each way (so pipes have carried data and been drained), each fully read, then
/// silence: `Idle` with the exact counts, then both peers see their connection closed.
async fn idle_after_bulk(kind: Kind, roles: Roles) {
    const LEN: u64 = 2 * 1024 * 1024;
    let tunnel = Tunnel::start(kind, &pattern(57, 517), with_idle(IDLE)).await;
    let (side_a, side_b) = (roles.a(), roles.b());
    let head_at_a = tunnel.expected_at(side_a, &[]);
    let head_at_b = tunnel.expected_at(side_b, &[]);
    let want_traffic = tunnel.traffic(side_a, LEN as usize, LEN as usize + 1);
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    let ((), at_b) = tokio::join!(
        send_stream(&mut a, 58, 0..LEN, "a sends"),
        receive_stream(&mut b, Expect::new(&head_at_b, 58), End::At(LEN), "b reads"),
    );
    assert_eq!(at_b, LEN);
    // The relay moves b's bytes after this instant, so its silence starts later.
    let quiet_since = Instant::now();
    let ((), at_a) = tokio::join!(
        send_stream(&mut b, 59, 0..LEN + 1, "b answers"),
        receive_stream(
            &mut a,
            Expect::new(&head_at_a, 59),
            End::At(LEN + 1),
            "a reads"
        ),
    );
    assert_eq!(at_a, LEN + 1);

    expect_idle(&mut relay, quiet_since, want_traffic).await;
    expect_closed(&mut a, "a after the idle close").await;
    expect_closed(&mut b, "b after the idle close").await;
}

both_roles!(
    idle_after_bulk,
    idle_closes,
    idle_after_half_close,
    trickle_keeps_tunnel_open,
    trickle_after_half_close
);

each_kind!(idle_prefix_only);
