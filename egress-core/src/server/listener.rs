//! Accept loops: one task per listening socket, a connection limit per listener group, one
//! task and one log line per connection, and graceful shutdown (stop accepting, let open
//! connections finish until a deadline, then close them).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};
use tracing::{Instrument, field::Empty};

use crate::BoxError;

/// Default most open connections per listener block; beyond it new connections are closed
/// at once. Each tunnel holds two sockets and two 16 KiB buffers.
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
        stream.set_nodelay(true)?;
        Ok(Self {
            client: stream.peer_addr()?,
            local: stream.local_addr()?,
            stream,
            accepted_at: Instant::now(),
        })
    }
}

type ConnService = BoxCloneService<Accepted, (), BoxError>;

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
    accept_loops: Vec<(TcpListener, ConnService, Arc<Semaphore>)>,
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

    /// Serves `service` on each of `listeners`, with at most `max_connections` open at once
    /// across them; connections past the limit are closed at once.
    pub fn serve<S>(
        &mut self,
        listeners: Vec<TcpListener>,
        service: S,
        max_connections: usize,
    ) -> &mut Self
    where
        S: Service<Accepted, Error = BoxError> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let service = BoxCloneService::new(service.map_response(|_| ()));
        let limit = Arc::new(Semaphore::new(max_connections));
        for listener in listeners {
            self.accept_loops
                .push((listener, service.clone(), limit.clone()));
        }
        self
    }

    /// The addresses the server listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.accept_loops
            .iter()
            .filter_map(|(l, _, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts and serves connections until `shutdown` completes, then stops accepting and
    /// waits for open connections up to the shutdown timeout, closing what remains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let deadline = self.shutdown_timeout;
        let mut loops = JoinSet::new();
        for (listener, service, limit) in self.accept_loops {
            loops.spawn(accept_loop(
                listener,
                service,
                limit,
                stopped.clone(),
                deadline,
            ));
        }
        shutdown.await;
        tracing::info!(timeout = ?deadline, "shutting down: no new connections");
        // Receivers outlive a send, so every loop sees the stop, even one not yet polling.
        let _ = stop.send(true);
        while loops.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    service: ConnService,
    limit: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
    shutdown_timeout: Duration,
) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
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
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(peer = ?stream.peer_addr().ok(), "connection limit reached: closing");
            continue;
        };
        let conn = match Accepted::new(stream) {
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
            target = Empty,
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
