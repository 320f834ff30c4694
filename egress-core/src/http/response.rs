//! Responses: the sans-IO parser of an upstream's response head (status, framing, what to
//! pass on to the client), and the error responses the proxy writes itself.

use super::HeadError;
use super::head::{HeadLimits, Header, content_length, ends_in_chunked, find, tokens, values};

/// Status reason phrases for the statuses the proxy sends itself.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// The name of the response header that carries the proxy's machine-readable reason.
pub const ERROR_HEADER: &str = "X-Egress-Error";

/// A complete error response written by the proxy: the status, a header naming the reason
/// (`X-Egress-Error: <reason>`), `Connection: close`, and a one-line body.
///
/// ```
/// let bytes = egress_core::http::error_response(403, "port_not_allowed", "CONNECT to port 22 is not allowed");
/// assert!(bytes.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
/// ```
pub fn error_response(status: u16, reason: &str, message: &str) -> Vec<u8> {
    let body = format!("{message}\n");
    format!(
        "HTTP/1.1 {status} {}\r\n{ERROR_HEADER}: {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len()
    )
    .into_bytes()
}

/// How a response body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Everything until the upstream closes; the client connection closes after it.
    UntilClose,
}

/// A parsed upstream response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    status: u16,
    reason: String,
    http10: bool,
    headers: Vec<Header>,
    body: ResponseBody,
    connection: Vec<String>,
    /// Both Transfer-Encoding and Content-Length: the length is ignored (RFC 9112 §6.3),
    /// never passed on, and the connection is not reused.
    length_overridden: bool,
    len: usize,
}

/// Headers of a response that describe the upstream hop only.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

impl ResponseHead {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// How the body is framed.
    pub fn body(&self) -> ResponseBody {
        self.body
    }

    /// The head's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the head is empty (never).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the upstream connection can carry another request after this response.
    pub fn upstream_reusable(&self) -> bool {
        let close = self.connection.iter().any(|t| t == "close");
        let keep = self.connection.iter().any(|t| t == "keep-alive");
        self.body != ResponseBody::UntilClose
            && !close
            && !self.length_overridden
            && (!self.http10 || keep)
    }

    /// The head to send to the client: hop-by-hop headers removed (a 101 keeps `Upgrade`
    /// and says `Connection: Upgrade`), `Connection: close` when `close`.
    pub fn client_head(&self, close: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len + 32);
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).as_bytes());
        let upgrade = self.status == 101;
        for header in &self.headers {
            let name = header.name.to_ascii_lowercase();
            let stale_length = self.length_overridden && name == "content-length";
            if stale_length
                || !(upgrade && name == "upgrade")
                    && (HOP_BY_HOP.contains(&name.as_str()) || self.connection.contains(&name))
            {
                continue;
            }
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&header.value);
            out.extend_from_slice(b"\r\n");
        }
        if upgrade {
            out.extend_from_slice(b"Connection: Upgrade\r\n");
        } else if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Parses an upstream response head from the start of `buf`; `head_request` says the
/// request was HEAD (so no body follows whatever the headers say).
///
/// # Errors
///
/// A [`HeadError`] when the response is not valid HTTP/1.x or its framing is ambiguous; the
/// proxy answers the client 502.
pub fn parse_response_head(
    buf: &[u8],
    limits: &HeadLimits,
    head_request: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    let Some(end) = find(buf, b"\r\n\r\n").map(|at| at + 4) else {
        return if buf.len() > limits.max_head_bytes {
            Err(HeadError::HeadTooLarge {
                limit: limits.max_head_bytes,
            })
        } else {
            Ok(None)
        };
    };
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut response = httparse::Response::new(&mut slots);
    match response.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(n)) if n == end => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        _ => return Err(HeadError::Malformed("invalid response head from upstream")),
    }
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return Err(HeadError::Malformed("incomplete status line from upstream"));
    };
    let headers: Vec<Header> = response.headers.iter().map(Header::from).collect();
    let lengths: Vec<&[u8]> = values(&headers, "content-length").collect();
    let codings: Vec<&[u8]> = values(&headers, "transfer-encoding").collect();
    let body = if head_request || status < 200 || status == 204 || status == 304 {
        ResponseBody::None
    } else if !codings.is_empty() {
        if ends_in_chunked(&codings) {
            ResponseBody::Chunked
        } else {
            ResponseBody::UntilClose
        }
    } else if !lengths.is_empty() {
        ResponseBody::Length(content_length(&lengths)?)
    } else {
        ResponseBody::UntilClose
    };
    let connection = tokens(values(&headers, "connection")).collect();
    let length_overridden = !codings.is_empty() && !lengths.is_empty();
    Ok(Some(ResponseHead {
        status,
        reason: response.reason.unwrap_or("").to_owned(),
        http10: version == 0,
        headers,
        body,
        connection,
        length_overridden,
        len: end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head: bool) -> ResponseHead {
        parse_response_head(raw, &HeadLimits::default(), head)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false).body(),
            ResponseBody::Length(3)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).body(),
            ResponseBody::None
        );
        assert_eq!(
            parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).body(),
            ResponseBody::None
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .body(),
            ResponseBody::Chunked
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\n\r\n", false).body(),
            ResponseBody::UntilClose
        );
        assert!(!parse(b"HTTP/1.1 200 OK\r\n\r\n", false).upstream_reusable());
        assert!(!parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).upstream_reusable());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).upstream_reusable());
    }

    #[test]
    fn a_length_beside_transfer_encoding_is_dropped() {
        let head = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert_eq!(head.body(), ResponseBody::Chunked);
        assert!(!head.upstream_reusable());
        assert_eq!(
            head.client_head(false),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn client_head_drops_hop_by_hop_and_says_close() {
        let head = parse(b"HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-A: 1\r\nKeep-Alive: 5\r\nContent-Length: 0\r\n\r\n", false);
        assert_eq!(
            head.client_head(true),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn error_responses_name_their_reason() {
        let text =
            String::from_utf8(error_response(502, "connect_refused", "upstream refused")).unwrap();
        assert!(text.contains("\r\nX-Egress-Error: connect_refused\r\n"));
        assert!(text.ends_with("\r\n\r\nupstream refused\n"));
    }
}
