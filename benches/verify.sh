#!/usr/bin/env bash
# The cost of verifying a download against the indexes' checksum: one
# uncached BIG_MB MB package file that a cached Packages index lists with
# its Size and SHA256 (debcache hashes it beside the transfer and holds the
# last 64 KiB back until the digest matched) against one of the same size
# that no index lists (not verified). Target: verified <= 1.15x unverified
# in wall time, from a settled memory state.
#
#   sudo benches/verify.sh        # RUNS rounds of a 1 GB miss each (known, unknown)
#   QUICK=1 benches/verify.sh     # a smoke test: 64 MB, one round
#
# One daemon for the whole run; before each miss its cached copy (and
# .head) is removed, then the memory is settled as in benches/run.sh,
# section c (sync, drop_caches, the origin's file read back in: this VM
# charges the first touch of guest memory heavily). Unpinned, as the
# target is stated: the daemon may use CPUs SERVER_CPU (0,1), where its
# hashing runs beside the transfer, and curl and the origin (nginx)
# CLIENT_CPU (0,1); SERVER_CPU=0 CLIENT_CPU=1 pins them apart, and then
# the hash takes the transfer's own core. Prints the median wall time and the daemon's
# CPU time (user + system, /proc/PID/stat) of each kind, their ratios,
# and the daemon's peak RSS (VmHWM). Last, a file listed with a wrong
# digest is fetched, to show the verification was in effect. Knobs
# (environment): BIG_MB (1024; QUICK: 64), RUNS (3; QUICK: 1), DEBCACHE
# (a binary to measure instead of building this checkout). Root is needed
# to drop the page cache. Needs nginx, curl, bc, python3, taskset;
# disk: about BIG_MB x 4 in $TMPDIR. About a minute; QUICK=1 ten seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "usage: $0 (see --help)" >&2; exit 2 ;;
esac
if [ -n "${QUICK:-}" ]; then RUNS=${RUNS:-1} BIG_MB=${BIG_MB:-64}; fi
RUNS=${RUNS:-3}
BIG_MB=${BIG_MB:-1024}
SERVER_CPU=${SERVER_CPU:-0,1}
CLIENT_CPU=${CLIENT_CPU:-0,1}
for tool in nginx curl bc python3 taskset sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx curl bc python3)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || echo "not root: the page cache is not dropped before the misses" >&2
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# shellcheck source=benches/common.sh
source benches/common.sh  # the working directory is the repository
BIN=$(debcache_bin)
scratch
: > "$WORK/notes"
HZ=$(getconf CLK_TCK)
progress() { echo "[$(date +%T)] $*" >&2; }

# ---------------------------------------------------------------------------
# The origin: a flat-ish repository without a Release, so each Packages is
# a lone index and the table holds exactly what it lists (a cached Release
# would add its indexes' by-hash names). dists/bench's lists
# known_1.0_all.deb only; unknown_1.0_all.deb, the same size, is in no
# index; dists/canary's lists canary_1.0_all.deb with a wrong digest.
progress "writing two ${BIG_MB} MB files and their index"
REPO=$WORK/repo
POOL=pool/main/b/big
mkdir -p "$REPO/$POOL" "$REPO/dists/bench/main/binary-amd64" "$REPO/dists/canary/main/binary-amd64"
for f in known unknown; do head -c $((BIG_MB << 20)) /dev/urandom > "$REPO/$POOL/${f}_1.0_all.deb"; done
head -c 4096 /dev/urandom > "$REPO/$POOL/canary_1.0_all.deb"
# stanza FILE [DIGEST]: a Packages paragraph for FILE, with its SHA256 or DIGEST.
stanza() {
  printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: debcache bench <bench@example.org>\n' "${1%%_*}"
  printf 'Filename: %s/%s\nSize: %s\nSHA256: %s\nDescription: random bytes for debcache'"'"'s verify bench\n' \
    "$POOL" "$1" "$(stat -c %s "$REPO/$POOL/$1")" "${2:-$(sha256sum < "$REPO/$POOL/$1" | cut -d' ' -f1)}"
}
stanza known_1.0_all.deb > "$REPO/dists/bench/main/binary-amd64/Packages"
stanza canary_1.0_all.deb "$(printf '%064d' 0)" > "$REPO/dists/canary/main/binary-amd64/Packages"
chmod -R a+rX "$REPO"

