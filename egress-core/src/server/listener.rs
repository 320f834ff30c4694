//! Accept loops: one task per listening socket (and one for connections handed over by an
//! embedding program), a connection limit per listener group, one task and one log line per
//! connection, and graceful shutdown (stop accepting, let open connections finish until a
//! deadline, then close them).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};
use tracing::{Instrument, field::Empty};

use crate::BoxError;

/// Default most open connections per listener block; beyond it new connections are closed
/// at once. Each tunnel holds two sockets, and a pipe or a buffer per direction only while
/// bytes are in flight.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default time open connections get to finish after shutdown begins.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed `accept` (out of file descriptors, say), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A connection just accepted: the first request of every stack.
#[derive(Debug)]
pub struct Accepted {
    /// The client connection, with `TCP_NODELAY` set.
    pub stream: TcpStream,
    /// The client's address.
    pub client: SocketAddr,
    /// The local address it connected to (its port is nginx's `$server_port`).
    pub local: SocketAddr,
    /// When it was accepted; deadlines such as the ClientHello timeout count from here.
    pub accepted_at: Instant,
}

impl Accepted {
    /// Wraps a connected stream, reading its addresses.
    ///
    /// # Errors
    ///
    /// When the socket's addresses cannot be read or `TCP_NODELAY` cannot be set.
    pub fn new(stream: TcpStream) -> std::io::Result<Self> {
        let client = stream.peer_addr()?;
        Self::from_accept(stream, client, None)
    }

    /// Wraps a stream just accepted from `client` (as `accept` reported it) on a listener
    /// bound to `listening`, when that is a specific address: then it is the connection's
    /// local address too, and the kernel need not be asked.
    fn from_accept(
        stream: TcpStream,
        client: SocketAddr,
        listening: Option<SocketAddr>,
    ) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        let local = match listening {
            Some(addr) => addr,
            None => stream.local_addr()?,
        };
        Ok(Self {
            client,
            local,
            stream,
            accepted_at: Instant::now(),
        })
    }
}

type ConnService = BoxCloneService<Accepted, (), BoxError>;

/// Bounds the open connections of a group of listeners, and says what a connection past
/// the bound is told before it is closed.
///
/// ```
/// use egress_core::server::{ConnectionLimit, OVERLOADED};
/// let plain: ConnectionLimit = 1000.into();
/// let http = ConnectionLimit::new(1000).with_overload_response(OVERLOADED);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimit {
    max: usize,
    overload_response: Option<&'static [u8]>,
}

impl ConnectionLimit {
    /// At most `max` open connections; those past it are closed at once.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            overload_response: None,
        }
    }

    /// Writes `response` (an HTTP 503, say) to connections past the limit before closing.
    pub fn with_overload_response(mut self, response: &'static [u8]) -> Self {
        self.overload_response = Some(response);
        self
    }
}

impl From<usize> for ConnectionLimit {
    fn from(max: usize) -> Self {
        Self::new(max)
    }
}

/// Time given to writing the overload response before the connection is dropped.
const OVERLOAD_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs stacks on listening sockets, and on connections handed over by the embedding
/// program ([`Handoff`]), until shutdown.
///
/// ```no_run
/// # async fn demo(stack: tower::util::BoxCloneService<egress_core::server::Accepted, (), tower::BoxError>) -> std::io::Result<()> {
/// use egress_core::server::Server;
/// let mut server = Server::new();
/// server.serve(vec![tokio::net::TcpListener::bind("127.0.0.1:8443").await?], stack, 1000);
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    accept_loops: Vec<AcceptLoop>,
    /// One sender per [`serve`](Self::serve) call, in order.
    handoffs: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    shutdown_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server with no listeners and the default shutdown timeout.
    pub fn new() -> Self {
        Self {
            accept_loops: Vec::new(),
            handoffs: Vec::new(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Sets how long open connections may run after shutdown begins.
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Serves `service` on each of `listeners` (none is fine: see [`handoff`](Self::handoff)),
    /// with at most `limit` connections open at once across them; connections past the limit
    /// are closed at once (after the limit's overload response, if it has one).
    pub fn serve<S>(
        &mut self,
        listeners: Vec<TcpListener>,
        service: S,
        limit: impl Into<ConnectionLimit>,
    ) -> &mut Self
    where
        S: Service<Accepted, Error = BoxError> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let service = BoxCloneService::new(service.map_response(|_| ()));
        let limit = limit.into();
        let permits = Arc::new(Semaphore::new(limit.max));
        let (handoff, handed) = mpsc::unbounded_channel();
        self.handoffs.push(handoff);
        let sources = listeners
            .into_iter()
            .map(Source::Listener)
            .chain([Source::Handoff(handed)]);
        for source in sources {
            self.accept_loops.push(AcceptLoop {
                source,
                service: service.clone(),
                permits: permits.clone(),
                overload_response: limit.overload_response,
            });
        }
        self
    }

    /// The addresses the server listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.accept_loops
            .iter()
            .filter_map(|l| match &l.source {
                Source::Listener(listener) => listener.local_addr().ok(),
                Source::Handoff(_) => None,
            })
            .collect()
    }

    /// A handle that hands connections accepted elsewhere to the stack of the `group`-th
    /// [`serve`](Self::serve) call (counting from 0), under the same connection limit and
    /// shutdown as its listeners. `None` when there is no such group.
    pub fn handoff(&self, group: usize) -> Option<Handoff> {
        self.handoffs
            .get(group)
            .cloned()
            .map(|sender| Handoff { sender })
    }

    /// Accepts and serves connections until `shutdown` completes, then stops accepting and
    /// waits for open connections up to the shutdown timeout, closing what remains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let deadline = self.shutdown_timeout;
        let mut loops = JoinSet::new();
        for accept in self.accept_loops {
            loops.spawn(accept.run(stopped.clone(), deadline));
        }
        shutdown.await;
        tracing::info!(timeout = ?deadline, "shutting down: no new connections");
        // Receivers outlive a send, so every loop sees the stop, even one not yet polling.
        let _ = stop.send(true);
        while loops.join_next().await.is_some() {}
    }
}

