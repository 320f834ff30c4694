//! The sans-IO ClientHello reader: bytes in, need-more / done / error out.
//! It reassembles the handshake message from any number of TLS records, checks every length
//! itself, and uses tls-parser for the contents of the extensions it routes on.

use tls_parser::TlsExtension;

use super::Error;
use crate::target::Name;

/// Default bound on the bytes read for one ClientHello, record headers included. Real hellos
/// are 200 to 2000 bytes (Chromium's post-quantum key share makes ~1.9 KiB); 16 KiB leaves
/// room for large session tickets and PSKs.
pub const DEFAULT_MAX_CLIENT_HELLO: usize = 16 * 1024;

/// TLS record header: content type, version, length.
const RECORD_HEADER: usize = 5;
/// Handshake header: message type and a 24-bit length.
const HANDSHAKE_HEADER: usize = 4;
/// Longest plaintext record payload (RFC 8446 §5.1).
const MAX_RECORD_PAYLOAD: usize = 1 << 14;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
const CONTENT_HEARTBEAT: u8 = 24;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
/// The only server_name type RFC 6066 defines.
const SNI_HOST_NAME: u8 = 0;

/// What the reader needs next.
#[derive(Debug)]
pub enum Progress {
    /// More input is needed: at least `at_least` more bytes before the answer can change.
    NeedMore {
        /// A lower bound (at least 1) on the bytes still to come.
        at_least: usize,
    },
    /// The ClientHello is complete. Bytes of the last input after the record that completed
    /// it were not consumed: [`ClientHello::raw`] says how many were.
    Done(ClientHello),
}

/// What a ClientHello says about where the client wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    server_name: Option<Name>,
    alpn: Vec<Vec<u8>>,
    versions: Vec<u16>,
    ech: bool,
    raw: Vec<u8>,
}

impl ClientHello {
    /// The server name (SNI), normalised; `None` when the client sent none.
    pub fn server_name(&self) -> Option<&Name> {
        self.server_name.as_ref()
    }

    /// The ALPN protocol names, in the client's order.
    pub fn alpn(&self) -> &[Vec<u8>] {
        &self.alpn
    }

    /// The offered protocol versions (`0x0304` is TLS 1.3): the supported_versions list
    /// without GREASE values, or the legacy version when that extension is absent.
    pub fn versions(&self) -> &[u16] {
        &self.versions
    }

    /// Whether an encrypted_client_hello extension is present (real or GREASE). The SNI is
    /// then the outer, public name, which is still what routing uses.
    pub fn has_ech(&self) -> bool {
        self.ech
    }

    /// The TLS records that carried the hello, byte for byte as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

/// Incremental ClientHello reader over bytes as they arrive.
///
/// ```
/// use egress_core::tls::{ClientHelloReader, Progress};
///
/// let mut reader = ClientHelloReader::default();
/// // A record header and a handshake header: 196 more bytes before anything can change.
/// let header = [22, 3, 1, 0, 200, 1, 0, 0, 196];
/// assert!(matches!(reader.feed(&header), Ok(Progress::NeedMore { at_least: 196 })));
/// // Plain HTTP is refused at its first byte.
/// assert!(ClientHelloReader::default().feed(b"GET / HTTP/1.1\r\n").is_err());
/// ```
#[derive(Debug)]
pub struct ClientHelloReader {
    max_bytes: usize,
    /// Every record byte consumed so far.
    raw: Vec<u8>,
    /// Offset in `raw` of the record being read.
    record_start: usize,
    /// The handshake message assembled from record payloads.
    message: Vec<u8>,
    finished: bool,
}

impl Default for ClientHelloReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CLIENT_HELLO)
    }
}

