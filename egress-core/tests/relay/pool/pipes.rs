//! The life of the pool's pipes: made on first data, not before; handed back when
//! drained, so an idle tunnel holds none; never handed back with a byte in them, also
//! when a tunnel ends by an error; close-on-exec, and closed with the pool.

use std::sync::Arc;
use std::time::Duration;

use egress_core::relay::{ErrorKind, PipePool, Side};

use super::{MIB, Sampler, check_quiescent, hello, stream_and_close, wait_for};
use crate::harness::{
    Kind, PIPE_SIZE, Roles, Sockets, Tunnel, expect_eof, half_close, is_connection_gone,
    show_stats, with_idle, with_pool,
};
use crate::streams::{End, Expect, receive_stream, send_stream, send_until_stalled};

/// A tunnel holds its reservation from the start, but a pipe is made only on first data:
/// after the relay has started (no prefix, no byte yet) and had time to settle, no pipe
/// exists in its pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pipe_before_first_byte() {
    let pool = Arc::new(PipePool::new(2, PIPE_SIZE));
    let mut tunnel = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    wait_for(&pool, "the tunnel's reservation", |s| s.splicing == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = pool.stats();
    assert_eq!(
        (stats.live, stats.in_use),
        (0, 0),
        "a pipe was made before the first byte: {}",
        show_stats(&stats)
    );
    hello(&mut tunnel, 3150).await;
    stream_and_close(tunnel, 3150, 64 * 1024).await;
}

/// Drained pipes outlive the tunnel that made them: tunnels one after another, as a
/// lightly loaded proxy sees them, make their pipes once, not once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_tunnels_reuse_the_pipes_of_earlier_ones() {
    let pool = Arc::new(PipePool::new(4, PIPE_SIZE));
    let mut made = None;
    for seed in [3300, 3310, 3320] {
        let mut tunnel = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
        hello(&mut tunnel, seed).await;
        stream_and_close(tunnel, seed, 256 * 1024).await;
        let stats = wait_for(&pool, "the tunnel's end", |s| s.splicing == 0).await;
        check_quiescent(&stats, 4);
        let live = *made.get_or_insert(stats.live);
        assert!(live > 0, "no pipe was ever made: {}", show_stats(&stats));
        assert_eq!(
            stats.live,
            live,
            "a later tunnel made pipes: {}",
            show_stats(&stats)
        );
        assert_eq!(
            stats.idle,
            live,
            "pipes not kept for reuse: {}",
            show_stats(&stats)
        );
    }
}

/// An idle tunnel holds no pipe. Before its first byte it holds its reservation but no
/// pipe is in use; after data both ways, each fully read, its pipes go back (`in_use`
/// drops to 0 while the relay runs) and stay back while it is idle; then data flows
/// again, intact, and the counts are exact.
async fn idle_tunnel_holds_no_pipe(roles: Roles) {
    const ROUND: u64 = MIB;
    const A_SEED: u64 = 3200;
    const B_SEED: u64 = 3201;
    // Two rounds each way; b's second one byte longer.
    let a_rounds = [0..ROUND, ROUND..2 * ROUND];
    let b_rounds = [0..ROUND, ROUND..2 * ROUND + 1];
    let pool = Arc::new(PipePool::new(2, PIPE_SIZE));
    let tunnel = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    let want_traffic = tunnel.traffic(roles.a(), 2 * ROUND as usize, 2 * ROUND as usize + 1);
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, mut b) = roles.pick(client, upstream);

    let stats = wait_for(&pool, "the tunnel's reservation", |s| s.splicing == 1).await;
    assert_eq!(
        stats.in_use,
        0,
        "a pipe in use before the first byte: {}",
        show_stats(&stats)
    );

    for (round, (a_range, b_range)) in a_rounds.into_iter().zip(b_rounds).enumerate() {
        let a_end = a_range.end;
        let ((), at_b) = tokio::join!(
            send_stream(&mut a, A_SEED, a_range.clone(), "a sends"),
            receive_stream(
                &mut b,
                Expect::at(A_SEED, a_range.start),
                End::At(a_end),
                "b reads"
            ),
        );
        assert_eq!(at_b, a_end);
        let b_end = b_range.end;
        let ((), at_a) = tokio::join!(
            send_stream(&mut b, B_SEED, b_range.clone(), "b answers"),
            receive_stream(
                &mut a,
                Expect::at(B_SEED, b_range.start),
                End::At(b_end),
                "a reads"
            ),
        );
        assert_eq!(at_a, b_end);

        if round == 0 {
            let stats = wait_for(&pool, "the drained tunnel's pipes back", |s| s.in_use == 0).await;
            assert!(stats.live <= 2, "{}", show_stats(&stats));
            // Idle for a while: still no pipe in use, the relay still running.
            let sampler = Sampler::start(&pool);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let peaks = sampler.stop().await;
            assert_eq!(peaks.in_use, 0, "an idle tunnel took a pipe: {peaks:?}");
            assert!(relay.is_running(), "the relay returned while idle");
            let stats = pool.stats();
            assert_eq!(
                stats.splicing,
                1,
                "reservation lost while idle: {}",
                show_stats(&stats)
            );
        }
    }
    half_close(&mut a, "a half-closes").await;
    expect_eof(&mut b, "b sees a's FIN").await;
    half_close(&mut b, "b half-closes").await;
    expect_eof(&mut a, "a sees b's FIN").await;
    assert_eq!(relay.expect_ok().await, want_traffic);
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (1, 0),
        "{}",
        show_stats(&stats)
    );
    check_quiescent(&stats, 2);
}

