//! The TCP relay behind [`relay_tcp`](super::relay_tcp), driven by tokio's readiness: a
//! would-block on either socket waits for that socket, never spins or blocks. Each direction
//! moves bytes through a conduit it holds only while bytes are in flight: a pipe, with
//! splice(2) on Linux, so bytes go socket → pipe → socket without entering user memory; or
//! a buffer (the userspace copy). A quiet tunnel holds neither, so ten thousand idle tunnels
//! cost their sockets and little else.
//!
//! A direction fills its conduit only when it is empty, so a would-block while filling always
//! means "nothing to read" and one while draining "no room to write". It drains everything
//! before reading again, before passing an EOF on, and before handing the conduit back.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Error, ErrorKind, Side, Traffic, drive, finish};

/// Where bytes wait between the two sockets of one direction.
pub(super) trait Conduit {
    /// Moves what `src` has into the (empty) conduit; `Ok(0)` is EOF.
    fn fill(&mut self, src: &TcpStream) -> io::Result<usize>;
    /// Moves out to `dst` some of the `pending` bytes the conduit holds.
    fn drain(&mut self, dst: &TcpStream, pending: usize) -> io::Result<usize>;
}

/// Hands out conduits and takes them back.
pub(super) trait Conduits {
    type Conduit: Conduit;
    fn take(&self) -> io::Result<Self::Conduit>;
    /// A conduit that costs no syscall to take or to give back (a pooled pipe, a buffer),
    /// if there is one: it is taken on readiness alone, without peeking first.
    fn take_at_hand(&self) -> Option<Self::Conduit>;
    /// `empty` says whether the conduit holds no bytes (whether it may be reused).
    fn give_back(&self, conduit: Self::Conduit, empty: bool);
}

/// The userspace copy's conduit: a buffer allocated (not zeroed) when a burst starts,
/// freed when the source goes quiet.
pub(super) struct Buffer(Vec<u8>);

impl Conduit for Buffer {
    fn fill(&mut self, src: &TcpStream) -> io::Result<usize> {
        self.0.clear();
        src.try_read_buf(&mut self.0)
    }

    fn drain(&mut self, dst: &TcpStream, pending: usize) -> io::Result<usize> {
        dst.try_write(&self.0[self.0.len() - pending..])
    }
}

/// Buffers of one size, allocated on demand.
pub(super) struct Buffers(pub(super) usize);

impl Conduits for Buffers {
    type Conduit = Buffer;

    fn take(&self) -> io::Result<Buffer> {
        Ok(Buffer(Vec::with_capacity(self.0.max(1))))
    }

    fn take_at_hand(&self) -> Option<Buffer> {
        self.take().ok()
    }

    fn give_back(&self, _: Buffer, _: bool) {}
}

/// Where one direction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// The source hit EOF and the conduit is drained: shut down the destination's write half.
    ShuttingDown,
    Done,
}

/// One direction of a tunnel.
struct Direction<'a, S: Conduits> {
    state: State,
    /// Bytes to write before anything else (the client's prefix, upstream-bound).
    prefix: &'a [u8],
    conduit: Option<S::Conduit>,
    /// Bytes in the conduit.
    pending: usize,
    written: u64,
    src: Side,
    dst: Side,
    source: &'a S,
}

impl<'a, S: Conduits> Direction<'a, S> {
    fn new(source: &'a S, prefix: &'a [u8], src: Side, dst: Side) -> Self {
        Self {
            state: State::Running,
            prefix,
            conduit: None,
            pending: 0,
            written: 0,
            src,
            dst,
            source,
        }
    }

    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &mut TcpStream,
    ) -> Poll<Result<(), ErrorKind>> {
        let dst_side = self.dst;
        let dst_err = |e| ErrorKind::Io(dst_side, e);
        loop {
            match self.state {
                State::Running if !self.prefix.is_empty() => {
                    ready!(dst.poll_write_ready(cx)).map_err(dst_err)?;
                    match dst.try_write(self.prefix) {
                        Ok(n) => {
                            self.prefix = &self.prefix[n..];
                            self.written += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(dst_err(e))),
                    }
                }
                State::Running => match &mut self.conduit {
                    Some(conduit) if self.pending > 0 => {
                        ready!(dst.poll_write_ready(cx)).map_err(dst_err)?;
                        match conduit.drain(dst, self.pending) {
                            Ok(n) => {
                                self.pending -= n;
                                self.written += n as u64;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => return Poll::Ready(Err(dst_err(e))),
                        }
                    }
                    _ => ready!(self.poll_fill(cx, src))?,
                },
                State::ShuttingDown => {
                    ready!(Pin::new(&mut *dst).poll_shutdown(cx)).map_err(dst_err)?;
                    self.state = State::Done;
                }
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }

    /// With the conduit empty: fills it from the source, passes EOF on, or hands the
    /// conduit back and waits while the source is quiet. Without a conduit, one at hand (a
    /// pooled pipe, a buffer) is taken on readiness alone: if the readiness was stale, the
    /// fill's would-block (one syscall, as a peek would have been) clears it and the conduit
    /// goes straight back. A conduit that would cost a new pipe is taken only once a peek
    /// shows a byte (or EOF) waiting, so a tunnel whose first byte has not come creates no
    /// pipe.
    fn poll_fill(&mut self, cx: &mut Context<'_>, src: &TcpStream) -> Poll<Result<(), ErrorKind>> {
        let src_side = self.src;
        let src_err = |e| ErrorKind::Io(src_side, e);
        if self.conduit.is_none() && src.poll_read_ready(cx).map_err(src_err)?.is_ready() {
            self.conduit = self.source.take_at_hand();
        }
        let conduit = match &mut self.conduit {
            Some(conduit) => {
                if src.poll_read_ready(cx).map_err(src_err)?.is_pending() {
                    self.give_back();
                    return Poll::Pending;
                }
                conduit
            }
            empty => {
                let mut probe = [0u8; 1];
                let mut probe = ReadBuf::new(&mut probe);
                ready!(src.poll_peek(cx, &mut probe)).map_err(src_err)?;
                if probe.filled().is_empty() {
                    self.state = State::ShuttingDown;
                    return Poll::Ready(Ok(()));
                }
                empty.insert(self.source.take().map_err(src_err)?)
            }
        };
        match conduit.fill(src) {
            Ok(0) => {
                self.state = State::ShuttingDown;
                self.give_back();
            }
            Ok(n) => self.pending = n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(src_err(e))),
        }
        Poll::Ready(Ok(()))
    }

    fn give_back(&mut self) {
        if let Some(conduit) = self.conduit.take() {
            self.source.give_back(conduit, self.pending == 0);
        }
    }
}

impl<S: Conduits> Drop for Direction<'_, S> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Relays two TCP streams through conduits from `source` until both directions close.
pub(super) async fn relay<S: Conduits>(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    prefix: &[u8],
    source: &S,
    idle_timeout: Duration,
) -> Result<Traffic, Error> {
    let mut up = Direction::new(source, prefix, Side::Client, Side::Upstream);
    let mut down = Direction::new(source, &[], Side::Upstream, Side::Client);
    let result = drive(idle_timeout, |cx| {
        let up_done = up.poll_move(cx, client, upstream)?.is_ready();
        let down_done = down.poll_move(cx, upstream, client)?.is_ready();
        Ok((up.written + down.written, up_done && down_done))
    })
    .await;
    finish(result, up.written, down.written)
}
