package egress

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Every wait in these tests is bounded by this.
const timeout = 60 * time.Second

const mib = 1 << 20

func wantCode(t *testing.T, err error, code Result) *Error {
	t.Helper()
	if !errors.Is(err, code) {
		t.Fatalf("got %v, want code %d (%v)", err, code, code)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Message == "" {
		t.Fatalf("got %#v, want an *Error with code %d and a message", err, code)
	}
	return e
}

func TestVersionAndResults(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(Version()) {
		t.Fatalf("Version() = %q", Version())
	}
	if got := NotFound.Error(); got != "no such item" {
		t.Errorf("NotFound.Error() = %q", got)
	}
	if got := Result(9999).Error(); got != "unknown result code" {
		t.Errorf("Result(9999).Error() = %q", got)
	}
	for _, code := range []Result{OK, NullParameter, InvalidParameter, BufferTooSmall, Panic, NotFound, IO,
		HelloNotClientHello, HelloMalformed, HelloTooLarge, HelloInvalidServerName, HelloFinished,
		HTTPBadRequest, HTTPURITooLong, HTTPHeadersTooLarge, HTTPVersionNotSupported, ConfigInvalid,
		RelayClientFailed, RelayUpstreamFailed, RelayIdleTimeout, RelayCancelled, StartFailed, Stopped} {
		if msg := code.Error(); msg == "" || msg == "unknown result code" {
			t.Errorf("code %d: message %q", code, msg)
		}
	}
	err := fmt.Errorf("wrapped: %w", &Error{Code: Stopped, Message: "m"})
	if !errors.Is(err, Stopped) || !errors.Is(err, &Error{Code: Stopped}) || errors.Is(err, NotFound) {
		t.Errorf("errors.Is by code does not work on %v", err)
	}
}

// ---- policy ----

func TestPolicy(t *testing.T) {
	p, err := NewPolicy("[policy]\nallow = [\"*.example.com:443\"]\nallow_cidrs = [\"10.0.0.0/8\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, c := range []struct {
		host    string
		port    uint16
		allowed bool
		reason  string
	}{
		{"api.example.com", 443, true, "allowed"},
		{"API.Example.COM", 443, true, "allowed"},
		{"api.example.com", 80, false, "denied_port"},
		{"example.org", 443, false, "denied_name"},
		{"not a host!", 443, false, "invalid_host"},
		{"", 443, false, "invalid_host"},
	} {
		d, err := p.Check(c.host, c.port)
		if err != nil || d.Allowed != c.allowed || d.Reason != c.reason {
			t.Errorf("Check(%q, %d) = %+v, %v; want %v %s", c.host, c.port, d, err, c.allowed, c.reason)
		}
	}
	for _, c := range []struct {
		ip      string
		allowed bool
		reason  string
	}{
		{"93.184.216.34", true, "allowed"},
		{"10.1.2.3", true, "allowed"},
		{"127.0.0.1", false, "denied_ip"},
		{"192.168.1.1", false, "denied_ip"},
		{"::1", false, "denied_ip"},
		{"2606:2800:220:1:248:1893:25c8:1946", true, "allowed"},
	} {
		d, err := p.CheckResolved("api.example.com", 443, net.ParseIP(c.ip))
		if err != nil || d.Allowed != c.allowed || d.Reason != c.reason {
			t.Errorf("CheckResolved(api.example.com, 443, %s) = %+v, %v; want %v %s", c.ip, d, err, c.allowed, c.reason)
		}
	}
	// The name is checked before the address.
	if d, err := p.CheckResolved("example.org", 443, net.ParseIP("93.184.216.34")); err != nil || d.Allowed || d.Reason != "denied_name" {
		t.Errorf("CheckResolved(example.org) = %+v, %v", d, err)
	}
	// Invalid inputs.
	_, err = p.CheckResolved("api.example.com", 443, nil)
	wantCode(t, err, InvalidParameter)
	_, err = p.CheckResolved("api.example.com", 443, net.IP{1, 2, 3})
	wantCode(t, err, InvalidParameter)
	_, err = p.Check("\xff\xfe", 443)
	wantCode(t, err, InvalidParameter)

	// Concurrent checks share the policy.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if d, err := p.Check("a.example.com", 443); err != nil || !d.Allowed {
					t.Errorf("concurrent Check = %+v, %v", d, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	p.Close()
	p.Close()
	_, err = p.Check("api.example.com", 443)
	wantCode(t, err, NullParameter)
}

func TestPolicyDefaultAndReport(t *testing.T) {
	p, err := NewPolicy("")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if d, _ := p.Check("example.com", 8080); !d.Allowed {
		t.Errorf("default policy denies example.com:8080: %+v", d)
	}
	if d, _ := p.CheckResolved("example.com", 443, net.ParseIP("127.0.0.1")); d.Allowed || d.Reason != "denied_ip" {
		t.Errorf("default policy on 127.0.0.1: %+v", d)
	}
	r, err := NewPolicy("mode = \"report\"\nallow = [\"example.com\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d, _ := r.Check("example.org", 443); !d.Allowed || d.Reason != "denied_name" {
		t.Errorf("report mode: %+v", d)
	}
}

func TestPolicyInvalid(t *testing.T) {
	for _, c := range []struct{ toml, line string }{
		{"allow = [\"ok.example.com\"]\ndeny = [\"bad host!\"]\n", "line 2"},
		{"[policy]\nallow = [\"ok.example.com\"]\n\nallow_cidrs = [\"10.0.0.0/33\"]\n", "line 4"},
		{"allow = [\"ok.example.com\"]\nallw = []\n", "line 2"},
		{"allow = [\n", "line 1"},
		{"allow = [\"10.0.0.1\"]\n", "line 1"}, // an address is not a name pattern
		{"mode = \"loud\"\n", "line 1"},
	} {
		p, err := NewPolicy(c.toml)
		e := wantCode(t, err, ConfigInvalid)
		if p != nil || !strings.Contains(e.Message, c.line) {
			t.Errorf("NewPolicy(%q): %q, want %q", c.toml, e.Message, c.line)
		}
	}
	_, err := NewPolicy("allow = [\"\xff\"]")
	wantCode(t, err, InvalidParameter)
}

func TestFinalizersBackUpClose(t *testing.T) {
	for i := 0; i < 100; i++ {
		if _, err := NewPolicy("allow = [\"example.com\"]"); err != nil {
			t.Fatal(err)
		}
		if _, err := NewClientHelloReader(0); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}

// ---- ClientHello ----

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type helloWant struct {
	file     string
	sni      string // "" for none
	alpn     []string
	versions []uint16
	ech      bool
}

// What the captures hold (testdata/README.md), read independently of egress. Chromium also
// offers the GREASE version 0x4a4a, which egress leaves out.
var hellos = []helloWant{
	{"chromium.bin", "www.chromium-test.example", []string{"h2", "http/1.1"}, []uint16{0x0304, 0x0303}, true},
	{"curl-openssl3.bin", "www.example.com", []string{"h2", "http/1.1"}, []uint16{0x0304, 0x0303, 0x0302, 0x0301}, false},
	{"go119.bin", "go.example.com", nil, []uint16{0x0304, 0x0303}, false},
	{"node.bin", "node.example.net", nil, []uint16{0x0304, 0x0303}, false},
	{"openssl-no-sni.bin", "", nil, []uint16{0x0304, 0x0303, 0x0302, 0x0301}, false},
	{"openssl-s_client-tls12-only.bin", "legacy.example.com", nil, []uint16{0x0303}, false},
	{"openssl-s_client-tls13.bin", "api.example.com", nil, []uint16{0x0304, 0x0303, 0x0302, 0x0301}, false},
	{"python-ssl.bin", "py.example.org", nil, []uint16{0x0304, 0x0303}, false},
}

func checkHello(t *testing.T, w helloWant, h *ClientHello, length int) {
	t.Helper()
	name, ok := h.ServerName()
	if name != w.sni || ok != (w.sni != "") {
		t.Errorf("%s: ServerName() = %q, %v; want %q", w.file, name, ok, w.sni)
	}
	var alpn []string
	for _, p := range h.ALPN() {
		alpn = append(alpn, string(p))
	}
	if fmt.Sprint(alpn) != fmt.Sprint(w.alpn) {
		t.Errorf("%s: ALPN() = %q, want %q", w.file, alpn, w.alpn)
	}
	if fmt.Sprintf("%x", h.Versions()) != fmt.Sprintf("%x", w.versions) {
		t.Errorf("%s: Versions() = %x, want %x", w.file, h.Versions(), w.versions)
	}
	if h.HasECH() != w.ech {
		t.Errorf("%s: HasECH() = %v", w.file, h.HasECH())
	}
	if h.Len() != length {
		t.Errorf("%s: Len() = %d, want %d", w.file, h.Len(), length)
	}
}

func newReader(t *testing.T, max int) *ClientHelloReader {
	t.Helper()
	r, err := NewClientHelloReader(max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestClientHelloCaptures(t *testing.T) {
	for _, w := range hellos {
		data := readTestdata(t, w.file)

		// Whole, with bytes after it that the hello does not take.
		r := newReader(t, 0)
		h, need, err := r.Feed(append(append([]byte{}, data...), "trailing tunnel bytes"...))
		if err != nil || h == nil || need != 0 {
			t.Fatalf("%s: Feed(whole) = %v, %d, %v", w.file, h, need, err)
		}
		checkHello(t, w, h, len(data))
		r.Close()
		// The hello is Go memory: still readable after the reader and the C hello are gone.
		runtime.GC()
		checkHello(t, w, h, len(data))

		// Byte by byte, honouring need.
		r = newReader(t, 0)
		fed := 0
		for {
			h, need, err = r.Feed(data[fed : fed+1])
			fed++
			if err != nil {
				t.Fatalf("%s: Feed(byte %d): %v", w.file, fed, err)
			}
			if h != nil {
				break
			}
			if need < 1 || fed+need > len(data) {
				t.Fatalf("%s: after %d bytes need = %d (of %d)", w.file, fed, need, len(data))
			}
		}
		if fed != len(data) {
			t.Errorf("%s: hello done after %d of %d bytes", w.file, fed, len(data))
		}
		checkHello(t, w, h, len(data))
		_, _, err = r.Feed(data[:1])
		wantCode(t, err, HelloFinished)
	}
}

func TestClientHelloSegments(t *testing.T) {
	data := readTestdata(t, "chromium.bin")
	r := newReader(t, 0)
	h, need, err := r.Feed(data[:1460]) // one TCP segment: the hello is larger
	if err != nil || h != nil || need < 1 || need > len(data)-1460 {
		t.Fatalf("Feed(first segment) = %v, %d, %v", h, need, err)
	}
	h, _, err = r.Feed(nil) // nothing new
	if err != nil || h != nil {
		t.Fatalf("Feed(nil) = %v, %v", h, err)
	}
	h, _, err = r.Feed(data[1460:])
	if err != nil || h == nil {
		t.Fatalf("Feed(rest) = %v, %v", h, err)
	}
	checkHello(t, hellos[0], h, len(data))

	// Larger than the reader's limit.
	r = newReader(t, 1024)
	_, _, err = r.Feed(data)
	wantCode(t, err, HelloTooLarge)
	_, _, err = r.Feed(data)
	wantCode(t, err, HelloFinished)
}

func TestClientHelloInvalid(t *testing.T) {
	feed := func(data []byte) error {
		r := newReader(t, 0)
		h, need, err := r.Feed(data)
		if err == nil {
			return fmt.Errorf("Feed = %v, %d, nil", h, need)
		}
		return err
	}
	wantCode(t, feed([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")), HelloNotClientHello)
	wantCode(t, feed([]byte("CONNECT example.com:443 HTTP/1.1\r\n\r\n")), HelloNotClientHello)
	wantCode(t, feed([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}), HelloNotClientHello) // an alert
	wantCode(t, feed([]byte{0x80, 0x2e, 0x01, 0x00, 0x02}), HelloNotClientHello)             // SSLv2

	// A handshake record holding a ServerHello (type 2), not a ClientHello.
	go119 := readTestdata(t, "go119.bin")
	other := append([]byte{}, go119...)
	other[5] = 2
	wantCode(t, feed(other), HelloNotClientHello)

	// The extensions length runs past the end of the hello.
	broken := append([]byte{}, go119...)
	off := extensionsOffset(broken)
	broken[off], broken[off+1] = 0xff, 0xff
	wantCode(t, feed(broken), HelloMalformed)

	// A server name that is not a host name: "go!example.com".
	bad := bytes.Replace(append([]byte{}, go119...), []byte("go.example.com"), []byte("go!example.com"), 1)
	wantCode(t, feed(bad), HelloInvalidServerName)

	// A reader that failed is finished.
	r := newReader(t, 0)
	_, _, err := r.Feed([]byte("GET / HTTP/1.1\r\n"))
	wantCode(t, err, HelloNotClientHello)
	_, _, err = r.Feed(go119)
	wantCode(t, err, HelloFinished)

	r.Close()
	_, _, err = r.Feed(go119)
	wantCode(t, err, NullParameter)
	if _, err := NewClientHelloReader(-1); !errors.Is(err, InvalidParameter) {
		t.Errorf("NewClientHelloReader(-1): %v", err)
	}
}

// extensionsOffset is where the extensions length of a one-record ClientHello is.
func extensionsOffset(b []byte) int {
	p := 5 + 4 + 2 + 32 // record header, handshake header, version, random
	p += 1 + int(b[p])  // session id
	p += 2 + int(b[p])<<8 + int(b[p+1])
	p += 1 + int(b[p]) // compression methods
	return p
}

// ---- HTTP ----

func TestRequestHead(t *testing.T) {
	for _, c := range []struct {
		in   string
		want RequestHead
	}{
		{"CONNECT Example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			RequestHead{"CONNECT", "example.com", 443, "", AuthorityForm, true, 0}},
		{"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n",
			RequestHead{"CONNECT", "2001:db8::1", 8443, "", AuthorityForm, true, 0}},
		{"GET http://WWW.Example.org:8080/a/b?c=d HTTP/1.1\r\nHost: www.example.org:8080\r\n\r\n",
			RequestHead{"GET", "www.example.org", 8080, "/a/b?c=d", AbsoluteForm, false, 0}},
		{"POST /submit HTTP/1.0\r\nHost: api.example.com\r\nContent-Length: 0\r\n\r\n",
			RequestHead{"POST", "api.example.com", 80, "/submit", OriginForm, false, 0}},
		{"OPTIONS * HTTP/1.1\r\nHost: example.com:81\r\n\r\n",
			RequestHead{"OPTIONS", "example.com", 81, "*", AsteriskForm, false, 0}},
	} {
		body := []byte("tunnel or body bytes")
		h, err := ParseRequestHead(append([]byte(c.in), body...))
		if err != nil || h == nil {
			t.Fatalf("ParseRequestHead(%q) = %v, %v", c.in, h, err)
		}
		c.want.Len = len(c.in)
		if *h != c.want {
			t.Errorf("ParseRequestHead(%q) = %+v, want %+v", c.in, *h, c.want)
		}
	}
	// Not finished yet: nil head, nil error, at every cut.
	full := "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
	for i := 0; i < len(full); i++ {
		if h, err := ParseRequestHead([]byte(full[:i])); h != nil || err != nil {
			t.Fatalf("ParseRequestHead(%q) = %v, %v", full[:i], h, err)
		}
	}
	if AuthorityForm.String() != "authority" {
		t.Error(AuthorityForm.String())
	}
}

func TestRequestHeadErrors(t *testing.T) {
	longLine := "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
	manyHeaders := "GET / HTTP/1.1\r\nHost: example.com\r\n" + strings.Repeat("X-A: b\r\n", 101) + "\r\n"
	bigHead := "GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + strings.Repeat("b", 70000) + "\r\n\r\n"
	for _, c := range []struct {
		in   string
		code Result
	}{
		{"GARBAGE\r\n\r\n", HTTPBadRequest},
		{"GET / HTTP/1.1\r\nHost example.com\r\n\r\n", HTTPBadRequest},
		{"GET / HTTP/1.1\r\n\r\n", HTTPBadRequest}, // no host anywhere
		{"CONNECT example.com HTTP/1.1\r\n\r\n", HTTPBadRequest},
		{longLine, HTTPURITooLong},
		{manyHeaders, HTTPHeadersTooLarge},
		{bigHead, HTTPHeadersTooLarge},
		{"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", HTTPVersionNotSupported},
		{"GET / HTTP/0.9\r\nHost: example.com\r\n\r\n", HTTPVersionNotSupported},
	} {
		h, err := ParseRequestHead([]byte(c.in))
		if h != nil {
			t.Errorf("ParseRequestHead(%.40q) gave a head", c.in)
		}
		if !errors.Is(err, c.code) {
			t.Errorf("ParseRequestHead(%.40q) = %v, want code %d", c.in, err, c.code)
		}
	}
	// Custom limits.
	limits := &HTTPLimits{MaxRequestLine: 64, MaxHeaders: 2}
	_, err := ParseRequestHeadLimits([]byte("GET /"+strings.Repeat("a", 100)+" HTTP/1.1\r\nHost: a.example\r\n\r\n"), limits)
	wantCode(t, err, HTTPURITooLong)
	_, err = ParseRequestHeadLimits([]byte("GET / HTTP/1.1\r\nHost: a.example\r\nA: 1\r\nB: 2\r\n\r\n"), limits)
	wantCode(t, err, HTTPHeadersTooLarge)
	if h, err := ParseRequestHeadLimits([]byte("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"), limits); err != nil || h == nil {
		t.Errorf("within limits: %v, %v", h, err)
	}
	_, err = ParseRequestHeadLimits([]byte("GET / HTTP/1.1\r\n\r\n"), &HTTPLimits{MaxHeaders: -1})
	wantCode(t, err, InvalidParameter)
}

// ---- loopback plumbing ----

// tcpPair is a connected loopback pair: app is the test's end, handed the one egress gets.
func tcpPair(t *testing.T) (app, handed *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetDeadline(time.Now().Add(timeout))
	app, err = net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	handed, err = ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	app.SetDeadline(time.Now().Add(timeout))
	t.Cleanup(func() { app.Close(); handed.Close() })
	return app, handed
}

// pattern is n deterministic pseudo-random bytes.
func pattern(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// drain reads c to EOF and returns the byte count and SHA-256 of what came.
func drain(c net.Conn) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum, err
}

// exchange checks a tunnel between clientApp and upApp: the client sends up (after which
// the upstream must see prefix, then up, then EOF: the half-close passed on), and only then
// the upstream answers down, which the client must get whole before its EOF.
func exchange(clientApp, upApp *net.TCPConn, prefix []byte, up, down []byte) error {
	sent := make(chan error, 1)
	go func() {
		_, err := clientApp.Write(up)
		if err == nil {
			err = clientApp.CloseWrite()
		}
		sent <- err
	}()
	got := make([]byte, len(prefix))
	if _, err := io.ReadFull(upApp, got); err != nil {
		return fmt.Errorf("upstream reading the prefix: %w", err)
	}
	if !bytes.Equal(got, prefix) {
		return errors.New("the upstream got a different prefix")
	}
	n, sum, err := drain(upApp)
	if err != nil {
		return fmt.Errorf("upstream reading: %w", err)
	}
	if n != int64(len(up)) || sum != sha256.Sum256(up) {
		return fmt.Errorf("upstream got %d bytes (want %d), checksum match %v", n, len(up), sum == sha256.Sum256(up))
	}
	if err := <-sent; err != nil {
		return fmt.Errorf("client writing: %w", err)
	}
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	received := make(chan result, 1)
	go func() {
		n, sum, err := drain(clientApp)
		received <- result{n, sum, err}
	}()
	if _, err := upApp.Write(down); err != nil {
		return fmt.Errorf("upstream writing after the client's half-close: %w", err)
	}
	if err := upApp.CloseWrite(); err != nil {
		return err
	}
	r := <-received // bounded by the conns' deadlines
	if r.err != nil {
		return fmt.Errorf("client reading: %w", r.err)
	}
	if r.n != int64(len(down)) || r.sum != sha256.Sum256(down) {
		return fmt.Errorf("client got %d bytes (want %d), checksum match %v", r.n, len(down), r.sum == sha256.Sum256(down))
	}
	return nil
}

// wantClosed checks that egress closed the other end of app: EOF (or a reset) within the
// deadline, not a timeout.
func wantClosed(t *testing.T, app net.Conn) {
	t.Helper()
	app.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64*1024)
	for {
		_, err := app.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		t.Fatalf("the conn egress owned is not closed: %v", err)
	}
}

// ---- blocking relay ----

func TestRelayBlocking(t *testing.T) {
	prefix := readTestdata(t, "chromium.bin")
	for _, opts := range []*RelayOptions{nil, {DisableSplice: true, IdleTimeout: time.Minute}} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			clientApp, client := tcpPair(t)
			upApp, upstream := tcpPair(t)
			up, down := pattern(1, 8*mib+123), pattern(2, 6*mib+45)
			type result struct {
				tr  Traffic
				err error
			}
			done := make(chan result, 1)
			go func() {
				tr, err := Relay(client, upstream, prefix, opts)
				done <- result{tr, err}
			}()
			if err := exchange(clientApp, upApp, prefix, up, down); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				want := Traffic{uint64(len(prefix) + len(up)), uint64(len(down))}
				if r.err != nil || r.tr != want {
					t.Fatalf("Relay = %+v, %v; want %+v", r.tr, r.err, want)
				}
			case <-time.After(timeout):
				t.Fatal("Relay did not return")
			}
			// The Go conns were consumed.
			if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("client conn after Relay: %v", err)
			}
		})
	}
}

func TestPipeBudget(t *testing.T) {
	for _, bad := range [][2]int{{1, 0}, {0, 4095}, {0, 1<<20 + 1}, {-1, 0}} {
		wantCode(t, SetPipeBudget(bad[0], bad[1]), InvalidParameter)
	}
	// One tunnel's worth of one-page pipes: every byte still gets through.
	if err := SetPipeBudget(2, 4096); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := SetPipeBudget(0, 0); err != nil {
			t.Error(err)
		}
	}()
	clientApp, client := tcpPair(t)
	upApp, upstream := tcpPair(t)
	up, down := pattern(3, mib+7), pattern(4, mib+9)
	done := make(chan error, 1)
	go func() {
		tr, err := Relay(client, upstream, nil, nil)
		if err == nil && tr != (Traffic{uint64(len(up)), uint64(len(down))}) {
			err = fmt.Errorf("traffic %+v", tr)
		}
		done <- err
	}()
	if err := exchange(clientApp, upApp, nil, up, down); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeout):
		t.Fatal("Relay did not return")
	}
}