/// A tunnel ends by an error while its pipe toward `b` is full (`b` stopped reading, all
/// sockets with small fixed buffers): by the idle timeout, or by `b` resetting. The pipe
/// may go back to the pool only empty: the next tunnel on the same pool splices (the
/// reservation came back) and gets no stale byte.
async fn no_stale_bytes_after_error(roles: Roles, by_reset: bool) {
    let pool = Arc::new(PipePool::new(2, PIPE_SIZE));
    let mut config = with_idle(Duration::from_millis(300));
    config.pipes = Some(Arc::clone(&pool));
    let tunnel = Sockets::with_buffers(64 * 1024)
        .await
        .start(Kind::Splice, &[], config);
    let (side_a, side_b) = (roles.a(), roles.b());
    let (client, upstream, mut relay) = tunnel.into_parts();
    let (mut a, b) = roles.pick(client, upstream);

    let (stuck_at, stalled) = send_until_stalled(
        &mut a,
        3300,
        0,
        64 * MIB,
        Duration::from_millis(100),
        "a sends, b never reads",
    )
    .await;
    assert!(
        stalled,
        "a wrote {stuck_at} bytes that b never read without blocking"
    );
    let error = if by_reset {
        b.set_zero_linger().unwrap();
        drop(b);
        relay.expect_err().await
    } else {
        let error = relay.expect_err().await;
        drop(b);
        error
    };
    match &error.kind {
        ErrorKind::Idle(_) if !by_reset => {}
        ErrorKind::Io(side, e) if by_reset && *side == side_b && is_connection_gone(e) => {}
        other => panic!("unexpected error {other:?} ({error})"),
    }
    let moved = match side_a {
        Side::Client => error.traffic.client_to_upstream,
        Side::Upstream => error.traffic.upstream_to_client,
    };
    assert!(
        moved <= stuck_at,
        "counted {moved} bytes, a sent {stuck_at}"
    );
    drop(a);
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (1, 0),
        "{}",
        show_stats(&stats)
    );
    check_quiescent(&stats, 2);

    let mut next = Tunnel::start(Kind::Splice, &[], with_pool(&pool)).await;
    hello(&mut next, 3310).await;
    stream_and_close(next, 3310, MIB).await;
    let stats = pool.stats();
    assert_eq!(
        (stats.spliced_total, stats.copied_total),
        (2, 0),
        "the next tunnel must splice: {}",
        show_stats(&stats)
    );
    check_quiescent(&stats, 2);
}

async fn no_stale_bytes_after_idle(roles: Roles) {
    no_stale_bytes_after_error(roles, false).await;
}

async fn no_stale_bytes_after_reset(roles: Roles) {
    no_stale_bytes_after_error(roles, true).await;
}

