//! HTTP/1.x for a forward proxy: request-head parsing, body framing and error responses,
//! all sans-IO. The listener's async shell lives in `server::http`.

mod chunked;
mod error;
mod head;
mod response;

pub use chunked::{ChunkedError, ChunkedLimits, ChunkedScanner, Scanned};
pub use error::HeadError;
pub use head::{
    BodyFraming, DEFAULT_MAX_HEAD_BYTES, DEFAULT_MAX_HEADERS, DEFAULT_MAX_REQUEST_LINE, HeadLimits,
    Header, Parse, RequestHead, RequestTarget, Version, parse_request_head,
};
pub use response::{ERROR_HEADER, ResponseBody, ResponseHead, error_response, parse_response_head};