func TestRelayErrors(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		clientApp, client := tcpPair(t)
		upApp, upstream := tcpPair(t)
		start := time.Now()
		done := make(chan error, 1)
		var tr Traffic
		go func() {
			var err error
			tr, err = Relay(client, upstream, []byte("prefix"), &RelayOptions{IdleTimeout: 300 * time.Millisecond})
			done <- err
		}()
		select {
		case err := <-done:
			wantCode(t, err, RelayIdleTimeout)
		case <-time.After(timeout):
			t.Fatal("Relay did not time out")
		}
		if tr != (Traffic{6, 0}) {
			t.Errorf("idle relay traffic = %+v, want the prefix only", tr)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("idle timeout after %v, want 300ms", d)
		}
		wantClosed(t, clientApp)
		wantClosed(t, upApp)
	})
	t.Run("upstream reset", func(t *testing.T) {
		clientApp, client := tcpPair(t)
		upApp, upstream := tcpPair(t)
		done := make(chan error, 1)
		var tr Traffic
		go func() {
			var err error
			tr, err = Relay(client, upstream, []byte("hello"), nil)
			done <- err
		}()
		got := make([]byte, 5)
		if _, err := io.ReadFull(upApp, got); err != nil {
			t.Fatal(err)
		}
		upApp.SetLinger(0)
		upApp.Close() // RST
		select {
		case err := <-done:
			wantCode(t, err, RelayUpstreamFailed)
			if tr.ClientToUpstream != 5 {
				t.Errorf("traffic in the error = %+v", tr)
			}
		case <-time.After(timeout):
			t.Fatal("Relay did not return")
		}
		wantClosed(t, clientApp)
	})
	t.Run("client reset", func(t *testing.T) {
		clientApp, client := tcpPair(t)
		upApp, upstream := tcpPair(t)
		done := make(chan error, 1)
		go func() {
			_, err := Relay(client, upstream, nil, nil)
			done <- err
		}()
		if _, err := upApp.Write([]byte("from upstream")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 13)
		if _, err := io.ReadFull(clientApp, got); err != nil {
			t.Fatal(err)
		}
		clientApp.SetLinger(0)
		clientApp.Close()
		select {
		case err := <-done:
			wantCode(t, err, RelayClientFailed)
		case <-time.After(timeout):
			t.Fatal("Relay did not return")
		}
		wantClosed(t, upApp)
	})
	t.Run("closed conn", func(t *testing.T) {
		_, client := tcpPair(t)
		upApp, upstream := tcpPair(t)
		client.Close()
		_, err := Relay(client, upstream, nil, nil)
		wantCode(t, err, IO)
		wantClosed(t, upApp) // the other conn was consumed too
		_, err = Relay(nil, nil, nil, nil)
		wantCode(t, err, NullParameter)
	})
}

