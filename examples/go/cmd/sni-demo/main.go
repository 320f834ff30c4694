// Command sni-demo is a TLS passthrough proxy written in Go on top of egress: Go accepts
// the connections, egress reads each ClientHello, decides with its policy (the server name,
// then every address it resolves to) and relays with its splice relay on egress's threads.
//
//	CGO_LDFLAGS=-L../../target/release go run ./cmd/sni-demo \
//	    -listen 127.0.0.1:8443 -upstream-port 443 -policy policy.toml
//	curl --connect-to ::127.0.0.1:8443 https://example.com/
//
// It logs one line per connection.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/egress-proxy/egress/examples/go/egress"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "address to accept TLS clients on")
	upstreamPort := flag.Uint("upstream-port", 443, "port to dial on the host the client names")
	policyFile := flag.String("policy", "", "egress [policy] TOML file (default: every public name, no private address)")
	hosts := flag.String("hosts", "", "static answers consulted before DNS: name=ip,name=ip")
	flag.Parse()

	var policyText []byte
	if *policyFile != "" {
		var err error
		if policyText, err = os.ReadFile(*policyFile); err != nil {
			log.Fatal(err)
		}
	}
	policy, err := egress.NewPolicy(string(policyText))
	if err != nil {
		log.Fatal(err) // names the line of each mistake
	}
	defer policy.Close()
	relays, err := egress.NewRuntime(0)
	if err != nil {
		log.Fatal(err)
	}
	defer relays.Close()
	static, err := parseHosts(*hosts)
	if err != nil {
		log.Fatal(err)
	}
	if *upstreamPort == 0 || *upstreamPort > 65535 {
		log.Fatalf("-upstream-port %d is not a port", *upstreamPort)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sni-demo (egress %s) on %s", egress.Version(), ln.Addr())
	d := &demo{policy: policy, relays: relays, port: uint16(*upstreamPort), hosts: static, logf: log.Printf}
	log.Fatal(d.serve(ln))
}

type demo struct {
	policy *egress.Policy
	relays *egress.Runtime
	port   uint16              // upstream port
	hosts  map[string][]net.IP // answers before DNS
	logf   func(format string, args ...any)
}

func (d *demo) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go d.handle(c.(*net.TCPConn))
	}
}

// handle routes one client. From egress's Relay on, the conns are egress's.
func (d *demo) handle(client *net.TCPConn) {
	from := client.RemoteAddr().String()
	name, prefix, err := readHello(client)
	if err != nil {
		d.logf("client=%s refused: %v", from, err)
		client.Close()
		return
	}
	upstream, err := d.dial(name)
	if err != nil {
		d.logf("client=%s sni=%s refused: %v", from, name, err)
		client.Close()
		return
	}
	to := upstream.RemoteAddr().String()
	err = d.relays.Relay(client, upstream, prefix, nil, func(t egress.Traffic, err error) {
		// On an egress thread: log and return.
		result := "ok"
		if err != nil {
			result = err.Error()
		}
		d.logf("client=%s sni=%s upstream=%s up=%d down=%d result=%s", from, name, to, t.ClientToUpstream, t.UpstreamToClient, result)
	})
	if err != nil {
		d.logf("client=%s sni=%s upstream=%s relay not started: %v", from, name, to, err)
	}
}

// readHello reads until egress has the ClientHello. prefix is every byte read, which the
// upstream must get first.
func readHello(c *net.TCPConn) (name string, prefix []byte, err error) {
	reader, err := egress.NewClientHelloReader(0)
	if err != nil {
		return "", nil, err
	}
	defer reader.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return "", nil, fmt.Errorf("reading the ClientHello: %w", err)
		}
		prefix = append(prefix, buf[:n]...)
		hello, _, err := reader.Feed(buf[:n])
		if err != nil {
			return "", nil, err // not TLS, malformed, too large
		}
		if hello != nil {
			name, ok := hello.ServerName()
			if !ok {
				return "", nil, errors.New("the ClientHello names no server")
			}
			return name, prefix, nil
		}
	}
}

// dial connects to the first address of name that the policy allows.
func (d *demo) dial(name string) (*net.TCPConn, error) {
	decision, err := d.policy.Check(name, d.port)
	if err != nil {
		return nil, err
	}
	if !decision.Allowed {
		return nil, fmt.Errorf("policy: %s", decision.Reason)
	}
	ips := d.hosts[name]
	if ips == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	var last error = errors.New("no address")
	for _, ip := range ips {
		// Check the address dialed, not only the name: this is what stops DNS rebinding.
		decision, err := d.policy.CheckResolved(name, d.port, ip)
		if err != nil {
			return nil, err
		}
		if !decision.Allowed {
			last = fmt.Errorf("policy: %s %s", ip, decision.Reason)
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(d.port))), 10*time.Second)
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		last = err
	}
	return nil, last
}

// parseHosts reads "name=ip,name=ip".
func parseHosts(s string) (map[string][]net.IP, error) {
	hosts := map[string][]net.IP{}
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' }) {
		name, addr, _ := strings.Cut(entry, "=")
		ip := net.ParseIP(addr)
		if ip == nil {
			return nil, fmt.Errorf("-hosts entry %q is not name=ip", entry)
		}
		hosts[strings.ToLower(name)] = append(hosts[strings.ToLower(name)], ip)
	}
	return hosts, nil
}
