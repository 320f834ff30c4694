//! The load generator: opens tunnels the way a TLS client would (straight to the upstream or
//! an SNI proxy, or after a CONNECT), and runs the bulk, rate, latency and idle loads over
//! them, checking every byte that comes back.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use crate::Result;
use crate::upstream::{Plan, Upstream};
use crate::wire::{Patterns, receive_pattern, send_pattern};

/// Time allowed for one connection to be set up: connect, CONNECT, hello, reply.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest CONNECT response head read.
const MAX_RESPONSE_HEAD: usize = 4096;

/// Client source addresses: 127.1.0.1 to 127.1.0.250, used in turn, so that neither bound
/// ephemeral ports nor TIME_WAIT entries pile up on one address.
const SOURCES: u8 = 250;

/// Upper bound on connections one closed-loop rate client makes (the run is bounded by
/// time first; this only bounds the loop).
const MAX_CYCLES_PER_CLIENT: u64 = 10_000_000;

/// Where a client connects and what it says first.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// Straight to a TLS-speaking address: the upstream itself or an SNI proxy.
    Tls(SocketAddr),
    /// To an HTTP proxy, which must answer this CONNECT request with a 200.
    Connect {
        proxy: SocketAddr,
        request: Arc<[u8]>,
    },
}

/// Opens tunnels along one route. Cheap to share between tasks.
#[derive(Debug)]
pub(crate) struct Client {
    route: Route,
    hello: Arc<[u8]>,
    reply: Arc<[u8]>,
    next_source: AtomicUsize,
}

impl Client {
    pub(crate) fn new(route: Route, hello: Arc<[u8]>, reply: Arc<[u8]>) -> Self {
        Self {
            route,
            hello,
            reply,
            next_source: AtomicUsize::new(0),
        }
    }

    /// The next source address, 127.1.0.1 to 127.1.0.250 in turn.
    fn source(&self) -> SocketAddr {
        let i = self.next_source.fetch_add(1, Ordering::Relaxed) % usize::from(SOURCES);
        let host = u8::try_from(i + 1).unwrap_or(1);
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 1, 0, host), 0))
    }

    /// Connects, does the CONNECT exchange when the route has one, sends the hello and reads
    /// the reply, checking it. The stream is then a tunnel to the upstream.
    pub(crate) async fn open(&self) -> Result<TcpStream> {
        match timeout(OPEN_TIMEOUT, self.open_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err("no reply within 10 s of connecting".into()),
        }
    }

    async fn open_unbounded(&self) -> Result<TcpStream> {
        let target = match &self.route {
            Route::Tls(addr) => *addr,
            Route::Connect { proxy, .. } => *proxy,
        };
        let socket = TcpSocket::new_v4()?;
        socket.bind(self.source())?;
        let mut stream = socket
            .connect(target)
            .await
            .map_err(|e| format!("connect to {target}: {e}"))?;
        stream.set_nodelay(true)?;
        if let Route::Connect { request, .. } = &self.route {
            stream.write_all(request).await?;
            read_connect_response(&mut stream).await?;
        }
        stream.write_all(&self.hello).await?;
        let mut reply = vec![0u8; self.reply.len()];
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|e| format!("reading the reply: {e}"))?;
        if reply[..] != self.reply[..] {
            return Err("the reply arrived altered".into());
        }
        Ok(stream)
    }

    /// One rate-scenario connection: open, then wait for the upstream's close. Returns the
    /// time from the start of connect to the last byte of the reply.
    pub(crate) async fn cycle(&self) -> Result<Duration> {
        let started = Instant::now();
        let mut stream = self.open().await?;
        let latency = started.elapsed();
        let mut rest = [0u8; 64];
        match timeout(OPEN_TIMEOUT, stream.read(&mut rest)).await {
            Ok(Ok(0)) => Ok(latency),
            Ok(Ok(n)) => Err(format!("{n} unexpected bytes after the reply").into()),
            Ok(Err(e)) => Err(format!("waiting for the close after the reply: {e}").into()),
            Err(_) => Err("no close within 10 s after the reply".into()),
        }
    }
}

/// Reads a CONNECT response head and checks that it is a 200 with nothing after it (the
/// upstream says nothing before it has the hello).
async fn read_connect_response(stream: &mut TcpStream) -> Result<()> {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    // Bounded by MAX_RESPONSE_HEAD: every pass adds at least one byte or returns.
    while head.len() < MAX_RESPONSE_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err("the proxy closed before answering CONNECT".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = head.get(9..12).unwrap_or_default();
            if !head.starts_with(b"HTTP/1.") || status != b"200" {
                let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                return Err(format!("CONNECT answered {:?}", String::from_utf8_lossy(line)).into());
            }
            if end + 4 != head.len() {
                return Err("bytes after the CONNECT response head".into());
            }
            return Ok(());
        }
    }
    Err("CONNECT response head longer than 4 KiB".into())
}

/// Failures of a load run: how many, and the first one's message.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    pub(crate) count: u64,
    pub(crate) first: Option<String>,
}

impl Failures {
    fn add(&mut self, error: &crate::Error) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(error.to_string());
        }
    }

    fn merge(&mut self, other: Failures) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// A closed-loop rate run.