impl ClientHelloReader {
    /// A reader that refuses hellos whose records take more than `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            raw: Vec::new(),
            record_start: 0,
            message: Vec::new(),
            finished: false,
        }
    }

    /// Feeds the next bytes received. The reader copies what it consumes, never more than
    /// the limit.
    ///
    /// # Errors
    ///
    /// An [`Error`] when the input cannot be a routable ClientHello; the reader is then
    /// finished and every later call returns [`Error::Finished`].
    pub fn feed(&mut self, data: &[u8]) -> Result<Progress, Error> {
        if self.finished {
            return Err(Error::Finished);
        }
        let answer = self.consume(data);
        if !matches!(answer, Ok(Progress::NeedMore { .. })) {
            self.finished = true;
        }
        answer
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<Progress, Error> {
        loop {
            let have = self.raw.len() - self.record_start;
            if have < RECORD_HEADER {
                let take = data.len().min(RECORD_HEADER - have);
                self.raw.extend_from_slice(&data[..take]);
                data = &data[take..];
                self.check_record_header()?;
                let have = self.raw.len() - self.record_start;
                if have < RECORD_HEADER {
                    return Ok(Progress::NeedMore {
                        at_least: header_checkpoint(have),
                    });
                }
            }
            let header = &self.raw[self.record_start..self.record_start + RECORD_HEADER];
            let end = self.record_start
                + RECORD_HEADER
                + usize::from(u16::from_be_bytes([header[3], header[4]]));
            let missing = end - self.raw.len();
            // One allocation per record, not one per read.
            self.raw.reserve(missing);
            self.message.reserve(missing);
            let take = data.len().min(missing);
            self.raw.extend_from_slice(&data[..take]);
            self.message.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.check_message_header()?;
            if self.raw.len() < end {
                let in_record = end - self.raw.len();
                // The handshake type and length are checked as soon as each arrives.
                let at_least = match self.message.len() {
                    0 => 1,
                    n if n < HANDSHAKE_HEADER => HANDSHAKE_HEADER - n,
                    _ => in_record,
                };
                return Ok(Progress::NeedMore {
                    at_least: at_least.min(in_record),
                });
            }
            // The record is complete: the hello ends here, or continues in the next record.
            self.record_start = end;
            if let Some(len) = self.message_len() {
                if self.message.len() > len {
                    return Err(Error::TrailingHandshakeData);
                }
                if self.message.len() == len {
                    let mut hello = parse(&self.message)?;
                    hello.raw = std::mem::take(&mut self.raw);
                    return Ok(Progress::Done(hello));
                }
            }
        }
    }

    /// Checks the bytes of the current record header that have arrived.
    fn check_record_header(&self) -> Result<(), Error> {
        let header = &self.raw[self.record_start..];
        let first = self.record_start == 0;
        match header.first().copied() {
            None | Some(CONTENT_HANDSHAKE) => {}
            Some(CONTENT_ALERT) => return Err(Error::Alert),
            Some(
                b @ (CONTENT_CHANGE_CIPHER_SPEC | CONTENT_APPLICATION_DATA | CONTENT_HEARTBEAT),
            ) => {
                return Err(Error::UnexpectedRecord { content_type: b });
            }
            Some(b) if !first => return Err(Error::UnexpectedRecord { content_type: b }),
            Some(b) if b & 0x80 != 0 => return Err(Error::Sslv2),
            Some(b) => return Err(Error::NotTls { first_byte: b }),
        }
        if let [_, major, minor, ..] = *header {
            if major != 3 {
                return Err(Error::BadRecordVersion(u16::from_be_bytes([major, minor])));
            }
        }
        if let [_, _, _, hi, lo] = *header {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len == 0 {
                return Err(Error::EmptyRecord);
            }
            if len > MAX_RECORD_PAYLOAD {
                return Err(Error::RecordOverflow(len));
            }
            if self.record_start + RECORD_HEADER + len > self.max_bytes {
                return Err(Error::TooLarge {
                    limit: self.max_bytes,
                });
            }
        }
        Ok(())
    }

    /// Checks the handshake header once its bytes have arrived.
    fn check_message_header(&self) -> Result<(), Error> {
        match self.message.first() {
            Some(&HANDSHAKE_CLIENT_HELLO) | None => {}
            Some(&t) => return Err(Error::NotClientHello(t)),
        }
        if let Some(len) = self.message_len() {
            // Every byte of the message travels behind at least one record header.
            if len + RECORD_HEADER > self.max_bytes {
                return Err(Error::TooLarge {
                    limit: self.max_bytes,
                });
            }
        }
        Ok(())
    }

    /// Total length of the handshake message, header included, once known.
    fn message_len(&self) -> Option<usize> {
        match self.message[..] {
            [_, a, b, c, ..] => Some(
                HANDSHAKE_HEADER + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)),
            ),
            _ => None,
        }
    }
}

/// Bytes until the next record-header check, given `have` header bytes: the content type
/// (byte 1), the version (bytes 2 and 3) and the length (bytes 4 and 5) are each checked as
/// soon as they are whole.
fn header_checkpoint(have: usize) -> usize {
    match have {
        1 | 3 => 2,
        _ => 1,
    }
}

/// A bounded cursor over the hello, failing with [`Error::Malformed`].
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// One extension as framed on the wire.
struct Extension<'a> {
    kind: u16,
    data: &'a [u8],
    /// The whole extension, type and length included, as tls-parser takes it.
    wire: &'a [u8],
}

