//! The userspace copy relay: one buffer and one small state machine per direction, both
//! polled by one future, in the manner of `tokio::io::copy_bidirectional`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Error, ErrorKind, RelayConfig, Side, Traffic, drive, finish};

/// Where one direction of the copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Moving bytes: read into the buffer when it is empty, write it out when it is not.
    Running,
    /// The source hit EOF and the buffer is empty: shut down the destination's write half.
    ShuttingDown,
    /// The destination's write half is shut down.
    Done,
}

/// One direction: bytes read from `src` are written to `dst`.
struct Direction {
    state: State,
    buf: Box<[u8]>,
    /// `buf[pos..cap]` is read but not yet written.
    pos: usize,
    cap: usize,
    /// Bytes written to the destination.
    written: u64,
    /// Whether a write happened since the last flush.
    need_flush: bool,
    /// Which side this direction reads from and which it writes to, for errors.
    src: Side,
    dst: Side,
}

impl Direction {
    fn new(size: usize, prefix: &[u8], src: Side, dst: Side) -> Self {
        let mut buf = vec![0; size.max(prefix.len()).max(1)].into_boxed_slice();
        buf[..prefix.len()].copy_from_slice(prefix);
        Self {
            state: State::Running,
            buf,
            pos: 0,
            cap: prefix.len(),
            written: 0,
            need_flush: false,
            src,
            dst,
        }
    }

    /// Moves bytes until both ends would block or the direction is done.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
    ) -> Poll<Result<(), ErrorKind>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            match self.state {
                State::Running => {
                    if self.pos == self.cap {
                        let mut read = ReadBuf::new(&mut self.buf);
                        match Pin::new(&mut *src).poll_read(cx, &mut read) {
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(e)) => {
                                return Poll::Ready(Err(ErrorKind::Io(self.src, e)));
                            }
                            Poll::Pending => {
                                // Nothing to read for now: push out what was written.
                                if self.need_flush {
                                    ready!(Pin::new(&mut *dst).poll_flush(cx))
                                        .map_err(|e| ErrorKind::Io(self.dst, e))?;
                                    self.need_flush = false;
                                }
                                return Poll::Pending;
                            }
                        }
                        let n = read.filled().len();
                        if n == 0 {
                            // EOF from the source, and nothing left to write: pass the FIN on.
                            self.state = State::ShuttingDown;
                            continue;
                        }
                        self.pos = 0;
                        self.cap = n;
                    }
                    while self.pos < self.cap {
                        let n = ready!(
                            Pin::new(&mut *dst).poll_write(cx, &self.buf[self.pos..self.cap])
                        )
                        .map_err(|e| ErrorKind::Io(self.dst, e))?;
                        if n == 0 {
                            return Poll::Ready(Err(ErrorKind::Io(
                                self.dst,
                                io::ErrorKind::WriteZero.into(),
                            )));
                        }
                        self.pos += n;
                        self.written += n as u64;
                        self.need_flush = true;
                    }
                }
                State::ShuttingDown => {
                    ready!(Pin::new(&mut *dst).poll_shutdown(cx))
                        .map_err(|e| ErrorKind::Io(self.dst, e))?;
                    self.state = State::Done;
                }
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

pub(super) async fn relay<C, U>(
    client: &mut C,
    upstream: &mut U,
    prefix: &[u8],
    config: &RelayConfig,
) -> Result<Traffic, Error>
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut up = Direction::new(config.buffer_size, prefix, Side::Client, Side::Upstream);
    let mut down = Direction::new(config.buffer_size, &[], Side::Upstream, Side::Client);
    let result = drive(config.idle_timeout, |cx| {
        let up_done = up.poll_copy(cx, client, upstream)?.is_ready();
        let down_done = down.poll_copy(cx, upstream, client)?.is_ready();
        Ok((up.written + down.written, up_done && down_done))
    })
    .await;
    finish(result, up.written, down.written)
}
