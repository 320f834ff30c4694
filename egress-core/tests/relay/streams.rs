//! Streams too large to hold: a peer sends a window of an endless [`pattern`] stream and
//! the receiver checks every byte against it on the fly, so tens of MiB cost no memory and
//! a misplaced, repeated or dropped byte is reported with its offset.
//!
//! [`pattern`]: crate::harness::pattern

use std::future::IntoFuture;
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::harness::{fill_pattern, is_connection_gone};

/// Bytes per write of a streamed send.
const CHUNK: usize = 128 * 1024;

/// Upper bound on a transfer of tens of MiB in a debug build on a loaded 2-core machine:
/// longer than `harness::LIMIT` because it covers a whole transfer, not one step of it.
pub(crate) const BIG_LIMIT: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test if it takes longer than [`BIG_LIMIT`].
pub(crate) async fn within_big<F: IntoFuture>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BIG_LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {BIG_LIMIT:?}: {what}"),
    }
}

/// Writes bytes `range` of the pattern stream `seed` (within [`BIG_LIMIT`]).
pub(crate) async fn send_stream<W: AsyncWrite + Unpin + ?Sized>(
    stream: &mut W,
    seed: u64,
    range: Range<u64>,
    what: &str,
) {
    within_big(what, async {
        let mut buf = vec![0; CHUNK];
        let mut at = range.start;
        while at < range.end {
            let n = CHUNK.min((range.end - at) as usize);
            fill_pattern(seed, at, &mut buf[..n]);
            stream
                .write_all(&buf[..n])
                .await
                .unwrap_or_else(|e| panic!("{what}: at offset {at}: {e}"));
            at += n as u64;
        }
    })
    .await;
}

/// What a receiver must read: `head` (the prefix, if any), then the pattern stream `seed`
/// from offset `from` on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'a> {
    pub(crate) head: &'a [u8],
    pub(crate) seed: u64,
    pub(crate) from: u64,
}

impl<'a> Expect<'a> {
    /// The pattern stream `seed` from its start, after `head`.
    pub(crate) fn new(head: &'a [u8], seed: u64) -> Self {
        Self {
            head,
            seed,
            from: 0,
        }
    }

    /// The pattern stream `seed` from offset `from`, nothing before it.
    pub(crate) fn at(seed: u64, from: u64) -> Self {
        Self {
            head: &[],
            seed,
            from,
        }
    }
}

/// Where a received stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// At this stream offset (the reader stops there; no EOF expected).
    At(u64),
    /// At EOF, wherever that is.
    Eof,
    /// At EOF or when the connection is reset, wherever that is.
    Closed,
}

/// Reads `expect.head`, then pattern bytes until `end`, checking every byte; returns the
/// stream offset reached (within [`BIG_LIMIT`]). Fails on a wrong byte, an EOF before
/// `End::At`, or an error (other than a reset for `End::Closed`).
pub(crate) async fn receive_stream<R: AsyncRead + Unpin + ?Sized>(
    stream: &mut R,
    expect: Expect<'_>,
    end: End,
    what: &str,
) -> u64 {
    let until = match end {
        End::At(offset) => Some(offset),
        End::Eof | End::Closed => None,
    };
    within_big(what, async {
        let mut buf = vec![0; CHUNK];
        let mut want = vec![0; CHUNK];
        let mut head_seen = 0;
        let mut at = expect.from;
        loop {
            let head_left = expect.head.len() - head_seen;
            if head_left == 0 && until.is_some_and(|end| at >= end) {
                return at;
            }
            let room = match until {
                Some(end) => CHUNK.min(head_left + (end - at) as usize),
                None => CHUNK,
            };
            let n = match stream.read(&mut buf[..room]).await {
                Ok(n) => n,
                Err(e) if end == End::Closed && is_connection_gone(&e) => return at,
                Err(e) => panic!("{what}: at stream offset {at}: {e}"),
            };
            if n == 0 {
                assert!(
                    until.is_none() && (head_left == 0 || end == End::Closed),
                    "{what}: EOF after {head_seen} of {} head bytes and at stream offset {at}, \
                     expected up to {until:?}",
                    expect.head.len()
                );
                return at;
            }
            let from_head = n.min(head_left);
            if buf[..from_head] != expect.head[head_seen..head_seen + from_head] {
                let off = (0..from_head)
                    .find(|&i| buf[i] != expect.head[head_seen + i])
                    .unwrap_or(0);
                panic!("{what}: head byte {} differs", head_seen + off);
            }
            head_seen += from_head;
            let data = &buf[from_head..n];
            fill_pattern(expect.seed, at, &mut want[..data.len()]);
            if data != &want[..data.len()] {
                let off = data
                    .iter()
                    .zip(&want)
                    .position(|(g, w)| g != w)
                    .unwrap_or(0);
                panic!(
                    "{what}: stream byte {} differs: got {:02x?}, want {:02x?}",
                    at + off as u64,
                    &data[off..(off + 16).min(data.len())],
                    &want[off..(off + 16).min(data.len())],
                );
            }
            at += data.len() as u64;
        }
    })
    .await
}

/// Writes the pattern stream `seed` from offset `from` until a write makes no progress
/// for `stall` or the offset reaches `cap`; returns the offset reached and whether it
/// stalled. A write that times out has written nothing (a TCP write is cancel-safe).
/// Fails on an error.
pub(crate) async fn send_until_stalled<W: AsyncWrite + Unpin + ?Sized>(
    stream: &mut W,
    seed: u64,
    from: u64,
    cap: u64,
    stall: Duration,
    what: &str,
) -> (u64, bool) {
    within_big(what, async {
        let mut buf = vec![0; CHUNK];
        let mut at = from;
        while at < cap {
            let n = CHUNK.min((cap - at) as usize);
            fill_pattern(seed, at, &mut buf[..n]);
            let mut written = 0;
            while written < n {
                match tokio::time::timeout(stall, stream.write(&buf[written..n])).await {
                    Err(_) => return (at + written as u64, true),
                    Ok(Ok(0)) => panic!("{what}: write returned 0"),
                    Ok(Ok(k)) => written += k,
                    Ok(Err(e)) => panic!("{what}: at offset {at}: {e}"),
                }
            }
            at += n as u64;
        }
        (at, false)
    })
    .await
}

/// Writes the pattern stream `seed` from offset `from` until `stop` resolves, the
/// connection is gone, or the offset reaches `cap`; returns the offset reached (the bytes
/// handed to the kernel). Fails on any other error.
pub(crate) async fn send_until<W, F>(
    stream: &mut W,
    seed: u64,
    cap: u64,
    stop: F,
    what: &str,
) -> u64
where
    W: AsyncWrite + Unpin + ?Sized,
    F: IntoFuture<Output = ()>,
{
    let stop = stop.into_future();
    tokio::pin!(stop);
    within_big(what, async {
        let mut buf = vec![0; CHUNK];
        let mut at = 0;
        while at < cap {
            let n = CHUNK.min((cap - at) as usize);
            fill_pattern(seed, at, &mut buf[..n]);
            tokio::select! {
                biased;
                () = &mut stop => return at,
                result = stream.write(&buf[..n]) => match result {
                    Ok(k) => at += k as u64,
                    Err(e) if is_connection_gone(&e) => return at,
                    Err(e) => panic!("{what}: at offset {at}: {e}"),
                },
            }
        }
        at
    })
    .await
}