/// The pipe file descriptors open in this process: (fd, pipe inode, fdinfo flags).
#[cfg(target_os = "linux")]
fn open_pipes() -> Vec<(u32, String, u32)> {
    let mut pipes = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // The fd may close between listing and reading: skip it then.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        let Some(inode) = target.strip_prefix("pipe:") else {
            continue;
        };
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map(|octal| u32::from_str_radix(octal.trim(), 8).unwrap())
            .unwrap();
        pipes.push((fd, inode.to_owned(), flags));
    }
    pipes
}

/// Set in the environment of the child process that runs [`pipes_close_on_exec_and_closed`]
/// alone.
#[cfg(target_os = "linux")]
const ALONE: &str = "EGRESS_RELAY_TEST_ALONE";

/// The pool's pipes are opened close-on-exec (a C or Go host that forks must not
/// inherit them) and non-blocking, and they are closed once the pool is dropped.
///
/// The pipes are found in `/proc/self/fd`, so this must be the only test in its process:
/// it runs itself again in a child process (the test binary, this test only, one
/// thread) and checks that the child passed.
#[cfg(target_os = "linux")]
#[test]
fn pipes_close_on_exec_and_closed() {
    if std::env::var_os(ALONE).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(pipes_close_on_exec_and_closed_alone());
        return;
    }
    let module = module_path!().split_once("::").unwrap().1;
    let name = format!("{module}::pipes_close_on_exec_and_closed");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name.as_str(),
            "--exact",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the test alone in a child process failed:\n{stdout}\n{stderr}"
    );
}

/// [`pipes_close_on_exec_and_closed`], alone in its process: every pipe that appears is the
/// pool's. Pipes are looked at while a direction holds one (the upstream does not read).
#[cfg(target_os = "linux")]
async fn pipes_close_on_exec_and_closed_alone() {
    const O_NONBLOCK: u32 = 0o4000;
    const O_CLOEXEC: u32 = 0o2_000_000;
    let before: std::collections::HashSet<String> = open_pipes()
        .into_iter()
        .map(|(_, inode, _)| inode)
        .collect();
    let pool = Arc::new(PipePool::new(2, PIPE_SIZE));
    let tunnel = Sockets::with_buffers(64 * 1024)
        .await
        .start(Kind::Splice, &[], with_pool(&pool));
    let (mut client, mut upstream, mut relay) = tunnel.into_parts();

    let (stuck_at, stalled) = send_until_stalled(
        &mut client,
        3500,
        0,
        64 * MIB,
        Duration::from_millis(200),
        "client sends, upstream does not read",
    )
    .await;
    assert!(stalled, "the client never blocked");
    wait_for(&pool, "a pipe in use", |s| s.in_use >= 1).await;
    let new: Vec<_> = open_pipes()
        .into_iter()
        .filter(|(_, inode, _)| !before.contains(inode))
        .collect();
    assert!(
        !new.is_empty(),
        "no new pipe found while one is in use: {}",
        show_stats(&pool.stats())
    );
    for (fd, inode, flags) in &new {
        assert!(
            flags & O_CLOEXEC != 0,
            "pipe fd {fd} (inode {inode}) is not close-on-exec: flags {flags:o}"
        );
        assert!(
            flags & O_NONBLOCK != 0,
            "pipe fd {fd} (inode {inode}) is blocking: flags {flags:o}"
        );
    }

    half_close(&mut client, "client half-closes").await;
    let at_upstream = receive_stream(
        &mut upstream,
        Expect::new(&[], 3500),
        End::Eof,
        "upstream reads",
    )
    .await;
    assert_eq!(at_upstream, stuck_at);
    half_close(&mut upstream, "upstream half-closes").await;
    expect_eof(&mut client, "client sees the upstream's FIN").await;
    relay.expect_ok().await;
    drop(relay);
    assert_eq!(
        Arc::strong_count(&pool),
        1,
        "someone else still holds the pool"
    );
    drop(pool);

    let ours: std::collections::HashSet<_> =
        new.iter().map(|(_, inode, _)| inode.clone()).collect();
    let still_open: Vec<_> = open_pipes()
        .into_iter()
        .filter(|(_, inode, _)| ours.contains(inode))
        .collect();
    assert!(
        still_open.is_empty(),
        "pipes still open after the pool was dropped: {still_open:?}"
    );
}

splice_both_roles!(
    idle_tunnel_holds_no_pipe,
    no_stale_bytes_after_idle,
    no_stale_bytes_after_reset
);
