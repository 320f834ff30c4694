#!/usr/bin/env bash
# End-to-end test of the egress binary with real clients (curl, openssl, Go's net/http), on
# loopback only: the SNI listeners, and the HTTP proxy listener (CONNECT and plain HTTP).
#
#   .ci/e2e.sh path/to/egress
#
# Needs bash, python3 (free ports, and `python3 -m http.server` as the plain HTTP upstream),
# openssl, curl and go (golang-go; the client in .ci/go uses only the standard library, so
# nothing is downloaded). Every client call has a timeout, every wait is a bounded loop, and
# every background process is killed on exit. On failure the logs are printed and the script
# exits non-zero.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 path/to/egress" >&2
  exit 64
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
if [ ! -x "$BIN" ]; then
  echo "e2e: $BIN is not an executable file" >&2
  exit 1
fi
for tool in openssl curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is not installed" >&2; exit 1; }
done
if ! command -v go >/dev/null; then
  cat >&2 <<'EOF'
e2e: FAILED: `go` is not installed, and the Go net/http client check (.ci/go) needs it.
     Install it with: apt-get install -y --no-install-recommends golang-go
     (.ci/run does this when it can run apt-get as root or with sudo).
EOF
  exit 1
fi
CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Seconds allowed for one client call, and for egress to stop after SIGTERM; for building
# the Go client (a cold build cache compiles part of the standard library).
CLIENT_TIMEOUT=10
STOP_TIMEOUT=10
GO_BUILD_TIMEOUT=300
# Rounds of requests the Go client sends on its one Transport.
GO_ROUNDS=3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/egress-e2e.XXXXXX")
LOG=$WORK/egress.log
UPLOG=$WORK/s_server.log
PLAINLOG=$WORK/http.server.log
: >"$LOG"
UP_PID=
PLAIN_PID=
EGRESS_PID=

step() { printf '\n--- e2e: %s\n' "$*"; }
pass() { printf '    ok: %s\n' "$*"; }
fail() {
  printf '\n*** e2e FAILED: %s\n' "$*" >&2
  exit 1
}

# The egress log without ANSI colour codes.
plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$LOG"; }

