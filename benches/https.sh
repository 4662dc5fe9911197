#!/usr/bin/env bash
# HTTPS mirrors (issue 9): one nginx origin serving the same files over
# plain HTTP and over TLS (a certificate from a CA made here, given to
# debcache as CAfile), and debcache in front of it.
#
#   benches/https.sh [runs, default 5; or RUNS=...]
#
#   1. a 100 MB miss: curl receiving it straight from the TLS origin;
#      debcache fetching it over TLS (HTTPS///) and over plain HTTP, each on
#      an empty cache, curl receiving what debcache sends (the cached copy
#      is compared with the origin's); medians of RUNS runs;
#   2. cache hits of a 100 KB file: wrk, 16 connections, HTTPS/// against a
#      plain path-style URL (the same code path, so the same speed);
#   3. connection reuse: 50 HTTPS/// misses one after the other, and how
#      many TLS connections and handshakes nginx saw for them.
#
# debcache runs pinned to CPU 0; the clients and the origin (whose TLS
# encryption is a remote mirror's cost, not the cache's) to CPU 1, on
# loopback. Needs nginx
# (with ssl), wrk, curl, openssl, taskset, bc. Disk: about 400 MB in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-${RUNS:-5}}
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for tool in nginx wrk curl openssl taskset bc; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk curl openssl bc)" >&2; exit 1; }
done
# shellcheck source=benches/common.sh
source benches/common.sh
BIN=$(debcache_bin)
scratch
median_in() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The CA and the origin's certificate (for 127.0.0.1).
TLS=$WORK/tls
mkdir -p "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
  -keyout "$TLS/origin.key" -out "$TLS/origin.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$TLS/ext"
openssl x509 -req -in "$TLS/origin.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
  -CAcreateserial -days 2 -extfile "$TLS/ext" -out "$TLS/origin.pem" 2>/dev/null
