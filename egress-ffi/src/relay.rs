//! The relay over two connected TCP sockets given as descriptors: splice(2) on Linux with a
//! process-wide pipe budget, the userspace copy otherwise. A blocking form runs on the
//! caller's thread; `egress_runtime_relay` runs on an `egress_runtime` and calls back.

use std::ffi::{c_int, c_void};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use egress_core::relay::{
    self, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PIPES, DEFAULT_PIPE_SIZE, ErrorKind, MAX_PIPE_SIZE,
    MIN_PIPE_SIZE, PipePool, RelayConfig, Side,
};
use rustix::net::SocketType;
use rustix::net::sockopt::socket_type;
use tokio::net::TcpStream;

use crate::boundary::{Failure, SendPtr, call, handle, out, slice, take_fd, with_sigpipe_blocked};
use crate::runtime::egress_runtime;
use crate::{egress_error, egress_result};

/// Bytes a relay moved.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct egress_traffic {
    /// Bytes written to the upstream, the prefix included.
    pub client_to_upstream: u64,
    /// Bytes written to the client.
    pub upstream_to_client: u64,
}

/// How a relay behaves; pass NULL for the defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct egress_relay_options {
    /// Close the tunnel after this many milliseconds without a byte either way; 0 means the
    /// default, one hour.
    pub idle_timeout_ms: u64,
    /// Use splice(2) when a pipe pair is free in the process-wide budget (512 pipes of
    /// 64 KiB unless `egress_relay_set_pipe_budget` says otherwise); false always uses the
    /// userspace copy. Default: true.
    pub splice: bool,
}

/// Called once when a relay started by `egress_runtime_relay` ends: `result` is `EGRESS_OK`
/// or an `EGRESS_RELAY_*` code, `traffic` the bytes moved either way (also on failure, but
/// zero for `EGRESS_RELAY_CANCELLED`: a relay cut off by `egress_runtime_free` is not
/// counted), and `error` NULL on success or the reason, valid only during the call (do not
/// free it).
/// Runs on an egress thread (or, for a relay cancelled by `egress_runtime_free`, on the
/// thread freeing the runtime); it must not block for long and must not free the runtime.
pub type egress_relay_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        result: egress_result,
        traffic: egress_traffic,
        error: *const egress_error,
    ),
>;

/// The pipe budget shared by the relays of the process: made with the defaults on first
/// use, replaced by `egress_relay_set_pipe_budget`.
static PIPES: Mutex<Option<Arc<PipePool>>> = Mutex::new(None);

fn pipes() -> Arc<PipePool> {
    PIPES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(|| Arc::new(PipePool::new(DEFAULT_MAX_PIPES, DEFAULT_PIPE_SIZE)))
        .clone()
}

/// Sets the pipe budget of the relays started from now on: at most `max_pipes` pipes at
/// once (two per splicing tunnel; past that, tunnels use the userspace copy), each of
/// `pipe_size` bytes. 0 for either keeps its default: 512 pipes, 64 KiB. Relays already
/// running keep the budget they started with, so call it before the first relay.
///
/// An unprivileged process may hold pipes totalling `/proc/sys/fs/pipe-user-pages-soft`
/// pages (16384 by default, shared with the user's other processes): keep
/// `max_pipes * pipe_size` well under that. `EGRESS_INVALID_PARAMETER` when `max_pipes` is 1
/// or `pipe_size` is outside 4096 to 1048576. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_relay_set_pipe_budget(
    max_pipes: usize,
    pipe_size: usize,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let max_pipes = if max_pipes == 0 {
            DEFAULT_MAX_PIPES
        } else {
            max_pipes
        };
        let pipe_size = if pipe_size == 0 {
            DEFAULT_PIPE_SIZE
        } else {
            pipe_size
        };
        if max_pipes < 2 {
            return Err(Failure::invalid(
                "`max_pipes` must be at least 2 (one tunnel); set `egress_relay_options.splice` to false to never splice",
            ));
        }
        if !(MIN_PIPE_SIZE..=MAX_PIPE_SIZE).contains(&pipe_size) {
            return Err(Failure::invalid(format!(
                "`pipe_size` must be from {MIN_PIPE_SIZE} to {MAX_PIPE_SIZE}"
            )));
        }
        let pool = Arc::new(PipePool::new(max_pipes, pipe_size));
        *PIPES.lock().unwrap_or_else(PoisonError::into_inner) = Some(pool);
        Ok(())
    })
}

fn relay_config(options: *const egress_relay_options) -> Result<RelayConfig, Failure> {
    let options = if options.is_null() {
        egress_relay_options {
            idle_timeout_ms: 0,
            splice: true,
        }
    } else {
        *handle(options, "options")?
    };
    let mut config = RelayConfig::default();
    config.idle_timeout = match options.idle_timeout_ms {
        0 => DEFAULT_IDLE_TIMEOUT,
        ms => Duration::from_millis(ms),
    };
    config.pipes = options.splice.then(pipes);
    Ok(config)
}

/// A connected TCP socket, checked, non-blocking, registered with the current runtime.
fn tcp_stream(fd: OwnedFd, what: &str) -> Result<TcpStream, Failure> {
    let io = |e: std::io::Error| Failure::new(egress_result::EGRESS_IO, format!("`{what}`: {e}"));
    if socket_type(&fd).map_err(|e| io(e.into()))? != SocketType::STREAM {
        return Err(Failure::new(
            egress_result::EGRESS_IO,
            format!("`{what}` is not a stream socket"),
        ));
    }
    let stream = std::net::TcpStream::from(fd);
    stream.peer_addr().map_err(io)?;
    stream.set_nonblocking(true).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    TcpStream::from_std(stream).map_err(io)
}