# Kills what is still running, shows the logs when something failed, removes the temp dir.
cleanup() {
  local status=$?
  trap - EXIT HUP INT PIPE TERM
  for pid in $EGRESS_PID $UP_PID $PLAIN_PID; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    printf '\n===== egress log (%s) =====\n' "$LOG" >&2
    plain_log >&2 || true
    printf '===== openssl s_server log =====\n' >&2
    tail -n 50 "$UPLOG" >&2 2>/dev/null || true
    printf '===== python3 -m http.server log =====\n' >&2
    tail -n 50 "$PLAINLOG" >&2 2>/dev/null || true
    printf '===== end of logs =====\n' >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# Whether process $1, our child, has exited (a zombie counts as exited; kill -0 does not say so).
exited() {
  local state
  [ -r "/proc/$1/stat" ] || return 0
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
  [ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

# Waits until something accepts TCP connections on $1:$2, up to 10 s; fails if process $3 dies.
wait_port() {
  local host=$1 port=$2 pid=$3 i
  for ((i = 0; i < 100; i++)); do
    exited "$pid" && fail "process $pid exited before listening on $host:$port"
    if timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  fail "nothing listens on $host:$port after 10 s"
}

# Waits until egress has logged $1 "listening" lines, up to 10 s (no probe connection, so
# the per-connection log lines are only those of the clients below).
wait_egress_listening() {
  local want=$1 i n
  for ((i = 0; i < 100; i++)); do
    exited "$EGRESS_PID" && fail "egress exited during startup"
    n=$(plain_log | grep -c 'listening' || true)
    [ "$n" -ge "$want" ] && return 0
    sleep 0.1
  done
  fail "egress did not log $want listening addresses within 10 s"
}

# Whether text $1 contains a line matching the basic regex $2. (No `printf | grep -q` here:
# grep -q exits at the first match, printf may then die of SIGPIPE, and pipefail would turn
# the match into a failure.)
has() { grep -q -e "$2" <<<"$1"; }

# Runs "$@", output to $OUT and exit status to $RC, never failing the script by itself.
OUT=
RC=0
capture() {
  RC=0
  OUT=$("$@" 2>&1) || RC=$?
}

# Checks that $OUT, a curl --include output, is the status page of our s_server -www.
check_status_page() {
  local first=${OUT%%$'\n'*}
  printf '    > %s\n' "${first%$'\r'}"
  has "$first" '^HTTP/1.0 200 ok' || fail "curl via $1: no 'HTTP/1.0 200 ok': ${OUT:0:400}"
  has "$OUT" "s_server -accept 127.0.0.1:$UP " ||
    fail "curl via $1: not the status page of the s_server on 127.0.0.1:$UP"
}

step "pick free loopback ports"
read -r SNI UP HTTP PLAIN < <(python3 - <<'PY' || true
import socket

def free(hosts):
    """A port free on every host in hosts, found by binding port 0 on the first."""
    for _ in range(50):
        socks = []
        try:
            s = socket.socket()
            s.bind((hosts[0], 0))
            socks.append(s)
            port = s.getsockname()[1]
            for h in hosts[1:]:
                t = socket.socket()
                socks.append(t)
                t.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("no free port")

ports = []
while len(ports) < 4:
    # The second port (the TLS upstream) must also be free on 127.0.0.2.
    p = free(["127.0.0.1", "127.0.0.2"] if len(ports) == 1 else ["127.0.0.1"])
    if p not in ports:
        ports.append(p)
print(*ports)
PY
)
[ -n "${SNI:-}" ] && [ -n "${UP:-}" ] && [ -n "${HTTP:-}" ] && [ -n "${PLAIN:-}" ] ||
  fail "could not pick ports"
pass "SNI listener 127.0.0.1:$SNI, upstream 127.0.0.1:$UP, listener-port mode 127.0.0.2:$UP"
pass "HTTP proxy listener 127.0.0.1:$HTTP, plain HTTP upstream 127.0.0.1:$PLAIN"

step "build the Go net/http client (.ci/go, standard library only, no downloads)"
# Offline and self-contained: no module proxy, no toolchain switch, caches in the temp dir.
export GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GOWORK=off GO111MODULE=on
export GOCACHE=$WORK/go/cache GOPATH=$WORK/go/path GOTMPDIR=$WORK
mkdir -p "$GOCACHE" "$GOPATH"
GO_CLIENT=$WORK/go-client
go_started=$SECONDS
capture timeout "$GO_BUILD_TIMEOUT" bash -c 'cd "$1" && exec go build -o "$2" .' _ "$CI_DIR/go" "$GO_CLIENT"
[ "$RC" -eq 0 ] || fail "go build in $CI_DIR/go exited $RC: $OUT"
pass "$(go version) built $GO_CLIENT in $((SECONDS - go_started)) s"

step "generate a self-signed certificate for www.example.test and other.example.test"
capture timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  -subj /CN=www.example.test \
  -addext "subjectAltName=DNS:www.example.test,DNS:other.example.test"
[ "$RC" -eq 0 ] || fail "openssl req exited $RC: $OUT"
pass "$WORK/cert.pem"

step "start the TLS upstream: openssl s_server -www on 127.0.0.1:$UP"
openssl s_server -accept "127.0.0.1:$UP" -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
  -www -quiet </dev/null >"$UPLOG" 2>&1 &
UP_PID=$!
wait_port 127.0.0.1 "$UP" "$UP_PID"
pass "s_server (pid $UP_PID) listens"

step "start the plain HTTP upstream: python3 -m http.server on 127.0.0.1:$PLAIN"
mkdir "$WORK/www"
PLAIN_BODY="egress e2e plain file $$-$RANDOM$RANDOM"
printf '%s\n' "$PLAIN_BODY" >"$WORK/www/file.txt"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$PLAIN" \
  </dev/null >"$PLAINLOG" 2>&1 &
PLAIN_PID=$!
wait_port 127.0.0.1 "$PLAIN" "$PLAIN_PID"
pass "http.server (pid $PLAIN_PID) listens, serves file.txt: $PLAIN_BODY"

step "write the egress config and run 'egress check'"
CONFIG=$WORK/egress.toml
cat >"$CONFIG" <<EOF
# The upstreams are on loopback, which the default policy denies: re-open it, except
# 127.0.0.3. denied.example.test is refused by name, internal.example.test by address.
[policy]
deny = ["denied.example.test"]
allow_cidrs = ["127.0.0.0/8"]
deny_cidrs = ["127.0.0.3/32"]

[resolver.hosts]
"www.example.test" = ["127.0.0.1"]
"other.example.test" = ["127.0.0.1"]
"denied.example.test" = ["127.0.0.1"]
"internal.example.test" = ["127.0.0.3"]

# Every name to the same port.
[[sni]]
listen = ["127.0.0.1:$SNI"]
upstream_port = $UP

# Non-standard-port mode: to the port the client connected to.
[[sni]]
listen = ["127.0.0.2:$UP"]
upstream_port = "listener"

# HTTP proxy: CONNECT to the TLS upstream's port (not to $PLAIN), plain HTTP to any port.
[[http]]
listen = ["127.0.0.1:$HTTP"]
connect_ports = [443, $UP]
EOF
sed 's/^/    | /' "$CONFIG"
capture timeout "$CLIENT_TIMEOUT" "$BIN" check --config "$CONFIG"
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -eq 0 ] || fail "egress check exited $RC on a valid config"
pass "egress check exits 0"

step "start egress (EGRESS_LOG=info, stderr to $LOG)"
EGRESS_LOG=info "$BIN" --config "$CONFIG" </dev/null >>"$LOG" 2>&1 &
EGRESS_PID=$!
wait_egress_listening 3
plain_log | sed 's/^/    > /'
pass "egress (pid $EGRESS_PID) listens on 127.0.0.1:$SNI, 127.0.0.2:$UP and 127.0.0.1:$HTTP"

step "curl https://www.example.test:$SNI/ through the fixed-port listener"
capture curl --fail --silent --show-error --max-time "$CLIENT_TIMEOUT" \
  --cacert "$WORK/cert.pem" \
  --include --resolve "www.example.test:$SNI:127.0.0.1" "https://www.example.test:$SNI/"
[ "$RC" -eq 0 ] || fail "curl via 127.0.0.1:$SNI exited $RC: $OUT"
check_status_page "127.0.0.1:$SNI"
pass "verified TLS to the upstream and got its status page"

step "curl https://www.example.test:$UP/ through the listener-port listener on 127.0.0.2"
capture curl --fail --silent --show-error --max-time "$CLIENT_TIMEOUT" \
  --cacert "$WORK/cert.pem" \
  --include --resolve "www.example.test:$UP:127.0.0.2" "https://www.example.test:$UP/"
[ "$RC" -eq 0 ] || fail "curl via 127.0.0.2:$UP exited $RC: $OUT"
check_status_page "127.0.0.2:$UP"
pass "egress on 127.0.0.2:$UP reached 127.0.0.1:$UP"

step "openssl s_client -servername other.example.test verifies the upstream certificate"
capture timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$SNI" \
  -servername other.example.test -verify_hostname other.example.test \
  -CAfile "$WORK/cert.pem" -verify_return_error -brief </dev/null
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -eq 0 ] || fail "s_client for other.example.test exited $RC"
has "$OUT" 'Verification: OK' || fail "s_client for other.example.test: no 'Verification: OK'"
pass "handshake and verification OK"

# Runs openssl s_client for server name $1 (none when empty) against the fixed-port
# listener; it must fail with TLS alert number $2 from egress, without a handshake.
expect_alert() {
  local name=$1 alert=$2
  local sni=(-servername "$name")
  [ -n "$name" ] || sni=(-noservername)
  capture timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$SNI" "${sni[@]}" \
    -CAfile "$WORK/cert.pem" -brief </dev/null
  printf '%s\n' "$OUT" | sed 's/^/    > /'
  [ "$RC" -ne 124 ] || fail "s_client ${name:-without SNI}: egress did not close the connection within ${CLIENT_TIMEOUT}s"
  [ "$RC" -ne 0 ] || fail "s_client ${name:-without SNI} succeeded (exit 0)"
  if has "$OUT" 'CONNECTION ESTABLISHED' || has "$OUT" 'Verification: OK'; then
    fail "s_client ${name:-without SNI} completed a handshake"
  fi
  has "$OUT" "alert number $alert" || fail "s_client ${name:-without SNI}: no TLS alert $alert"
}

step "a ClientHello without SNI is refused with an unrecognized_name alert"
expect_alert "" 112
pass "s_client failed (exit $RC) on alert 112, no handshake"

step "a name the policy denies (denied.example.test) gets an unrecognized_name alert"
expect_alert denied.example.test 112
pass "s_client failed (exit $RC) on alert 112, no handshake"

step "a name resolving only to a denied address (internal.example.test) gets access_denied"
expect_alert internal.example.test 49
pass "s_client failed (exit $RC) on alert 49, no handshake"

step "a name neither in hosts nor resolvable (nxdomain.invalid) is closed by egress"
capture timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$SNI" \
  -servername nxdomain.invalid -CAfile "$WORK/cert.pem" -brief </dev/null
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -ne 124 ] || fail "s_client for nxdomain.invalid: egress did not close the connection within ${CLIENT_TIMEOUT}s"
[ "$RC" -ne 0 ] || fail "s_client for nxdomain.invalid succeeded (exit 0)"
if has "$OUT" 'CONNECTION ESTABLISHED' || has "$OUT" 'Verification: OK'; then
  fail "s_client for nxdomain.invalid completed a handshake"