ORIGIN_PORT=$(free_port)
SERVER_CPU=$CLIENT_CPU start_nginx "  log_format origin '\$request_method \$uri \$status \$body_bytes_sent';
  sendfile on; tcp_nodelay on;
  server { listen 127.0.0.1:$ORIGIN_PORT; root $REPO; access_log $WORK/origin.log origin; }" "$WORK/origin-nginx"
wait_port "$ORIGIN_PORT" "$NGINX_PID" "$WORK/origin-nginx/stderr" "origin nginx"

# ---------------------------------------------------------------------------
# The daemon, as run.sh starts it, with no daily expiration.
DIR=$WORK/debcache
PORT=$(free_port)
mkdir -p "$DIR/conf" "$DIR/cache" "$DIR/log"
printf 'CacheDir: %s\nLogDir: %s\nExpireSchedule: 0\nRemap-bench: /bench ; http://127.0.0.1:%s/\n' \
  "$DIR/cache" "$DIR/log" "$ORIGIN_PORT" > "$DIR/conf/acng.conf"
RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" -c "$DIR/conf" "BindAddress=127.0.0.1:$PORT" 2>"$DIR/stderr" &
PID=$!
PIDS+=("$PID")
wait_port "$PORT" "$PID" "$DIR/stderr" debcache
URL=http://127.0.0.1:$PORT/bench