/// Hands connections accepted by the embedding program to a [`Server`]'s stack. Cheap to
/// clone, and usable from any thread, inside a tokio runtime or not.
#[derive(Debug, Clone)]
pub struct Handoff {
    sender: mpsc::UnboundedSender<std::net::TcpStream>,
}

/// Why a [`Handoff`] could not take a connection. The connection is closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandoffError {
    /// The server has shut down (or was dropped before it ran).
    Stopped,
    /// The socket could not be made non-blocking.
    Io(std::io::Error),
}

impl std::fmt::Display for HandoffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stopped => f.write_str("the server has stopped"),
            Self::Io(e) => write!(f, "cannot make the socket non-blocking: {e}"),
        }
    }
}

impl std::error::Error for HandoffError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Stopped => None,
        }
    }
}

impl Handoff {
    /// Queues `stream`, a connected client, to be served like an accepted one: it counts
    /// against the connection limit (and is closed past it), and shutdown waits for it.
    ///
    /// # Errors
    ///
    /// [`HandoffError::Stopped`] once the server has stopped accepting; [`HandoffError::Io`]
    /// when the socket cannot be made non-blocking.
    pub fn serve(&self, stream: std::net::TcpStream) -> Result<(), HandoffError> {
        stream.set_nonblocking(true).map_err(HandoffError::Io)?;
        self.sender.send(stream).map_err(|_| HandoffError::Stopped)
    }
}

/// Where an accept loop's connections come from.
#[derive(Debug)]
enum Source {
    /// A listening socket.
    Listener(TcpListener),
    /// Connections handed over through a [`Handoff`].
    Handoff(mpsc::UnboundedReceiver<std::net::TcpStream>),
}

impl Source {
    /// The next connection and its client's address; pends forever once no [`Handoff`] is
    /// left, and pauses after a failed accept (out of descriptors, say) so as not to spin.
    async fn next(&mut self) -> Option<(TcpStream, SocketAddr)> {
        let accepted = match self {
            Self::Listener(listener) => listener.accept().await,
            Self::Handoff(handed) => match handed.recv().await {
                Some(stream) => TcpStream::from_std(stream).and_then(|stream| {
                    let client = stream.peer_addr()?;
                    Ok((stream, client))
                }),
                None => std::future::pending().await,
            },
        };
        match accepted {
            Ok(accepted) => Some(accepted),
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                if matches!(self, Self::Listener(_)) {
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
                None
            }
        }
    }
}

/// One source of connections and what serves them.
#[derive(Debug)]
struct AcceptLoop {
    source: Source,
    service: ConnService,
    /// Shared by the sources of one `serve` call.
    permits: Arc<Semaphore>,
    overload_response: Option<&'static [u8]>,
}

impl AcceptLoop {
    async fn run(self, mut stopped: watch::Receiver<bool>, shutdown_timeout: Duration) {
        let Self {
            mut source,
            service,
            permits,
            overload_response,
        } = self;
        // A listener on a wildcard address (0.0.0.0:443) accepts on many local addresses;
        // one on a specific address accepts on that one only.
        let listening = match &source {
            Source::Listener(listener) => listener
                .local_addr()
                .ok()
                .filter(|addr| !addr.ip().is_unspecified()),
            Source::Handoff(_) => None,
        };
        let mut conns = JoinSet::new();
        loop {
            let (stream, client) = tokio::select! {
                _ = async { stopped.wait_for(|stop| *stop).await.map(drop) } => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                accepted = source.next() => match accepted {
                    Some(accepted) => accepted,
                    None => continue,
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(peer = %client, "connection limit reached: closing");
                if let Some(response) = overload_response {
                    // Outside the connection set, so shutdown does not wait for it.
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let _ = tokio::time::timeout(
                            OVERLOAD_WRITE_TIMEOUT,
                            stream.write_all(response),
                        )
                        .await;
                    });
                }
                continue;
            };
            let conn = match Accepted::from_accept(stream, client, listening) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "accepted socket unusable");
                    continue;
                }
            };
            let span = tracing::info_span!(
                "conn",
                client = %conn.client,
                listener = %conn.local,
                sni = Empty,
                method = Empty,
                target = Empty,
                policy = Empty,
                would_deny = Empty,
                status = Empty,
                upstream = Empty,
                up = Empty,
                down = Empty,
            );
            let service = service.clone();
            conns.spawn(
                async move {
                    let started = conn.accepted_at;
                    let result = service.oneshot(conn).await;
                    let ms = started.elapsed().as_millis();
                    match result {
                        Ok(()) => tracing::info!(duration_ms = ms, outcome = "closed"),
                        Err(e) => tracing::info!(duration_ms = ms, outcome = "error", error = %e),
                    }
                    drop(permit);
                }
                .instrument(span),
            );
        }
        drop(source);
        let drained = tokio::time::timeout(shutdown_timeout, async {
            while conns.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::info!(
                open = conns.len(),
                "shutdown timeout: closing open connections"
            );
            conns.shutdown().await;
        }
    }
}
