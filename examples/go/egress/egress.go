// Package egress is a thin cgo wrapper around libegress, the C API of the egress proxy
// (egress-ffi/include/egress.h): its ClientHello reader, HTTP request-head parser, policy
// engine, splice relay and the whole proxy.
//
// # Linking
//
// The package links libegress.a statically. Its directory comes from the environment, so
// the same code links the debug or the release build:
//
//	cargo build --release -p egress-ffi
//	CGO_LDFLAGS=-L$PWD/target/release go build ./...   # or target/debug
//
// The library is named -l:libegress.a rather than -legress because cargo puts libegress.so
// beside it, and the linker would prefer the shared one.
//
// # Ownership
//
//   - Handles (Policy, ClientHelloReader, Runtime, Proxy) are freed by Close, which is
//     idempotent; a finalizer only backs it up. A closed handle fails with NullParameter.
//   - ClientHello and RequestHead are plain Go values: their contents are copied out of C
//     and the C objects freed before the constructor returns.
//   - A *net.TCPConn passed to Relay, Runtime.Relay or Proxy.ServeConn is consumed: egress
//     gets a duplicate of its descriptor, the conn is closed, and the socket stays open
//     until egress closes it, whatever the result. Do not use the conn afterwards.
//   - Errors are *Error values; compare codes with errors.Is(err, egress.NotFound).
package egress

/*
#cgo CFLAGS: -I${SRCDIR}/../../../egress-ffi/include
#cgo LDFLAGS: -l:libegress.a -lpthread -ldl -lm -lrt
#include <stdlib.h>
#include "egress.h"
*/
import "C"

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"
)

// Result is an egress_result code. It is an error itself, so that errors.Is(err, code)
// tells whether err is an *Error with that code.
type Result uint32

// The result codes of egress.h.
const (
	OK                      Result = C.EGRESS_OK
	NullParameter           Result = C.EGRESS_NULL_PARAMETER
	InvalidParameter        Result = C.EGRESS_INVALID_PARAMETER
	BufferTooSmall          Result = C.EGRESS_BUFFER_TOO_SMALL
	Panic                   Result = C.EGRESS_PANIC
	NotFound                Result = C.EGRESS_NOT_FOUND
	IO                      Result = C.EGRESS_IO
	HelloNotClientHello     Result = C.EGRESS_HELLO_NOT_CLIENT_HELLO
	HelloMalformed          Result = C.EGRESS_HELLO_MALFORMED
	HelloTooLarge           Result = C.EGRESS_HELLO_TOO_LARGE
	HelloInvalidServerName  Result = C.EGRESS_HELLO_INVALID_SERVER_NAME
	HelloFinished           Result = C.EGRESS_HELLO_FINISHED
	HTTPBadRequest          Result = C.EGRESS_HTTP_BAD_REQUEST
	HTTPURITooLong          Result = C.EGRESS_HTTP_URI_TOO_LONG
	HTTPHeadersTooLarge     Result = C.EGRESS_HTTP_HEADERS_TOO_LARGE
	HTTPVersionNotSupported Result = C.EGRESS_HTTP_VERSION_NOT_SUPPORTED
	ConfigInvalid           Result = C.EGRESS_CONFIG_INVALID
	RelayClientFailed       Result = C.EGRESS_RELAY_CLIENT_FAILED
	RelayUpstreamFailed     Result = C.EGRESS_RELAY_UPSTREAM_FAILED
	RelayIdleTimeout        Result = C.EGRESS_RELAY_IDLE_TIMEOUT
	RelayCancelled          Result = C.EGRESS_RELAY_CANCELLED
	StartFailed             Result = C.EGRESS_START_FAILED
	Stopped                 Result = C.EGRESS_STOPPED
)

// Error describes the code (egress_result_message).
func (r Result) Error() string { return C.GoString(C.egress_result_message(C.uint32_t(r))) }

// Error is a failed call: its code and egress's message.
type Error struct {
	Code    Result
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("egress: %s (code %d)", e.Message, e.Code) }

// Is matches a Result or an *Error with the same code.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Result:
		return e.Code == t
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// Version is egress's version, such as "0.1.0".
func Version() string { return C.GoString(C.egress_version()) }

// newError turns a failed call's code and its error object (freed here) into an *Error.
func newError(code C.egress_result, cerr *C.egress_error) error {
	if code == C.EGRESS_OK {
		C.egress_error_free(cerr) // never set on success; freeing NULL is a no-op
		return nil
	}
	defer C.egress_error_free(cerr)
	return errorOf(Result(code), cerr)
}

// errorOf copies an error object egress owns (not freed here).
func errorOf(code Result, cerr *C.egress_error) *Error {
	e := &Error{Code: code, Message: code.Error()}
	if cerr != nil {
		e.Message = C.GoString(C.egress_error_message(cerr))
		var c C.egress_result
		if C.egress_error_code(cerr, &c) == C.EGRESS_OK && Result(c) != code {
			e.Message += fmt.Sprintf(" [error object says code %d]", c)
		}
	}
	return e
}

// bytesArg is b as a (pointer, length) argument: no pointer for an empty slice.
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// stringArg is s as a (pointer, length) argument (no NUL needed). The bytes are a copy
// in Go memory, valid for the call.
func stringArg(s string) (*C.char, C.size_t) {
	p, n := bytesArg([]byte(s))
	return (*C.char)(unsafe.Pointer(p)), n
}

// takeFD returns a close-on-exec duplicate of c's descriptor for egress, and closes c
// whatever happens: the socket lives on in the duplicate, which egress owns and closes.
// The duplicate is made under the conn's own descriptor lock (RawConn.Control), so no
// *os.File exists whose finalizer could close it, and c stays in non-blocking mode.
func takeFD(c *net.TCPConn, what string) (C.int, error) {
	if c == nil {
		return -1, &Error{Code: NullParameter, Message: "`" + what + "` is nil"}
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, &Error{Code: IO, Message: what + ": " + err.Error()}
	}
	dup, errno := -1, error(nil)
	if err := raw.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			errno = e
			return
		}
		dup = int(r)
	}); err != nil {
		return -1, &Error{Code: IO, Message: what + ": " + err.Error()}
	}
	if errno != nil {
		return -1, &Error{Code: IO, Message: what + ": dup: " + errno.Error()}
	}
	return C.int(dup), nil
}

// closeFD closes a duplicate that never reached egress.
func closeFD(fd C.int) {
	if fd >= 0 {
		syscall.Close(int(fd))
	}
}
