//! Streaming one HTTP body from a sender to a receiver, delimited by its framing
//! (`Content-Length`, chunked, or until close), never holding more than one read of it.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::http::{BodyFraming, ChunkedError, ChunkedLimits, ChunkedScanner, ResponseBody};

/// Bytes asked of a socket per read, for request heads, response heads and bodies.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// Why a body transfer stopped.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Reading the sender failed, it closed early, or it went silent for the idle timeout.
    Source(std::io::Error),
    /// Writing to the receiver failed.
    Destination(std::io::Error),
    /// The chunked framing is malformed.
    Framing(ChunkedError),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source(e) => write!(f, "reading the body: {e}"),
            Self::Destination(e) => write!(f, "writing the body: {e}"),
            Self::Framing(e) => write!(f, "chunked body: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// How a body in flight is delimited.
#[derive(Debug, Clone, Copy)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl From<BodyFraming> for Framing {
    fn from(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::None => Self::None,
            BodyFraming::Length(n) => Self::Length(n),
            BodyFraming::Chunked => Self::Chunked,
        }
    }
}

impl From<ResponseBody> for Framing {
    fn from(body: ResponseBody) -> Self {
        match body {
            ResponseBody::None => Self::None,
            ResponseBody::Length(n) => Self::Length(n),
            ResponseBody::Chunked => Self::Chunked,
            ResponseBody::UntilClose => Self::UntilClose,
        }
    }
}

/// Streams one body from `src` to `dst`, starting with the bytes already in `pending`.
/// Bytes past the body's end stay in `pending` (the next message). Never holds more than
/// one read of body data.
pub(super) async fn copy_body<R, W>(
    src: &mut R,
    dst: &mut W,
    pending: &mut BytesMut,
    framing: Framing,
    idle: Duration,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut remaining = match framing {
        Framing::None => return Ok(0),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    let mut chunked = ChunkedScanner::new(ChunkedLimits::default());
    let mut copied = 0u64;
    loop {
        if !pending.is_empty() {
            let (take, done) = match framing {
                Framing::Chunked => {
                    let scanned = chunked.scan(pending).map_err(BodyError::Framing)?;
                    (scanned.consumed, scanned.done)
                }
                _ => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(pending.len());
                    remaining -= take as u64;
                    (take, remaining == 0)
                }
            };
            dst.write_all(&pending[..take])
                .await
                .map_err(BodyError::Destination)?;
            pending.advance(take);
            copied += take as u64;
            if done {
                dst.flush().await.map_err(BodyError::Destination)?;
                return Ok(copied);
            }
        }
        pending.reserve(READ_CHUNK);
        let n = match tokio::time::timeout(idle, src.read_buf(pending)).await {
            Ok(result) => result.map_err(BodyError::Source)?,
            Err(_) => return Err(BodyError::Source(std::io::ErrorKind::TimedOut.into())),
        };
        if n == 0 {
            return match framing {
                Framing::UntilClose => Ok(copied),
                _ => Err(BodyError::Source(std::io::ErrorKind::UnexpectedEof.into())),
            };
        }
    }
}
