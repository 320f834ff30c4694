//! The pipe budget of the splice relay. An unprivileged process may hold pipes totalling
//! `/proc/sys/fs/pipe-user-pages-soft` pages (16384 by default: 256 pipes of 64 KiB); past
//! that, new pipes get one page and cannot be resized. So pipes are a budget: a tunnel
//! reserves two (one per direction) before its first byte or uses the userspace copy, a
//! direction holds a pipe only while bytes are in flight, and drained pipes wait in a small
//! pool for the next burst.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub(super) use sys::Pipe;

/// Default most pipes in existence at once: 256 tunnels splicing, half the default
/// per-user budget of 64 KiB pipes, leaving the rest to other processes of the same user.
pub const DEFAULT_MAX_PIPES: usize = 512;

/// Default pipe capacity in bytes (the kernel's default, 16 pages).
pub const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

/// Smallest and largest pipe size a pool should be given: one page, and the kernel's default
/// `/proc/sys/fs/pipe-max-size` for unprivileged processes.
pub const MIN_PIPE_SIZE: usize = 4096;
/// See [`MIN_PIPE_SIZE`].
pub const MAX_PIPE_SIZE: usize = 1 << 20;

/// Most drained pipes kept for reuse.
const MAX_IDLE: usize = 64;

/// What a pool holds and has done, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeStats {
    /// Pipes in existence (in use plus idle); never more than the pool's maximum.
    pub live: usize,
    /// Pipes held by a tunnel direction with bytes in flight.
    pub in_use: usize,
    /// Drained pipes waiting in the pool.
    pub idle: usize,
    /// Tunnels holding a reservation now.
    pub splicing: usize,
    /// Tunnels that were spliced, ever.
    pub spliced_total: u64,
    /// Tunnels that used the userspace copy because the budget was taken, ever.
    pub copied_total: u64,
}

#[derive(Debug, Default)]
struct State {
    idle: Vec<Pipe>,
    in_use: usize,
    /// Pipes reserved by splicing tunnels: two each.
    reserved: usize,
}

/// A budget of pipes shared by the tunnels of a process (or of whatever shares it).
///
/// ```
/// use std::sync::Arc;
/// use egress_core::relay::{PipePool, RelayConfig};
///
/// let mut config = RelayConfig::default();
/// config.pipes = Some(Arc::new(PipePool::new(64, 64 * 1024)));
/// ```
#[derive(Debug)]
pub struct PipePool {
    max_pipes: usize,
    pipe_size: usize,
    state: Mutex<State>,
    spliced_total: AtomicU64,
    copied_total: AtomicU64,
}

impl PipePool {
    /// A pool allowing `max_pipes` pipes at once (so `max_pipes / 2` spliced tunnels), each
    /// resized to `pipe_size` bytes when the kernel allows.
    pub fn new(max_pipes: usize, pipe_size: usize) -> Self {
        Self {
            max_pipes,
            pipe_size,
            state: Mutex::default(),
            spliced_total: AtomicU64::new(0),
            copied_total: AtomicU64::new(0),
        }
    }

    /// What the pool holds now.
    pub fn stats(&self) -> PipeStats {
        let state = self.lock();
        PipeStats {
            live: state.in_use + state.idle.len(),
            in_use: state.in_use,
            idle: state.idle.len(),
            splicing: state.reserved / 2,
            spliced_total: self.spliced_total.load(Ordering::Relaxed),
            copied_total: self.copied_total.load(Ordering::Relaxed),
        }
    }