chmod 644 "$TLS"/*

ORIGIN=$WORK/origin/debian/pool/main/b/blobs
mkdir -p "$ORIGIN"
head -c $((100 << 20)) /dev/urandom >"$ORIGIN/big.deb"
head -c $((100 << 10)) /dev/urandom >"$ORIGIN/small.deb"
for i in $(seq 50); do head -c 4096 /dev/urandom >"$ORIGIN/many-$i.deb"; done

PLAIN=$(free_port)
SECURE=$(free_port)
SERVER_CPU=$CLIENT_CPU start_nginx "
  log_format conns '\$connection \$ssl_session_reused \$ssl_protocol \$ssl_cipher';
  server {
    listen 127.0.0.1:$PLAIN;
    listen 127.0.0.1:$SECURE ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $TLS/origin.pem;
    ssl_certificate_key $TLS/origin.key;
    access_log $WORK/nginx/access.log conns;
    root $WORK/origin;
  }"
wait_port "$PLAIN" "$NGINX_PID" "$WORK/nginx/stderr" nginx
wait_port "$SECURE" "$NGINX_PID" "$WORK/nginx/stderr" nginx

# start_debcache: a debcache on an empty cache; sets CACHE (its port), CACHE_PID.
start_debcache() {
  rm -rf "$WORK/cache" "$WORK/conf"
  mkdir -p "$WORK/cache" "$WORK/conf"
  CACHE=$(free_port)
  printf 'CacheDir: %s\nLogDir:\nBindAddress: 127.0.0.1:%s\nPort: %s\nCAfile: %s\nAllowUserPorts: 80 %s %s\n' \
    "$WORK/cache" "$CACHE" "$CACHE" "$TLS/ca.pem" "$PLAIN" "$SECURE" >"$WORK/conf/acng.conf"
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/conf" 2>"$WORK/cache.err" &
  CACHE_PID=$!
  PIDS+=("$CACHE_PID")
  wait_port "$CACHE" "$CACHE_PID" "$WORK/cache.err" debcache
}
stop_debcache() { kill "$CACHE_PID"; wait "$CACHE_PID" 2>/dev/null || true; }
# cpu_ms: CPU time (user + system) the cache has used so far.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d\n", ($14 + $15) * 1000 / hz}' "/proc/$CACHE_PID/stat"; }

# seconds URL [curl options]: wall time of curl receiving URL. The body
# goes to /dev/null: the client shares its core with the origin, and
# storing 100 MB there would time the rig rather than the cache.
seconds() {
  local url=$1; shift
  taskset -c "$CLIENT_CPU" curl -sf "$@" -o /dev/null -w '%{time_total}\n' "$url"
}

BIG=debian/pool/main/b/blobs/big.deb
echo "debcache $(git describe --always --dirty 2>/dev/null || echo '?'), $RUNS runs each, medians"
echo
echo "1. a 100 MB miss (curl -o /dev/null)"
direct=$(for _ in $(seq "$RUNS"); do seconds "https://127.0.0.1:$SECURE/$BIG" --cacert "$TLS/ca.pem"; done | median_in)
# miss PATH: "seconds cpu-ms" of one miss of http://cache/PATH on an empty cache.
miss() {
  start_debcache
  local before t
  before=$(cpu_ms)
  t=$(seconds "http://127.0.0.1:$CACHE/$1")
  echo "$t $(( $(cpu_ms) - before ))"
  stop_debcache
  cmp -s "$(find "$WORK/cache" -name big.deb -type f)" "$ORIGIN/big.deb" \
    || { echo "the cached copy differs" >&2; exit 1; }
}
for _ in $(seq "$RUNS"); do miss "HTTPS///127.0.0.1:$SECURE/$BIG"; done >"$WORK/tls.runs"
for _ in $(seq "$RUNS"); do miss "127.0.0.1:$PLAIN/$BIG"; done >"$WORK/plain.runs"
tls=$(awk '{print $1}' "$WORK/tls.runs" | median_in)
plain=$(awk '{print $1}' "$WORK/plain.runs" | median_in)
tls_cpu=$(awk '{print $2}' "$WORK/tls.runs" | median_in)
plain_cpu=$(awk '{print $2}' "$WORK/plain.runs" | median_in)
printf '   curl from the TLS origin        %6.3f s\n' "$direct"
printf '   debcache, HTTPS/// (TLS)         %6.3f s   x%.2f of curl direct; debcache CPU %d ms\n' \
  "$tls" "$(calc "$tls / $direct")" "$tls_cpu"
printf '   debcache, plain HTTP             %6.3f s   debcache CPU %d ms\n' "$plain" "$plain_cpu"
printf '   TLS miss / plain miss            x%.2f in time (target <= 1.2), x%.2f in CPU\n' \
  "$(calc "$tls / $plain")" "$(calc "$tls_cpu / ($plain_cpu + 0.001)")"

echo
echo "2. hits of a 100 KB file, wrk -c16 -d${DURATION}s"
start_debcache
SMALL=debian/pool/main/b/blobs/small.deb
hits() {
  curl -sf -o /dev/null "http://127.0.0.1:$CACHE/$1"
  taskset -c "$CLIENT_CPU" wrk -t1 -c16 -d"$DURATION"s "http://127.0.0.1:$CACHE/$1" | awk '/Requests\/sec/ {print $2}'
}
hit_tls=$(hits "HTTPS///127.0.0.1:$SECURE/$SMALL")
hit_plain=$(hits "127.0.0.1:$PLAIN/$SMALL")
printf '   HTTPS/// hits  %10.0f req/s\n   plain hits     %10.0f req/s   HTTPS/// / plain x%.2f\n' \
  "$hit_tls" "$hit_plain" "$(calc "$hit_tls / $hit_plain")"

echo
echo "3. 50 HTTPS/// misses in a row"
: >"$WORK/nginx/access.log"
for i in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$CACHE/HTTPS///127.0.0.1:$SECURE/debian/pool/main/b/blobs/many-$i.deb"
done
sleep 0.2
requests=$(wc -l <"$WORK/nginx/access.log")
connections=$(awk '{print $1}' "$WORK/nginx/access.log" | sort -u | wc -l)
resumed=$(awk '$2 == "r"' "$WORK/nginx/access.log" | awk '{print $1}' | sort -u | wc -l)
printf '   %d requests upstream over %d TLS connection(s) (%d of them resumed a session), %s\n' \
  "$requests" "$connections" "$resumed" "$(awk '{print $3, $4}' "$WORK/nginx/access.log" | sort -u | head -1)"
stop_debcache
