// Command e2e drives egress's HTTP proxy listener with Go's net/http client, as .ci/e2e.sh
// runs it:
//
//	e2e -proxy http://127.0.0.1:PORT -cacert cert.pem -rounds 3 URL WANT [URL WANT ...]
//
// Each round GETs every URL once, in order, through one http.Transport whose Proxy is set
// explicitly (from the environment, Go would bypass the proxy for loopback targets): https://
// URLs through a CONNECT tunnel, http:// URLs in absolute form. A response must be 200 with
// a body containing WANT. With -reuse-http, every plain http:// request after the first must
// run on a kept-alive connection to the proxy. Uses only the standard library.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	proxy := flag.String("proxy", "", "proxy URL, e.g. http://127.0.0.1:8080 (required)")
	cacert := flag.String("cacert", "", "PEM file with the CA that signs the https upstream")
	rounds := flag.Int("rounds", 3, "times each URL is fetched on the one Transport")
	reuseHTTP := flag.Bool("reuse-http", true, "require plain http:// requests after the first to reuse a proxy connection")
	timeout := flag.Duration("timeout", 10*time.Second, "timeout of each request")
	flag.Parse()
	args := flag.Args()
	if *proxy == "" || len(args) == 0 || len(args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: e2e -proxy URL [-cacert FILE] [-rounds N] URL WANT [URL WANT ...]")
		os.Exit(64)
	}
	if err := run(*proxy, *cacert, *rounds, *reuseHTTP, *timeout, args); err != nil {
		fmt.Fprintln(os.Stderr, "go client: FAILED:", err)
		os.Exit(1)
	}
}

func run(proxy, cacert string, rounds int, reuseHTTP bool, timeout time.Duration, args []string) error {
	proxyURL, err := url.Parse(proxy)
	if err != nil {
		return fmt.Errorf("proxy URL %q: %w", proxy, err)
	}
	tlsConfig := &tls.Config{}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificate", cacert)
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:               http.ProxyURL(proxyURL),
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}

	plainRequests, plainReused := 0, 0
	for round := 1; round <= rounds; round++ {
		for i := 0; i < len(args); i += 2 {
			target, want := args[i], args[i+1]
			reused, err := get(client, target, want)
			if err != nil {
				return fmt.Errorf("round %d: GET %s: %w", round, target, err)
			}
			fmt.Printf("round %d: GET %s: 200, body has %q, reused connection: %v\n", round, target, want, reused)
			if strings.HasPrefix(target, "http://") {
				plainRequests++
				if reused {
					plainReused++
				}
			}
		}
	}
	fmt.Printf("plain http requests: %d, on a reused proxy connection: %d\n", plainRequests, plainReused)
	if reuseHTTP && plainRequests > 1 && plainReused != plainRequests-1 {
		return fmt.Errorf("only %d of the %d plain http requests after the first reused a kept-alive proxy connection",
			plainReused, plainRequests-1)
	}
	return nil
}

// get fetches target and checks the status and body; it says whether the request ran on a
// reused connection.
func get(client *http.Client, target, want string) (bool, error) {
	var reused bool
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return false, err
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := client.Do(req)
	if err != nil {
		return reused, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return reused, fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return reused, fmt.Errorf("status %s (X-Egress-Error: %q), body %q",
			resp.Status, resp.Header.Get("X-Egress-Error"), truncate(body))
	}
	if !strings.Contains(string(body), want) {
		return reused, fmt.Errorf("body does not contain %q: %q", want, truncate(body))
	}
	return reused, nil
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
