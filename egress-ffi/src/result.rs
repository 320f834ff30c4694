//! The result codes: one number space for every function, append-only, grouped in blocks of
//! a hundred per subsystem. A number, once published, keeps its meaning; a retired one stays
//! here as a comment.

/// What a call did. `EGRESS_OK` is 0; every other value is a failure, and
/// `egress_result_message` describes it.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum egress_result {
    /// Success.
    EGRESS_OK = 0,
    /// A pointer that must not be NULL was NULL.
    EGRESS_NULL_PARAMETER = 1,
    /// An argument is out of range, or text is not UTF-8.
    EGRESS_INVALID_PARAMETER = 2,
    /// A caller buffer is too small for the output.
    EGRESS_BUFFER_TOO_SMALL = 3,
    /// egress panicked; the call had no effect beyond what the message says. A bug: please
    /// report it.
    EGRESS_PANIC = 4,
    /// The asked-for item does not exist (no server name, an index past the end).
    EGRESS_NOT_FOUND = 5,
    /// An operating-system call failed (a descriptor that is not a TCP socket, say).
    EGRESS_IO = 6,

    /// The bytes are not a TLS ClientHello (plain HTTP, SSLv2, an alert, another message).
    EGRESS_HELLO_NOT_CLIENT_HELLO = 100,
    /// The bytes claim to be a ClientHello but their framing or contents are broken.
    EGRESS_HELLO_MALFORMED = 101,
    /// The ClientHello is larger than the reader's limit.
    EGRESS_HELLO_TOO_LARGE = 102,
    /// The server name is not a valid DNS host name.
    EGRESS_HELLO_INVALID_SERVER_NAME = 103,
    /// The reader already finished (with a hello or an error): make a new one.
    EGRESS_HELLO_FINISHED = 104,

    /// The request head is not valid HTTP/1.x: answer 400.
    EGRESS_HTTP_BAD_REQUEST = 200,
    /// The request line is longer than the limit: answer 414.
    EGRESS_HTTP_URI_TOO_LONG = 201,
    /// The head is larger or has more fields than the limit: answer 431.
    EGRESS_HTTP_HEADERS_TOO_LARGE = 202,
    /// An HTTP version other than 1.0 and 1.1: answer 505.
    EGRESS_HTTP_VERSION_NOT_SUPPORTED = 203,

    /// Configuration text (TOML) is invalid; the error message names each mistake's line.
    EGRESS_CONFIG_INVALID = 300,

    /// The relay failed on the client side; bytes moved so far are in the error.
    EGRESS_RELAY_CLIENT_FAILED = 400,
    /// The relay failed on the upstream side; bytes moved so far are in the error.
    EGRESS_RELAY_UPSTREAM_FAILED = 401,
    /// No byte moved for the idle timeout; bytes moved so far are in the error.
    EGRESS_RELAY_IDLE_TIMEOUT = 402,
    /// The runtime was freed while the relay ran.
    EGRESS_RELAY_CANCELLED = 403,

    /// The proxy could not start (an address could not be bound, the resolver could not be
    /// built, the runtime could not start).
    EGRESS_START_FAILED = 500,
    /// The proxy has stopped and takes no more connections.
    EGRESS_STOPPED = 501,
}

impl egress_result {
    /// A short description, as `egress_result_message` returns it (NUL-terminated).
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::EGRESS_OK => "ok\0",
            Self::EGRESS_NULL_PARAMETER => "a required pointer was NULL\0",
            Self::EGRESS_INVALID_PARAMETER => "an argument is out of range or not UTF-8\0",
            Self::EGRESS_BUFFER_TOO_SMALL => "the output buffer is too small\0",
            Self::EGRESS_PANIC => "egress panicked (a bug)\0",
            Self::EGRESS_NOT_FOUND => "no such item\0",
            Self::EGRESS_IO => "an operating-system call failed\0",
            Self::EGRESS_HELLO_NOT_CLIENT_HELLO => "not a TLS ClientHello\0",
            Self::EGRESS_HELLO_MALFORMED => "malformed ClientHello\0",
            Self::EGRESS_HELLO_TOO_LARGE => "ClientHello larger than the limit\0",
            Self::EGRESS_HELLO_INVALID_SERVER_NAME => "the server name is not a valid host name\0",
            Self::EGRESS_HELLO_FINISHED => "the ClientHello reader has already finished\0",
            Self::EGRESS_HTTP_BAD_REQUEST => "bad HTTP request head (400)\0",
            Self::EGRESS_HTTP_URI_TOO_LONG => "HTTP request line too long (414)\0",
            Self::EGRESS_HTTP_HEADERS_TOO_LARGE => "HTTP request head too large (431)\0",
            Self::EGRESS_HTTP_VERSION_NOT_SUPPORTED => "HTTP version not supported (505)\0",
            Self::EGRESS_CONFIG_INVALID => "invalid configuration\0",
            Self::EGRESS_RELAY_CLIENT_FAILED => "the relay failed on the client side\0",
            Self::EGRESS_RELAY_UPSTREAM_FAILED => "the relay failed on the upstream side\0",
            Self::EGRESS_RELAY_IDLE_TIMEOUT => "the relay was idle for its timeout\0",
            Self::EGRESS_RELAY_CANCELLED => "the relay was cancelled\0",
            Self::EGRESS_START_FAILED => "the proxy could not start\0",
            Self::EGRESS_STOPPED => "the proxy has stopped\0",
        }
    }
}

/// The code numbered `value`, if there is one (C may pass any number).
pub(crate) fn from_u32(value: u32) -> Option<egress_result> {
    Some(match value {
        0 => egress_result::EGRESS_OK,
        1 => egress_result::EGRESS_NULL_PARAMETER,
        2 => egress_result::EGRESS_INVALID_PARAMETER,
        3 => egress_result::EGRESS_BUFFER_TOO_SMALL,
        4 => egress_result::EGRESS_PANIC,
        5 => egress_result::EGRESS_NOT_FOUND,
        6 => egress_result::EGRESS_IO,
        100 => egress_result::EGRESS_HELLO_NOT_CLIENT_HELLO,
        101 => egress_result::EGRESS_HELLO_MALFORMED,
        102 => egress_result::EGRESS_HELLO_TOO_LARGE,
        103 => egress_result::EGRESS_HELLO_INVALID_SERVER_NAME,
        104 => egress_result::EGRESS_HELLO_FINISHED,
        200 => egress_result::EGRESS_HTTP_BAD_REQUEST,
        201 => egress_result::EGRESS_HTTP_URI_TOO_LONG,
        202 => egress_result::EGRESS_HTTP_HEADERS_TOO_LARGE,
        203 => egress_result::EGRESS_HTTP_VERSION_NOT_SUPPORTED,
        300 => egress_result::EGRESS_CONFIG_INVALID,
        400 => egress_result::EGRESS_RELAY_CLIENT_FAILED,
        401 => egress_result::EGRESS_RELAY_UPSTREAM_FAILED,
        402 => egress_result::EGRESS_RELAY_IDLE_TIMEOUT,
        403 => egress_result::EGRESS_RELAY_CANCELLED,
        500 => egress_result::EGRESS_START_FAILED,
        501 => egress_result::EGRESS_STOPPED,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_a_message() {
        let mut known = 0;
        for value in 0..1000 {
            if let Some(code) = from_u32(value) {
                known += 1;
                assert_eq!(code as u32, value);
                let message = code.message();
                assert!(message.ends_with('\0') && message.len() > 1, "{code:?}");
            }
        }
        assert_eq!(
            known, 23,
            "a code was added: extend from_u32 and this count"
        );
    }
}
