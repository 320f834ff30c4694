//! The pipe budget of the splice relay (`PipePool`): a tunnel splices only if it can
//! reserve two pipes when it starts and otherwise copies for its whole life; no more than
//! `max_pipes` pipes ever exist; reservations come back when tunnels end. `pipes` covers
//! the life of the pipes themselves.
//!
//! These tests share one pool between tunnels and check its stats themselves. Only what
//! the stats must say at a point where the tunnels are known to be in a given state is
//! asserted exactly; while tunnels run, the stats are sampled and held to the budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use egress_core::relay::{PipePool, PipeStats, Side};
use tokio::task::JoinSet;

use crate::harness::{
    Kind, LIMIT, PIPE_SIZE, Tunnel, assert_bytes, half_close, pattern, read_exactly, send,
    show_stats, with_pool, within,
};
use crate::streams::{End, Expect, receive_stream, send_stream};

mod pipes;

const MIB: u64 = 1024 * 1024;
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// The largest values seen by a [`Sampler`].
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    live: usize,
    in_use: usize,
    splicing: usize,
    samples: u64,
}

/// Samples a pool's stats every few milliseconds in a task of its own until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Peaks>,
}

impl Sampler {
    fn start(pool: &Arc<PipePool>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (pool, task_stop) = (Arc::clone(pool), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            let mut peaks = Peaks::default();
            loop {
                let stats = pool.stats();
                peaks.live = peaks.live.max(stats.live);
                peaks.in_use = peaks.in_use.max(stats.in_use);
                peaks.splicing = peaks.splicing.max(stats.splicing);
                peaks.samples += 1;
                if task_stop.load(Ordering::Relaxed) {
                    return peaks;
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        within("the sampler to stop", self.task).await.unwrap()
    }
}

/// Polls the pool until `done(stats)` (within [`LIMIT`]), returning those stats.
async fn wait_for(pool: &PipePool, what: &str, done: impl Fn(&PipeStats) -> bool) -> PipeStats {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let stats = pool.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for {what}: {}",
            show_stats(&stats)
        );
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// A quiescent pool (no tunnel running) must account for every pipe as idle.
#[track_caller]
fn check_quiescent(stats: &PipeStats, max_pipes: usize) {
    let show = show_stats(stats);
    assert_eq!(
        stats.splicing, 0,
        "reservations with no tunnel running: {show}"
    );
    assert_eq!(
        stats.in_use, 0,
        "pipes in use with no tunnel running: {show}"
    );
    assert!(
        stats.live <= max_pipes,
        "more pipes than the budget: {show}"
    );
    assert_eq!(
        stats.live, stats.idle,
        "live pipes neither in use nor idle: {show}"
    );
}

/// One small message each way, each read in full: afterwards the relay has surely
/// started (and decided between splice and copy) and neither side has closed.
async fn hello(tunnel: &mut Tunnel, seed: u64) {
    let up = pattern(seed, 100);
    let down = pattern(seed + 1, 100);
    let want_at_upstream = tunnel.expected_at(Side::Upstream, &up);
    send(&mut tunnel.client, &up, "client says hello").await;
    let got = read_exactly(
        &mut tunnel.upstream,
        want_at_upstream.len(),
        "upstream reads",
    )
    .await;
    assert_bytes("hello at the upstream", &got, &want_at_upstream);
    send(&mut tunnel.upstream, &down, "upstream says hello").await;
    let got = read_exactly(&mut tunnel.client, down.len(), "client reads").await;
    assert_bytes("hello at the client", &got, &down);
}

/// After [`hello`]: both peers stream `len` bytes (plus a few, differing per tunnel) at
/// once, half-close, read each other's stream to EOF; the relay returns the exact counts.
async fn stream_and_close(mut tunnel: Tunnel, seed: u64, len: u64) {
    let (up_len, down_len) = (len + seed % 7, len + seed % 5);
    let want = tunnel.traffic(Side::Client, 100 + up_len as usize, 100 + down_len as usize);
    let (mut client_read, mut client_write) = tunnel.client.split();
    let (mut upstream_read, mut upstream_write) = tunnel.upstream.split();
    let ((), (), at_client, at_upstream) = tokio::join!(
        async {
            send_stream(&mut client_write, seed + 2, 0..up_len, "client streams").await;
            half_close(&mut client_write, "client half-closes").await;
        },
        async {
            send_stream(
                &mut upstream_write,
                seed + 3,
                0..down_len,
                "upstream streams",
            )
            .await;
            half_close(&mut upstream_write, "upstream half-closes").await;
        },
        receive_stream(
            &mut client_read,
            Expect::new(&[], seed + 3),
            End::Eof,
            "client reads"
        ),
        receive_stream(
            &mut upstream_read,
            Expect::new(&[], seed + 2),
            End::Eof,
            "upstream reads"
        ),
    );
    assert_eq!(
        (at_client, at_upstream),
        (down_len, up_len),
        "tunnel {seed}: lengths"
    );
    assert_eq!(
        tunnel.relay.expect_ok().await,
        want,
        "tunnel {seed}: counts"
    );
}

/// 16 tunnels at once on a budget of 4 pipes (two splicing tunnels). All 16 are started
/// and have carried a byte each way before any ends, so exactly 2 hold a reservation and
/// 14 copy; then all stream 2 MiB each way at once while the stats are sampled: never
/// more than 4 pipes, 4 in use or 2 splicing tunnels; every byte arrives. At the end the
/// totals are 2 spliced and 14 copied, nothing is held, and a new tunnel splices again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_tunnels_than_pipes() {
    const MAX_PIPES: usize = 4;
    const TUNNELS: u64 = 16;
    let pool = Arc::new(PipePool::new(MAX_PIPES, PIPE_SIZE));
    let mut tunnels = Vec::new();
    for i in 0..TUNNELS {
        let mut tunnel = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
        hello(&mut tunnel, 1000 + 10 * i).await;
        tunnels.push(tunnel);
    }
    let stats = pool.stats();
    let show = show_stats(&stats);
    assert_eq!(
        stats.splicing, 2,
        "all 16 running, 4 pipes of budget: {show}"
    );
    assert!(stats.live <= MAX_PIPES, "{show}");
    assert!(stats.spliced_total <= 2, "{show}");

    let sampler = Sampler::start(&pool);
    let mut set = JoinSet::new();
    for (i, tunnel) in (0..).zip(tunnels) {
        set.spawn(stream_and_close(tunnel, 1000 + 10 * i, 2 * MIB));
    }
    while let Some(done) = within("a tunnel to finish", set.join_next()).await {
        done.unwrap();
    }
    let peaks = sampler.stop().await;
    assert!(
        peaks.live <= MAX_PIPES && peaks.in_use <= MAX_PIPES && peaks.splicing <= 2,
        "over budget while running: {peaks:?}"
    );

    let stats = pool.stats();
    let show = show_stats(&stats);
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (2, TUNNELS - 2),
        "two tunnels fit the budget, the others copy: {show}"
    );
    check_quiescent(&stats, MAX_PIPES);

    // The budget came back: a new tunnel splices.
    let mut tunnel = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    hello(&mut tunnel, 2000).await;
    stream_and_close(tunnel, 2000, MIB).await;
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (3, TUNNELS - 2),
        "a tunnel after the others ended: {}",
        show_stats(&stats)
    );
    check_quiescent(&stats, MAX_PIPES);
}

