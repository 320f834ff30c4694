//! The ClientHello reader: feed bytes as they arrive, get "need at least n more", a hello,
//! or an error; then read the server name, ALPN protocols, versions and ECH presence.

use std::ffi::{CString, c_char};

use egress_core::tls::{ClientHello, ClientHelloReader, DEFAULT_MAX_CLIENT_HELLO, Error, Progress};

use crate::boundary::{
    Failure, call, call_plain, free_handle, handle, handle_mut, into_handle, out, slice,
};
use crate::{egress_error, egress_result};

/// An incremental ClientHello reader. Not thread-safe: use it from one thread at a time.
#[derive(Debug)]
pub struct egress_client_hello_reader {
    reader: ClientHelloReader,
}

/// A complete ClientHello. Immutable: safe to read from several threads at once.
#[derive(Debug)]
pub struct egress_client_hello {
    hello: ClientHello,
    /// The server name, NUL-terminated for C.
    server_name: Option<CString>,
}

/// Makes a reader that accepts a ClientHello of at most `max_bytes` bytes (records and their
/// headers); 0 means the default, 16384.
///
/// Thread-safe. Free the reader with `egress_client_hello_reader_free`.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_reader_new(
    max_bytes: usize,
    reader_out: *mut *mut egress_client_hello_reader,
) -> egress_result {
    call_plain(|| {
        let reader_out = out(reader_out, "reader_out")?;
        let max_bytes = if max_bytes == 0 {
            DEFAULT_MAX_CLIENT_HELLO
        } else {
            max_bytes
        };
        reader_out.write(into_handle(egress_client_hello_reader {
            reader: ClientHelloReader::new(max_bytes),
        }));
        Ok(())
    })
}

/// Frees a reader. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_reader_free(reader: *mut egress_client_hello_reader) {
    free_handle(reader);
}

/// Feeds the next `len` bytes read from the client.
///
/// On `EGRESS_OK`, either `*hello_out` is a new hello (free it with
/// `egress_client_hello_free`) and `*need_out` is 0, or `*hello_out` is NULL and `*need_out`
/// is the least number of bytes (at least 1) to read before feeding again. Bytes after the
/// hello in the last input are not consumed: `egress_client_hello_len` says how many bytes
/// of the whole input the hello took; all of them must still reach the upstream.
///
/// On failure (`EGRESS_HELLO_*`), the reader is finished; the connection is not TLS or not
/// routable. Not thread-safe for one reader.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_reader_feed(
    reader: *mut egress_client_hello_reader,
    data: *const u8,
    len: usize,
    need_out: *mut usize,
    hello_out: *mut *mut egress_client_hello,
    error_out: *mut *mut egress_error,
) -> egress_result {
    call(error_out, || {
        let reader = handle_mut(reader, "reader")?;
        let data = slice(data, len, "data")?;
        let need_out = out(need_out, "need_out")?;
        let hello_out = out(hello_out, "hello_out")?;
        match reader.reader.feed(data).map_err(hello_failure)? {
            Progress::NeedMore { at_least } => {
                need_out.write(at_least);
                hello_out.write(std::ptr::null_mut());
            }
            Progress::Done(hello) => {
                let server_name = hello.server_name().map(|name| {
                    // A valid host name has no NUL byte.
                    CString::new(name.as_str()).unwrap_or_default()
                });
                need_out.write(0);
                hello_out.write(into_handle(egress_client_hello { hello, server_name }));
            }
        }
        Ok(())
    })
}

/// The code for a reader error. The core enum may grow: a new variant is reported as
/// malformed until it gets a code of its own.
fn hello_failure(error: Error) -> Failure {
    let code = match &error {
        Error::NotTls { .. }
        | Error::Sslv2
        | Error::Alert
        | Error::UnexpectedRecord { .. }
        | Error::NotClientHello(_) => egress_result::EGRESS_HELLO_NOT_CLIENT_HELLO,
        Error::TooLarge { .. } | Error::RecordOverflow(_) => egress_result::EGRESS_HELLO_TOO_LARGE,
        Error::InvalidServerName(_) => egress_result::EGRESS_HELLO_INVALID_SERVER_NAME,
        Error::Finished => egress_result::EGRESS_HELLO_FINISHED,
        _ => egress_result::EGRESS_HELLO_MALFORMED,
    };
    Failure::new(code, error.to_string())
}

/// Frees a hello. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_free(hello: *mut egress_client_hello) {
    free_handle(hello);
}

/// The server name (SNI), lower-case ASCII (IDNs in their `xn--` form), NUL-terminated;
/// `*len_out` is its length without the NUL. The text lives as long as the hello.
/// `EGRESS_NOT_FOUND` when the hello names no server. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_server_name(
    hello: *const egress_client_hello,
    name_out: *mut *const c_char,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let hello = handle(hello, "hello")?;
        let name_out = out(name_out, "name_out")?;
        let len_out = out(len_out, "len_out")?;
        let name = hello
            .server_name
            .as_ref()
            .ok_or_else(|| Failure::new(egress_result::EGRESS_NOT_FOUND, "no server name"))?;
        name_out.write(name.as_ptr());
        len_out.write(name.as_bytes().len());
        Ok(())
    })
}

/// How many ALPN protocols the hello offers (0 without the extension). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_alpn_count(
    hello: *const egress_client_hello,
    count_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let hello = handle(hello, "hello")?;
        out(count_out, "count_out")?.write(hello.hello.alpn().len());
        Ok(())
    })
}

/// The `index`-th ALPN protocol (from 0), as bytes (not NUL-terminated), living as long as
/// the hello. `EGRESS_NOT_FOUND` past the end. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_alpn(
    hello: *const egress_client_hello,
    index: usize,
    protocol_out: *mut *const u8,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let hello = handle(hello, "hello")?;
        let protocol_out = out(protocol_out, "protocol_out")?;
        let len_out = out(len_out, "len_out")?;
        let protocol = hello.hello.alpn().get(index).ok_or_else(|| {
            Failure::new(
                egress_result::EGRESS_NOT_FOUND,
                format!("no ALPN protocol at index {index}"),
            )
        })?;
        protocol_out.write(protocol.as_ptr());
        len_out.write(protocol.len());
        Ok(())
    })
}

/// The TLS versions the client offers, as wire values (0x0304 is TLS 1.3), from the
/// supported_versions extension without its GREASE values (RFC 8701), or the legacy version
/// alone without the extension. The array lives as
/// long as the hello. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_versions(
    hello: *const egress_client_hello,
    versions_out: *mut *const u16,
    count_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let hello = handle(hello, "hello")?;
        let versions_out = out(versions_out, "versions_out")?;
        let count_out = out(count_out, "count_out")?;
        let versions = hello.hello.versions();
        versions_out.write(versions.as_ptr());
        count_out.write(versions.len());
        Ok(())
    })
}

/// Whether the hello carries an encrypted_client_hello extension (ECH): its server name is
/// then the public name, not the real destination. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_has_ech(
    hello: *const egress_client_hello,
    has_ech_out: *mut bool,
) -> egress_result {
    call_plain(|| {
        let hello = handle(hello, "hello")?;
        out(has_ech_out, "has_ech_out")?.write(hello.hello.has_ech());
        Ok(())
    })
}

/// How many bytes of everything fed the hello's records took. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn egress_client_hello_len(
    hello: *const egress_client_hello,
    len_out: *mut usize,
) -> egress_result {
    call_plain(|| {
        let hello = handle(hello, "hello")?;
        out(len_out, "len_out")?.write(hello.hello.raw().len());
        Ok(())
    })
}
