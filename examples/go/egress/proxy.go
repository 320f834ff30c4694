package egress

/*
#include "egress.h"
*/
import "C"

import (
	"net"
	"runtime"
	"sync"
	"unsafe"
)

// ListenerKind is the kind of config block a handed-over connection goes to.
type ListenerKind uint32

// The listener kinds of egress.h.
const (
	ListenerSNI  ListenerKind = C.EGRESS_LISTENER_SNI  // an [[sni]] block
	ListenerHTTP ListenerKind = C.EGRESS_LISTENER_HTTP // an [[http]] block
)

// Proxy is a whole egress proxy running on its own threads (egress_proxy). LocalAddr,
// ServeConn and Stop are safe for concurrent use; Close waits for them.
type Proxy struct {
	mu sync.RWMutex
	p  *C.egress_proxy
}

// NewProxy starts a proxy from config, the TOML of the egress binary: it binds every
// listen address (port 0 picks a free one; `listen = []` makes a block that serves only
// handed-over conns) and serves until stopped. Fails with ConfigInvalid (naming each
// mistake's line) or StartFailed.
func NewProxy(config string) (*Proxy, error) {
	text, n := stringArg(config)
	var p *C.egress_proxy
	var cerr *C.egress_error
	if err := newError(C.egress_proxy_new(text, n, &p, &cerr), cerr); err != nil {
		return nil, err
	}
	proxy := &Proxy{p: p}
	// Freeing stops gracefully, which can take shutdown_timeout: not on the finalizer
	// goroutine.
	runtime.SetFinalizer(proxy, func(p *Proxy) { go p.Close() })
	return proxy, nil
}

// LocalAddr is the i-th listening address (from 0, in config order), such as
// "127.0.0.1:8443". NotFound past the last one.
func (p *Proxy) LocalAddr(i int) (string, error) {
	return p.localAddr(i, 48) // the header says 48 bytes always hold an address and its NUL
}

// localAddr is LocalAddr with a buffer of size bytes (BufferTooSmall when it cannot hold
// the address and its NUL).
func (p *Proxy) localAddr(i, size int) (string, error) {
	if i < 0 {
		return "", &Error{Code: NotFound, Message: "negative index"}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	buf := make([]byte, size)
	ptr, n := bytesArg(buf)
	var written C.size_t
	code := C.egress_proxy_local_addr(p.p, C.size_t(i), (*C.char)(unsafe.Pointer(ptr)), n, &written)
	runtime.KeepAlive(p)
	if code != C.EGRESS_OK {
		return "", newError(code, nil)
	}
	return string(buf[:written]), nil
}

// ServeConn hands c, a connection the program accepted, to the index-th block (from 0)
// of kind, served like one of its listeners' connections. c is consumed whatever the
// result. NotFound when there is no such block, Stopped after Stop.
func (p *Proxy) ServeConn(kind ListenerKind, index int, c *net.TCPConn) error {
	fd, err := takeFD(c, "conn")
	if err != nil {
		return err
	}
	if index < 0 {
		closeFD(fd)
		return &Error{Code: NotFound, Message: "negative index"}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	var cerr *C.egress_error
	code := C.egress_proxy_serve_fd(p.p, C.uint32_t(kind), C.size_t(index), fd, &cerr)
	runtime.KeepAlive(p)
	return newError(code, cerr)
}

// Stop stops the proxy gracefully: its listeners close, handed-over conns are refused,
// and open connections get up to [server] shutdown_timeout. It returns when done; calling
// it again returns at once.
func (p *Proxy) Stop() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	code := C.egress_proxy_stop(p.p)
	runtime.KeepAlive(p)
	return newError(code, nil)
}

// Close stops the proxy (as Stop) and frees it; calling it again does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	C.egress_proxy_free(p.p)
	p.p = nil
	runtime.SetFinalizer(p, nil)
	return nil
}