/// Both descriptors, owned before anything can fail so that every outcome closes them.
fn take_both(client_fd: c_int, upstream_fd: c_int) -> Result<(OwnedFd, OwnedFd), Failure> {
    let client = take_fd(client_fd, "client_fd");
    let upstream = take_fd(upstream_fd, "upstream_fd");
    Ok((client?, upstream?))
}

/// The outcome of a relay as C sees it.
fn outcome(result: Result<relay::Traffic, relay::Error>) -> Result<egress_traffic, Failure> {
    let traffic = |t: relay::Traffic| egress_traffic {
        client_to_upstream: t.client_to_upstream,
        upstream_to_client: t.upstream_to_client,
    };
    match result {
        Ok(t) => Ok(traffic(t)),
        Err(error) => {
            let code = match &error.kind {
                ErrorKind::Idle(_) => egress_result::EGRESS_RELAY_IDLE_TIMEOUT,
                ErrorKind::Io(Side::Client, _) => egress_result::EGRESS_RELAY_CLIENT_FAILED,
                ErrorKind::Io(Side::Upstream, _) => egress_result::EGRESS_RELAY_UPSTREAM_FAILED,
                // A failure the core learns to name later is the client's until it has a code.
                _ => egress_result::EGRESS_RELAY_CLIENT_FAILED,
            };
            let mut failure = Failure::new(code, error.to_string());
            failure.traffic = Some(traffic(error.traffic));
            Err(failure)
        }
    }
}

/// Relays between two connected TCP sockets until both directions have closed, on the
/// calling thread: `prefix` (`prefix_len` bytes already read from the client, such as the
/// ClientHello; may be NULL when 0) goes to the upstream first, then bytes flow both ways,
/// half-closes are passed on, and a tunnel idle for the timeout is closed.
///
/// Both descriptors belong to egress from the call on, whatever the result: they are closed
/// when it returns. On `EGRESS_OK`, `*traffic_out` holds the bytes moved; on an
/// `EGRESS_RELAY_*` failure, `egress_error_traffic` reads them from the error.
///
/// SIGPIPE is blocked on the calling thread for the call (and one raised by it consumed), so
/// a peer that goes away is an error, not a signal. Thread-safe; it blocks, so do not call
/// it from an event loop thread.
#[unsafe(no_mangle)]
pub extern "C" fn egress_relay(
    client_fd: c_int,
    upstream_fd: c_int,
    prefix: *const u8,
    prefix_len: usize,
    options: *const egress_relay_options,
    traffic_out: *mut egress_traffic,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let (client, upstream) = take_both(client_fd, upstream_fd)?;
        let prefix = slice(prefix, prefix_len, "prefix")?;
        let config = relay_config(options)?;
        let traffic_out = out(traffic_out, "traffic_out")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::new(egress_result::EGRESS_IO, format!("no runtime: {e}")))?;
        let result = with_sigpipe_blocked(|| {
            runtime.block_on(async {
                let mut client = tcp_stream(client, "client_fd")?;
                let mut upstream = tcp_stream(upstream, "upstream_fd")?;
                outcome(relay::relay_tcp(&mut client, &mut upstream, prefix, &config).await)
            })
        });
        traffic_out.write(result?);
        Ok(())
    })
}

/// Starts a relay like `egress_relay` on `runtime` and returns at once. `callback` is called
/// exactly once, with `userdata`, when the relay ends (see `egress_relay_callback`).
///
/// Both descriptors belong to egress from the call on, whatever the result. The prefix is
/// copied. On failure the relay did not start, the descriptors are closed, and the callback
/// is never called. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_runtime_relay(
    runtime: *const egress_runtime,
    client_fd: c_int,
    upstream_fd: c_int,
    prefix: *const u8,
    prefix_len: usize,
    options: *const egress_relay_options,
    callback: egress_relay_callback,
    userdata: *mut c_void,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let (client, upstream) = take_both(client_fd, upstream_fd)?;
        let runtime = handle(runtime, "runtime")?;
        let prefix = slice(prefix, prefix_len, "prefix")?.to_vec();
        let config = relay_config(options)?;
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        let tokio = runtime.tokio()?;
        let _entered = tokio.enter();
        let mut client = tcp_stream(client, "client_fd")?;
        let mut upstream = tcp_stream(upstream, "upstream_fd")?;
        let done = Completion {
            callback,
            userdata: SendPtr(userdata),
            called: false,
        };
        tokio.spawn(async move {
            let mut done = done;
            let result = relay::relay_tcp(&mut client, &mut upstream, &prefix, &config).await;
            drop((client, upstream));
            done.call(outcome(result));
        });
        Ok(())
    })
}

/// Calls a relay's callback once: with the outcome, or with `EGRESS_RELAY_CANCELLED` and no
/// byte counts when the task is dropped first (its runtime was freed; the relay's counts
/// went with it).
struct Completion {
    callback: extern "C" fn(*mut c_void, egress_result, egress_traffic, *const egress_error),
    userdata: SendPtr,
    called: bool,
}

impl Completion {
    fn call(&mut self, outcome: Result<egress_traffic, Failure>) {
        self.called = true;
        let userdata = self.userdata.0;
        match outcome {
            Ok(traffic) => (self.callback)(
                userdata,
                egress_result::EGRESS_OK,
                traffic,
                std::ptr::null(),
            ),
            Err(failure) => {
                let error = egress_error::from(failure);
                let traffic = error.traffic.unwrap_or_default();
                (self.callback)(userdata, error.code, traffic, &error);
            }
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.called {
            self.call(Err(Failure::new(
                egress_result::EGRESS_RELAY_CANCELLED,
                "the runtime was freed while the relay ran",
            )));
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("called", &self.called)
            .finish()
    }
}