    /// Reserves two pipes of the budget for one tunnel, or says the tunnel must copy (also
    /// always where there is no splice).
    pub(super) fn reserve(self: &Arc<Self>) -> Option<Reservation> {
        let mut state = self.lock();
        if !sys::SPLICE || state.reserved + 2 > self.max_pipes {
            drop(state);
            self.copied_total.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        state.reserved += 2;
        drop(state);
        self.spliced_total.fetch_add(1, Ordering::Relaxed);
        Some(Reservation { pool: self.clone() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent under a panic: every update is one assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An empty pipe: from the pool, or new. The caller holds a reservation, so in use
    /// stays within the reserved count, itself within the maximum.
    fn take(&self) -> io::Result<Pipe> {
        let mut state = self.lock();
        let pipe = match state.idle.pop() {
            Some(pipe) => pipe,
            None => {
                drop(state);
                let pipe = sys::create(self.pipe_size)?;
                state = self.lock();
                pipe
            }
        };
        state.in_use += 1;
        Ok(pipe)
    }

    /// An idle pipe from the pool, if one is there: no syscall either way.
    fn take_idle(&self) -> Option<Pipe> {
        let mut state = self.lock();
        let pipe = state.idle.pop()?;
        state.in_use += 1;
        Some(pipe)
    }

    /// Takes back a pipe. An empty one is kept while the pool has room; one still holding
    /// bytes is closed. Pipes are made only when none is idle, by a tunnel within its
    /// reservation, so live pipes never pass the maximum: idle ones outlive the tunnels that
    /// made them, and a short tunnel after them makes none.
    fn give_back(&self, pipe: Pipe, empty: bool) {
        let mut state = self.lock();
        state.in_use -= 1;
        if empty && state.idle.len() < MAX_IDLE.min(self.max_pipes) {
            state.idle.push(pipe);
        }
    }
}

/// A tunnel's claim on two pipes of the budget, returned when dropped.
#[derive(Debug)]
pub(super) struct Reservation {
    pool: Arc<PipePool>,
}

#[cfg(target_os = "linux")]
impl super::tcp::Conduits for Reservation {
    type Conduit = Pipe;

    fn take(&self) -> io::Result<Pipe> {
        self.pool.take()
    }

    fn take_at_hand(&self) -> Option<Pipe> {
        self.pool.take_idle()
    }

    fn give_back(&self, pipe: Pipe, empty: bool) {
        self.pool.give_back(pipe, empty);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.lock().reserved -= 2;
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::os::fd::OwnedFd;

    use rustix::pipe::{
        PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice,
    };
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use crate::relay::tcp::Conduit;

    /// Never SPLICE_F_MORE: it holds back small writes (up to 200 ms) waiting for more.
    const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

    /// Whether this OS has splice(2).
    pub(super) const SPLICE: bool = true;

    /// One pipe: bytes spliced into `write` come out of `read`.
    #[derive(Debug)]
    pub(in crate::relay) struct Pipe {
        read: OwnedFd,
        write: OwnedFd,
        /// Bytes it holds at most.
        capacity: usize,
    }

    impl Conduit for Pipe {
        fn fill(&mut self, src: &TcpStream) -> io::Result<usize> {
            src.try_io(Interest::READABLE, || {
                Ok(splice(src, None, &self.write, None, self.capacity, FLAGS)?)
            })
        }

        fn drain(&mut self, dst: &TcpStream, pending: usize) -> io::Result<usize> {
            dst.try_io(Interest::WRITABLE, || {
                Ok(splice(&self.read, None, dst, None, pending, FLAGS)?)
            })
        }
    }

    /// A non-blocking pipe of `size` bytes, or of what the kernel allows.
    pub(super) fn create(size: usize) -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let mut capacity = fcntl_getpipe_size(&write)?;
        if capacity != size {
            // Past the per-user budget the kernel refuses: keep the pipe at its size.
            match fcntl_setpipe_size(&write, size) {
                Ok(resized) => capacity = resized,
                Err(e) => tracing::debug!(error = %e, capacity, "pipe not resized"),
            }
        }
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    /// Whether this OS has splice(2).
    pub(super) const SPLICE: bool = false;

    /// No pipe is ever made here.
    #[derive(Debug)]
    pub(in crate::relay) enum Pipe {}

    pub(super) fn create(_size: usize) -> io::Result<Pipe> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