/// 16 tunnels at once on a budget of 32 pipes: all splice, their pipes go back to the
/// pool and to other tunnels as they drain and fill, and every tunnel's bytes arrive
/// intact (a pipe handed back with bytes in it, or to two directions at once, mixes
/// streams); never more than 32 pipes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_splicing_tunnels_share_pipes() {
    const MAX_PIPES: usize = 32;
    const TUNNELS: u64 = 16;
    let pool = Arc::new(PipePool::new(MAX_PIPES, PIPE_SIZE));
    let mut tunnels = Vec::new();
    for i in 0..TUNNELS {
        let mut tunnel = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
        hello(&mut tunnel, 4000 + 10 * i).await;
        tunnels.push(tunnel);
    }
    let sampler = Sampler::start(&pool);
    let mut set = JoinSet::new();
    for (i, tunnel) in (0..).zip(tunnels) {
        set.spawn(stream_and_close(tunnel, 4000 + 10 * i, 2 * MIB));
    }
    while let Some(done) = within("a tunnel to finish", set.join_next()).await {
        done.unwrap();
    }
    let peaks = sampler.stop().await;
    assert!(
        peaks.live <= MAX_PIPES && peaks.splicing <= TUNNELS as usize,
        "over budget while running: {peaks:?}"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (TUNNELS, 0),
        "all fit the budget: {}",
        show_stats(&stats)
    );
    check_quiescent(&stats, MAX_PIPES);
}

