//! Loopback fixtures: two connected TCP pairs with the relay (of a chosen kind) running
//! between the proxy-side ends in a spawned task, the role mapping used to run every
//! scenario twice, deterministic test data, and bounded I/O helpers.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use egress_core::relay::{
    Error, PipePool, PipeStats, RelayConfig, Side, Traffic, relay, relay_tcp,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound on every single wait in these tests: a relay that hangs fails the test
/// instead of hanging it. Generous, because it is not a speed requirement.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than [`LIMIT`].
pub(crate) async fn within<F: IntoFuture>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
    }
}

/// Which relay runs a tunnel. Every scenario runs against each, so the copy relays and the
/// splice relay are held to one contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `relay`, the generic userspace copy (over `AsyncRead + AsyncWrite`).
    Copy,
    /// `relay_tcp` with `pipes: None`: the userspace copy on TCP streams.
    TcpCopy,
    /// `relay_tcp` with a pipe pool: splice(2) on Linux.
    Splice,
}

/// Pipe size of the pools in these tests: the kernel's default pipe size.
pub(crate) const PIPE_SIZE: usize = 64 * 1024;

/// Pipes in the pool the harness gives each splice tunnel started without one: exactly the
/// two one tunnel reserves, so a reservation that asks for more (or an off-by-one in the
/// budget check) shows up as a tunnel that did not splice.
pub(crate) const OWN_POOL_PIPES: usize = 2;

/// A relay config whose tunnels splice with `pool` (for scenarios that share one pool
/// between tunnels and check its stats themselves).
pub(crate) fn with_pool(pool: &Arc<PipePool>) -> RelayConfig {
    let mut config = RelayConfig::default();
    config.pipes = Some(Arc::clone(pool));
    config
}

/// Checks the stats of a pool that served exactly one tunnel, after that tunnel's relay
/// returned: on Linux it spliced (not the copy), and in every case it gave back its
/// reservation and holds no pipe; the pipes that still exist are idle in the pool.
#[track_caller]
pub(crate) fn check_own_pool(stats: &PipeStats) {
    let show = show_stats(stats);
    if cfg!(target_os = "linux") {
        assert_eq!(
            (stats.spliced_total, stats.copied_total),
            (1, 0),
            "the splice tunnel must have spliced (not fallen back to the copy): {show}"
        );
    }
    assert_eq!(
        stats.splicing, 0,
        "reservation kept after the relay returned: {show}"
    );
    assert_eq!(
        stats.in_use, 0,
        "pipe held after the relay returned: {show}"
    );
    assert!(
        stats.live <= OWN_POOL_PIPES,
        "more pipes than the budget: {show}"
    );
    assert_eq!(
        stats.live, stats.idle,
        "live pipes that are neither in use nor idle: {show}"
    );
}

/// The stats, for assertion messages.
pub(crate) fn show_stats(stats: &PipeStats) -> String {
    format!(
        "live {}, in_use {}, idle {}, splicing {}, spliced_total {}, copied_total {}",
        stats.live,
        stats.in_use,
        stats.idle,
        stats.splicing,
        stats.spliced_total,
        stats.copied_total
    )
}

/// Which test peer plays which part in a scenario. Scenarios are written in terms of two
/// peers, `a` and `b`, and run once with `a` as the client and once with `a` as the
/// upstream (STYLE: "run every relay test twice with the two sides swapped").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roles {
    /// `a` is the client peer, `b` the upstream peer.
    ClientIsA,
    /// `a` is the upstream peer, `b` the client peer.
    UpstreamIsA,
}

impl Roles {
    /// The side peer `a` is on.
    pub(crate) fn a(self) -> Side {
        match self {
            Self::ClientIsA => Side::Client,
            Self::UpstreamIsA => Side::Upstream,
        }
    }

    /// The side peer `b` is on.
    pub(crate) fn b(self) -> Side {
        other(self.a())
    }

    /// `(a, b)` from the client's and the upstream's values.
    pub(crate) fn pick<T>(self, client: T, upstream: T) -> (T, T) {
        match self {
            Self::ClientIsA => (client, upstream),
            Self::UpstreamIsA => (upstream, client),
        }
    }
}

/// The other side.
pub(crate) fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Upstream,
        Side::Upstream => Side::Client,
    }
}

/// The count in `traffic` of the bytes that came from `sender`.
pub(crate) fn sent_by(traffic: &Traffic, sender: Side) -> u64 {
    match sender {
        Side::Client => traffic.client_to_upstream,
        Side::Upstream => traffic.upstream_to_client,
    }
}

