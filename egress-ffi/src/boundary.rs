//! Everything that touches C's pointers, in one place: checks that turn raw pointers into
//! references (NULL and length checks), outputs written only on success, handles made and
//! freed in pairs, and [`call`], which runs each entry point's body under `catch_unwind` and
//! turns its failure into a result code and an optional error object. Every `unsafe` block
//! of the crate is here, each with the part of the header's contract it relies on.

use std::any::Any;
use std::ffi::{CString, c_char, c_int};
use std::os::fd::{FromRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use crate::egress_traffic;
use crate::result::egress_result;

/// A failure on its way to C: a code, a message, and for relays the bytes moved.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: egress_result,
    pub(crate) message: String,
    pub(crate) traffic: Option<egress_traffic>,
}

impl Failure {
    pub(crate) fn new(code: egress_result, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            traffic: None,
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(
            egress_result::EGRESS_NULL_PARAMETER,
            format!("`{what}` is NULL"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(egress_result::EGRESS_INVALID_PARAMETER, message)
    }
}

/// Why a call failed, with a message: made by egress, read with `egress_error_message`,
/// freed with `egress_error_free`. Immutable, so safe to read from any thread.
#[derive(Debug)]
pub struct egress_error {
    pub(crate) code: egress_result,
    pub(crate) message: CString,
    pub(crate) traffic: Option<egress_traffic>,
}

impl From<Failure> for egress_error {
    fn from(failure: Failure) -> Self {
        // A message with a NUL in it (from an OS error, say) is cut there rather than lost.
        let bytes: Vec<u8> = failure.message.bytes().take_while(|&b| b != 0).collect();
        Self {
            code: failure.code,
            message: CString::new(bytes).unwrap_or_default(),
            traffic: failure.traffic,
        }
    }
}

/// Runs an entry point's `body`: a panic becomes `EGRESS_PANIC`, a failure its code, and
/// either way, when `error_out` is not NULL, a new `egress_error` is written there. Nothing
/// is written to `error_out` on success.
pub(crate) fn call(
    error_out: *mut *mut egress_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> egress_result {
    match catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| Err(panicked(&*panic))) {
        Ok(()) => egress_result::EGRESS_OK,
        Err(failure) => {
            let code = failure.code;
            if let Some(out) = NonNull::new(error_out) {
                let error = into_handle(egress_error::from(failure));
                // SAFETY: the header says `error_out` is NULL or points at writable storage
                // for one pointer; it is not NULL here.
                unsafe { out.as_ptr().write(error) };
            }
            code
        }
    }
}

/// Like [`call`], for entry points whose failures need no more words than their code.
pub(crate) fn call_plain(body: impl FnOnce() -> Result<(), Failure>) -> egress_result {
    call(std::ptr::null_mut(), body)
}

/// Runs `body`, which returns nothing and must not unwind into C: a panic is dropped.
pub(crate) fn call_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

fn panicked(payload: &(dyn Any + Send)) -> Failure {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    Failure::new(
        egress_result::EGRESS_PANIC,
        format!("egress panicked: {what}"),
    )
}

/// `len` values at `ptr`. A zero length needs no pointer (NULL is fine).
pub(crate) fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if len > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Failure::invalid(format!(
            "`{what}` length {len} is too large"
        )));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is not aligned")));
    }
    // SAFETY: the header says a non-NULL buffer pointer is followed by its length, points at
    // that many initialised values, and stays valid and unmodified for the call; the pointer
    // is not NULL, is aligned, and the byte length fits `isize`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// UTF-8 text of `len` bytes at `ptr` (no NUL needed).
pub(crate) fn text<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a str, Failure> {
    let bytes = slice(ptr.cast::<u8>(), len, what)?;
    std::str::from_utf8(bytes).map_err(|e| Failure::invalid(format!("`{what}` is not UTF-8: {e}")))
}

/// The handle at `ptr`, shared.
pub(crate) fn handle<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    let ptr = NonNull::new(ptr.cast_mut()).ok_or_else(|| Failure::null(what))?;
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is not aligned")));
    }
    // SAFETY: the header says a handle argument is NULL or a live handle of this type made by
    // its `_new` (by `into_handle`) and not yet freed (or, for option structs, a value the
    // caller owns for the call); it is not NULL and is aligned here, and shared access
    // matches the thread-safety the header states for the function.
    Ok(unsafe { ptr.as_ref() })
}

/// The handle at `ptr`, exclusive: the header says no other call may use it meanwhile.
pub(crate) fn handle_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    let mut ptr = NonNull::new(ptr).ok_or_else(|| Failure::null(what))?;
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is not aligned")));
    }
    // SAFETY: as in `handle`, and the header states that this function must not run
    // concurrently with any other use of the handle, so the reference is unique.
    Ok(unsafe { ptr.as_mut() })
}

/// Where an output goes: checked before the work, written after it succeeds.
#[derive(Debug)]
pub(crate) struct Out<T>(NonNull<T>);

/// Checks an output pointer.
pub(crate) fn out<T>(ptr: *mut T, what: &str) -> Result<Out<T>, Failure> {
    let ptr = NonNull::new(ptr).ok_or_else(|| Failure::null(what))?;
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is not aligned")));
    }
    Ok(Out(ptr))
}

