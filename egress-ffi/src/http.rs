//! The HTTP/1.x request-head parser: where a request goes (CONNECT authority, absolute or
//! origin form), its host and port, and how long the head is.

use std::ffi::{CString, c_char};

use egress_core::http::{
    HeadError, HeadLimits, Parse, RequestHead, RequestTarget, parse_request_head,
};

use crate::boundary::{Failure, call, call_plain, free_handle, handle, into_handle, out, slice};
use crate::{egress_error, egress_result};

/// Bounds on a request head; a zero field takes its default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct egress_http_limits {
    /// Longest request line in bytes. Default: 8192.
    pub max_request_line: usize,
    /// Largest head in bytes, final blank line included. Default: 65536.
    pub max_head_bytes: usize,
    /// Most header fields. Default: 100.
    pub max_headers: usize,
}

/// Which form the request target had (RFC 9112 §3.2).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum egress_http_target_form {
    /// `/path?query`; the host came from the Host header.
    EGRESS_HTTP_ORIGIN_FORM = 0,
    /// `http://host:port/path`.
    EGRESS_HTTP_ABSOLUTE_FORM = 1,
    /// `host:port`, for CONNECT.
    EGRESS_HTTP_AUTHORITY_FORM = 2,
    /// `*`, for `OPTIONS *`.
    EGRESS_HTTP_ASTERISK_FORM = 3,
}

/// A parsed request head. Immutable: safe to read from several threads at once.
#[derive(Debug)]
pub struct egress_http_request_head {
    head: RequestHead,
    method: CString,
    host: CString,
    path: CString,
}

/// Parses the request head at the start of `buf` (`len` bytes: everything read so far).
/// `limits` may be NULL for the defaults.
///
/// On `EGRESS_OK`, `*head_out` is a new head (free it with `egress_http_request_head_free`),
/// or NULL when the head has not ended yet: read more and call again with all the bytes.
/// On failure the code says which status to answer with (`EGRESS_HTTP_*`) and the error
/// says why. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_parse(
    buf: *const u8,
    len: usize,
    limits: *const egress_http_limits,
    head_out: *mut *mut egress_http_request_head,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let buf = slice(buf, len, "buf")?;
        let limits = if limits.is_null() {
            HeadLimits::default()
        } else {
            head_limits(handle(limits, "limits")?)
        };
        let head_out = out(head_out, "head_out")?;
        match parse_request_head(buf, &limits).map_err(head_failure)? {
            Parse::NeedMore => head_out.write(std::ptr::null_mut()),
            Parse::Complete(head) => {
                // Parsed text has no NUL byte: the parser rejects control characters.
                let c = |s: &str| CString::new(s).unwrap_or_default();
                head_out.write(into_handle(egress_http_request_head {
                    method: c(head.method()),
                    host: c(&head.host().to_string()),
                    path: c(head.path()),
                    head,
                }));
            }
        }
        Ok(())
    })
}

fn head_limits(limits: &egress_http_limits) -> HeadLimits {
    let default = HeadLimits::default();
    let or = |value: usize, default: usize| if value == 0 { default } else { value };
    HeadLimits {
        max_request_line: or(limits.max_request_line, default.max_request_line),
        max_head_bytes: or(limits.max_head_bytes, default.max_head_bytes),
        max_headers: or(limits.max_headers, default.max_headers),
    }
}

/// The code for a parse error: its HTTP status.
fn head_failure(error: HeadError) -> Failure {
    let code = match error.status() {
        414 => egress_result::EGRESS_HTTP_URI_TOO_LONG,
        431 => egress_result::EGRESS_HTTP_HEADERS_TOO_LARGE,
        505 => egress_result::EGRESS_HTTP_VERSION_NOT_SUPPORTED,
        _ => egress_result::EGRESS_HTTP_BAD_REQUEST,
    };
    Failure::new(code, format!("{} ({error})", error.reason()))
}

/// Frees a head. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_free(head: *mut egress_http_request_head) {
    free_handle(head);
}

/// Writes a NUL-terminated string of `head` and its length (without the NUL).
fn text_out(
    text: &CString,
    text_out: *mut *const c_char,
    len_out: *mut usize,
) -> Result<(), Failure> {
    let text_out = out(text_out, "text_out")?;
    let len_out = out(len_out, "len_out")?;
    text_out.write(text.as_ptr());
    len_out.write(text.as_bytes().len());
    Ok(())
}

/// The method as sent (`CONNECT`, `GET`, ...), NUL-terminated, living as long as the head.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_method(
    head: *const egress_http_request_head,
    method_out: *mut *const c_char,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| text_out(&handle(head, "head")?.method, method_out, len_out))
}

/// The destination host: a lower-case DNS name, or an IP literal (IPv6 without brackets),
/// NUL-terminated, living as long as the head. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_host(
    head: *const egress_http_request_head,
    host_out: *mut *const c_char,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| text_out(&handle(head, "head")?.host, host_out, len_out))
}

/// The origin-form path and query to send upstream (`*` for `OPTIONS *`, empty for
/// CONNECT), NUL-terminated, living as long as the head. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_path(
    head: *const egress_http_request_head,
    path_out: *mut *const c_char,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| text_out(&handle(head, "head")?.path, path_out, len_out))
}

/// The destination port: the CONNECT authority's, the absolute URI's or Host header's, or
/// 80 when they name none. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_port(
    head: *const egress_http_request_head,
    port_out: *mut u16,
) -> egress_result {
    call_plain(|| {
        let head = handle(head, "head")?;
        out(port_out, "port_out")?.write(head.head.port());
        Ok(())
    })
}

/// Which form the request target had. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_form(
    head: *const egress_http_request_head,
    form_out: *mut egress_http_target_form,
) -> egress_result {
    call_plain(|| {
        let head = handle(head, "head")?;
        let form = match head.head.form() {
            RequestTarget::Origin => egress_http_target_form::EGRESS_HTTP_ORIGIN_FORM,
            RequestTarget::Absolute => egress_http_target_form::EGRESS_HTTP_ABSOLUTE_FORM,
            RequestTarget::Authority => egress_http_target_form::EGRESS_HTTP_AUTHORITY_FORM,
            RequestTarget::Asterisk => egress_http_target_form::EGRESS_HTTP_ASTERISK_FORM,
        };
        out(form_out, "form_out")?.write(form);
        Ok(())
    })
}

/// Whether the request is a CONNECT. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_is_connect(
    head: *const egress_http_request_head,
    is_connect_out: *mut bool,
) -> egress_result {
    call_plain(|| {
        let head = handle(head, "head")?;
        out(is_connect_out, "is_connect_out")?.write(head.head.is_connect());
        Ok(())
    })
}

/// The length of the head in bytes, final blank line included: what follows it in the buffer
/// is body or tunnel data. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_http_request_head_len(
    head: *const egress_http_request_head,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let head = handle(head, "head")?;
        out(len_out, "len_out")?.write(head.head.len());
        Ok(())
    })
}
