//! The C ABI of egress: its ClientHello reader, HTTP request-head parser, policy engine,
//! splice relay and the whole proxy, for C and Go programs (`libegress.a`, `libegress.so`,
//! `include/egress.h`).
//!
//! The contract, in the manner of rustls-ffi (README.md in this crate has the long form):
//!
//! - Names are `egress_<type>_<verb>`; types are opaque handles made by `_new` and released
//!   by `_free`, where `_free(NULL)` does nothing.
//! - Every function that can fail returns an `egress_result` (`EGRESS_OK` is 0), and writes
//!   its outputs (out-parameters) only on success. Functions whose failures need words take a
//!   last `egress_error **error_out`: when not NULL, a failure stores a new error object there
//!   (read it with `egress_error_message`, free it with `egress_error_free`). There is no
//!   thread-local "last error": Go moves goroutines between threads.
//! - A buffer pointer is always followed by its length; a zero length needs no pointer.
//! - A panic never crosses into C: every entry point catches it and returns `EGRESS_PANIC`.
//! - Descriptors handed to egress belong to it from the call on, whatever the result.
//! - egress installs no signal handler. Its own threads block SIGPIPE, and the blocking
//!   relay blocks it on the caller's thread for the call, so a vanished peer is an error.
//! - Each function's documentation states whether it is thread-safe.
//!
//! ```c
//! egress_policy *policy = NULL;
//! egress_error *error = NULL;
//! const char *toml = "allow = [\"*.example.com:443\"]";
//! if (egress_policy_new(toml, strlen(toml), &policy, &error) != EGRESS_OK) {
//!     fprintf(stderr, "%s\n", egress_error_message(error));
//!     egress_error_free(error);
//! }
//! ```

#![expect(
    non_camel_case_types,
    reason = "the C API names its types egress_<name>"
)]

mod boundary;
mod hello;
mod http;
mod policy;
mod proxy;
mod relay;
mod result;
mod runtime;

use std::ffi::c_char;

pub use boundary::egress_error;
pub use hello::*;
pub use http::*;
pub use policy::*;
pub use proxy::*;
pub use relay::*;
pub use result::egress_result;
pub use runtime::*;

use boundary::{c_str, call_plain, handle, out};

/// egress's version, such as `0.1.0`: a static NUL-terminated string. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_version() -> *const c_char {
    c_str(concat!(env!("CARGO_PKG_VERSION"), "\0"))
}

/// A static NUL-terminated description of result code `result`; an unknown number gets
/// "unknown result code". Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_result_message(result: u32) -> *const c_char {
    c_str(result::from_u32(result).map_or("unknown result code\0", egress_result::message))
}

/// The error's message, NUL-terminated, living as long as the error; "" for NULL.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_error_message(error: *const egress_error) -> *const c_char {
    match handle(error, "error") {
        Ok(error) => error.message.as_ptr(),
        Err(_) => c_str("\0"),
    }
}

/// The result code the failing call returned. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_error_code(
    error: *const egress_error,
    code_out: *mut egress_result,
) -> egress_result {
    call_plain(|| {
        let error = handle(error, "error")?;
        out(code_out, "code_out")?.write(error.code);
        Ok(())
    })
}

/// The bytes a failed relay moved before it failed. `EGRESS_NOT_FOUND` for an error that is
/// not a relay's, and for `EGRESS_RELAY_CANCELLED` (a cancelled relay is not counted).
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_error_traffic(
    error: *const egress_error,
    traffic_out: *mut egress_traffic,
) -> egress_result {
    call_plain(|| {
        let error = handle(error, "error")?;
        let traffic_out = out(traffic_out, "traffic_out")?;
        let traffic = error.traffic.ok_or_else(|| {
            boundary::Failure::new(egress_result::EGRESS_NOT_FOUND, "not a relay error")
        })?;
        traffic_out.write(traffic);
        Ok(())
    })
}

/// Frees an error. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn egress_error_free(error: *mut egress_error) {
    boundary::free_handle(error);
}