impl<T> Out<T> {
    pub(crate) fn write(self, value: T) {
        // SAFETY: `out` checked the pointer is not NULL and aligned; the header says an output
        // pointer points at writable storage for one value. `write` does not read or drop
        // what was there (it may be uninitialised).
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A new handle owning `value`, for C to pass back and finally free with [`free_handle`].
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is a no-op. A panic while dropping (a bug)
/// is caught: it must not unwind into C.
pub(crate) fn free_handle<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    call_void(|| {
        // SAFETY: the header says a handle passed to its `_free` was made by its `_new` (by
        // `into_handle`, a `Box`), is not used again, and is freed once.
        drop(unsafe { Box::from_raw(ptr) });
    });
}

/// A static NUL-terminated string as C sees it.
pub(crate) fn c_str(text: &'static str) -> *const c_char {
    debug_assert!(text.ends_with('\0'));
    text.as_ptr().cast()
}

/// Takes ownership of descriptor `fd`: it is closed when the returned value is dropped.
pub(crate) fn take_fd(fd: c_int, what: &str) -> Result<OwnedFd, Failure> {
    if fd < 0 {
        return Err(Failure::invalid(format!(
            "`{what}` is not a descriptor ({fd})"
        )));
    }
    // SAFETY: the header says a descriptor passed to egress is open and that its ownership
    // passes to egress with the call, so nothing else closes it or uses it afterwards.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks SIGPIPE on the calling thread for good: for egress's own runtime threads. A write
/// or splice(2) to a socket whose peer has gone raises SIGPIPE, which kills a C program that
/// has not ignored it; blocked, it stays pending on this thread and the call fails with
/// EPIPE instead. No handler is installed: the host's disposition is untouched.
pub(crate) fn block_sigpipe() {
    // SAFETY: `set` is initialised by sigemptyset before use; pthread_sigmask only changes
    // the calling thread's mask, and a NULL old-set pointer is allowed.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs `body` on the caller's thread with SIGPIPE blocked, then consumes a SIGPIPE that
/// `body` raised (one that was pending before is left alone) and restores the mask: the
/// caller's thread ends as it began, whatever the relay met.
pub(crate) fn with_sigpipe_blocked<R>(body: impl FnOnce() -> R) -> R {
    // SAFETY: every set is initialised by sigemptyset or filled by the call before it is
    // read; the calls change or read only this thread's mask and pending set; the timeout
    // is zero, so sigtimedwait returns at once.
    unsafe {
        let mut pipe = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut old = std::mem::zeroed::<libc::sigset_t>();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let mut before = std::mem::zeroed::<libc::sigset_t>();
        libc::sigpending(&mut before);
        let was_pending = libc::sigismember(&before, libc::SIGPIPE) == 1;

        let result = body();

        if !was_pending {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            while libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero) == libc::SIGPIPE {}
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        result
    }
}

/// A C pointer carried to another thread (a callback's `userdata`).
#[derive(Debug)]
pub(crate) struct SendPtr(pub(crate) *mut std::ffi::c_void);

// SAFETY: egress never dereferences the pointer; it only hands it back to the C callback,
// and the header tells the caller that the callback, with its userdata, runs on another
// thread.
unsafe impl Send for SendPtr {}

/// `len` writable bytes at `ptr`, for the caller's output buffers.
pub(crate) fn slice_mut<'a>(ptr: *mut u8, len: usize, what: &str) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "`{what}` length {len} is too large"
        )));
    }
    // SAFETY: the header says a non-NULL output buffer is followed by its length, is
    // writable for that many bytes, and is not used by anything else during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_comes_back_as_a_result_code_with_its_message() {
        let mut error: *mut egress_error = std::ptr::null_mut();
        let code = call(&mut error, || panic!("boom at the boundary"));
        assert_eq!(code, egress_result::EGRESS_PANIC);
        let error = handle(error.cast_const(), "error").unwrap();
        assert_eq!(error.code, egress_result::EGRESS_PANIC);
        assert_eq!(
            error.message.to_str().unwrap(),
            "egress panicked: boom at the boundary"
        );
        free_handle(std::ptr::from_ref(error).cast_mut());

        assert_eq!(
            call_plain(|| panic!("{}", String::from("formatted"))),
            egress_result::EGRESS_PANIC
        );
    }

    #[test]
    fn a_message_with_a_nul_is_cut_there() {
        let error = egress_error::from(Failure::new(egress_result::EGRESS_IO, "before\0after"));
        assert_eq!(error.message.to_str().unwrap(), "before");
    }

    #[test]
    fn nothing_is_written_on_success_to_the_error_or_on_failure_to_outputs() {
        let mut error: *mut egress_error = std::ptr::null_mut();
        assert_eq!(call(&mut error, || Ok(())), egress_result::EGRESS_OK);
        assert!(error.is_null());

        let mut value = 7u32;
        let code = call_plain(|| {
            let value_out = out(&mut value, "value_out")?;
            Err::<(), _>(Failure::invalid("fails before the write"))?;
            value_out.write(1);
            Ok(())
        });
        assert_eq!(code, egress_result::EGRESS_INVALID_PARAMETER);
        assert_eq!(value, 7);
    }

    #[test]
    fn buffers_are_checked_for_null_length_and_text() {
        assert_eq!(slice::<u8>(std::ptr::null(), 0, "b").unwrap(), &[] as &[u8]);
        let null = slice::<u8>(std::ptr::null(), 1, "b").unwrap_err();
        assert_eq!(null.code, egress_result::EGRESS_NULL_PARAMETER);
        let bytes = [0xffu8, 0xfe];
        let bad = text(bytes.as_ptr().cast(), bytes.len(), "t").unwrap_err();
        assert_eq!(bad.code, egress_result::EGRESS_INVALID_PARAMETER);
        let huge = slice(bytes.as_ptr(), usize::MAX, "b").unwrap_err();
        assert_eq!(huge.code, egress_result::EGRESS_INVALID_PARAMETER);
        assert_eq!(
            take_fd(-1, "fd").unwrap_err().code,
            egress_result::EGRESS_INVALID_PARAMETER
        );
    }
}
