//! The bidirectional relay: replays the bytes already read from the client to the upstream,
//! then moves bytes both ways until both sides have closed, propagating half-closes.
//! It returns the byte counts each way, also on error, and closes tunnels that stay silent
//! longer than the idle timeout.

mod copy;
mod pipe;
mod tcp;

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};

pub use pipe::{
    DEFAULT_MAX_PIPES, DEFAULT_PIPE_SIZE, MAX_PIPE_SIZE, MIN_PIPE_SIZE, PipePool, PipeStats,
};

/// Default time a tunnel may carry no bytes in either direction before it is closed, like
/// nginx's `proxy_timeout` for long-lived streams.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Default size of the buffer for each direction of the userspace copy: large enough for
/// a full TLS record (16 KiB plus overhead rounds to one read of 16 KiB), small enough
/// for tens of thousands of tunnels.
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;

/// How the relay behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// Close the tunnel after this long without a byte in either direction.
    /// Default: [`DEFAULT_IDLE_TIMEOUT`] (1 h).
    pub idle_timeout: Duration,
    /// Bytes of buffer per direction of the userspace copy. Default: [`DEFAULT_BUFFER_SIZE`]
    /// (16 KiB).
    pub buffer_size: usize,
    /// The pipe budget of [`relay_tcp`]'s zero-copy path; `None` never splices.
    /// Default: `None`.
    pub pipes: Option<Arc<PipePool>>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            buffer_size: DEFAULT_BUFFER_SIZE,
            pipes: None,
        }
    }
}

/// Bytes moved by a relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes written to the upstream, the replayed prefix included.
    pub client_to_upstream: u64,
    /// Bytes written to the client.
    pub upstream_to_client: u64,
}

/// Which end of a tunnel failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client connection.
    Client,
    /// The upstream connection.
    Upstream,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Upstream => "upstream",
        })
    }
}

/// Why a relay ended early, with the bytes moved until then.
#[derive(Debug)]
pub struct Error {
    /// Bytes moved before the failure.
    pub traffic: Traffic,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What ended a relay early.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No byte moved for the idle timeout.
    Idle(Duration),
    /// Reading from, writing to or shutting down one side failed.
    Io(Side, io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Idle(after) => write!(f, "tunnel idle for {after:?}")?,
            ErrorKind::Io(side, e) => write!(f, "{side} connection failed: {e}")?,
        }
        write!(
            f,
            " after {} bytes up, {} bytes down",
            self.traffic.client_to_upstream, self.traffic.upstream_to_client
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(_, e) => Some(e),
            ErrorKind::Idle(_) => None,
        }
    }
}

/// Relays between `client` and `upstream` until both directions have closed.
///
/// `prefix` (bytes already read from the client, such as a ClientHello) is written to the
/// upstream first, exactly once. When one side closes its write half, the relay shuts down
/// the other side's write half and keeps copying the opposite direction.
///
/// # Errors
///
/// An [`Error`] naming the failed side, or the idle timeout, with the bytes moved so far.
pub async fn relay<C, U>(
    client: &mut C,
    upstream: &mut U,
    prefix: &[u8],
    config: &RelayConfig,
) -> Result<Traffic, Error>
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    copy::relay(client, upstream, prefix, config).await
}

/// Relays between two TCP streams like [`relay`], with splice(2) on Linux: bytes go socket
/// to pipe to socket without entering user memory. A tunnel splices when `config.pipes` is
/// set and has two pipes of budget free as it starts; otherwise, and on other systems, it
/// uses the userspace copy for its whole life (the choice is made before its first byte).
/// Either way a direction holds its pipe or buffer only while bytes are in flight: an idle
/// tunnel holds neither.
///
/// # Errors
///
/// As [`relay`].
pub async fn relay_tcp(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    prefix: &[u8],
    config: &RelayConfig,
) -> Result<Traffic, Error> {
    #[cfg(target_os = "linux")]
    if let Some(reservation) = config.pipes.as_ref().and_then(PipePool::reserve) {
        return tcp::relay(client, upstream, prefix, &reservation, config.idle_timeout).await;
    }
    let buffers = tcp::Buffers(config.buffer_size);
    tcp::relay(client, upstream, prefix, &buffers, config.idle_timeout).await
}

/// Polls `step` (which moves bytes both ways and says how many moved so far in total and
/// whether both directions are done) until it is done, fails, or moves nothing for `idle`.
async fn drive<F>(idle: Duration, mut step: F) -> Result<(), ErrorKind>
where
    F: FnMut(&mut Context<'_>) -> Result<(u64, bool), ErrorKind>,
{
    let mut moved = 0;
    let mut last_activity = Instant::now();
    let timer = sleep_until(last_activity + idle);
    tokio::pin!(timer);
    poll_fn(|cx| {
        let (now_moved, done) = step(cx)?;
        if done {
            return Poll::Ready(Ok(()));
        }
        if now_moved != moved {
            moved = now_moved;
            last_activity = Instant::now();
        }
        // The timer is re-armed only when it fires, not on every byte.
        while timer.as_mut().poll(cx).is_ready() {
            let due = last_activity + idle;
            if due <= Instant::now() {
                return Poll::Ready(Err(ErrorKind::Idle(idle)));
            }
            timer.as_mut().reset(due);
        }
        Poll::Pending
    })
    .await
}

/// A relay's result with the bytes each way moved, also inside the error.
fn finish(
    result: Result<(), ErrorKind>,
    client_to_upstream: u64,
    upstream_to_client: u64,
) -> Result<Traffic, Error> {
    let traffic = Traffic {
        client_to_upstream,
        upstream_to_client,
    };
    result
        .map(|()| traffic)
        .map_err(|kind| Error { traffic, kind })
}
