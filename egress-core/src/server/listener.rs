//! Accept loops: one task per listening socket, a connection limit per listener group, one
//! task and one log line per connection, and graceful shutdown (stop accepting, let open
//! connections finish until a deadline, then close them).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
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
        Self::from_accept(stream, client)
    }

    /// Wraps a stream just accepted from `client` (as `accept` reported it).
    fn from_accept(stream: TcpStream, client: SocketAddr) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self {
            client,
            local: stream.local_addr()?,
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

/// Runs stacks on listening sockets until shutdown.
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
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Sets how long open connections may run after shutdown begins.
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Serves `service` on each of `listeners`, with at most `limit` connections open at
    /// once across them; connections past the limit are closed at once (after the limit's
    /// overload response, if it has one).
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
        for listener in listeners {
            self.accept_loops.push(AcceptLoop {
                listener,
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
            .filter_map(|l| l.listener.local_addr().ok())
            .collect()
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

/// One listening socket and what serves it.
#[derive(Debug)]
struct AcceptLoop {
    listener: TcpListener,
    service: ConnService,
    /// Shared by the listeners of one `serve` call.
    permits: Arc<Semaphore>,
    overload_response: Option<&'static [u8]>,
}

impl AcceptLoop {
    async fn run(self, mut stopped: watch::Receiver<bool>, shutdown_timeout: Duration) {
        let Self {
            listener,
            service,
            permits,
            overload_response,
        } = self;
        let mut conns = JoinSet::new();
        loop {
            let (stream, client) = tokio::select! {
                _ = async { stopped.wait_for(|stop| *stop).await.map(drop) } => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
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
            let conn = match Accepted::from_accept(stream, client) {
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
        drop(listener);
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
