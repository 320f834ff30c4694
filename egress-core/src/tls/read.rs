//! The async shell around [`ClientHelloReader`]: reads from a stream until the hello is
//! complete, bounded in bytes and by a deadline.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::{ClientHello, ClientHelloReader, Error, Progress};

/// Most bytes asked of the socket per read; a hello usually arrives in one.
const READ_CHUNK: usize = 4096;

/// Reads a ClientHello from `io`, never more than `max_bytes` in total, giving up at
/// `deadline`.
///
/// Returns the hello and every byte read: they start with [`ClientHello::raw`] and may hold
/// more that the client sent in the same read. The upstream must receive them first.
///
/// # Errors
///
/// The reader's [`Error`]s, plus [`Error::Timeout`], [`Error::Eof`] and [`Error::Io`].
pub async fn read_client_hello<R>(
    io: &mut R,
    max_bytes: usize,
    deadline: Instant,
) -> Result<(ClientHello, Bytes), Error>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut reader = ClientHelloReader::new(max_bytes);
    let mut buf = BytesMut::new();
    loop {
        // While the reader needs more, its records fit in `max_bytes`, so there is room.
        let room = max_bytes.saturating_sub(buf.len());
        if room == 0 {
            return Err(Error::TooLarge { limit: max_bytes });
        }
        buf.reserve(room.min(READ_CHUNK));
        let start = buf.len();
        let mut space = (&mut buf).limit(room);
        let n = match tokio::time::timeout_at(deadline, io.read_buf(&mut space)).await {
            Err(_) => return Err(Error::Timeout),
            Ok(Err(e)) => return Err(Error::Io(e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Err(Error::Eof {
                received: buf.len(),
            });
        }
        if let Progress::Done(hello) = reader.feed(&buf[start..])? {
            // A copy the size of what was read: the prefix lives as long as the tunnel, the
            // read buffer's spare room would too.
            return Ok((hello, Bytes::copy_from_slice(&buf)));
        }
    }
}