// ---- callback relay ----

// threadName is the name of the calling OS thread.
func threadName() string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", syscall.Gettid()))
	return strings.TrimSpace(string(b))
}

func TestRuntimeRelay(t *testing.T) {
	rt, err := NewRuntime(2)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	const relays = 4
	type result struct {
		i      int
		tr     Traffic
		err    error
		thread string
	}
	results := make(chan result, 2*relays)
	var calls [relays]int32
	var wg sync.WaitGroup
	errs := make(chan error, relays)
	for i := 0; i < relays; i++ {
		i := i
		clientApp, client := tcpPair(t)
		upApp, upstream := tcpPair(t)
		prefix := []byte(fmt.Sprintf("prefix of relay %d", i))
		err := rt.Relay(client, upstream, prefix, &RelayOptions{DisableSplice: i%2 == 1}, func(tr Traffic, err error) {
			atomic.AddInt32(&calls[i], 1)
			results <- result{i, tr, err, threadName()}
		})
		if err != nil {
			t.Fatal(err)
		}
		up, down := pattern(int64(10+i), 3*mib+i), pattern(int64(20+i), 2*mib+7*i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := exchange(clientApp, upApp, prefix, up, down); err != nil {
				errs <- fmt.Errorf("relay %d: %w", i, err)
			}
			clientApp.Close()
			upApp.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for n := 0; n < relays; n++ {
		select {
		case r := <-results:
			want := Traffic{uint64(len(fmt.Sprintf("prefix of relay %d", r.i)) + 3*mib + r.i), uint64(2*mib + 7*r.i)}
			if r.err != nil || r.tr != want {
				t.Errorf("relay %d: done(%+v, %v), want %+v", r.i, r.tr, r.err, want)
			}
			if r.thread != "egress-relay" {
				t.Errorf("relay %d: done ran on thread %q, not an egress thread", r.i, r.thread)
			}
		case <-time.After(timeout):
			t.Fatal("a done callback did not come")
		}
	}
	time.Sleep(100 * time.Millisecond)
	for i := range calls {
		if c := atomic.LoadInt32(&calls[i]); c != 1 {
			t.Errorf("relay %d: done called %d times", i, c)
		}
	}
}

func TestRuntimeCloseCancels(t *testing.T) {
	rt, err := NewRuntime(1)
	if err != nil {
		t.Fatal(err)
	}
	clientApp, client := tcpPair(t)
	upApp, upstream := tcpPair(t)
	var calls int32
	type result struct {
		tr  Traffic
		err error
	}
	results := make(chan result, 2)
	err = rt.Relay(client, upstream, []byte("prefix"), nil, func(tr Traffic, err error) {
		atomic.AddInt32(&calls, 1)
		results <- result{tr, err}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(upApp, got); err != nil { // the relay runs
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { rt.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(timeout):
		t.Fatal("Runtime.Close did not return")
	}
	select {
	case r := <-results:
		wantCode(t, r.err, RelayCancelled)
		// The header: a relay cut off by egress_runtime_free is not counted.
		if r.tr != (Traffic{}) {
			t.Fatalf("cancelled relay reports traffic %+v, want none", r.tr)
		}
	case <-time.After(timeout):
		t.Fatal("no done callback after Close")
	}
	time.Sleep(200 * time.Millisecond)
	if c := atomic.LoadInt32(&calls); c != 1 {
		t.Fatalf("done called %d times", c)
	}
	wantClosed(t, clientApp)
	wantClosed(t, upApp)
	rt.Close()

	// A closed runtime takes no relay: the conns are consumed, done never called.
	clientApp, client = tcpPair(t)
	upApp, upstream = tcpPair(t)
	err = rt.Relay(client, upstream, nil, nil, func(Traffic, error) { t.Error("done called for a relay that did not start") })
	wantCode(t, err, NullParameter)
	wantClosed(t, clientApp)
	wantClosed(t, upApp)
	if _, err := NewRuntime(-1); !errors.Is(err, InvalidParameter) {
		t.Errorf("NewRuntime(-1): %v", err)
	}
}

// ---- proxy ----

// upstreamListener is a loopback "upstream" server; accept takes its next connection.
func upstreamListener(t *testing.T) (port int, accept func() *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() *net.TCPConn {
		t.Helper()
		ln.SetDeadline(time.Now().Add(timeout))
		c, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(timeout))
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func proxyConfig(upstreamPort int) string {
	return fmt.Sprintf(`[server]
shutdown_timeout = "2s"

[resolver]
nameservers = ["127.0.0.1:9"]

[resolver.hosts]
"upstream.test" = ["127.0.0.1"]
"go.example.com" = ["127.0.0.1"]

[policy]
allow_cidrs = ["127.0.0.0/8"]

[[sni]]
listen = []
upstream_port = %[1]d

[[http]]
listen = ["127.0.0.1:0"]
connect_ports = [%[1]d]

[[http]]
listen = []
connect_ports = [%[1]d]
`, upstreamPort)
}

// connect sends a CONNECT on c and reads the proxy's answer head.
func connect(c net.Conn, target string) (string, error) {
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		return "", err
	}
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return string(head), err
		}
		head = append(head, b[0])
	}
	return string(head), nil
}

func TestProxy(t *testing.T) {
	port, accept := upstreamListener(t)
	target := "upstream.test:" + strconv.Itoa(port)
	p, err := NewProxy(proxyConfig(port))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	addr, err := p.LocalAddr(0)
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("LocalAddr(0) = %q, %v", addr, err)
	}
	_, err = p.LocalAddr(1)
	wantCode(t, err, NotFound)
	if got, err := p.localAddr(0, len(addr)+1); got != addr || err != nil { // exactly enough
		t.Errorf("localAddr(0, %d) = %q, %v", len(addr)+1, got, err)
	}
	_, err = p.localAddr(0, len(addr)) // no room for the NUL
	wantCode(t, err, BufferTooSmall)
	_, err = p.localAddr(0, 0)
	wantCode(t, err, BufferTooSmall)
	_, err = p.LocalAddr(-1)
	wantCode(t, err, NotFound)

	t.Run("CONNECT through the listener", func(t *testing.T) {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		head, err := connect(c, target)
		if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
			t.Fatalf("CONNECT: %q, %v", head, err)
		}
		if err := exchange(c.(*net.TCPConn), accept(), nil, pattern(3, 2*mib), pattern(4, mib)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CONNECT through a handed-over conn", func(t *testing.T) {
		clientApp, served := tcpPair(t)
		if err := p.ServeConn(ListenerHTTP, 1, served); err != nil {
			t.Fatal(err)
		}
		head, err := connect(clientApp, target)
		if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
			t.Fatalf("CONNECT: %q, %v", head, err)
		}
		if err := exchange(clientApp, accept(), nil, pattern(5, 2*mib), pattern(6, mib)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("denied CONNECT", func(t *testing.T) {
		clientApp, served := tcpPair(t)
		if err := p.ServeConn(ListenerHTTP, 0, served); err != nil {
			t.Fatal(err)
		}
		head, err := connect(clientApp, "upstream.test:443") // not in connect_ports
		if err != nil || strings.HasPrefix(head, "HTTP/1.1 200") {
			t.Fatalf("CONNECT to a port not allowed: %q, %v", head, err)
		}
	})
	t.Run("SNI through a handed-over conn", func(t *testing.T) {
		hello := readTestdata(t, "go119.bin")
		clientApp, served := tcpPair(t)
		if err := p.ServeConn(ListenerSNI, 0, served); err != nil {
			t.Fatal(err)
		}
		if _, err := clientApp.Write(hello); err != nil {
			t.Fatal(err)
		}
		if err := exchange(clientApp, accept(), hello, pattern(7, mib), pattern(8, mib)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong blocks", func(t *testing.T) {
		for _, c := range []struct {
			kind  ListenerKind
			index int
			code  Result
		}{
			{ListenerHTTP, 2, NotFound},
			{ListenerSNI, 1, NotFound},
			{ListenerHTTP, -1, NotFound},
			{ListenerKind(7), 0, InvalidParameter},
		} {
			clientApp, served := tcpPair(t)
			err := p.ServeConn(c.kind, c.index, served)
			wantCode(t, err, c.code)
			wantClosed(t, clientApp) // consumed whatever the result
		}
	})

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Already stopped: it returns at once (the bound only guards against a hang).
	if err := p.Stop(); err != nil || time.Since(start) > 10*time.Second {
		t.Fatalf("second Stop: %v after %v", err, time.Since(start))
	}
	clientApp, served := tcpPair(t)
	wantCode(t, p.ServeConn(ListenerHTTP, 1, served), Stopped)
	wantClosed(t, clientApp)
	if c, err := net.DialTimeout("tcp4", addr, 5*time.Second); err == nil {
		wantClosed(t, c) // accepted by the kernel at most, never served
		c.Close()
	}
	p.Close()
	p.Close()
	_, err = p.LocalAddr(0)
	wantCode(t, err, NullParameter)
	clientApp, served = tcpPair(t)
	wantCode(t, p.ServeConn(ListenerHTTP, 1, served), NullParameter)
	wantClosed(t, clientApp)
}

func TestProxyStopWaitsForConnections(t *testing.T) {
	port, accept := upstreamListener(t)
	p, err := NewProxy(proxyConfig(port))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	clientApp, served := tcpPair(t)
	if err := p.ServeConn(ListenerHTTP, 1, served); err != nil {
		t.Fatal(err)
	}
	if head, err := connect(clientApp, "upstream.test:"+strconv.Itoa(port)); err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("CONNECT: %q, %v", head, err)
	}
	accept()
	// An open tunnel: Stop waits for it up to shutdown_timeout (2s), then closes it.
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 15*time.Second {
		t.Errorf("Stop with an open tunnel took %v, want about shutdown_timeout (2s)", d)
	}
	wantClosed(t, clientApp)
}

func TestProxyStartErrors(t *testing.T) {
	_, err := NewProxy("[[http]]\nlisten = [\"127.0.0.1:0\"]\nbogus = 1\n")
	if e := wantCode(t, err, ConfigInvalid); !strings.Contains(e.Message, "line 3") {
		t.Errorf("message %q does not name line 3", e.Message)
	}
	_, err = NewProxy("[server]\nshutdown_timeout = \"2s\"\n")
	wantCode(t, err, ConfigInvalid) // no listener block
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = NewProxy(fmt.Sprintf("[resolver]\nnameservers = [\"127.0.0.1:9\"]\n[[http]]\nlisten = [%q]\n", ln.Addr().String()))
	wantCode(t, err, StartFailed)
}
