package egress

/*
#include "egress.h"
*/
import "C"

import (
	"net"
	"runtime"
	"sync"
)

// Policy is a compiled egress policy (egress_policy). Its methods are safe for concurrent
// use; Close waits for calls in flight.
type Policy struct {
	mu sync.RWMutex
	p  *C.egress_policy
}

// Decision is a policy's answer. Reason is egress's name for it: "allowed", "denied_name",
// "denied_port", "denied_ip" or "invalid_host". In report mode Allowed is always true and
// Reason says what enforcing would have done.
type Decision struct {
	Allowed bool
	Reason  string
}

// NewPolicy compiles the [policy] TOML of egress's config (or the same keys at the top
// level); "" is the default policy. Invalid text fails with ConfigInvalid, naming each
// mistake's line.
func NewPolicy(toml string) (*Policy, error) {
	text, n := stringArg(toml)
	var p *C.egress_policy
	var cerr *C.egress_error
	if err := newError(C.egress_policy_new(text, n, &p, &cerr), cerr); err != nil {
		return nil, err
	}
	policy := &Policy{p: p}
	runtime.SetFinalizer(policy, (*Policy).Close)
	return policy, nil
}

// Close frees the policy; calling it again does nothing.
func (p *Policy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	C.egress_policy_free(p.p)
	p.p = nil
	runtime.SetFinalizer(p, nil)
	return nil
}

// Check decides host (a name or an IP literal, IPv6 without brackets) on port, before
// resolving it. An invalid host is denied with "invalid_host", not an error.
func (p *Policy) Check(host string, port uint16) (Decision, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	h, hn := stringArg(host)
	var d C.egress_decision
	var cerr *C.egress_error
	code := C.egress_policy_check(p.p, h, hn, C.uint16_t(port), &d, &cerr)
	runtime.KeepAlive(p)
	return decision(d, code, cerr)
}

// CheckResolved decides host on port and ip, one of its resolved addresses, just before
// dialing it: dial only allowed addresses. An ip that is not an address (nil, say) fails
// with InvalidParameter.
func (p *Policy) CheckResolved(host string, port uint16, ip net.IP) (Decision, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	h, hn := stringArg(host)
	a, an := stringArg(ip.String())
	var d C.egress_decision
	var cerr *C.egress_error
	code := C.egress_policy_check_resolved(p.p, h, hn, C.uint16_t(port), a, an, &d, &cerr)
	runtime.KeepAlive(p)
	return decision(d, code, cerr)
}

func decision(d C.egress_decision, code C.egress_result, cerr *C.egress_error) (Decision, error) {
	if err := newError(code, cerr); err != nil {
		return Decision{}, err
	}
	return Decision{Allowed: bool(d.allowed), Reason: C.GoString(d.reason_name)}, nil
}