fi
pass "s_client failed (exit $RC), no handshake"

step "the egress log has one info line per connection with its SNI and byte counts"
# A completed tunnel's line: the SNI (tracing may quote it), and up=N down=N with N > 0.
tunnel_lines() {
  plain_log | grep ' INFO ' | grep -E "sni=\"?$1\"?[ }]" |
    grep -E ' up=[1-9][0-9]*' | grep -E ' down=[1-9][0-9]*' || true
}
# Lines are written when a connection ends, which may be a moment after the client exits:
# wait up to 5 s for all of them.
for ((i = 0; i < 50; i++)); do
  [ "$(tunnel_lines www.example.test | wc -l)" -ge 2 ] &&
    [ "$(tunnel_lines other.example.test | wc -l)" -ge 1 ] &&
    [ "$(plain_log | grep -cE 'sni="?nxdomain.invalid' || true)" -ge 1 ] &&
    [ "$(plain_log | grep -cE 'sni="?internal.example.test' || true)" -ge 1 ] && break
  sleep 0.1
done
plain_log | sed 's/^/    > /'
n=$(tunnel_lines www.example.test | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 info lines with sni=www.example.test, up= and down= (one per curl), found $n"
LINES=$(tunnel_lines www.example.test)
has "$LINES" "listener=127.0.0.1:$SNI " ||
  fail "no line for the connection on 127.0.0.1:$SNI"
has "$LINES" "listener=127.0.0.2:$UP .*upstream=127.0.0.1:$UP " ||
  fail "no line showing 127.0.0.2:$UP relayed to upstream=127.0.0.1:$UP"
n=$(tunnel_lines other.example.test | wc -l)
[ "$n" -eq 1 ] || fail "expected 1 info line with sni=other.example.test, up= and down=, found $n"
n=$(plain_log | grep ' INFO ' | grep -cE 'sni="?nxdomain.invalid' || true)
[ "$n" -eq 1 ] || fail "expected 1 info line with sni=nxdomain.invalid, found $n"
n=$(plain_log | grep ' INFO ' | grep -E 'sni="?denied.example.test' | grep -c 'policy="\?denied_name' || true)
[ "$n" -eq 1 ] || fail "expected 1 info line with sni=denied.example.test and policy=denied_name, found $n"
n=$(plain_log | grep ' INFO ' | grep -E 'sni="?internal.example.test' | grep -c 'policy="\?no_allowed_address' || true)
[ "$n" -eq 1 ] || fail "expected 1 info line with sni=internal.example.test and policy=no_allowed_address, found $n"
pass "2 lines for www.example.test, 1 for other.example.test, 1 for nxdomain.invalid, 2 policy refusals"

step "curl -x http://127.0.0.1:$HTTP https://www.example.test:$UP/ (CONNECT)"
capture curl --fail --silent --show-error --max-time "$CLIENT_TIMEOUT" \
  --cacert "$WORK/cert.pem" --include \
  --proxy "http://127.0.0.1:$HTTP" "https://www.example.test:$UP/"
[ "$RC" -eq 0 ] || fail "curl through the CONNECT proxy exited $RC: $OUT"
# --include shows the proxy's answer to CONNECT before the upstream's response.
has "$OUT" '^HTTP/1.1 200 ' || fail "no 'HTTP/1.1 200' answer to CONNECT: ${OUT:0:400}"
printf '    > %s\n' "$(grep -m1 '^HTTP/1.1 200' <<<"$OUT" | tr -d '\r')"
OUT=$(sed -n '/^HTTP\/1.0 /,$p' <<<"$OUT")
check_status_page "CONNECT on 127.0.0.1:$HTTP"
pass "tunnel to 127.0.0.1:$UP, verified TLS, got the s_server status page"

# Checks that $OUT, a curl --include output, is a 200 with the plain upstream's file.
check_plain_file() {
  local first=${OUT%%$'\n'*}
  printf '    > %s\n' "${first%$'\r'}"
  has "$first" '^HTTP/1.1 200 ' || fail "curl $1: no 'HTTP/1.1 200': ${OUT:0:400}"
  has "$OUT" "^$PLAIN_BODY\$" || fail "curl $1: the body is not file.txt: ${OUT:0:400}"
}

step "curl -x http://127.0.0.1:$HTTP http://www.example.test:$PLAIN/file.txt (absolute form)"
capture curl --fail --silent --show-error --max-time "$CLIENT_TIMEOUT" --include \
  --proxy "http://127.0.0.1:$HTTP" "http://www.example.test:$PLAIN/file.txt"
[ "$RC" -eq 0 ] || fail "curl (absolute form) exited $RC: $OUT"
check_plain_file "(absolute form)"
pass "got file.txt from 127.0.0.1:$PLAIN"

step "curl -H 'Host: www.example.test:$PLAIN' http://127.0.0.1:$HTTP/file.txt (origin form)"
capture curl --fail --silent --show-error --max-time "$CLIENT_TIMEOUT" --include \
  -H "Host: www.example.test:$PLAIN" "http://127.0.0.1:$HTTP/file.txt"
[ "$RC" -eq 0 ] || fail "curl (origin form) exited $RC: $OUT"
check_plain_file "(origin form)"
pass "got file.txt from 127.0.0.1:$PLAIN"

step "CONNECT to www.example.test:$PLAIN (not in connect_ports) is refused"
capture curl --silent --show-error --max-time "$CLIENT_TIMEOUT" -o /dev/null \
  -w '\nhttp_connect=%{http_connect}\n' \
  --proxy "http://127.0.0.1:$HTTP" "https://www.example.test:$PLAIN/"
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -ne 0 ] || fail "curl through a refused CONNECT exited 0"
has "$OUT" '^http_connect=403$' || fail "curl: the answer to CONNECT is not 403"
pass "curl exited $RC, CONNECT answered 403"
# The same request by hand, to see the error header (egress closes after the refusal).
capture timeout "$CLIENT_TIMEOUT" bash -c '
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit
  printf "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" "$2" "$2" >&3
  cat <&3' _ "$HTTP" "www.example.test:$PLAIN"
printf '%s\n' "$OUT" | tr -d '\r' | sed 's/^/    > /'
[ "$RC" -eq 0 ] || fail "raw CONNECT exited $RC (124: egress did not close the connection)"
has "${OUT%%$'\n'*}" '^HTTP/1.1 403 ' || fail "raw CONNECT: the status line is not 'HTTP/1.1 403'"
has "$OUT" $'^X-Egress-Error: port_not_allowed\r$' ||
  fail "raw CONNECT: no 'X-Egress-Error: port_not_allowed' header"
pass "403 with X-Egress-Error: port_not_allowed, connection closed"

step "CONNECT and plain HTTP to a name the policy denies get 403 denied_name"
for url in "https://denied.example.test:$UP/" "http://denied.example.test:$PLAIN/file.txt"; do
  capture curl --silent --show-error --max-time "$CLIENT_TIMEOUT" --include \
    --proxy "http://127.0.0.1:$HTTP" "$url"
  printf '%s\n' "$OUT" | tr -d '\r' | sed 's/^/    > /'
  has "$OUT" '^HTTP/1.1 403 ' || fail "$url through the proxy: not answered 403"
  has "$OUT" $'^X-Egress-Error: denied_name\r$' ||
    fail "$url through the proxy: no 'X-Egress-Error: denied_name' header"
done
pass "403 with X-Egress-Error: denied_name for CONNECT and for absolute form"

step "Go net/http through the proxy: CONNECT and absolute form, $GO_ROUNDS rounds on one Transport"
# The Go client checks every status and body, and that each plain request after the first
# ran on a kept-alive proxy connection. other.example.test (same upstream) makes egress
# route each request of the kept-alive connection by its own target.
capture timeout 60 "$GO_CLIENT" -proxy "http://127.0.0.1:$HTTP" -cacert "$WORK/cert.pem" \
  -rounds "$GO_ROUNDS" -timeout "${CLIENT_TIMEOUT}s" \
  "https://www.example.test:$UP/" "s_server -accept 127.0.0.1:$UP " \
  "http://www.example.test:$PLAIN/file.txt" "$PLAIN_BODY" \
  "http://other.example.test:$PLAIN/file.txt" "$PLAIN_BODY"
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -eq 0 ] || fail "the Go client exited $RC"
pass "$((GO_ROUNDS * 3)) GETs with the expected bodies, plain requests on one kept-alive connection"

step "the egress log has one info line per HTTP request and per CONNECT tunnel"
# One line per forwarded request, with the method, the target and the path (tracing may
# quote the values); the status is on it too (as a field of the request or its connection).
request_lines() {
  plain_log | grep ' INFO ' | grep "listener=127.0.0.1:$HTTP[ }]" |
    grep -E "method=\"?GET\"? " | grep -E "target=\"?$1\"?[ }]" |
    grep -E 'path="?/file.txt"?[ }]' | grep -E 'status=200[ }]' || true
}
# A CONNECT tunnel's line, written when it ends: target, upstream, status 200, bytes each way.
tunnel_lines_http() {
  plain_log | grep ' INFO ' | grep "listener=127.0.0.1:$HTTP[ }]" |
    grep -E "target=\"?www.example.test:$UP\"?[ }]" | grep -E "upstream=127.0.0.1:$UP[ }]" |
    grep -E 'status=200[ }]' | grep -E ' up=[1-9][0-9]*' | grep -E ' down=[1-9][0-9]*' || true
}
refused_lines() {
  plain_log | grep ' INFO ' | grep "listener=127.0.0.1:$HTTP[ }]" |
    grep -E "target=\"?www.example.test:$PLAIN\"?[ }]" | grep -E 'status=403[ }]' |
    grep 'port_not_allowed' || true
}
WANT_WWW=$((2 + GO_ROUNDS))
WANT_OTHER=$GO_ROUNDS
WANT_TUNNELS=$((1 + GO_ROUNDS))
for ((i = 0; i < 50; i++)); do
  [ "$(request_lines "www.example.test:$PLAIN" | wc -l)" -ge "$WANT_WWW" ] &&
    [ "$(request_lines "other.example.test:$PLAIN" | wc -l)" -ge "$WANT_OTHER" ] &&
    [ "$(tunnel_lines_http | wc -l)" -ge "$WANT_TUNNELS" ] &&
    [ "$(refused_lines | wc -l)" -ge 2 ] && break
  sleep 0.1
done
plain_log | grep "listener=127.0.0.1:$HTTP[ }]" | sed 's/^/    > /'
n=$(request_lines "www.example.test:$PLAIN" | wc -l)
[ "$n" -eq "$WANT_WWW" ] ||
  fail "expected $WANT_WWW info lines with method=GET target=www.example.test:$PLAIN path=/file.txt status=200 (2 curl, $GO_ROUNDS Go), found $n"
n=$(request_lines "other.example.test:$PLAIN" | wc -l)
[ "$n" -eq "$WANT_OTHER" ] ||
  fail "expected $WANT_OTHER info lines with method=GET target=other.example.test:$PLAIN path=/file.txt status=200, found $n"
n=$(tunnel_lines_http | wc -l)
[ "$n" -eq "$WANT_TUNNELS" ] ||
  fail "expected $WANT_TUNNELS CONNECT lines with target=www.example.test:$UP upstream=127.0.0.1:$UP status=200, up= and down= (1 curl, $GO_ROUNDS Go), found $n"
n=$(refused_lines | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 lines for the refused CONNECT (status=403, port_not_allowed), found $n"
pass "$WANT_WWW + $WANT_OTHER request lines, $WANT_TUNNELS CONNECT tunnel lines, 2 refused CONNECT lines"

step "egress check on a config with an unknown key fails and names the line"
BAD=$WORK/bad.toml
printf '[[sni]]\nlisten = ["127.0.0.1:1"]\nupstrem_port = 443\n' >"$BAD"
capture timeout "$CLIENT_TIMEOUT" "$BIN" check --config "$BAD"
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -ne 0 ] || fail "egress check exited 0 on an unknown key"
has "$OUT" 'line 3' || fail "egress check did not name line 3"
pass "exit $RC, names line 3"

step "egress --version and egress --help exit 0"
capture timeout "$CLIENT_TIMEOUT" "$BIN" --version
[ "$RC" -eq 0 ] || fail "egress --version exited $RC: $OUT"
has "$OUT" '^egress ' || fail "egress --version does not name egress: $OUT"
pass "$OUT"
capture timeout "$CLIENT_TIMEOUT" "$BIN" --help
[ "$RC" -eq 0 ] || fail "egress --help exited $RC: $OUT"
has "$OUT" '--config' || fail "egress --help does not mention --config"
pass "--help mentions --config"

step "SIGTERM stops egress with exit 0 within ${STOP_TIMEOUT}s"
exited "$EGRESS_PID" && fail "egress died before SIGTERM"
kill -TERM "$EGRESS_PID"
for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
  exited "$EGRESS_PID" && break
  sleep 0.1
done
exited "$EGRESS_PID" || fail "egress still runs ${STOP_TIMEOUT}s after SIGTERM"
RC=0
wait "$EGRESS_PID" || RC=$?
EGRESS_PID=
[ "$RC" -eq 0 ] || fail "egress exited $RC after SIGTERM"
pass "egress exited 0"

printf '\n--- e2e: all checks passed\n'
