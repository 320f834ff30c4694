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
//!   peer's side, with counts bounded by what was observably sent and received.
//!
//! Scenarios are written for two peers `a` and `b` and each runs twice through
//! [`both_roles!`]: once with `a` the client (`…::client_is_a`) and once with `a` the
//! upstream (`…::upstream_is_a`). Every wait is bounded by `harness::LIMIT`, so a relay that
//! hangs fails a test instead of hanging it; no assertion is about speed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Declares, for each `async fn scenario(roles: Roles)` named, a module of the same name
/// with two tests: `client_is_a` and `upstream_is_a`.
macro_rules! both_roles {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn client_is_a() {
                    super::$scenario($crate::harness::Roles::ClientIsA).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn upstream_is_a() {
                    super::$scenario($crate::harness::Roles::UpstreamIsA).await;
                }
            }
        )*
    };
}

mod bulk;
mod half_close;
mod harness;
mod idle;
mod prefix;
mod reset;
