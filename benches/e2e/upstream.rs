//! The upstream: a plain TCP server on 127.0.0.1 standing in for a TLS server. Every
//! connection must start with the exact ClientHello; the server answers one reply, then
//! follows the current [`Plan`]: close (rate), stream both ways (bulk) or hold and echo (idle).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::Result;
use crate::wire::{Patterns, receive_pattern, send_pattern};

/// Listen backlog: the idle scenario opens connections a hundred at a time.
const BACKLOG: u32 = 4096;

/// Time allowed for the ClientHello to arrive after accept.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a held (idle-scenario) connection stays open without its client closing it.
const HOLD_LIMIT: Duration = Duration::from_secs(600);

/// What the upstream does with a connection after its reply. Read at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Close right after the reply (the rate and latency scenarios).
    Close,
    /// Send `bytes` of the down pattern while receiving and checking `bytes` of the up
    /// pattern, then report on the bulk channel and close.
    Bulk { bytes: u64 },
    /// Keep the connection, echo whatever arrives, close on the client's EOF.
    Hold,
}

/// The upstream's side of one bulk tunnel.
#[derive(Debug)]
pub(crate) struct BulkReport {
    /// Whether every byte arrived as sent and every byte was written.
    pub(crate) result: std::result::Result<(), String>,
    /// When the last byte from the client had been received and checked.
    pub(crate) received_at: Instant,
}

/// A running upstream. Dropping it stops accepting.
#[derive(Debug)]
pub(crate) struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    reports: mpsc::UnboundedReceiver<BulkReport>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    plan: Mutex<Plan>,
    hello: Arc<[u8]>,
    reply: Arc<[u8]>,
    patterns: Arc<Patterns>,
    /// Connections being served right now.
    active: AtomicUsize,
    /// Connections that failed (wrong hello, I/O error) since the last `take_errors`.
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    reports: mpsc::UnboundedSender<BulkReport>,
}

impl Shared {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert(message);
    }
}

impl Upstream {
    /// Listens on 127.0.0.1 (an OS-chosen port) and serves every connection on the current
    /// runtime.
    pub(crate) fn start(
        hello: Arc<[u8]>,
        reply: Arc<[u8]>,
        patterns: Arc<Patterns>,
    ) -> Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let listener = socket.listen(BACKLOG)?;
        let addr = listener.local_addr()?;
        let (tx, reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            plan: Mutex::new(Plan::Close),
            hello,
            reply,
            patterns,
            active: AtomicUsize::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            reports: tx,
        });
        let state = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            // Runs until the upstream is dropped (the task is aborted).
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let plan = *state.plan.lock().unwrap_or_else(PoisonError::into_inner);
                        let state = Arc::clone(&state);
                        state.active.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            if let Err(e) = serve(stream, plan, &state).await {
                                state.error(e);
                            }
                            state.active.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                    Err(e) => {
                        // Out of descriptors, most likely: say so and let the client see it.
                        state.error(format!("accept: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(Self {
            addr,
            shared,
            reports,
            accept,
        })
    }

    /// The address clients (or proxies) connect to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets what happens to connections accepted from now on.
    pub(crate) fn set_plan(&self, plan: Plan) {
        *self
            .shared
            .plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = plan;
    }

    /// Connections being served now.
    pub(crate) fn active(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Failed connections since the last call, and the first failure's message.
    pub(crate) fn take_errors(&self) -> (u64, Option<String>) {
        let count = self.shared.errors.swap(0, Ordering::Relaxed);
        let first = self
            .shared
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        (count, first)
    }

    /// Drops bulk reports left over from an earlier, failed run.
    pub(crate) fn discard_reports(&mut self) {
        for _ in 0..1_000 {
            if self.reports.try_recv().is_err() {
                break;
            }
        }
    }

    /// Waits for the next bulk report, at most `wait`.
    pub(crate) async fn bulk_report(&mut self, wait: Duration) -> Result<BulkReport> {
        match timeout(wait, self.reports.recv()).await {
            Ok(Some(report)) => Ok(report),
            Ok(None) => Err("the upstream stopped".into()),
            Err(_) => Err(format!("no report from the upstream within {wait:?}").into()),
        }
    }

    /// Waits until at most `count` connections are being served, at most `wait`.
    pub(crate) async fn wait_active_at_most(&self, count: usize, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        for _ in 0..10_000 {
            if self.active() <= count {
                return true;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.active() <= count
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One connection: hello, reply, then the plan. Errors say which step failed.
async fn serve(
    mut stream: TcpStream,
    plan: Plan,
    state: &Shared,
) -> std::result::Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut hello = vec![0u8; state.hello.len()];
    match timeout(HELLO_TIMEOUT, stream.read_exact(&mut hello)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("upstream: reading the ClientHello: {e}")),
        Err(_) => return Err("upstream: no complete ClientHello within 10 s".to_owned()),
    }
    if hello[..] != state.hello[..] {
        return Err("upstream: the ClientHello arrived altered".to_owned());
    }
    stream
        .write_all(&state.reply)
        .await
        .map_err(|e| format!("upstream: writing the reply: {e}"))?;
    match plan {
        // Dropping the stream closes it: the upstream closes first, so TIME_WAIT stays on
        // the server side and no client-side ephemeral port is held by it.
        Plan::Close => Ok(()),
        Plan::Bulk { bytes } => {
            let (mut reader, mut writer) = stream.split();
            let patterns = &state.patterns;
            let (sent, received) =
                tokio::join!(send_pattern(&mut writer, &patterns.down, bytes), async {
                    let result = receive_pattern(&mut reader, &patterns.up, bytes).await;
                    (result, Instant::now())
                },);
            let (received, received_at) = received;
            let result = match (sent, received) {
                (Ok(()), Ok(())) => Ok(()),
                (Err(e), _) => Err(format!("upstream: sending bulk bytes: {e}")),
                (_, Err(e)) => Err(format!("upstream: receiving bulk bytes: {e}")),
            };
            let _ = state.reports.send(BulkReport {
                result,
                received_at,
            });
            Ok(())
        }
        Plan::Hold => {
            let mut buf = [0u8; 256];
            let deadline = Instant::now() + HOLD_LIMIT;
            // Bounded by HOLD_LIMIT; ends on the client's EOF.
            loop {
                let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
                match read {
                    Ok(Ok(0)) | Err(_) => return Ok(()),
                    Ok(Ok(n)) => stream
                        .write_all(&buf[..n])
                        .await
                        .map_err(|e| format!("upstream: echoing on a held tunnel: {e}"))?,
                    // A reset when the harness drops its held tunnels is not a failure.
                    Ok(Err(_)) => return Ok(()),
                }
            }
        }
    }
}
