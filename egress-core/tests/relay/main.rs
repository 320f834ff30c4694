//! Tests for the bidirectional relay in `egress_core::relay`, written from the
//! specification (not from the implementation), over real loopback TCP only.
//!
//! Every tunnel is two connected loopback pairs, the "client" pair and the "upstream"
//! pair; the relay runs in a spawned task between the proxy-side ends and drops them when
//! it returns. The tests drive the other ends, the client peer and the upstream peer.
//!
//! - `prefix`: the prefix reaches the upstream first, byte-identical, exactly once, then
//!   the client's data; also when larger than the buffer, when the client's data is
//!   already waiting before the relay starts, and when the client never sends.
//! - `bulk`: megabytes both ways at once, peers that write before they read, and tiny
//!   (1 and 7 byte) and large buffers; every byte checked and the counts exact.
//! - `half_close`: a FIN one way is propagated while data keeps flowing the other way,
//!   and the relay returns `Ok` with exact counts once both ways have closed.
//! - `idle`: a silent tunnel is closed with `ErrorKind::Idle` and the counts so far, a
//!   trickle in one direction keeps it open.
//! - `reset`: a peer that resets (RST) ends the relay with `ErrorKind::Io` naming that
//!   peer's side, with counts bounded by what was observably sent and received, also
//!   mid-transfer both ways and while the relay drains bytes after a FIN.
//! - `large`: tens of MiB both ways at once and a prefix larger than the socket buffers,
//!   verified on the fly against a deterministic stream.
//! - `backpressure`: a reader that stops reading stalls the sender (the relay does not
//!   buffer without bound) while the other direction still flows; everything arrives once
//!   it reads again; and a waiting relay does not spin.
//! - `pool`: the pipe budget of the splice relay: tunnels past it fall back to the copy
//!   for their whole life, at most `max_pipes` pipes ever exist, no pipe is made before
//!   the first byte and an idle tunnel holds none, pipes shared between tunnels never
//!   carry a stale byte, the budget comes back when tunnels end (also by an error), and
//!   pipes are close-on-exec and closed with the pool.
//! - `streams`: helpers to send and check streams too large to hold in memory.
//!
//! Scenarios are written for two peers `a` and `b` and each runs twice through
//! [`both_roles!`]: once with `a` the client (`…::client_is_a`) and once with `a` the
//! upstream (`…::upstream_is_a`), and that for each relay (`harness::Kind`): the generic
//! `relay` (`…::copy::…`), `relay_tcp` without pipes (`…::tcp_copy::…`) and `relay_tcp`
//! with a pipe pool (`…::splice::…`). A splice tunnel the harness starts gets a pool of its
//! own, and when its relay returns the harness checks through the pool's stats that it
//! really spliced and gave back its reservation and pipes, so a splice test cannot
//! silently test the copy. Every wait is bounded by `harness::LIMIT` (or a stated longer
//! bound for the big transfers), so a relay that hangs fails a test instead of hanging it;
//! no assertion is about speed (the one about CPU is that a quiet tunnel keeps its
//! runtime mostly parked).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Declares, for each `async fn scenario(kind: Kind, roles: Roles)` named, a module of the
/// same name with one module per relay kind (`copy`, `tcp_copy`, `splice`), each with two
/// tests: `client_is_a` and `upstream_is_a`.
macro_rules! both_roles {
    (@kind $scenario:ident, $module:ident, $kind:ident) => {
        mod $module {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn client_is_a() {
                super::super::$scenario(
                    $crate::harness::Kind::$kind,
                    $crate::harness::Roles::ClientIsA,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn upstream_is_a() {
                super::super::$scenario(
                    $crate::harness::Kind::$kind,
                    $crate::harness::Roles::UpstreamIsA,
                )
                .await;
            }
        }
    };
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                both_roles!(@kind $scenario, copy, Copy);
                both_roles!(@kind $scenario, tcp_copy, TcpCopy);
                both_roles!(@kind $scenario, splice, Splice);
            }
        )*
    };
}

/// Declares, for each `async fn scenario(kind: Kind)` named (scenarios that are not
/// symmetric), a module of the same name with one test per relay kind: `copy`, `tcp_copy`,
/// `splice`.
macro_rules! each_kind {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn copy() {
                    super::$scenario($crate::harness::Kind::Copy).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn tcp_copy() {
                    super::$scenario($crate::harness::Kind::TcpCopy).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn splice() {
                    super::$scenario($crate::harness::Kind::Splice).await;
                }
            }
        )*
    };
}

/// Declares, for each `async fn scenario(roles: Roles)` named (scenarios about the pipe
/// pool, which only the splice relay has), a module of the same name with a `splice`
/// module holding `client_is_a` and `upstream_is_a`.
macro_rules! splice_both_roles {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                mod splice {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn client_is_a() {
                        super::super::$scenario($crate::harness::Roles::ClientIsA).await;
                    }

                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn upstream_is_a() {
                        super::super::$scenario($crate::harness::Roles::UpstreamIsA).await;
                    }
                }
            }
        )*
    };
}

mod backpressure;
mod bulk;
mod half_close;
mod harness;
mod idle;
mod large;
mod pool;
mod prefix;
mod reset;
mod streams;
