//! What goes over the wire: a real ClientHello for `bench.test`, the upstream's reply, the
//! CONNECT request, and the two bulk byte patterns every received byte is checked against.
//! Both ends build them once; the upstream and the load generator share them.

use std::io;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Result;

/// The server name every tunnel asks for; the in-process DNS server answers it with
/// 127.0.0.1.
pub(crate) const SERVER_NAME: &str = "bench.test";

/// Bytes of the upstream's one reply: about a small TLS server flight, in one segment.
pub(crate) const REPLY_LEN: usize = 1024;

/// Largest read or write of the bulk scenario: large enough that syscalls are not the cost.
pub(crate) const CHUNK: usize = 256 << 10;

/// Period of a bulk pattern: not a power of two, so a proxy that drops, repeats or reorders
/// a chunk of any usual size cannot produce matching bytes.
const PERIOD: usize = (1 << 20) + 13;

/// A real ClientHello for [`SERVER_NAME`], as rustls writes it (TLS record included).
pub(crate) fn client_hello() -> Result<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut hello = Vec::new();
    // One record; a few iterations at most even if rustls splits its output.
    for _ in 0..16 {
        if !conn.wants_write() {
            break;
        }
        conn.write_tls(&mut hello)?;
    }
    if hello.is_empty() {
        return Err("rustls wrote no ClientHello".into());
    }
    Ok(hello)
}

/// The upstream's reply: [`REPLY_LEN`] bytes of a fixed pattern.
pub(crate) fn reply() -> Vec<u8> {
    Pattern::new(0x0072_6570_6c79).bytes[..REPLY_LEN].to_vec()
}

/// `CONNECT authority HTTP/1.1` with its Host header, as curl sends it.
pub(crate) fn connect_request(authority: &str) -> Vec<u8> {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

/// A byte stream with period [`PERIOD`]: the byte at stream offset `i` is
/// `bytes[i % PERIOD]`. Stored with [`CHUNK`] extra bytes so that any window of up to
/// `CHUNK` bytes is one contiguous slice (one `memcmp` to check a read).
#[derive(Debug)]
pub(crate) struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    /// A pseudo-random pattern from `seed` (xorshift64).
    pub(crate) fn new(seed: u64) -> Self {
        let mut state = seed | 1;
        let mut bytes = Vec::with_capacity(PERIOD + CHUNK);
        while bytes.len() < PERIOD {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        bytes.truncate(PERIOD);
        let wrap = bytes[..CHUNK].to_vec();
        bytes.extend_from_slice(&wrap);
        Self { bytes }
    }

    /// The `len` bytes (at most [`CHUNK`]) at stream offset `offset`.
    pub(crate) fn window(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % PERIOD as u64) as usize;
        &self.bytes[start..start + len.min(CHUNK)]
    }
}

/// The two bulk patterns: one per direction, so a proxy that echoes or crosses the
/// directions fails the check.
#[derive(Debug)]
pub(crate) struct Patterns {
    /// Client to upstream.
    pub(crate) up: Pattern,
    /// Upstream to client.
    pub(crate) down: Pattern,
}

impl Patterns {
    pub(crate) fn new() -> Self {
        Self {
            up: Pattern::new(0x75705f73_74726561),
            down: Pattern::new(0x646f776e_5f737472),
        }
    }
}

/// Writes the first `bytes` bytes of `pattern` to `writer`, in [`CHUNK`]-byte writes.
pub(crate) async fn send_pattern<W: AsyncWrite + Unpin>(
    writer: &mut W,
    pattern: &Pattern,
    bytes: u64,
) -> io::Result<()> {
    let mut sent = 0u64;
    // Bounded: every pass writes between 1 and CHUNK bytes of a finite count.
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        writer.write_all(pattern.window(sent, n)).await?;
        sent += n as u64;
    }
    writer.flush().await
}

/// Reads exactly `bytes` bytes from `reader` and checks each against `pattern`.
///
/// Fails on an early end of stream or the first byte that differs, naming the offset.
pub(crate) async fn receive_pattern<R: AsyncRead + Unpin>(
    reader: &mut R,
    pattern: &Pattern,
    bytes: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    // Bounded: every pass reads at least one byte of a finite count, or returns.
    while received < bytes {
        let want = (bytes - received).min(CHUNK as u64) as usize;
        let n = reader.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stream ended after {received} of {bytes} bytes"),
            ));
        }
        if buf[..n] != *pattern.window(received, n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("wrong bytes in the {n}-byte read at offset {received}"),
            ));
        }
        received += n as u64;
    }
    Ok(())
}
