//! Backpressure: a reader that stops reading stalls the sender, because the relay holds
//! at most a bounded amount (a buffer or a pipe per direction) and the kernel's socket
//! buffers fill behind it; the relay must not read on and buffer without bound. The other
//! direction keeps flowing meanwhile, and once the reader reads again everything arrives,
//! in order, with exact counts.
//!
//! All four sockets of the tunnel have fixed buffers (`Sockets::with_buffers`), so what the
//! kernel can hold is bounded and small; the sender is stopped 64 MiB past the point
//! where the reader stopped, far beyond that. "Stalled" means one write made no progress
//! for half a second: a slow machine can only make that happen sooner, and the assertion
//! is on the bytes written, never on a duration.
//!
//! A relay that waits must not spin either: while a tunnel is quiet (drained, blocked on a
//! reader that does not read, or half-closed), the test's runtime must stay mostly
//! parked. That is measured with tokio's per-runtime worker busy time, so the tests
//! running in parallel do not count; the bound is a quarter of the quiet period (an idle
//! runtime shows microseconds), where a relay
//! that re-polls itself on `WouldBlock` keeps a worker busy all of it.
//!
//! Roles: `a` is the sender and `b` the reader that stops.

use std::time::Duration;

use egress_core::relay::RelayConfig;

use crate::harness::{
    Kind, Roles, Sockets, assert_bytes, expect_eof, half_close, pattern, read_exactly, send,
    show_stats,
};
use crate::streams::{End, Expect, receive_stream, send_stream, send_until_stalled};

const MIB: u64 = 1024 * 1024;
/// Socket buffer size asked for each of the four sockets (the kernel doubles it).
const SOCKET_BUFFER: u32 = 64 * 1024;
/// What `a` sends while `b` still reads.
const BEFORE_STOP: u64 = MIB;
/// How far past the stop `a` may get before the relay counts as buffering without bound.
const CAP: u64 = 64 * MIB;
/// A write that makes no progress for this long has stalled.
const STALL: Duration = Duration::from_millis(500);
/// What `a` sends after `b` resumes, on top of what was stuck.
const AFTER_RESUME: u64 = 4 * MIB;
const SEED: u64 = 80;

async fn slow_reader(kind: Kind, roles: Roles) {
    let tunnel = Sockets::with_buffers(SOCKET_BUFFER).await.start(
        kind,
        &pattern(82, 517),
        RelayConfig::default(),
    );
    let (side_a, side_b) = (roles.a(), roles.b());
    let reply = pattern(81, 10 * 1024);
    let head_at_b = tunnel.expected_at(side_b, &[]);
    let want_at_a = tunnel.expected_at(side_a, &reply);
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    // Both read and write while the stream starts.
    let ((), at_b) = tokio::join!(
        send_stream(&mut a, SEED, 0..BEFORE_STOP, "a sends while b reads"),
        receive_stream(
            &mut b,
            Expect::new(&head_at_b, SEED),
            End::At(BEFORE_STOP),
            "b reads"
        ),
    );
    assert_eq!(at_b, BEFORE_STOP);

    // b stops reading: a must stall long before CAP.
    let (stuck_at, stalled) = send_until_stalled(
        &mut a,
        SEED,
        BEFORE_STOP,
        BEFORE_STOP + CAP,
        STALL,
        "a sends while b does not read",
    )
    .await;
    assert!(
        stalled,
        "a wrote {} bytes after b stopped reading and never blocked: the relay buffers \
         without bound",
        stuck_at - BEFORE_STOP
    );
    assert!(relay.is_running(), "the relay returned while a was blocked");
    if let Some(stats) = relay.own_pool_stats() {
        assert!(
            stats.live <= 2 && stats.in_use <= 2,
            "more pipes than one tunnel's two: {}",
            show_stats(&stats)
        );
    }

    // The blocked direction does not hold up the other one.
    send(&mut b, &reply, "b sends while not reading").await;
    let at_a = read_exactly(&mut a, want_at_a.len(), "a reads b's bytes while blocked").await;
    assert_bytes(
        "received by a while its own direction is blocked",
        &at_a,
        &want_at_a,
    );

    // b reads again: everything a wrote, then what a writes now, then EOF.
    let total = stuck_at + AFTER_RESUME;
    let (mut b_read, mut b_write) = b.split();
    let ((), at_b) = tokio::join!(
        async {
            send_stream(&mut a, SEED, stuck_at..total, "a sends the rest").await;
            half_close(&mut a, "a half-closes").await;
        },
        receive_stream(
            &mut b_read,
            Expect::at(SEED, BEFORE_STOP),
            End::Eof,
            "b reads again, to EOF"
        ),
    );
    assert_eq!(at_b, total, "stream length received by b");
    half_close(&mut b_write, "b half-closes").await;
    expect_eof(&mut a, "a sees b's FIN").await;

    let traffic = relay.expect_ok().await;
    let (client_sent, upstream_sent) = roles.pick(total, reply.len() as u64);
    assert_eq!(
        (traffic.client_to_upstream, traffic.upstream_to_client),
        (517 + client_sent, upstream_sent),
        "counts"
    );
}