/// A relay config with the given buffer size and the default idle timeout.
pub(crate) fn with_buffer(buffer_size: usize) -> RelayConfig {
    let mut config = RelayConfig::default();
    config.buffer_size = buffer_size;
    config
}

/// A relay config with the given idle timeout and the default buffer size.
pub(crate) fn with_idle(idle_timeout: Duration) -> RelayConfig {
    let mut config = RelayConfig::default();
    config.idle_timeout = idle_timeout;
    config
}

/// `len` deterministic pseudo-random bytes (splitmix64); different seeds give unrelated
/// streams, so a misplaced, repeated or dropped chunk shows up as a mismatch.
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    fill_pattern(seed, 0, &mut out);
    out
}

/// Fills `out` with bytes `offset..offset + out.len()` of the stream [`pattern`] starts:
/// any window of an endless stream, computed without the bytes before it, so that tens
/// of MiB can be sent and checked without holding them.
pub(crate) fn fill_pattern(seed: u64, offset: u64, out: &mut [u8]) {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let base = seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0xD1B5_4A32_D192_ED03;
    let mut word = offset / 8;
    let mut skip = (offset % 8) as usize;
    let mut filled = 0;
    while filled < out.len() {
        let mut z = base.wrapping_add(word.wrapping_add(1).wrapping_mul(GAMMA));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let bytes = z.to_le_bytes();
        let take = (8 - skip).min(out.len() - filled);
        out[filled..filled + take].copy_from_slice(&bytes[skip..skip + take]);
        filled += take;
        skip = 0;
        word += 1;
    }
}

/// Byte-for-byte comparison that reports lengths and the first differing offset instead
/// of dumping megabytes.
#[track_caller]
pub(crate) fn assert_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let window = |bytes: &[u8]| bytes[at.min(bytes.len())..(at + 16).min(bytes.len())].to_vec();
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {at}: got {:02x?}, want {:02x?}",
        got.len(),
        want.len(),
        window(got),
        window(want),
    );
}

/// A connected loopback TCP pair: (connecting end, accepted end).
pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    connect_pair(listener, TcpStream::connect(addr)).await
}

/// A connected loopback TCP pair whose four socket buffers (send and receive, both ends)
/// are fixed at `size` bytes (the kernel doubles it), which turns off their autotuning:
/// the bytes the kernel can hold in flight are then bounded and known.
pub(crate) async fn tcp_pair_with_buffers(size: u32) -> (TcpStream, TcpStream) {
    let fixed = || {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(size).unwrap();
        socket.set_send_buffer_size(size).unwrap();
        socket
    };
    let listening = fixed();
    listening
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    // Accepted sockets inherit the listener's buffer sizes.
    let listener = listening.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    connect_pair(listener, fixed().connect(addr)).await
}

