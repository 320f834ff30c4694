//! `egress_proxy`: the whole proxy, started from a config string on its own runtime, fed
//! connections the host accepted itself, and stopped gracefully.

use std::ffi::{c_char, c_int};
use std::sync::Mutex;

use egress_core::config::{Config, ListenerKind};
use egress_core::server::{Handoff, HandoffError};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::boundary::{
    Failure, call, call_plain, free_handle, handle, into_handle, out, slice_mut, take_fd, text,
};
use crate::runtime::{build, shut_down};
use crate::{egress_error, egress_result};

/// Which kind of listener block a handed-over connection goes to.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum egress_listener_kind {
    /// An `[[sni]]` block: TLS passthrough routed by the ClientHello.
    EGRESS_LISTENER_SNI = 0,
    /// An `[[http]]` block: CONNECT and plain HTTP forwarding.
    EGRESS_LISTENER_HTTP = 1,
}

/// A running proxy. `egress_proxy_serve_fd`, `egress_proxy_local_addr` and
/// `egress_proxy_stop` are thread-safe; free it once, when no other call uses it.
pub struct egress_proxy {
    config: Config,
    handoffs: Vec<Handoff>,
    local_addrs: Vec<String>,
    running: Mutex<Option<Running>>,
    runtime: Option<Runtime>,
}

/// What stopping needs: the signal and the server task to wait for.
struct Running {
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for egress_proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("egress_proxy")
            .field("local_addrs", &self.local_addrs)
            .finish_non_exhaustive()
    }
}

impl egress_proxy {
    /// Stops accepting and waits for open connections up to `[server] shutdown_timeout`.
    fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (Some(running), Some(runtime)) = (running, &self.runtime) {
            let _ = running.stop.send(());
            let _ = runtime.block_on(running.server);
        }
    }
}

impl Drop for egress_proxy {
    fn drop(&mut self) {
        self.stop();
        if let Some(runtime) = self.runtime.take() {
            shut_down(runtime);
        }
    }
}

/// Starts a proxy from `len` bytes of config (TOML, the `egress` binary's format) on its own
/// threads (one per CPU): it binds every `listen` address (port 0 picks a free port, an
/// empty list binds nothing) and serves until stopped. The proxy logs nothing.
///
/// `EGRESS_CONFIG_INVALID` names each mistake's line; `EGRESS_START_FAILED` says what could
/// not start (an address in use, say). Thread-safe; do not call it from a thread that runs a
/// tokio runtime. Free the proxy with `egress_proxy_free`.
#[unsafe(no_mangle)]
pub extern "C" fn egress_proxy_new(
    config: *const c_char,
    len: usize,
    proxy_out: *mut *mut egress_proxy,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let config = text(config, len, "config")?;
        let proxy_out = out(proxy_out, "proxy_out")?;
        let config = Config::from_toml(config)
            .map_err(|e| Failure::new(egress_result::EGRESS_CONFIG_INVALID, e.to_string()))?;
        let runtime = build(0, "egress-proxy")?;
        let server = runtime
            .block_on(config.bind())
            .map_err(|e| Failure::new(egress_result::EGRESS_START_FAILED, e.to_string()))?;
        let groups = config.sni.len() + config.http.len();
        let handoffs = (0..groups).filter_map(|g| server.handoff(g)).collect();
        let local_addrs = server
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        let (stop, stopped) = oneshot::channel();
        let server = runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        proxy_out.write(into_handle(egress_proxy {
            config,
            handoffs,
            local_addrs,
            running: Mutex::new(Some(Running { stop, server })),
            runtime: Some(runtime),
        }));
        Ok(())
    })
}

/// Hands `fd`, a client connection the host accepted, to the `index`-th block (from 0) of
/// `kind` (an `egress_listener_kind`), to be served like one its listeners accepted: it
/// counts against the block's `max_connections`, and stopping waits for it.
///
/// The descriptor belongs to egress from the call on, whatever the result.
/// `EGRESS_NOT_FOUND` when there is no such block, `EGRESS_STOPPED` after
/// `egress_proxy_stop`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_proxy_serve_fd(
    proxy: *const egress_proxy,
    kind: u32,
    index: usize,
    fd: c_int,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let fd = take_fd(fd, "fd")?;
        let proxy = handle(proxy, "proxy")?;
        let kind = match kind {
            0 => ListenerKind::Sni,
            1 => ListenerKind::Http,
            other => {
                return Err(Failure::invalid(format!(
                    "`kind` {other} is not a listener kind"
                )));
            }
        };
        let group = proxy.config.group(kind, index).ok_or_else(|| {
            Failure::new(
                egress_result::EGRESS_NOT_FOUND,
                format!("the config has no {kind:?} block at index {index}"),
            )
        })?;
        let stream = std::net::TcpStream::from(fd);
        stream
            .peer_addr()
            .map_err(|e| Failure::new(egress_result::EGRESS_IO, format!("`fd`: {e}")))?;
        let handoff = proxy
            .handoffs
            .get(group)
            .ok_or_else(|| Failure::new(egress_result::EGRESS_STOPPED, "the proxy has stopped"))?;
        handoff.serve(stream).map_err(|e| match e {
            HandoffError::Stopped => Failure::new(egress_result::EGRESS_STOPPED, e.to_string()),
            other => Failure::new(egress_result::EGRESS_IO, other.to_string()),
        })
    })
}

/// Writes the `index`-th listening address (from 0, in config order), such as
/// `127.0.0.1:8443` or `[::1]:8080`, NUL-terminated, into `buf` (`len` bytes), and its
/// length without the NUL into `*written_out`. `EGRESS_NOT_FOUND` past the last address,
/// `EGRESS_BUFFER_TOO_SMALL` when `len` cannot hold it and its NUL (48 bytes always can).
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_proxy_local_addr(
    proxy: *const egress_proxy,
    index: usize,
    buf: *mut c_char,
    len: usize,
    written_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let proxy = handle(proxy, "proxy")?;
        let written_out = out(written_out, "written_out")?;
        let addr = proxy.local_addrs.get(index).ok_or_else(|| {
            Failure::new(
                egress_result::EGRESS_NOT_FOUND,
                format!("no listening address at index {index}"),
            )
        })?;
        if len < addr.len() + 1 {
            return Err(Failure::new(
                egress_result::EGRESS_BUFFER_TOO_SMALL,
                format!("{} bytes needed", addr.len() + 1),
            ));
        }
        let buf = slice_mut(buf.cast::<u8>(), len, "buf")?;
        buf[..addr.len()].copy_from_slice(addr.as_bytes());
        buf[addr.len()] = 0;
        written_out.write(addr.len());
        Ok(())
    })
}

/// Stops the proxy gracefully: no new connections (its listening sockets close, handed-over
/// descriptors are refused with `EGRESS_STOPPED`), then waits for open connections up to
/// `[server] shutdown_timeout` (30 s by default) and closes what remains. Returns when done;
/// calling it again returns at once. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_proxy_stop(proxy: *const egress_proxy) -> egress_result {
    call_plain(|| {
        handle(proxy, "proxy")?.stop();
        Ok(())
    })
}

/// Stops the proxy (as `egress_proxy_stop`, if not yet stopped) and frees it. NULL is a
/// no-op. Not thread-safe: no other call may use the proxy meanwhile.
#[unsafe(no_mangle)]
pub extern "C" fn egress_proxy_free(proxy: *mut egress_proxy) {
    free_handle(proxy);
}
