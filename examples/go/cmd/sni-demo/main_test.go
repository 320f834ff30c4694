package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/egress-proxy/egress/examples/go/egress"
)

const timeout = 30 * time.Second

// TestDemo runs the demo on loopback: a captured ClientHello for go.example.com reaches a
// loopback upstream through it, a reply comes back, and each connection logs one line.
func TestDemo(t *testing.T) {
	upstreams, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstreams.Close()
	policy, err := egress.NewPolicy("allow = [\"go.example.com\", \"py.example.org\"]\nallow_cidrs = [\"127.0.0.0/8\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Close()
	relays, err := egress.NewRuntime(2)
	if err != nil {
		t.Fatal(err)
	}
	defer relays.Close()
	lines := make(chan string, 10)
	d := &demo{
		policy: policy,
		relays: relays,
		port:   uint16(upstreams.Addr().(*net.TCPAddr).Port),
		hosts: map[string][]net.IP{
			"go.example.com": {net.ParseIP("127.0.0.1")},
			"py.example.org": {net.ParseIP("10.0.0.1")}, // allowed name, denied address
		},
		logf: func(format string, args ...any) { lines <- fmt.Sprintf(format, args...) },
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go d.serve(ln)

	send := func(file string) net.Conn {
		t.Helper()
		hello, err := os.ReadFile("../../egress/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), timeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write(append(hello, "after the hello"...)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	logLine := func(want ...string) {
		t.Helper()
		select {
		case line := <-lines:
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("log line %q lacks %q", line, w)
				}
			}
		case <-time.After(timeout):
			t.Fatal("no log line")
		}
	}

	// Allowed: the hello and what followed reach the upstream, the reply comes back.
	client := send("go119.bin")
	upstreams.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
	upstream, err := upstreams.Accept()
	if err != nil {
		t.Fatal(err)
	}
	upstream.SetDeadline(time.Now().Add(timeout))
	hello, _ := os.ReadFile("../../egress/testdata/go119.bin")
	want := append(hello, "after the hello"...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(upstream, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("upstream got %d bytes, %v", len(got), err)
	}
	if _, err := upstream.Write([]byte("server reply")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, len("server reply"))
	if _, err := io.ReadFull(client, reply); err != nil || string(reply) != "server reply" {
		t.Fatalf("client got %q, %v", reply, err)
	}
	client.Close()
	if _, err := io.ReadAll(upstream); err != nil {
		t.Fatal(err)
	}
	upstream.Close()
	logLine("sni=go.example.com", "upstream=127.0.0.1:", fmt.Sprintf("up=%d down=12 result=ok", len(want)))

	// Refused: a name the policy denies, an address it denies, not TLS at all.
	for _, c := range []struct {
		file string
		want string
	}{
		{"node.bin", "sni=node.example.net refused: policy: denied_name"},
		{"python-ssl.bin", "sni=py.example.org refused: policy: 10.0.0.1 denied_ip"},
	} {
		conn := send(c.file)
		logLine(c.want)
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: the refused client got %v, want EOF", c.file, err)
		}
		conn.Close()
	}
	conn, err := net.DialTimeout("tcp4", ln.Addr().String(), timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	logLine("refused", "not TLS", "(code 100)")
}
