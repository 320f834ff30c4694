//! The zero-copy relay (Linux): each direction moves bytes socket → pipe → socket with
//! splice(2), so they never enter user memory. Both directions are driven by tokio's
//! readiness: a would-block on either socket waits for that socket, never spins or blocks.
//!
//! A direction fills its pipe only when the pipe is empty, so a would-block while filling
//! always means "nothing to read" and one while draining "no room to write". It drains
//! everything before reading again, before passing an EOF on, and before handing its pipe
//! back when the source goes quiet.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rustix::pipe::{SpliceFlags, splice};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

use super::pipe::{Pipe, Reservation};
use super::{Error, ErrorKind, Side, Traffic, drive};

/// Never SPLICE_F_MORE: it holds back small writes (up to 200 ms) waiting for more.
const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

/// Where one direction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// The source hit EOF and the pipe is drained: shut down the destination's write half.
    ShuttingDown,
    Done,
}

/// One direction of a spliced tunnel.
struct Direction<'a> {
    state: State,
    /// Bytes to write before anything spliced (the client's prefix, upstream-bound).
    prefix: &'a [u8],
    /// The pipe, held only while it has bytes or the source is readable.
    pipe: Option<Pipe>,
    /// Bytes in the pipe.
    in_pipe: usize,
    written: u64,
    src: Side,
    dst: Side,
    reservation: &'a Reservation,
}

impl<'a> Direction<'a> {
    fn new(reservation: &'a Reservation, prefix: &'a [u8], src: Side, dst: Side) -> Self {
        Self {
            state: State::Running,
            prefix,
            pipe: None,
            in_pipe: 0,
            written: 0,
            src,
            dst,
            reservation,
        }
    }

    fn poll_splice(
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
                State::Running => match &self.pipe {
                    Some(pipe) if self.in_pipe > 0 => {
                        ready!(dst.poll_write_ready(cx)).map_err(dst_err)?;
                        let moved = dst.try_io(Interest::WRITABLE, || {
                            Ok(splice(&pipe.read, None, &*dst, None, self.in_pipe, FLAGS)?)
                        });
                        match moved {
                            Ok(n) => {
                                self.in_pipe -= n;
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

    /// With the pipe empty: splices what the source has into it, passes EOF on, or hands
    /// the pipe back and waits while the source is quiet.
    fn poll_fill(&mut self, cx: &mut Context<'_>, src: &TcpStream) -> Poll<Result<(), ErrorKind>> {
        let src_side = self.src;
        let src_err = |e| ErrorKind::Io(src_side, e);
        if src.poll_read_ready(cx).map_err(src_err)?.is_pending() {
            // Idle: an idle tunnel holds no pipe.
            if let Some(pipe) = self.pipe.take() {
                self.reservation.give_back(pipe, true);
            }
            return Poll::Pending;
        }
        let pipe = match &mut self.pipe {
            Some(pipe) => pipe,
            empty => empty.insert(self.reservation.take().map_err(src_err)?),
        };
        let read = src.try_io(Interest::READABLE, || {
            Ok(splice(src, None, &pipe.write, None, pipe.capacity, FLAGS)?)
        });
        match read {
            Ok(0) => {
                self.state = State::ShuttingDown;
                if let Some(pipe) = self.pipe.take() {
                    self.reservation.give_back(pipe, true);
                }
            }
            Ok(n) => self.in_pipe = n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(src_err(e))),
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Direction<'_> {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            self.reservation.give_back(pipe, self.in_pipe == 0);
        }
    }
}

/// Relays two TCP streams through pipes of `reservation` until both directions close.
pub(super) async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    prefix: &[u8],
    reservation: Reservation,
    idle_timeout: Duration,
) -> Result<Traffic, Error> {
    let mut up = Direction::new(&reservation, prefix, Side::Client, Side::Upstream);
    let mut down = Direction::new(&reservation, &[], Side::Upstream, Side::Client);
    let result = drive(idle_timeout, |cx| {
        let up_done = up.poll_splice(cx, client, upstream)?.is_ready();
        let down_done = down.poll_splice(cx, upstream, client)?.is_ready();
        Ok((up.written + down.written, up_done && down_done))
    })
    .await;
    let traffic = Traffic {
        client_to_upstream: up.written,
        upstream_to_client: down.written,
    };
    result
        .map(|()| traffic)
        .map_err(|kind| Error { traffic, kind })
}
