#!/usr/bin/env bash
# Instructions per cache hit, counted by callgrind: the one measure of the
# hot path that a shared, noisy machine does not disturb. A 2 KB file is
# requested N and 5N times over one kept-alive connection; the difference
# divided by 4N is the cost of one hit, start-up and shutdown cancelled out.
#
#   benches/instructions.sh [N, default 500]
#   DEBCACHE=/path/to/other/debcache benches/instructions.sh   # another build
#
# Needs valgrind and python3. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500}
command -v valgrind >/dev/null || { echo "missing valgrind (apt-get install valgrind)" >&2; exit 1; }
# shellcheck source=benches/common.sh
source benches/common.sh
BIN=$(debcache_bin)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/cache/bench.example/pool" "$WORK/conf"
head -c 2048 /dev/urandom >"$WORK/cache/bench.example/pool/f2k.deb"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2048\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n' \
  >"$WORK/cache/bench.example/pool/f2k.deb.head"

# instructions REQUESTS: the daemon's total for REQUESTS hits.
instructions() {
  local port pid
  port=$(free_port)
  printf 'CacheDir: %s\nLogDir: %s/log\nOfflineMode: 1\nPort: %s\nBindAddress: 127.0.0.1\n' \
    "$WORK/cache" "$WORK" "$port" >"$WORK/conf/acng.conf"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$BIN" -c "$WORK/conf" 2>"$WORK/err" &
  pid=$!
  wait_port "$port" "$pid" "$WORK/err" debcache
  python3 - "$port" "$1" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
request = b"GET /bench.example/pool/f2k.deb HTTP/1.1\r\nHost: bench\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(request)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0 and len(buf) >= end + 4 + 2048:
            buf = buf[end + 4 + 2048:]
            break
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("the daemon closed the connection")
        buf += chunk
PY
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  awk '/^summary:/ {print $2}' "$WORK/cg.out"
}

few=$(instructions "$N")
many=$(instructions "$((5 * N))")
echo "debcache $("$BIN" --version 2>/dev/null | head -1): $(( (many - few) / (4 * N) )) instructions per 2 KB hit (callgrind, $N and $((5 * N)) requests)"
