package egress

/*
#include "egress.h"
*/
import "C"

// TargetForm is the form of a request target (RFC 9112 section 3.2).
type TargetForm uint32

// The target forms of egress.h.
const (
	OriginForm    TargetForm = C.EGRESS_HTTP_ORIGIN_FORM
	AbsoluteForm  TargetForm = C.EGRESS_HTTP_ABSOLUTE_FORM
	AuthorityForm TargetForm = C.EGRESS_HTTP_AUTHORITY_FORM
	AsteriskForm  TargetForm = C.EGRESS_HTTP_ASTERISK_FORM
)

func (f TargetForm) String() string {
	switch f {
	case OriginForm:
		return "origin"
	case AbsoluteForm:
		return "absolute"
	case AuthorityForm:
		return "authority"
	case AsteriskForm:
		return "asterisk"
	}
	return "unknown"
}

// RequestHead is a parsed HTTP/1.x request head, copied into Go.
type RequestHead struct {
	Method    string     // as sent: "CONNECT", "GET", ...
	Host      string     // lower-case name or IP literal (IPv6 without brackets)
	Port      uint16     // the target's or Host header's port, or 80
	Path      string     // origin-form path and query; "*" for OPTIONS *; "" for CONNECT
	Form      TargetForm // which form the target had
	IsConnect bool
	Len       int // bytes of the head, final blank line included; what follows is body
}

// HTTPLimits bounds a request head; a zero field takes egress's default (8192, 65536, 100).
type HTTPLimits struct {
	MaxRequestLine int
	MaxHeadBytes   int
	MaxHeaders     int
}

// ParseRequestHead parses the head at the start of buf (everything read so far) with the
// default limits. It returns nil, nil when the head has not ended yet: read more and call
// again with all the bytes. A failure's code tells the status to answer:
// HTTPBadRequest 400, HTTPURITooLong 414, HTTPHeadersTooLarge 431,
// HTTPVersionNotSupported 505.
func ParseRequestHead(buf []byte) (*RequestHead, error) {
	return ParseRequestHeadLimits(buf, nil)
}

// ParseRequestHeadLimits is ParseRequestHead with limits (nil: the defaults).
func ParseRequestHeadLimits(buf []byte, limits *HTTPLimits) (*RequestHead, error) {
	var cl *C.egress_http_limits
	if limits != nil {
		if limits.MaxRequestLine < 0 || limits.MaxHeadBytes < 0 || limits.MaxHeaders < 0 {
			return nil, &Error{Code: InvalidParameter, Message: "a limit is negative"}
		}
		cl = &C.egress_http_limits{
			max_request_line: C.size_t(limits.MaxRequestLine),
			max_head_bytes:   C.size_t(limits.MaxHeadBytes),
			max_headers:      C.size_t(limits.MaxHeaders),
		}
	}
	p, n := bytesArg(buf)
	var h *C.egress_http_request_head
	var cerr *C.egress_error
	if err := newError(C.egress_http_request_head_parse(p, n, cl, &h, &cerr), cerr); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, nil
	}
	defer C.egress_http_request_head_free(h)
	return copyHead(h)
}

// copyHead copies every field of h into Go.
func copyHead(h *C.egress_http_request_head) (*RequestHead, error) {
	var s *C.char
	var n C.size_t
	var port C.uint16_t
	var form C.egress_http_target_form
	var connect C.bool
	head := &RequestHead{}
	if code := C.egress_http_request_head_method(h, &s, &n); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.Method = C.GoStringN(s, C.int(n))
	if code := C.egress_http_request_head_host(h, &s, &n); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.Host = C.GoStringN(s, C.int(n))
	if code := C.egress_http_request_head_path(h, &s, &n); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.Path = C.GoStringN(s, C.int(n))
	if code := C.egress_http_request_head_port(h, &port); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.Port = uint16(port)
	if code := C.egress_http_request_head_form(h, &form); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.Form = TargetForm(form)
	if code := C.egress_http_request_head_is_connect(h, &connect); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.IsConnect = bool(connect)
	if code := C.egress_http_request_head_len(h, &n); code != C.EGRESS_OK {
		return nil, newError(code, nil)
	}
	head.Len = int(n)
	return head, nil
}
