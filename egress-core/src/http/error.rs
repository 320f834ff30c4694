//! Why a request head is refused, and the status that says so.

use std::fmt;

use crate::target::NameError;

/// Why a request head cannot be proxied. Each maps to an HTTP status ([`HeadError::status`])
/// and a short machine-readable reason ([`HeadError::reason`]) sent in the
/// `Proxy-Status`-style `X-Egress-Error` header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// The head is not valid HTTP/1.x (bad request line, bad header syntax, bad target).
    Malformed(&'static str),
    /// The request line is longer than the limit (414).
    RequestLineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The head (request line and headers) is larger than the limit (431).
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header fields than the limit (431).
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// A line ends in a bare LF, or a CR is not followed by LF.
    BareLineEnding,
    /// A header is folded over several lines (obs-fold, RFC 9112 §5.2).
    ObsFold,
    /// Whitespace between a header name and its colon.
    SpaceBeforeColon,
    /// A header line with no name before the colon.
    EmptyHeaderName,
    /// Both `Content-Length` and `Transfer-Encoding`.
    LengthAndChunked,
    /// `Content-Length` values that differ, or one that is not a number.
    BadContentLength,
    /// A `Transfer-Encoding` whose final coding is not `chunked`, or any on HTTP/1.0.
    BadTransferEncoding,
    /// A CONNECT request with a body (`Content-Length` or `Transfer-Encoding`).
    ConnectWithBody,
    /// No `Host` header on an origin-form request, or several.
    MissingHost,
    /// An absolute-form `https://` URI: clients must use CONNECT for TLS.
    HttpsAbsoluteForm,
    /// A scheme other than `http` in absolute form.
    UnsupportedScheme,
    /// The destination host is not a valid host name or IP literal.
    InvalidHost(NameError),
    /// A port that is missing (CONNECT), zero, or not a plain decimal number.
    InvalidPort,
    /// An HTTP version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
}

impl HeadError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::RequestLineTooLong { .. } => 414,
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UnsupportedVersion => 505,
            _ => 400,
        }
    }

    /// A short reason token for logs and the error header (`bad_request`, `head_too_large`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_request",
            Self::RequestLineTooLong { .. } => "request_line_too_long",
            Self::HeadTooLarge { .. } => "headers_too_large",
            Self::TooManyHeaders { .. } => "too_many_headers",
            Self::BareLineEnding => "bare_line_ending",
            Self::ObsFold => "obs_fold",
            Self::SpaceBeforeColon => "space_before_colon",
            Self::EmptyHeaderName => "empty_header_name",
            Self::LengthAndChunked => "length_and_chunked",
            Self::BadContentLength => "bad_content_length",
            Self::BadTransferEncoding => "bad_transfer_encoding",
            Self::ConnectWithBody => "connect_with_body",
            Self::MissingHost => "missing_host",
            Self::HttpsAbsoluteForm => "https_absolute_form",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::InvalidHost(_) => "invalid_host",
            Self::InvalidPort => "invalid_port",
            Self::UnsupportedVersion => "unsupported_version",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "malformed request: {what}"),
            Self::RequestLineTooLong { limit } => {
                write!(f, "request line longer than {limit} bytes")
            }
            Self::HeadTooLarge { limit } => write!(f, "request head larger than {limit} bytes"),
            Self::TooManyHeaders { limit } => write!(f, "more than {limit} header fields"),
            Self::BareLineEnding => f.write_str("bare CR or LF line ending"),
            Self::ObsFold => f.write_str("folded header line (obs-fold)"),
            Self::SpaceBeforeColon => f.write_str("whitespace between header name and colon"),
            Self::EmptyHeaderName => f.write_str("empty header name"),
            Self::LengthAndChunked => f.write_str("both Content-Length and Transfer-Encoding"),
            Self::BadContentLength => f.write_str("invalid or conflicting Content-Length"),
            Self::BadTransferEncoding => {
                f.write_str("Transfer-Encoding must end in chunked (HTTP/1.1 only)")
            }
            Self::ConnectWithBody => f.write_str("CONNECT must not carry a body"),
            Self::MissingHost => f.write_str("missing or repeated Host header"),
            Self::HttpsAbsoluteForm => {
                f.write_str("https:// in absolute form: use CONNECT for TLS")
            }
            Self::UnsupportedScheme => f.write_str("only http:// URIs can be forwarded"),
            Self::InvalidHost(e) => write!(f, "invalid host: {e}"),
            Self::InvalidPort => f.write_str("invalid port"),
            Self::UnsupportedVersion => f.write_str("only HTTP/1.0 and HTTP/1.1 are supported"),
        }
    }
}

impl std::error::Error for HeadError {}