/// Our own strict walk of the ClientHello framing: every length must add up exactly.
/// Returns the legacy version and the extensions.
fn walk(body: &[u8]) -> Result<(u16, Vec<Extension<'_>>), Error> {
    let mut c = Cursor(body);
    let legacy_version = c.u16("truncated version")?;
    c.take(32, "truncated random")?;
    let sid_len = c.u8("truncated session id")?;
    if sid_len > 32 {
        return Err(Error::Malformed("session id longer than 32 bytes"));
    }
    c.take(usize::from(sid_len), "truncated session id")?;
    let suites_len = usize::from(c.u16("truncated cipher suites")?);
    if suites_len == 0 || suites_len % 2 != 0 {
        return Err(Error::Malformed("cipher suites length is zero or odd"));
    }
    c.take(suites_len, "truncated cipher suites")?;
    let comp_len = usize::from(c.u8("truncated compression methods")?);
    if comp_len == 0 {
        return Err(Error::Malformed("no compression method"));
    }
    c.take(comp_len, "truncated compression methods")?;
    if c.0.is_empty() {
        return Ok((legacy_version, Vec::new()));
    }
    let ext_len = usize::from(c.u16("truncated extensions length")?);
    if ext_len != c.0.len() {
        return Err(Error::Malformed(
            "extensions length does not match the hello length",
        ));
    }
    let mut extensions = Vec::new();
    while !c.0.is_empty() {
        let start = c.0;
        let kind = c.u16("truncated extension header")?;
        let len = usize::from(c.u16("truncated extension header")?);
        let data = c.take(len, "extension longer than the extensions block")?;
        let wire = &start[..4 + len];
        extensions.push(Extension { kind, data, wire });
    }
    let mut kinds: Vec<u16> = extensions.iter().map(|e| e.kind).collect();
    kinds.sort_unstable();
    if let Some(w) = kinds.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::DuplicateExtension(w[0]));
    }
    Ok((legacy_version, extensions))
}

/// The 16-bit list length that opens an extension body.
fn list_len16(data: &[u8]) -> Option<usize> {
    match data {
        [hi, lo, ..] => Some(usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// GREASE values (RFC 8701) look like 0x?a?a with both bytes equal.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Parses a complete handshake message (header included) that holds a ClientHello.
///
/// Our own walk checks all the framing (every length adds up, no extension twice); tls-parser
/// then reads the contents of the three extensions egress routes on, and nothing else: the
/// rest (cipher suites, key shares, ...) is the upstream's to judge, and parsing it cost most
/// of the reader's time and allocations.
fn parse(message: &[u8]) -> Result<ClientHello, Error> {
    let (legacy_version, extensions) = walk(&message[HANDSHAKE_HEADER..])?;
    let mut out = ClientHello {
        server_name: None,
        alpn: Vec::new(),
        versions: vec![legacy_version],
        ech: false,
        raw: Vec::new(),
    };
    for ext in &extensions {
        if ext.kind == EXT_ENCRYPTED_CLIENT_HELLO {
            out.ech = true;
        }
        if !matches!(
            ext.kind,
            EXT_SERVER_NAME | EXT_ALPN | EXT_SUPPORTED_VERSIONS
        ) {
            continue;
        }
        let parsed = match tls_parser::parse_tls_client_hello_extension(ext.wire) {
            Ok(([], parsed)) => parsed,
            _ => return Err(Error::Malformed("bad extension contents")),
        };
        match (ext.kind, &parsed) {
            (EXT_SERVER_NAME, TlsExtension::SNI(names)) => {
                let encoded: usize = 2 + names.iter().map(|(_, n)| 3 + n.len()).sum::<usize>();
                if encoded != ext.data.len() || list_len16(ext.data) != Some(encoded - 2) {
                    return Err(Error::Malformed("server_name lengths are inconsistent"));
                }
                let (kind, name) = match names[..] {
                    [] => return Err(Error::Malformed("empty server_name list")),
                    [one] => one,
                    _ => return Err(Error::MultipleServerNames),
                };
                if kind.0 != SNI_HOST_NAME {
                    return Err(Error::Malformed("server_name type is not host_name"));
                }
                out.server_name = Some(Name::from_ascii(name).map_err(Error::InvalidServerName)?);
            }
            (EXT_ALPN, TlsExtension::ALPN(protocols)) => {
                let encoded: usize = 2 + protocols.iter().map(|p| 1 + p.len()).sum::<usize>();
                if encoded != ext.data.len()
                    || list_len16(ext.data) != Some(encoded - 2)
                    || protocols.is_empty()
                    || protocols.iter().any(|p| p.is_empty())
                {
                    return Err(Error::Malformed("ALPN lengths are inconsistent"));
                }
                out.alpn = protocols.iter().map(|p| p.to_vec()).collect();
            }
            (EXT_SUPPORTED_VERSIONS, TlsExtension::SupportedVersions(versions)) => {
                if 1 + 2 * versions.len() != ext.data.len()
                    || ext.data.first().map(|n| usize::from(*n)) != Some(2 * versions.len())
                    || versions.is_empty()
                {
                    return Err(Error::Malformed(
                        "supported_versions lengths are inconsistent",
                    ));
                }
                out.versions = versions
                    .iter()
                    .map(|v| v.0)
                    .filter(|v| !is_grease(*v))
                    .collect();
            }
            _ => return Err(Error::Malformed("bad extension contents")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
