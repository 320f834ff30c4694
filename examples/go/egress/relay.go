package egress

/*
#include "egress.h"

// Defined in callback.c: egress_runtime_relay with the Go callback and a cgo.Handle.
egress_result egress_go_runtime_relay(const egress_runtime *runtime, int client_fd,
                                      int upstream_fd, const uint8_t *prefix,
                                      size_t prefix_len, const egress_relay_options *options,
                                      uintptr_t handle, egress_error **error_out);
*/
import "C"

import (
	"net"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
)

// Traffic is the bytes a relay moved.
type Traffic struct {
	ClientToUpstream uint64 // written to the upstream, the prefix included
	UpstreamToClient uint64 // written to the client
}

// RelayOptions tunes a relay; nil or the zero value means egress's defaults.
type RelayOptions struct {
	// IdleTimeout closes the tunnel after this long without a byte either way; 0 means
	// the default, one hour.
	IdleTimeout time.Duration
	// DisableSplice always uses the userspace copy instead of splice(2).
	DisableSplice bool
}

func (o *RelayOptions) c() *C.egress_relay_options {
	if o == nil {
		return nil
	}
	ms := o.IdleTimeout.Milliseconds()
	if o.IdleTimeout > 0 && ms == 0 {
		ms = 1
	}
	if ms < 0 {
		ms = 0
	}
	return &C.egress_relay_options{idle_timeout_ms: C.uint64_t(ms), splice: C.bool(!o.DisableSplice)}
}

// takeFDs hands both conns over (see takeFD); on failure nothing reaches egress and both
// conns are closed anyway.
func takeFDs(client, upstream *net.TCPConn) (C.int, C.int, error) {
	cfd, cerr := takeFD(client, "client")
	ufd, uerr := takeFD(upstream, "upstream")
	if cerr != nil || uerr != nil {
		closeFD(cfd)
		closeFD(ufd)
		if cerr != nil {
			return -1, -1, cerr
		}
		return -1, -1, uerr
	}
	return cfd, ufd, nil
}

// Relay relays between client and upstream on the calling goroutine's thread until both
// directions have closed: prefix (bytes already read from the client, such as the
// ClientHello) goes to the upstream first, half-closes are passed on. Both conns are
// consumed (see the package documentation). The traffic is returned on failure too.
func Relay(client, upstream *net.TCPConn, prefix []byte, opts *RelayOptions) (Traffic, error) {
	cfd, ufd, err := takeFDs(client, upstream)
	if err != nil {
		return Traffic{}, err
	}
	p, n := bytesArg(prefix)
	var t C.egress_traffic
	var cerr *C.egress_error
	code := C.egress_relay(cfd, ufd, p, n, opts.c(), &t, &cerr)
	if code != C.EGRESS_OK && cerr != nil {
		C.egress_error_traffic(cerr, &t) // NOT_FOUND, t untouched, when not a relay error
	}
	return traffic(t), newError(code, cerr)
}

// SetPipeBudget sets the splice pipe budget of the relays started from now on: at most
// maxPipes pipes at once (two per splicing tunnel; past that, tunnels copy), each of
// pipeSize bytes; 0 keeps a default (512 pipes, 64 KiB). Relays already running keep their
// budget, so call it before the first relay.
func SetPipeBudget(maxPipes, pipeSize int) error {
	if maxPipes < 0 || pipeSize < 0 {
		return &Error{Code: InvalidParameter, Message: "negative pipe budget"}
	}
	var cerr *C.egress_error
	return newError(C.egress_relay_set_pipe_budget(C.size_t(maxPipes), C.size_t(pipeSize), &cerr), cerr)
}

func traffic(t C.egress_traffic) Traffic {
	return Traffic{ClientToUpstream: uint64(t.client_to_upstream), UpstreamToClient: uint64(t.upstream_to_client)}
}

// Runtime is a pool of egress threads running relays started with Runtime.Relay.
type Runtime struct {
	mu sync.RWMutex
	rt *C.egress_runtime
}

// NewRuntime starts a runtime with threads worker threads (0: one per CPU).
func NewRuntime(threads int) (*Runtime, error) {
	if threads < 0 {
		return nil, &Error{Code: InvalidParameter, Message: "threads is negative"}
	}
	var rt *C.egress_runtime
	var cerr *C.egress_error
	if err := newError(C.egress_runtime_new(C.size_t(threads), &rt, &cerr), cerr); err != nil {
		return nil, err
	}
	r := &Runtime{rt: rt}
	// Freeing joins threads and runs callbacks: keep that off the finalizer goroutine.
	runtime.SetFinalizer(r, func(r *Runtime) { go r.Close() })
	return r, nil
}

// Close stops the runtime: relays still running are cancelled (their done gets an error
// with code RelayCancelled, and their sockets are closed), then its threads are joined.
// Calling it again does nothing. Do not call it from a done callback.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	C.egress_runtime_free(r.rt)
	r.rt = nil
	runtime.SetFinalizer(r, nil)
	return nil
}

// relayDone is what a relay's cgo.Handle holds. The runtime is referenced so that it is not
// finalized while one of its relays runs.
type relayDone struct {
	rt   *Runtime
	done func(Traffic, error)
}

// Relay starts a relay like the package-level Relay on the runtime and returns at once;
// prefix is copied. done (may be nil) is called exactly once when the relay ends, on an
// egress thread (or on the goroutine running Close, for a cancelled relay): it must return
// quickly and must not call Close. When Relay fails, the relay did not start and done is
// never called. Both conns are consumed whatever the result.
func (r *Runtime) Relay(client, upstream *net.TCPConn, prefix []byte, opts *RelayOptions, done func(Traffic, error)) error {
	cfd, ufd, err := takeFDs(client, upstream)
	if err != nil {
		return err
	}
	// TryRLock fails only while Close runs; Close may be running callbacks that call Relay.
	if !r.mu.TryRLock() {
		closeFD(cfd)
		closeFD(ufd)
		return &Error{Code: Stopped, Message: "the runtime is closing"}
	}
	defer r.mu.RUnlock()
	h := cgo.NewHandle(&relayDone{rt: r, done: done})
	p, n := bytesArg(prefix)
	var cerr *C.egress_error
	code := C.egress_go_runtime_relay(r.rt, cfd, ufd, p, n, opts.c(), C.uintptr_t(h), &cerr)
	runtime.KeepAlive(r)
	if code != C.EGRESS_OK {
		h.Delete() // the callback will never come
	}
	return newError(code, cerr)
}

// egressGoRelayDone is the C callback of every Runtime.Relay (through callback.c). error is
// valid only during the call and belongs to egress.
//
//export egressGoRelayDone
func egressGoRelayDone(handle C.uintptr_t, result C.egress_result, t C.egress_traffic, cerr *C.egress_error) {
	h := cgo.Handle(handle)
	d := h.Value().(*relayDone)
	h.Delete()
	var err error
	if result != C.EGRESS_OK {
		err = errorOf(Result(result), cerr)
	}
	if d.done != nil {
		d.done(traffic(t), err)
	}
}
