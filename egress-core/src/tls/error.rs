//! Why a ClientHello could not be read.

use std::fmt;
use std::io;

use crate::target::NameError;

/// Why the first bytes of a connection are not a ClientHello egress can route.
///
/// Every variant ends the connection before any upstream is dialed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The first byte is not a TLS record content type (`G` of `GET `, for example).
    NotTls {
        /// The byte that was seen.
        first_byte: u8,
    },
    /// An SSLv2-compatible hello (first byte has the high bit set).
    Sslv2,
    /// An alert record instead of a hello.
    Alert,
    /// A record that is neither handshake nor alert before the hello was complete.
    UnexpectedRecord {
        /// The record's content type.
        content_type: u8,
    },
    /// A record-layer version whose major byte is not 3.
    BadRecordVersion(u16),
    /// A zero-length handshake record (RFC 8446 §5.1 forbids them).
    EmptyRecord,
    /// A record longer than 2^14 bytes.
    RecordOverflow(usize),
    /// A handshake message that is not a ClientHello.
    NotClientHello(u8),
    /// A record or the handshake length claims more bytes than the configured limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Inconsistent lengths or bad framing inside the hello.
    Malformed(&'static str),
    /// More handshake bytes follow the ClientHello in the same record.
    TrailingHandshakeData,
    /// The same extension type appears twice.
    DuplicateExtension(u16),
    /// The server_name list holds more than one name.
    MultipleServerNames,
    /// The server name is not a valid DNS host name (IP literals included).
    InvalidServerName(NameError),
    /// `feed` was called after the reader finished (with a hello or an error).
    Finished,
    /// The deadline passed before the hello was complete.
    Timeout,
    /// The client closed the connection before the hello was complete.
    Eof {
        /// Bytes received before the close.
        received: usize,
    },
    /// Reading from the client failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTls { first_byte } => {
                write!(
                    f,
                    "not TLS: first byte 0x{first_byte:02x} is not a record type"
                )
            }
            Self::Sslv2 => f.write_str("SSLv2-style hello is not supported"),
            Self::Alert => f.write_str("client sent an alert instead of a hello"),
            Self::UnexpectedRecord { content_type } => {
                write!(
                    f,
                    "unexpected TLS record type {content_type} before the hello"
                )
            }
            Self::BadRecordVersion(v) => write!(f, "bad TLS record version 0x{v:04x}"),
            Self::EmptyRecord => f.write_str("empty TLS handshake record"),
            Self::RecordOverflow(n) => write!(f, "TLS record of {n} bytes exceeds 16384"),
            Self::NotClientHello(t) => write!(f, "handshake message type {t} is not a ClientHello"),
            Self::TooLarge { limit } => write!(f, "ClientHello larger than the {limit}-byte limit"),
            Self::Malformed(what) => write!(f, "malformed ClientHello: {what}"),
            Self::TrailingHandshakeData => f.write_str("handshake data after the ClientHello"),
            Self::DuplicateExtension(t) => write!(f, "duplicate TLS extension {t}"),
            Self::MultipleServerNames => f.write_str("more than one name in server_name"),
            Self::InvalidServerName(e) => write!(f, "invalid server name: {e}"),
            Self::Finished => f.write_str("ClientHello reader already finished"),
            Self::Timeout => f.write_str("timed out waiting for the ClientHello"),
            Self::Eof { received } => {
                write!(
                    f,
                    "client closed after {received} bytes, before the ClientHello ended"
                )
            }
            Self::Io(e) => write!(f, "reading the ClientHello: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidServerName(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}