checksums() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "debcache_index_checksums" {print $2; f = 1} END {if (!f) print 0}'; }
# fetch PATH: through the daemon, discarded; prints "status bytes seconds".
fetch() { taskset -c "$CLIENT_CPU" curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$URL/$1" || true; }
# await_checksums N: until the table holds N files (30 s at most); prints how many it holds.
await_checksums() {
  local n=0
  for _ in $(seq 60); do
    n=$(checksums)
    [ "$n" -ge "$1" ] && break
    sleep 0.5
  done
  echo "$n"
}

progress "the index through the daemon"
read -r code _ _ <<<"$(fetch dists/bench/main/binary-amd64/Packages)"
[ "$code" = 200 ] || { echo "fetching the Packages index through debcache gave status $code" >&2; exit 1; }
LOADED=$(await_checksums 1)
if [ "$LOADED" -lt 1 ]; then
  echo "warning: checksums not loaded: both runs are unverified" >&2
  note "checksums not loaded (debcache_index_checksums stayed 0 for 30 s): both runs are unverified"
fi

# ---------------------------------------------------------------------------
# The misses: RUNS rounds of known then unknown.
declare -A T CPU
SIZE=$(stat -c %s "$REPO/$POOL/known_1.0_all.deb")
for r in $(seq "$RUNS"); do
  progress "round $r of $RUNS: one ${BIG_MB} MB miss each, known and unknown"
  for f in known unknown; do
    origin=$REPO/$POOL/${f}_1.0_all.deb
    cached=$DIR/cache/bench/$POOL/${f}_1.0_all.deb
    rm -f "$cached" "$cached.head"
    settle "$origin"
    c0=$(cpu_ticks "$PID")
    read -r code bytes t <<<"$(fetch "$POOL/${f}_1.0_all.deb")"
    c1=$(cpu_ticks "$PID")
    [ "$code $bytes" = "200 $SIZE" ] || note "round $r, $f: got $bytes bytes with status $code, want 200 and $SIZE"
    T[$f]="${T[$f]:-} $t"
    CPU[$f]="${CPU[$f]:-} $(calc "($c1 - $c0) / $HZ")"
  done
  for f in known unknown; do
    cached=$DIR/cache/bench/$POOL/${f}_1.0_all.deb
    got=$(stat -c %s "$cached" 2>/dev/null || echo none)
    [ "$got" = "$SIZE" ] || note "round $r, $f: the cached copy has $got bytes, the origin's $SIZE"
    [ "$r" != 1 ] || [ "$got" != "$SIZE" ] || cmp -s "$cached" "$REPO/$POOL/${f}_1.0_all.deb" ||
      note "round $r, $f: the cached copy differs from the origin's file"
  done
done
for f in known unknown; do
  n=$(grep -c "^GET /$POOL/${f}_1.0_all.deb " "$WORK/origin.log" || true)
  [ "$n" = "$RUNS" ] || note "the origin was asked for $f $n times in $RUNS round(s)"
done
RSS=$(vmhwm "$PID")

# The canary: a file listed with a wrong digest must not be served whole
# nor kept. Last, as a mismatch makes the daemon avoid the origin a while.
if [ "$LOADED" -ge 1 ]; then
  progress "a file listed with a wrong digest"
  read -r code _ _ <<<"$(fetch dists/canary/main/binary-amd64/Packages)"
  [ "$code" = 200 ] || note "fetching the canary's Packages gave status $code"
  if [ "$(await_checksums $((LOADED + 1)))" -gt "$LOADED" ]; then
    canary=$POOL/canary_1.0_all.deb
    read -r code bytes _ <<<"$(fetch "$canary")"
    if [ "$code $bytes" = "200 4096" ] || [ -e "$DIR/cache/bench/$canary" ]; then
      CHECK="NOT in effect: a file listed with a wrong digest was served whole ($code, $bytes bytes) or kept"
    elif grep -q "$canary: not the file its index lists" "$DIR/stderr"; then
      CHECK="in effect (a file listed with a wrong digest got status $code and $bytes of its 4096 bytes, and was not kept)"
    else
      CHECK="unclear: a file listed with a wrong digest got status $code and $bytes bytes, but no mismatch was logged"
    fi
  else
    CHECK="not checked (the canary's index was not loaded within 30 s)"
  fi
else
  CHECK="not checked (no checksums loaded)"
fi
# What the canary made the daemon log is expected: not among its notes.
stop "$PID"
grep -v canary_1.0_all.deb "$DIR/stderr" > "$DIR/stderr.kept" || true
mv "$DIR/stderr.kept" "$DIR/stderr"
stop_cache debcache "$PID" "$DIR"

# ---------------------------------------------------------------------------
# spread VALUES: "median" with " (min–max)" when they differ, two decimals.
spread() {
  local v
  read -r -a v <<<"$1"
  printf '%s\n' "${v[@]}" | sort -g | awk '{v[NR] = $1} END {m = sprintf("%.2f", v[int((NR + 1) / 2)])
    lo = sprintf("%.2f", v[1]); hi = sprintf("%.2f", v[NR]); printf "%s", (lo == hi ? m : m " (" lo "-" hi ")")}'
}
med() { local v; read -r -a v <<<"$1"; median "${v[@]}"; }
tk=$(med "${T[known]}") tu=$(med "${T[unknown]}")
wall_ratio=$(ratio "$tk" "$tu")
echo "debcache $(git describe --always --dirty 2>/dev/null || echo '?'): one uncached ${BIG_MB} MB file, median of $RUNS round(s)$([ -n "${QUICK:-}" ] && echo ' (QUICK: a smoke test, not figures to quote)')"
echo "from a settled memory state$([ "$(id -u)" = 0 ] || echo ' (not root: page cache NOT dropped)'); daemon on CPU $SERVER_CPU, curl and origin on CPU $CLIENT_CPU"
echo "files in the checksum table before the misses: $LOADED (want 1: the known file)"
printf '%-24s %-20s %s\n' "" "wall s" "daemon CPU s"
printf '%-24s %-20s %s\n' "known (verified)" "$(spread "${T[known]}")" "$(spread "${CPU[known]}")"
printf '%-24s %-20s %s\n' "unknown (unverified)" "$(spread "${T[unknown]}")" "$(spread "${CPU[unknown]}")"
printf '%-24s %-20s %s\n' "verified / unverified" "$wall_ratio" "$(ratio "$(med "${CPU[known]}")" "$(med "${CPU[unknown]}")")"
if [ "$wall_ratio" != - ] && [ "$(calc "$wall_ratio <= 1.15")" = 1 ]; then met=met; else met="NOT met"; fi
[ "$LOADED" -ge 1 ] || met="not measured (nothing was verified)"
echo "target: verified <= 1.15x unverified in wall time: $met"
echo "peak RSS (VmHWM) of the daemon: $RSS MB"
echo "verification: $CHECK"
flush_notes || true