/// Connects with `connect` to `listener` and accepts: (connecting end, accepted end).
async fn connect_pair(
    listener: TcpListener,
    connect: impl IntoFuture<Output = io::Result<TcpStream>>,
) -> (TcpStream, TcpStream) {
    let (connected, accepted) = within("loopback connect", async {
        tokio::join!(connect.into_future(), listener.accept())
    })
    .await;
    let connected = connected.unwrap();
    let accepted = accepted.unwrap().0;
    // Small writes (one byte every 50 ms in the idle tests) must not wait for Nagle.
    connected.set_nodelay(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    (connected, accepted)
}

/// The four sockets of a tunnel before the relay starts, so that a test can act on the
/// peers (e.g. send early data) before the relay runs.
#[derive(Debug)]
pub(crate) struct Sockets {
    /// The test's client peer (the application connecting through the proxy).
    pub(crate) client: TcpStream,
    /// The test's upstream peer (the server the proxy dialed).
    pub(crate) upstream: TcpStream,
    client_proxy: TcpStream,
    upstream_proxy: TcpStream,
}

impl Sockets {
    /// The client pair and the upstream pair.
    pub(crate) async fn new() -> Self {
        let (client, client_proxy) = tcp_pair().await;
        let (upstream_proxy, upstream) = tcp_pair().await;
        Self {
            client,
            upstream,
            client_proxy,
            upstream_proxy,
        }
    }

    /// The client pair and the upstream pair, every socket buffer fixed at `size` bytes
    /// (see [`tcp_pair_with_buffers`]).
    pub(crate) async fn with_buffers(size: u32) -> Self {
        let (client, client_proxy) = tcp_pair_with_buffers(size).await;
        let (upstream_proxy, upstream) = tcp_pair_with_buffers(size).await;
        Self {
            client,
            upstream,
            client_proxy,
            upstream_proxy,
        }
    }

    /// Spawns the relay of `kind` between the proxy-side ends. The task drops both
    /// proxy-side ends when the relay returns, as the proxy does.
    ///
    /// For [`Kind::Splice`] with `config.pipes` unset, the tunnel gets a pool of its own
    /// ([`OWN_POOL_PIPES`] pipes) whose stats are checked with [`check_own_pool`] when the
    /// relay returns; with `config.pipes` set, the caller shares that pool and checks it.
    /// The copy kinds must get no pool.
    pub(crate) fn start(self, kind: Kind, prefix: &[u8], mut config: RelayConfig) -> Tunnel {
        let own_pool = match kind {
            Kind::Splice if config.pipes.is_none() => {
                let pool = Arc::new(PipePool::new(OWN_POOL_PIPES, PIPE_SIZE));
                config.pipes = Some(Arc::clone(&pool));
                Some(pool)
            }
            Kind::Splice => None,
            Kind::Copy | Kind::TcpCopy => {
                assert!(config.pipes.is_none(), "a pipe pool given to {kind:?}");
                None
            }
        };
        let Self {
            client,
            upstream,
            mut client_proxy,
            mut upstream_proxy,
        } = self;
        let task_prefix = prefix.to_vec();
        let handle = tokio::spawn(async move {
            let (client_proxy_ref, upstream_proxy_ref) = (&mut client_proxy, &mut upstream_proxy);
            let result = match kind {
                Kind::Copy => {
                    relay(client_proxy_ref, upstream_proxy_ref, &task_prefix, &config).await
                }
                Kind::TcpCopy | Kind::Splice => {
                    relay_tcp(client_proxy_ref, upstream_proxy_ref, &task_prefix, &config).await
                }
            };
            drop(client_proxy);
            drop(upstream_proxy);
            result
        });
        Tunnel {
            client,
            upstream,
            prefix: prefix.to_vec(),
            relay: Relay {
                task: handle,
                own_pool,
            },
        }
    }
}

/// The running relay task; aborted if the test ends (fails) while it still runs.
#[derive(Debug)]
pub(crate) struct Relay {
    task: JoinHandle<Result<Traffic, Error>>,
    /// The pool the harness made for this splice tunnel alone, checked when it returns.
    own_pool: Option<Arc<PipePool>>,
}

impl Relay {
    /// Whether the relay has not returned yet.
    pub(crate) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// The stats of the tunnel's own pool, if the harness made one (a splice tunnel
    /// started without a pool).
    pub(crate) fn own_pool_stats(&self) -> Option<PipeStats> {
        self.own_pool.as_ref().map(|pool| pool.stats())
    }

    /// What the relay returned (within [`LIMIT`]). For a splice tunnel with a pool of its
    /// own, also checks that it spliced and gave everything back ([`check_own_pool`]).
    pub(crate) async fn outcome(&mut self) -> Result<Traffic, Error> {
        let result = within("the relay to return", &mut self.task)
            .await
            .expect("relay task panicked");
        if let Some(stats) = self.own_pool_stats() {
            check_own_pool(&stats);
        }
        result
    }

    /// The traffic of a relay that must succeed.
    pub(crate) async fn expect_ok(&mut self) -> Traffic {
        match self.outcome().await {
            Ok(traffic) => traffic,
            Err(e) => panic!("relay failed: {e} ({e:?})"),
        }
    }

    /// The error of a relay that must fail.
    pub(crate) async fn expect_err(&mut self) -> Error {
        match self.outcome().await {
            Ok(traffic) => panic!("relay succeeded ({traffic:?}), expected an error"),
            Err(e) => e,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running tunnel: the two test peers and the relay between them.
#[derive(Debug)]
pub(crate) struct Tunnel {
    /// The test's client peer.
    pub(crate) client: TcpStream,
    /// The test's upstream peer.
    pub(crate) upstream: TcpStream,
    /// The prefix given to the relay.
    pub(crate) prefix: Vec<u8>,
    /// The relay task.
    pub(crate) relay: Relay,
}

impl Tunnel {
    /// Connects both pairs and starts the relay of `kind` (see [`Sockets::start`]).
    pub(crate) async fn start(kind: Kind, prefix: &[u8], config: RelayConfig) -> Self {
        Sockets::new().await.start(kind, prefix, config)
    }

    /// Peers `(a, b)` for `roles`.
    pub(crate) fn peers(&mut self, roles: Roles) -> (&mut TcpStream, &mut TcpStream) {
        roles.pick(&mut self.client, &mut self.upstream)
    }

    /// The client peer, the upstream peer and the relay, for tests that close a peer.
    pub(crate) fn into_parts(self) -> (TcpStream, TcpStream, Relay) {
        (self.client, self.upstream, self.relay)
    }

    /// What the peer on `receiver` must read when the other peer sent `data`: the prefix
    /// first (exactly once) for the upstream, nothing extra for the client.
    pub(crate) fn expected_at(&self, receiver: Side, data: &[u8]) -> Vec<u8> {
        match receiver {
            Side::Upstream => [self.prefix.as_slice(), data].concat(),
            Side::Client => data.to_vec(),
        }
    }

    /// The exact traffic when the peer on `side_a` sent `a_sent` bytes and the other peer
    /// `b_sent` bytes (the prefix counts for the client's direction).
    pub(crate) fn traffic(&self, side_a: Side, a_sent: usize, b_sent: usize) -> Traffic {
        let (client_sent, upstream_sent) = match side_a {
            Side::Client => (a_sent, b_sent),
            Side::Upstream => (b_sent, a_sent),
        };
        Traffic {
            client_to_upstream: (self.prefix.len() + client_sent) as u64,
            upstream_to_client: upstream_sent as u64,
        }
    }
}

/// Reads until EOF (within [`LIMIT`]).
pub(crate) async fn read_to_eof<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    what: &str,
) -> Vec<u8> {
    let mut out = Vec::new();
    within(what, stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    out
}

/// Reads exactly `len` bytes (within [`LIMIT`]).
pub(crate) async fn read_exactly<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    len: usize,
    what: &str,
) -> Vec<u8> {
    let mut out = vec![0; len];
    within(what, stream.read_exact(&mut out))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    out
}

/// The next read must be EOF: no byte more.
pub(crate) async fn expect_eof<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, what: &str) {
    let mut buf = [0; 64];
    let n = within(what, stream.read(&mut buf))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        n,
        0,
        "{what}: expected EOF, got {n} more bytes: {:02x?}",
        &buf[..n]
    );
}

/// Whether `e` says the connection is gone (the peer reset or closed it).
pub(crate) fn is_connection_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// The connection must be closed by the other end without any further byte: the next
/// read is EOF or a reset.
pub(crate) async fn expect_closed<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, what: &str) {
    let mut buf = [0; 64];
    match within(what, stream.read(&mut buf)).await {
        Ok(0) => {}
        Ok(n) => panic!(
            "{what}: expected the connection closed, got {n} more bytes: {:02x?}",
            &buf[..n]
        ),
        Err(e) if is_connection_gone(&e) => {}
        Err(e) => panic!("{what}: expected EOF or a reset, got {e}"),
    }
}

