#!/usr/bin/env bash
# A cold disk must not stall other clients: one client sends hot hits (a
# 2 KB file, one request at a time on a kept-alive connection) and records
# each latency, while other clients stream large cached files whose pages
# were dropped from memory (posix_fadvise(DONTNEED), and drop_caches when
# root). Prints p50/p99/max of the hot hits, alone and under the cold reads,
# for this checkout's build and, when BEFORE= names one, another build.
#
#   benches/cold.sh [files, default 4] [MB per file, default 200]
#   BEFORE=/path/to/other/debcache benches/cold.sh    # before/after in one run
#   DEBCACHE=/path/to/debcache benches/cold.sh        # measure another build only
#
# The daemon runs pinned to CPU 0 (with its default worker count), the
# clients to CPU 1. Needs python3 and taskset; disk: files x MB in $TMPDIR,
# which must be a real disk (on a tmpfs every page is resident).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-4}
MB=${2:-200}
SECS=${SECS:-15}  # per measurement
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
# shellcheck source=benches/common.sh
source benches/common.sh
BIN=$(debcache_bin)
WORK=$(mktemp -d)
PIDS=()
cleanup() { rm -f "$WORK/go"; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

CACHE=$WORK/cache
mkdir -p "$CACHE/bench.example/pool"
cached() {  # cached NAME BYTES: a file and its complete .head
  head -c "$2" /dev/urandom >"$CACHE/bench.example/pool/$1"
  printf 'HTTP/1.1 200 OK\r\nContent-Length: %s\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n' "$2" \
    >"$CACHE/bench.example/pool/$1.head"
}
cached f2k.deb 2048
for i in $(seq "$FILES"); do cached "big$i.deb" $((MB * 1024 * 1024)); done
sync

# cold FILE: drops FILE's pages from memory (never the 2 KB file's).
cold() {
  python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"
}

# streamers PORT: one curl loop per big file, each file made cold before
# every transfer, until $WORK/go is gone. Counts bytes in $WORK/streamed.
# (drop_caches is done once, before the streams: dropping it all during them
# would also make the hot file and the daemon's own code cold.)
streamers() {
  : >"$WORK/streamed"
  STREAMERS=()
  for i in $(seq "$FILES"); do
    (
      while [ -e "$WORK/go" ]; do
        cold "$CACHE/bench.example/pool/big$i.deb"
        taskset -c "$CLIENT_CPU" curl -s --limit-rate "${RATE:-25M}" -o /dev/null -w '%{size_download}\n' \
          "http://127.0.0.1:$1/bench.example/pool/big$i.deb" >>"$WORK/streamed" || true
      done
    ) &
    STREAMERS+=($!)
  done
}

# hits PORT SECONDS: hot-hit latencies; prints "p50 p99 max hits" (ms).
hits() {
  taskset -c "$CLIENT_CPU" python3 - "$@" <<'PY'
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"GET /bench.example/pool/f2k.deb HTTP/1.1\r\nHost: b\r\n\r\n"
def get():
    s.sendall(req)
    buf = b""
    while len(buf) < 2048 or b"\r\n\r\n" not in buf or len(buf.split(b"\r\n\r\n", 1)[1]) < 2048:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    assert buf.startswith(b"HTTP/1.1 200"), buf[:100]
for _ in range(100):
    get()  # warm
lat = []
start = time.monotonic()
while time.monotonic() - start < secs:
    t0 = time.perf_counter()
    get()
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.002)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
print("%.2f %.2f %.2f %d" % (pct(0.5), pct(0.99), lat[-1], len(lat)))
PY
}

wait_streamers() { wait "${STREAMERS[@]}" 2>/dev/null || true; STREAMERS=(); }

# run NAME BIN: the daemon, hot hits alone, then under cold reads.
run() {
  local port pid dir=$WORK/$1
  port=$(free_port)
  mkdir -p "$dir"
  printf 'CacheDir: %s\nLogDir: %s\nOfflineMode: 1\nPort: %s\nBindAddress: 127.0.0.1\n' \
    "$CACHE" "$dir" "$port" >"$dir/acng.conf"
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$2" -c "$dir" 2>"$dir/stderr" &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid" "$dir/stderr" "$1"
  read -r p50 p99 max n <<<"$(hits "$port" "$SECS")"
  printf '%-8s %-22s %8s %8s %8s %7s %8s\n' "$1" "hot hits alone" "$p50" "$p99" "$max" "$n" -
  sync
  [ "$(id -u)" = 0 ] && { echo 1 >/proc/sys/vm/drop_caches; } 2>/dev/null
  hits "$port" 1 >/dev/null  # the hot file back in memory
  touch "$WORK/go"
  streamers "$port"
  read -r p50 p99 max n <<<"$(hits "$port" "$SECS")"
  rm -f "$WORK/go"
  wait_streamers
  mbs=$(awk -v s="$SECS" '{t += $1} END {printf "%.0f", t / s / 1e6}' "$WORK/streamed")
  printf '%-8s %-22s %8s %8s %8s %7s %8s\n' "$1" "hot hits, cold reads" "$p50" "$p99" "$max" "$n" "$mbs"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "hot hits: ms per 2 KB request, one at a time; cold: $FILES x $MB MB streaming from a dropped page cache"
printf '%-8s %-22s %8s %8s %8s %7s %8s\n' build case p50 p99 max hits "cold MB/s"
[ -n "${BEFORE:-}" ] && run before "$(realpath "$BEFORE")"
run this "$BIN"
