#!/usr/bin/env bash
# End-to-end test of the egress binary with real clients (curl, openssl), on loopback only.
#
#   .ci/e2e.sh path/to/egress
#
# Needs bash, python3 (to pick free ports), openssl and curl. Every client call has a
# timeout, every wait is a bounded loop, and every background process is killed on exit.
# On failure the egress log is printed and the script exits non-zero.
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

# Seconds allowed for one client call, and for egress to stop after SIGTERM.
CLIENT_TIMEOUT=10
STOP_TIMEOUT=10

WORK=$(mktemp -d "${TMPDIR:-/tmp}/egress-e2e.XXXXXX")
LOG=$WORK/egress.log
UPLOG=$WORK/s_server.log
: >"$LOG"
UP_PID=
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
  trap - EXIT INT TERM
  for pid in $EGRESS_PID $UP_PID; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    printf '\n===== egress log (%s) =====\n' "$LOG" >&2
    plain_log >&2 || true
    printf '===== openssl s_server log =====\n' >&2
    tail -n 50 "$UPLOG" >&2 2>/dev/null || true
    printf '===== end of logs =====\n' >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
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
read -r SNI UP < <(python3 - <<'PY' || true
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

sni = free(["127.0.0.1"])
up = sni
while up == sni:
    up = free(["127.0.0.1", "127.0.0.2"])
print(sni, up)
PY
)
[ -n "${SNI:-}" ] && [ -n "${UP:-}" ] || fail "could not pick ports"
pass "SNI listener 127.0.0.1:$SNI, upstream 127.0.0.1:$UP, listener-port mode 127.0.0.2:$UP"

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

step "write the egress config and run 'egress check'"
CONFIG=$WORK/egress.toml
cat >"$CONFIG" <<EOF
[resolver.hosts]
"www.example.test" = ["127.0.0.1"]
"other.example.test" = ["127.0.0.1"]

# Every name to the same port.
[[sni]]
listen = ["127.0.0.1:$SNI"]
upstream_port = $UP

# Non-standard-port mode: to the port the client connected to.
[[sni]]
listen = ["127.0.0.2:$UP"]
upstream_port = "listener"
EOF
sed 's/^/    | /' "$CONFIG"
capture timeout "$CLIENT_TIMEOUT" "$BIN" check --config "$CONFIG"
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -eq 0 ] || fail "egress check exited $RC on a valid config"
pass "egress check exits 0"

step "start egress (EGRESS_LOG=info, stderr to $LOG)"
EGRESS_LOG=info "$BIN" --config "$CONFIG" </dev/null >>"$LOG" 2>&1 &
EGRESS_PID=$!
wait_egress_listening 2
plain_log | sed 's/^/    > /'
pass "egress (pid $EGRESS_PID) listens on 127.0.0.1:$SNI and 127.0.0.2:$UP"

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

step "a ClientHello without SNI is closed by egress"
capture timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$SNI" -noservername \
  -CAfile "$WORK/cert.pem" -brief </dev/null
printf '%s\n' "$OUT" | sed 's/^/    > /'
[ "$RC" -ne 124 ] || fail "s_client without SNI: egress did not close the connection within ${CLIENT_TIMEOUT}s"
[ "$RC" -ne 0 ] || fail "s_client without SNI succeeded (exit 0)"
if has "$OUT" 'CONNECTION ESTABLISHED' || has "$OUT" 'Verification: OK'; then
  fail "s_client without SNI completed a handshake"
fi
pass "s_client failed (exit $RC), no handshake"

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
    [ "$(plain_log | grep -cE 'sni="?nxdomain.invalid' || true)" -ge 1 ] && break
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
pass "2 lines for www.example.test, 1 for other.example.test, 1 for nxdomain.invalid"

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