/// Writes all of `data` (within [`LIMIT`]).
pub(crate) async fn send<S: AsyncWrite + Unpin + ?Sized>(stream: &mut S, data: &[u8], what: &str) {
    within(what, stream.write_all(data))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Shuts down the write half (sends FIN); the read half stays open.
pub(crate) async fn half_close<S: AsyncWrite + Unpin + ?Sized>(stream: &mut S, what: &str) {
    within(what, stream.shutdown())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Both peers at once, each writing its data then half-closing while reading the other's
/// to EOF; checks what each received, then that the relay returns `Ok` with exact counts.
pub(crate) async fn exchange(tunnel: &mut Tunnel, client_data: &[u8], upstream_data: &[u8]) {
    let want_at_upstream = tunnel.expected_at(Side::Upstream, client_data);
    let want_at_client = tunnel.expected_at(Side::Client, upstream_data);
    let want_traffic = tunnel.traffic(Side::Client, client_data.len(), upstream_data.len());

    let (mut client_read, mut client_write) = tunnel.client.split();
    let (mut upstream_read, mut upstream_write) = tunnel.upstream.split();
    let ((), (), at_client, at_upstream) = tokio::join!(
        async {
            send(&mut client_write, client_data, "client sends").await;
            half_close(&mut client_write, "client half-closes").await;
        },
        async {
            send(&mut upstream_write, upstream_data, "upstream sends").await;
            half_close(&mut upstream_write, "upstream half-closes").await;
        },
        read_to_eof(&mut client_read, "client reads to EOF"),
        read_to_eof(&mut upstream_read, "upstream reads to EOF"),
    );
    assert_bytes("received by the upstream", &at_upstream, &want_at_upstream);
    assert_bytes("received by the client", &at_client, &want_at_client);
    assert_eq!(tunnel.relay.expect_ok().await, want_traffic);
}
