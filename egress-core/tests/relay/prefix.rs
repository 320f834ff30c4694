//! The prefix reaches the upstream first, byte-identical and exactly once, followed by
//! the client's data.
//!
//! Roles: `a` is the peer that closes first. With `a` the client, the client half-closes
//! after its data and the upstream reads to EOF (so "exactly once" is "nothing after").
//! With `a` the upstream, the upstream reads exactly the expected bytes, answers and
//! half-closes, and only then does the client half-close; the upstream must then read EOF,
//! not a second copy of the prefix.

use egress_core::relay::{DEFAULT_BUFFER_SIZE, Side};

use crate::harness::{
    Kind, Roles, Sockets, assert_bytes, expect_eof, half_close, pattern, read_exactly, read_to_eof,
    send, with_buffer,
};

/// One prefix scenario.
#[derive(Debug, Clone, Copy)]
struct Case {
    prefix_len: usize,
    /// Bytes the client sends after the prefix.
    data_len: usize,
    buffer_size: usize,
    /// The client sends its data (and, if it closes first, its FIN) before the relay
    /// starts, so that it is already waiting on the socket when the relay begins.
    early: bool,
}

async fn run(kind: Kind, roles: Roles, case: Case) {
    let prefix = pattern(10, case.prefix_len);
    let data = pattern(11, case.data_len);
    let reply = pattern(12, 2000);
    let client_closes_first = roles == Roles::ClientIsA;

    let mut sockets = Sockets::new().await;
    if case.early {
        send(
            &mut sockets.client,
            &data,
            "client sends before the relay starts",
        )
        .await;
        if client_closes_first {
            half_close(
                &mut sockets.client,
                "client half-closes before the relay starts",
            )
            .await;
        }
    }
    let mut tunnel = sockets.start(kind, &prefix, with_buffer(case.buffer_size));
    let want_at_upstream = tunnel.expected_at(Side::Upstream, &data);
    let want_traffic = tunnel.traffic(Side::Client, data.len(), reply.len());

    let client = &mut tunnel.client;
    let upstream = &mut tunnel.upstream;
    let client_part = async {
        if !case.early {
            send(client, &data, "client sends").await;
            if client_closes_first {
                half_close(client, "client half-closes").await;
            }
        }
    };
    let upstream_part = async {
        if client_closes_first {
            read_to_eof(upstream, "upstream reads prefix, data and EOF").await
        } else {
            read_exactly(
                upstream,
                want_at_upstream.len(),
                "upstream reads prefix and data",
            )
            .await
        }
    };
    let ((), at_upstream) = tokio::join!(client_part, upstream_part);
    assert_bytes("received by the upstream", &at_upstream, &want_at_upstream);

    send(upstream, &reply, "upstream replies").await;
    half_close(upstream, "upstream half-closes").await;
    let at_client = read_to_eof(client, "client reads the reply").await;
    assert_bytes("received by the client", &at_client, &reply);
    if !client_closes_first {
        half_close(client, "client half-closes").await;
        expect_eof(upstream, "upstream: nothing after prefix and data").await;
    }

    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}

/// A ClientHello-sized prefix, then client data.
async fn small_prefix(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 517,
        data_len: 3000,
        buffer_size: DEFAULT_BUFFER_SIZE,
        early: false,
    };
    run(kind, roles, case).await;
}

/// A prefix bigger than the relay's buffer (40 KiB, buffer 16 KiB).
async fn large_prefix(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 40 * 1024,
        data_len: 100 * 1024,
        buffer_size: 16 * 1024,
        early: false,
    };
    run(kind, roles, case).await;
}

/// A prefix much bigger than a 7-byte buffer, not a multiple of it.
async fn large_prefix_tiny_buffer(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 40 * 1024 + 1,
        data_len: 1000,
        buffer_size: 7,
        early: false,
    };
    run(kind, roles, case).await;
}

/// The client's next bytes are already on the socket when the relay starts: the prefix
/// still goes first.
async fn early_client_data(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 517,
        data_len: 3000,
        buffer_size: DEFAULT_BUFFER_SIZE,
        early: true,
    };
    run(kind, roles, case).await;
}

/// Same with a prefix bigger than the buffer (the early data stays small enough to fit in
/// the kernel buffers before anyone reads).
async fn early_client_data_large_prefix(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 40 * 1024,
        data_len: 30 * 1024,
        buffer_size: 16 * 1024,
        early: true,
    };
    run(kind, roles, case).await;
}

/// The client sends nothing after the prefix: the upstream still gets the prefix without
/// waiting for the client (with `a` the upstream the client neither sends nor closes
/// until it has the reply).
async fn silent_client(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 517,
        data_len: 0,
        buffer_size: DEFAULT_BUFFER_SIZE,
        early: false,
    };
    run(kind, roles, case).await;
}

/// No prefix at all: the client's bytes are all the upstream gets.
async fn empty_prefix(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 0,
        data_len: 3000,
        buffer_size: DEFAULT_BUFFER_SIZE,
        early: false,
    };
    run(kind, roles, case).await;
}

/// No prefix and no client data.
async fn empty_prefix_silent_client(kind: Kind, roles: Roles) {
    let case = Case {
        prefix_len: 0,
        data_len: 0,
        buffer_size: DEFAULT_BUFFER_SIZE,
        early: false,
    };
    run(kind, roles, case).await;
}

both_roles!(
    small_prefix,
    large_prefix,
    large_prefix_tiny_buffer,
    early_client_data,
    early_client_data_large_prefix,
    silent_client,
    empty_prefix,
    empty_prefix_silent_client,
);