/// Budget for one splicing tunnel: `first` splices, `second` starts while `first` runs and
/// copies. After `first` ends, `second` moves 4 MiB each way and must not switch to
/// splicing (no pipe is ever in use, nothing more is counted as spliced), and its bytes
/// arrive intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_is_for_the_whole_tunnel() {
    let pool = Arc::new(PipePool::new(2, PIPE_SIZE));
    let mut first = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    hello(&mut first, 3000).await;
    let mut second = Tunnel::start(Kind::Splice, &pattern(3005, 517), with_pool(&pool)).await;
    hello(&mut second, 3010).await;
    let stats = pool.stats();
    assert_eq!(stats.splicing, 1, "one tunnel fits: {}", show_stats(&stats));

    stream_and_close(first, 3000, MIB).await;
    let stats = wait_for(&pool, "the first tunnel's reservation back", |s| {
        s.splicing == 0
    })
    .await;
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (1, 1),
        "{}",
        show_stats(&stats)
    );

    let sampler = Sampler::start(&pool);
    stream_and_close(second, 3010, 4 * MIB).await;
    let peaks = sampler.stop().await;
    assert_eq!(
        (peaks.in_use, peaks.splicing),
        (0, 0),
        "the copying tunnel used pipes after the splicing one ended: {peaks:?}"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (1, 1),
        "{}",
        show_stats(&stats)
    );
    check_quiescent(&stats, 2);
}

/// A budget of one pipe cannot hold a tunnel's two: the tunnel copies, and no pipe is
/// made. With three, one tunnel splices and a second one at the same time copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_below_two_pipes() {
    let pool = Arc::new(PipePool::new(1, PIPE_SIZE));
    let mut tunnel = Tunnel::start(Kind::Splice, &pattern(3105, 517), with_pool(&pool)).await;
    hello(&mut tunnel, 3100).await;
    stream_and_close(tunnel, 3100, MIB).await;
    let stats = pool.stats();
    let show = show_stats(&stats);
    assert_eq!((stats.spliced_total, stats.copied_total), (0, 1), "{show}");
    assert_eq!(stats.live, 0, "a pipe made with a budget of one: {show}");
    check_quiescent(&stats, 1);

    let pool = Arc::new(PipePool::new(3, PIPE_SIZE));
    let mut first = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    hello(&mut first, 3110).await;
    let mut second = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    hello(&mut second, 3120).await;
    let (sampler, ((), ())) = (
        Sampler::start(&pool),
        tokio::join!(
            stream_and_close(first, 3110, MIB),
            stream_and_close(second, 3120, MIB)
        ),
    );
    let peaks = sampler.stop().await;
    assert!(
        peaks.live <= 3 && peaks.splicing <= 1,
        "over budget: {peaks:?}"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (1, 1),
        "{}",
        show_stats(&stats)
    );
    check_quiescent(&stats, 3);
}