/// How long each quiet period of [`no_busy_wait`] lasts.
const QUIET: Duration = Duration::from_millis(300);

/// The busy time of this runtime's workers, summed.
fn busy() -> Duration {
    let metrics = tokio::runtime::Handle::current().metrics();
    (0..metrics.num_workers())
        .map(|worker| metrics.worker_total_busy_duration(worker))
        .sum()
}

/// Sleeps for [`QUIET`]; the runtime's workers must be busy for less than a quarter of it.
async fn expect_parked(what: &str) {
    let before = busy();
    tokio::time::sleep(QUIET).await;
    let used = busy().saturating_sub(before);
    assert!(
        used < QUIET / 4,
        "{what}: the runtime was busy {used:?} of {QUIET:?} while the tunnel was quiet: \
         the relay spins"
    );
}

/// Three quiet states, each checked with [`expect_parked`]: drained after data both ways;
/// `a` blocked because `b` does not read (the relay holds a full buffer or pipe it cannot
/// write); `a`'s FIN passed on while `b` stays silent. Then everything is read and the
/// counts are exact.
async fn no_busy_wait(kind: Kind, roles: Roles) {
    const FIRST: u64 = 256 * 1024;
    let tunnel = Sockets::with_buffers(SOCKET_BUFFER).await.start(
        kind,
        &pattern(83, 517),
        RelayConfig::default(),
    );
    let (side_a, side_b) = (roles.a(), roles.b());
    let head_at_a = tunnel.expected_at(side_a, &[]);
    let head_at_b = tunnel.expected_at(side_b, &[]);
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    let ((), at_b) = tokio::join!(
        send_stream(&mut a, 84, 0..FIRST, "a sends"),
        receive_stream(
            &mut b,
            Expect::new(&head_at_b, 84),
            End::At(FIRST),
            "b reads"
        ),
    );
    assert_eq!(at_b, FIRST);
    let ((), at_a) = tokio::join!(
        send_stream(&mut b, 85, 0..FIRST, "b answers"),
        receive_stream(
            &mut a,
            Expect::new(&head_at_a, 85),
            End::At(FIRST),
            "a reads"
        ),
    );
    assert_eq!(at_a, FIRST);
    expect_parked("open, drained").await;

    let (stuck_at, stalled) = send_until_stalled(
        &mut a,
        84,
        FIRST,
        FIRST + CAP,
        Duration::from_millis(200),
        "a sends while b does not read",
    )
    .await;
    assert!(stalled, "a never blocked while b did not read");
    expect_parked("a blocked, b not reading").await;

    half_close(&mut a, "a half-closes").await;
    let at_b = receive_stream(
        &mut b,
        Expect::at(84, FIRST),
        End::Eof,
        "b reads the rest and EOF",
    )
    .await;
    assert_eq!(at_b, stuck_at, "stream length received by b");
    expect_parked("a's FIN passed on, b silent").await;

    half_close(&mut b, "b half-closes").await;
    expect_eof(&mut a, "a sees b's FIN").await;
    let traffic = relay.expect_ok().await;
    let (client_sent, upstream_sent) = roles.pick(stuck_at, FIRST);
    assert_eq!(
        (traffic.client_to_upstream, traffic.upstream_to_client),
        (517 + client_sent, upstream_sent),
        "counts"
    );
}

both_roles!(slow_reader, no_busy_wait);