#[derive(Debug)]
pub(crate) struct RateOutcome {
    pub(crate) completed: u64,
    pub(crate) elapsed: Duration,
    pub(crate) failures: Failures,
}

/// `clients` tasks, each looping connect → hello → reply → close until `duration` has
/// passed. The elapsed time runs until the last task has finished its last connection.
pub(crate) async fn rate(client: &Arc<Client>, clients: usize, duration: Duration) -> RateOutcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let client = Arc::clone(client);
        tasks.spawn(async move {
            let mut completed = 0u64;
            let mut failures = Failures::default();
            for _ in 0..MAX_CYCLES_PER_CLIENT {
                if Instant::now() >= deadline {
                    break;
                }
                match client.cycle().await {
                    Ok(_) => completed += 1,
                    Err(e) => {
                        failures.add(&e);
                        // Do not spin on a refusing proxy.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (completed, failures)
        });
    }
    let mut outcome = RateOutcome {
        completed: 0,
        elapsed: Duration::ZERO,
        failures: Failures::default(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((completed, failures)) => {
                outcome.completed += completed;
                outcome.failures.merge(failures);
            }
            Err(e) => outcome.failures.add(&e.into()),
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// An open-loop latency run: the latency of every completed connection.
#[derive(Debug)]
pub(crate) struct LatencyOutcome {
    pub(crate) samples: Vec<Duration>,
    pub(crate) failures: Failures,
}

/// Starts `per_second` connections a second for `duration`, each on its own task whatever
/// the others are doing (open loop), and records connect-to-reply time for each.
pub(crate) async fn latency(
    client: &Arc<Client>,
    per_second: u32,
    duration: Duration,
) -> LatencyOutcome {
    let total = (f64::from(per_second) * duration.as_secs_f64()).round() as u64;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
    // Keep the offered rate: a late tick is followed by quicker ones.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    for _ in 0..total {
        ticks.tick().await;
        let client = Arc::clone(client);
        tasks.spawn(async move { client.cycle().await });
    }
    let mut outcome = LatencyOutcome {
        samples: Vec::with_capacity(total as usize),
        failures: Failures::default(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(latency)) => outcome.samples.push(latency),
            Ok(Err(e)) => outcome.failures.add(&e),
            Err(e) => outcome.failures.add(&e.into()),
        }
    }
    outcome
}

/// Moves `bytes` each way through one tunnel at once, checking every byte at both ends.
/// Returns the wall time from the start of connect until both ends have received
/// everything.
pub(crate) async fn bulk(
    client: &Client,
    upstream: &mut Upstream,
    patterns: &Patterns,
    bytes: u64,
    limit: Duration,
) -> Result<Duration> {
    upstream.discard_reports();
    upstream.set_plan(Plan::Bulk { bytes });
    let started = Instant::now();
    let opened = client.open().await;
    upstream.set_plan(Plan::Close);
    let mut stream = opened?;
    let (mut reader, mut writer) = stream.split();
    let transfer = async {
        tokio::join!(send_pattern(&mut writer, &patterns.up, bytes), async {
            let result = receive_pattern(&mut reader, &patterns.down, bytes).await;
            (result, Instant::now())
        },)
    };
    let (sent, (received, received_at)) = match timeout(limit, transfer).await {
        Ok(done) => done,
        Err(_) => return Err(format!("the transfer took longer than {limit:?}").into()),
    };
    sent.map_err(|e| format!("client: sending: {e}"))?;
    received.map_err(|e| format!("client: receiving: {e}"))?;
    let report = upstream.bulk_report(Duration::from_secs(30)).await?;
    report.result?;
    Ok(received_at.max(report.received_at) - started)
}

/// Idle tunnels held open by the harness.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) streams: Vec<TcpStream>,
    pub(crate) failures: Failures,
}

impl Held {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            streams: Vec::with_capacity(capacity),
            failures: Failures::default(),
        }
    }
}

/// Opens `count` more tunnels, `parallel` at a time, each with its hello answered, and adds
/// them to `held`.
pub(crate) async fn open_idle(
    client: &Arc<Client>,
    count: usize,
    parallel: usize,
    held: &mut Held,
) {
    let mut tasks = JoinSet::new();
    let collect = |joined: std::result::Result<Result<TcpStream>, _>, held: &mut Held| match joined
    {
        Ok(Ok(stream)) => held.streams.push(stream),
        Ok(Err(e)) => held.failures.add(&e),
        Err(e) => held.failures.add(&crate::Error::from(e)),
    };
    for _ in 0..count {
        if tasks.len() >= parallel {
            if let Some(joined) = tasks.join_next().await {
                collect(joined, held);
            }
        }
        let client = Arc::clone(client);
        tasks.spawn(async move { client.open().await });
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined, held);
    }
}

/// Sends one byte on every held tunnel and reads its echo: proves the tunnels survived
/// the wait. Returns how many answered; gives up after 30 s in all.
pub(crate) async fn probe_idle(streams: &mut [TcpStream]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut alive = 0;
    for stream in streams.iter_mut() {
        let echo = async {
            stream.write_all(b"p").await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            Ok::<_, io::Error>(byte[0] == b'p')
        };
        if let Ok(Ok(true)) = tokio::time::timeout_at(deadline, echo).await {
            alive += 1;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    alive
}
