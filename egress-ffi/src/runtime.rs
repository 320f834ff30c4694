//! `egress_runtime`: the threads that run relays started with `egress_runtime_relay`, and
//! the runtime builder the embedded proxy shares. Each handle owns its runtime; freeing it
//! cancels what still runs and joins the threads.

use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::boundary::{Failure, block_sigpipe, call, free_handle, into_handle, out};
use crate::{egress_error, egress_result};

/// How long freeing a runtime waits for its threads to notice and stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A pool of threads running relays. `egress_runtime_relay` is thread-safe; free the
/// runtime once, when no other call uses it.
#[derive(Debug)]
pub struct egress_runtime {
    runtime: Option<Runtime>,
}

impl egress_runtime {
    pub(crate) fn tokio(&self) -> Result<&Runtime, Failure> {
        self.runtime
            .as_ref()
            .ok_or_else(|| Failure::new(egress_result::EGRESS_STOPPED, "the runtime has stopped"))
    }
}

impl Drop for egress_runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            shut_down(runtime);
        }
    }
}

/// A multi-threaded runtime with `threads` workers (0: one per CPU) whose threads never die
/// of SIGPIPE.
pub(crate) fn build(threads: usize, name: &str) -> Result<Runtime, Failure> {
    let mut builder = Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .thread_name(name)
        .on_thread_start(block_sigpipe)
        .build()
        .map_err(|e| {
            Failure::new(
                egress_result::EGRESS_START_FAILED,
                format!("cannot start the runtime: {e}"),
            )
        })
}

/// Stops a runtime: its tasks are dropped (a relay's callback then reports
/// `EGRESS_RELAY_CANCELLED`) and its threads joined, unless this runs on one of egress's own
/// threads (a callback freeing what runs it), where joining would wait for itself.
pub(crate) fn shut_down(runtime: Runtime) {
    if Handle::try_current().is_ok() {
        runtime.shutdown_background();
    } else {
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
    }
}

/// Starts a runtime with `worker_threads` threads (0: one per CPU) for
/// `egress_runtime_relay`. Thread-safe. Free it with `egress_runtime_free`.
#[unsafe(no_mangle)]
pub extern "C" fn egress_runtime_new(
    worker_threads: usize,
    runtime_out: *mut *mut egress_runtime,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let runtime_out = out(runtime_out, "runtime_out")?;
        let runtime = build(worker_threads, "egress-relay")?;
        runtime_out.write(into_handle(egress_runtime {
            runtime: Some(runtime),
        }));
        Ok(())
    })
}

/// Stops a runtime: relays still running are cancelled (each callback is called with
/// `EGRESS_RELAY_CANCELLED`, and their descriptors closed), then its threads are joined.
/// NULL is a no-op. Not thread-safe: no other call may use the runtime meanwhile.
#[unsafe(no_mangle)]
pub extern "C" fn egress_runtime_free(runtime: *mut egress_runtime) {
    free_handle(runtime);
}
