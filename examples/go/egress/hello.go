package egress

/*
#include "egress.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// ClientHelloReader reads a TLS ClientHello incrementally (egress_client_hello_reader).
// Feed and Close may be called from several goroutines; they are serialised.
type ClientHelloReader struct {
	mu sync.Mutex
	r  *C.egress_client_hello_reader
}

// ClientHello is a complete ClientHello, copied into Go: nothing in it points into C.
type ClientHello struct {
	serverName    string
	hasServerName bool
	alpn          [][]byte
	versions      []uint16
	hasECH        bool
	length        int
}

// NewClientHelloReader makes a reader accepting a hello of at most maxBytes bytes, records
// and their headers included; 0 means the default, 16384.
func NewClientHelloReader(maxBytes int) (*ClientHelloReader, error) {
	if maxBytes < 0 {
		return nil, &Error{Code: InvalidParameter, Message: "maxBytes is negative"}
	}
	var r *C.egress_client_hello_reader
	if code := C.egress_client_hello_reader_new(C.size_t(maxBytes), &r); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	reader := &ClientHelloReader{r: r}
	runtime.SetFinalizer(reader, (*ClientHelloReader).Close)
	return reader, nil
}

// Close frees the reader; calling it again does nothing.
func (r *ClientHelloReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	C.egress_client_hello_reader_free(r.r)
	r.r = nil
	runtime.SetFinalizer(r, nil)
	return nil
}

// Feed gives the reader the next bytes read from the client. It returns the hello once
// complete, or need > 0, the least number of bytes to read before feeding again. Bytes
// after the hello are not consumed: ClientHello.Len says how many of everything fed it
// took, and all of them must still reach the upstream. After an error (HelloNotClientHello,
// HelloMalformed, ...) or a hello, the reader is finished (HelloFinished).
func (r *ClientHelloReader) Feed(data []byte) (hello *ClientHello, need int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, n := bytesArg(data)
	var needOut C.size_t
	var h *C.egress_client_hello
	var cerr *C.egress_error
	code := C.egress_client_hello_reader_feed(r.r, p, n, &needOut, &h, &cerr)
	runtime.KeepAlive(r)
	if err := newError(code, cerr); err != nil {
		return nil, 0, err
	}
	if h == nil {
		return nil, int(needOut), nil
	}
	defer C.egress_client_hello_free(h)
	hello, err = copyHello(h)
	return hello, 0, err
}

// copyHello copies every field of h into Go.
func copyHello(h *C.egress_client_hello) (*ClientHello, error) {
	hello := &ClientHello{}
	var name *C.char
	var n C.size_t
	switch code := C.egress_client_hello_server_name(h, &name, &n); code {
	case C.EGRESS_OK:
		hello.serverName, hello.hasServerName = C.GoStringN(name, C.int(n)), true
	case C.EGRESS_NOT_FOUND:
	default:
		return nil, newError(code, nil)
	}
	var count C.size_t
	if code := C.egress_client_hello_alpn_count(h, &count); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	for i := C.size_t(0); i < count; i++ {
		var p *C.uint8_t
		if code := C.egress_client_hello_alpn(h, i, &p, &n); code != C.EGRESS_OK {
			return nil, newError(code, nil)
		}
		hello.alpn = append(hello.alpn, C.GoBytes(unsafe.Pointer(p), C.int(n)))
	}
	var versions *C.uint16_t
	if code := C.egress_client_hello_versions(h, &versions, &count); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	if count > 0 {
		for _, v := range unsafe.Slice((*uint16)(unsafe.Pointer(versions)), int(count)) {
			hello.versions = append(hello.versions, v)
		}
	}
	var ech C.bool
	if code := C.egress_client_hello_has_ech(h, &ech); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	hello.hasECH = bool(ech)
	if code := C.egress_client_hello_len(h, &n); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	hello.length = int(n)
	return hello, nil
}

// ServerName is the SNI (lower-case ASCII, IDNs in xn-- form), and whether there is one.
func (h *ClientHello) ServerName() (string, bool) { return h.serverName, h.hasServerName }

// ALPN is the protocols the client offers, in its order.
func (h *ClientHello) ALPN() [][]byte { return h.alpn }

// Versions is the TLS versions offered, as wire values (0x0304 is TLS 1.3).
func (h *ClientHello) Versions() []uint16 { return h.versions }

// HasECH tells whether the hello carries encrypted_client_hello: ServerName is then the
// public name, not the real destination.
func (h *ClientHello) HasECH() bool { return h.hasECH }

// Len is how many bytes of everything fed the hello's records took.
func (h *ClientHello) Len() int { return h.length }
