#!/usr/bin/env bash
# Cache-hit throughput: debcache against nginx serving the same files
# directly (and apt-cacher-ng 3.7.4 when installed), with wrk.
#
#   benches/hits.sh [seconds per run, default 10] [connections, default 64]
#
# Servers run pinned to CPU 0, wrk to CPU 1 (taskset), all on loopback.
# Needs: nginx, wrk (Debian packages); apt-cacher-ng optional.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-64}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for tool in nginx wrk taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk)" >&2; exit 1; }
done

# shellcheck source=benches/common.sh
source benches/common.sh  # the working directory is the repository
BIN=$(debcache_bin)
scratch

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

# The files: a ~2 KB index-sized file and a 100 KB package, cached as acng
# would have them.
CACHE=$WORK/cache
mkdir -p "$CACHE/bench.example/pool"
head -c 2048 /dev/urandom > "$CACHE/bench.example/pool/f2k.deb"
head -c 102400 /dev/urandom > "$CACHE/bench.example/pool/f100k.deb"
for f in f2k f100k; do
  size=$(stat -c %s "$CACHE/bench.example/pool/$f.deb")
  printf 'HTTP/1.1 200 OK\r\nContent-Length: %s\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n' "$size" \
    > "$CACHE/bench.example/pool/$f.deb.head"
done

# nginx: the same files from disk, as fast as it serves static files.
NGINX_PORT=$(free_port)
start_nginx "  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  server { listen 127.0.0.1:$NGINX_PORT; root $CACHE; }"

# debcache on the cache, path style.
DC_PORT=$(free_port)
mkdir -p "$WORK/dc"
printf 'CacheDir: %s\nLogDir: %s/dc\nOfflineMode: 1\n' "$CACHE" "$WORK" > "$WORK/dc/acng.conf"
RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/dc" "BindAddress=127.0.0.1:$DC_PORT" 2>"$WORK/dc/stderr" &
PIDS+=($!)

# apt-cacher-ng on a copy of the same cache, when installed.
ACNG_PORT=""
if command -v apt-cacher-ng >/dev/null; then
  ACNG_PORT=$(free_port)
  mkdir -p "$WORK/acng/conf" "$WORK/acng/log"
  cp -r "$CACHE" "$WORK/acng/cache"
  rm -rf "$WORK/acng/cache/_debcache"
  printf 'CacheDir: %s\nLogDir: %s\nPort: %s\nBindAddress: 127.0.0.1\nOfflinemode: 1\nForeGround: 1\n' \
    "$WORK/acng/cache" "$WORK/acng/log" "$ACNG_PORT" > "$WORK/acng/conf/acng.conf"
  taskset -c "$SERVER_CPU" apt-cacher-ng -c "$WORK/acng/conf" SocketPath="$WORK/acng/sock" >/dev/null 2>&1 &
  PIDS+=($!)
fi

wait_port "$NGINX_PORT"; wait_port "$DC_PORT"; [ -n "$ACNG_PORT" ] && wait_port "$ACNG_PORT"

# Prints "requests/s MB/s" for one wrk run.
run() {
  local out
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1")
  local rps mbs
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  mbs=$(awk '/^Transfer\/sec:/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else {sub("MB","",v)}; print v}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors for $1:" >&2; echo "$out" >&2; fi
  echo "$rps $mbs"
}

printf '%-10s %-14s %12s %10s %8s\n' file server "requests/s" "MB/s" "x nginx"
for f in f2k f100k; do
  read -r n_rps n_mbs <<<"$(run "http://127.0.0.1:$NGINX_PORT/bench.example/pool/$f.deb")"
  printf '%-10s %-14s %12.0f %10.1f %8s\n' "$f" nginx "$n_rps" "$n_mbs" "1.00"
  read -r d_rps d_mbs <<<"$(run "http://127.0.0.1:$DC_PORT/bench.example/pool/$f.deb")"
  printf '%-10s %-14s %12.0f %10.1f %8.2f\n' "$f" debcache "$d_rps" "$d_mbs" "$(echo "$d_rps / $n_rps" | bc -l)"
  if [ -n "$ACNG_PORT" ]; then
    read -r a_rps a_mbs <<<"$(run "http://127.0.0.1:$ACNG_PORT/bench.example/pool/$f.deb")"
    printf '%-10s %-14s %12.0f %10.1f %8.2f\n' "$f" apt-cacher-ng "$a_rps" "$a_mbs" "$(echo "$a_rps / $n_rps" | bc -l)"
  fi
done
