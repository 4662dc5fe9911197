#!/usr/bin/env bash
# Downloading: debcache against nginx serving the same files directly (and
# apt-cacher-ng 3.7.4 when installed), with an nginx "origin" behind the
# caches (Remap-synth: /synth ; http://127.0.0.1:ORIGIN/debian).
#
#   benches/download.sh [seconds per wrk run, default 10; or DURATION=...]
#
#   1. cache hits: wrk at 1, 16 and 64 keep-alive connections on a ~2 KB
#      Release, a 100 KB and a 10 MB .deb, after one warming request each;
#   2. cold-miss coalescing: 32 curls request the same uncached 50 MB file at
#      once; origin requests, time to first byte of the first and last client;
#   3. one uncached 1 GB file: wall time and the cache's peak RSS (VmHWM);
#   4. cold `apt-get update && apt-get install --download-only` of 50 small
#      packages, against nginx and against an origin that answers each .deb
#      request 50 ms after it arrives (pipelined requests overlap, as over a
#      50 ms link), which shows whether a cache serialises pipelined misses.
#
# Every cache run in sections 2-4 starts on an empty cache directory. Servers
# (nginx, the slow origin, the caches) run pinned to CPU 0, clients (wrk,
# curl, apt-get) to CPU 1 (taskset), all on loopback. Needs: nginx, wrk, curl,
# python3, dpkg-deb, apt-ftparchive (apt-utils), apt-get, bc; apt-cacher-ng
# optional. Disk: about 3 GB in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-${DURATION:-10}}
APT_RUNS=${APT_RUNS:-3}        # cold apt runs per server; the median is shown
CLIENTS=${CLIENTS:-32}         # section 2
DELAY_MS=${DELAY_MS:-50}       # section 4, slow origin
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for tool in nginx wrk curl taskset python3 dpkg-deb apt-ftparchive apt-get bc; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install nginx wrk curl python3 dpkg apt-utils bc)" >&2; exit 1; }
done
HAVE_ACNG=""
command -v apt-cacher-ng >/dev/null && HAVE_ACNG=1

# shellcheck source=benches/common.sh
source benches/common.sh  # the working directory is the repository
BIN=$(debcache_bin)
scratch

# ---------------------------------------------------------------------------
# The origin's files: a synthetic repository (50 packages built with dpkg-deb,
# deterministic content, no dependencies) and a few large blobs.
ORIGIN=$WORK/origin
REPO=$ORIGIN/debian
make_repo "$REPO" 50
mkdir -p "$REPO/pool/main/b/blobs"
head -c 102400 /dev/urandom > "$REPO/pool/main/b/blobs/f100k.deb"
head -c 10485760 /dev/urandom > "$REPO/pool/main/b/blobs/f10m.deb"
head -c 52428800 /dev/urandom > "$REPO/pool/main/b/blobs/f50m.deb"
head -c 1073741824 /dev/urandom > "$REPO/pool/main/b/blobs/f1g.deb"
chmod -R a+rX "$ORIGIN"

# nginx: port ORIGIN_PORT is the caches' origin (access log on: it counts the
# caches' requests), DIRECT_PORT serves the same files to the clients for the
# baselines, without logging. One worker, pinned like the caches.
ORIGIN_PORT=$(free_port)
DIRECT_PORT=$(free_port)
while [ "$DIRECT_PORT" = "$ORIGIN_PORT" ]; do DIRECT_PORT=$(free_port); done
start_nginx "  log_format origin '\$request_method \$uri \$status \$body_bytes_sent';
  sendfile on; tcp_nodelay on;  # tcp_nopush would cap one connection at ~2500 x 100 KB/s
  server { listen 127.0.0.1:$ORIGIN_PORT; root $ORIGIN; access_log $WORK/nginx/access.log origin; }
  server { listen 127.0.0.1:$DIRECT_PORT; root $ORIGIN; access_log off; }"
wait_port "$ORIGIN_PORT" "$NGINX_PID" "$WORK/nginx/stderr" nginx
wait_port "$DIRECT_PORT" "$NGINX_PID" "$WORK/nginx/stderr" nginx
ACCESS_LOG=$WORK/nginx/access.log

# The slow origin (section 4): answers each .deb request DELAY_MS late.
SLOW_PORT=$(free_port)
taskset -c "$SERVER_CPU" python3 benches/slow_origin.py "$SLOW_PORT" "$ORIGIN" "$DELAY_MS" "$WORK/slow.log" \
  2>"$WORK/slow.stderr" &
PIDS+=($!)
wait_port "$SLOW_PORT" "$!" "$WORK/slow.stderr" "slow origin"
touch "$WORK/slow.log"

# ---------------------------------------------------------------------------
# Caches: start_cache and stop_cache (common.sh).
: > "$WORK/notes"
CACHES=(debcache)
[ -n "$HAVE_ACNG" ] && CACHES+=(apt-cacher-ng)
ORIGIN_URL=http://127.0.0.1:$ORIGIN_PORT/debian
SLOW_URL=http://127.0.0.1:$SLOW_PORT/debian
DIRECT_URL=http://127.0.0.1:$DIRECT_PORT/debian
log_lines() { wc -l < "$1"; }
# origin_since LOG LINE [PATH]: "requests MB" logged after line LINE (for PATH).
origin_since() {
  tail -n +"$(($2 + 1))" "$1" |
    awk -v p="${3:-}" 'p == "" || $2 ~ p {n++; b += $4} END {printf "%d %.1f\n", n, b / 1048576}'
}
# check_copy KIND URL FILE: fetches URL again (a hit by now), compares with FILE.
check_copy() {
  curl -fsS "$2" 2>/dev/null | cmp -s - "$3" || note "$1: a second fetch of $(basename "$3") differs from the origin's file"
}
# No proxy from the environment for curl and apt.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY ftp_proxy FTP_PROXY

printf 'debcache %s, nginx %s, apt-cacher-ng %s; %s CPUs, servers on CPU %s, clients on CPU %s\n' \
  "$(git describe --always --dirty 2>/dev/null || echo '?')" \
  "$(nginx -v 2>&1 | sed 's|.*/||')" \
  "$([ -n "$HAVE_ACNG" ] && dpkg-query -W -f '${Version}' apt-cacher-ng 2>/dev/null || echo absent)" \
  "$(nproc)" "$SERVER_CPU" "$CLIENT_CPU"

# ---------------------------------------------------------------------------
echo
echo "== 1. Cache hits: wrk -t1, ${DURATION} s per run, keep-alive; x nginx: requests/s ratio =="
HIT_FILES=(dists/synth/Release pool/main/b/blobs/f100k.deb pool/main/b/blobs/f10m.deb)
declare -A HIT_PORT HIT_PID HIT_DIR HIT_ORIGIN
for c in "${CACHES[@]}"; do
  start_cache "$c" "$ORIGIN_URL"
  HIT_PORT[$c]=$CACHE_PORT HIT_PID[$c]=$CACHE_PID HIT_DIR[$c]=$CACHE_DIR HIT_ORIGIN[$c]=0
  for f in "${HIT_FILES[@]}"; do  # warm: one request per file
    got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$CACHE_PORT/synth/$f" || true)
    want="200 $(stat -c %s "$REPO/$f")"
    [ "$got" = "$want" ] || note "$c: warming $f gave status and size '$got', want '$want'"
  done
done

# Prints "requests/s MB/s errors" for one wrk run (errors: non-2xx responses
# and socket errors, spelled out when there are any).
run() {
  local out rps mbs errs
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$1" -d"${DURATION}s" --timeout 30s "$2")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  mbs=$(awk '/^Transfer\/sec:/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else if (v ~ /MB/) {sub("MB","",v)} else {sub("B","",v); v/=1048576}; print v}' <<<"$out")
  errs=$(awk '/requests in/ {n = $1} /Non-2xx/ {e = $NF " of " n " responses not 2xx"}
    /Socket errors/ {s = $0; sub(/^ *Socket errors: /, "", s); if (s != "connect 0, read 0, write 0, timeout 0") e = e (e ? "; " : "") "socket errors: " s}
    END {print e}' <<<"$out")
  echo "${rps:-0} ${mbs:-0} ${errs}"
}
hdr=$(printf '%-8s %5s %10s %8s' file conns "nginx r/s" "MB/s")
for c in "${CACHES[@]}"; do hdr+=$(printf ' | %17s %8s %7s' "$c r/s" "MB/s" "x nginx"); done
echo "$hdr"
for f in "${HIT_FILES[@]}"; do
  name=$(basename "$f"); name=${name%.deb}
  for conns in 1 16 64; do
    read -r n_rps n_mbs errs <<<"$(run "$conns" "$DIRECT_URL/$f")"
    [ -z "$errs" ] || note "nginx, $name at $conns connections: $errs"
    line=$(printf '%-8s %5s %10.0f %8.1f' "$name" "$conns" "$n_rps" "$n_mbs")
    for c in "${CACHES[@]}"; do
      before=$(log_lines "$ACCESS_LOG")
      read -r rps mbs errs <<<"$(run "$conns" "http://127.0.0.1:${HIT_PORT[$c]}/synth/$f")"
      read -r reqs _ <<<"$(origin_since "$ACCESS_LOG" "$before")"
      HIT_ORIGIN[$c]=$((${HIT_ORIGIN[$c]} + reqs))
      mark=" "
      [ -z "$errs" ] || { note "$c, $name at $conns connections: $errs"; mark="*"; }
      line+=$(printf ' | %17.0f %8.1f %6s%s' "$rps" "$mbs" "$(ratio "$rps" "$n_rps")" "$mark")
    done
    echo "$line"
  done
done
for c in "${CACHES[@]}"; do
  note "$c: ${HIT_ORIGIN[$c]} origin requests during its wrk runs, peak RSS $(vmhwm "${HIT_PID[$c]}") MB"
  stop_cache "$c" "${HIT_PID[$c]}" "${HIT_DIR[$c]}"
done
flush_notes

# ---------------------------------------------------------------------------
echo
echo "== 2. Cold-miss coalescing: $CLIENTS curls at once on the same uncached 50 MB file =="
F50=pool/main/b/blobs/f50m.deb
# swarm URL: prints "ttfb_first ttfb_last wall failed" for CLIENTS curls at once.
swarm() {
  local out=$WORK/swarm t0 t1 i
  rm -rf "$out"; mkdir -p "$out"
  t0=$(now)
  for i in $(seq "$CLIENTS"); do
    taskset -c "$CLIENT_CPU" curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_starttransfer}\n' \
      "$1" > "$out/$i" &
  done
  wait  # in a subshell: its only children are the curls
  t1=$(now)
  cat "$out"/* | awk -v want="$(stat -c %s "$REPO/$F50")" -v wall="$(calc "$t1 - $t0")" '
    { if ($1 != 200 || $2 != want) bad++; if (min == "" || $3 < min) min = $3; if ($3 > max) max = $3 }
    END { printf "%.3f %.3f %.3f %d\n", min, max, wall, bad + 0 }'
}
printf '%-14s %11s %10s %11s %10s %8s %8s %7s\n' \
  server "origin reqs" "origin MB" "TTFB first" "TTFB last" "wall s" "x nginx" failed
read -r ff fl nw bad <<<"$(swarm "$DIRECT_URL/$F50")"
printf '%-14s %11s %10s %11.3f %10.3f %8.3f %8s %7s\n' nginx - - "$ff" "$fl" "$nw" 1.00 "$bad"
for c in "${CACHES[@]}"; do
  start_cache "$c" "$ORIGIN_URL"
  before=$(log_lines "$ACCESS_LOG")
  read -r ff fl w bad <<<"$(swarm "http://127.0.0.1:$CACHE_PORT/synth/$F50")"
  read -r reqs mb <<<"$(origin_since "$ACCESS_LOG" "$before" f50m)"
  printf '%-14s %11s %10s %11.3f %10.3f %8.3f %8s %7s\n' "$c" "$reqs" "$mb" "$ff" "$fl" "$w" "$(ratio "$w" "$nw")" "$bad"
  check_copy "$c" "http://127.0.0.1:$CACHE_PORT/synth/$F50" "$REPO/$F50"
  stop_cache "$c" "$CACHE_PID" "$CACHE_DIR"
done
note "failed: clients with a status other than 200 or a wrong size"
flush_notes

# ---------------------------------------------------------------------------
echo
echo "== 3. One uncached 1 GB file: curl -o /dev/null, cold =="
F1G=pool/main/b/blobs/f1g.deb
SIZE_1G=$(stat -c %s "$REPO/$F1G")
get_1g() {  # prints "seconds bytes status"
  taskset -c "$CLIENT_CPU" curl -s -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' "$1" || true
}
printf '%-14s %8s %8s %8s %11s %9s %13s %13s\n' \
  server "wall s" "x nginx" "MB/s" "origin reqs" "origin MB" "VmHWM before" "VmHWM after"
cat "$REPO/$F1G" > /dev/null  # in the page cache for everyone
read -r nt nb ncode <<<"$(get_1g "$DIRECT_URL/$F1G")"
printf '%-14s %8.2f %8s %8.0f %11s %9s %13s %13s\n' nginx "$nt" 1.00 "$(calc "$nb / 1048576 / $nt")" - - - -
[ "$nb $ncode" = "$SIZE_1G 200" ] || note "nginx: got $nb bytes with status $ncode"
# What storing the file costs on this machine: curl saving it next to the
# cache directory, pinned with the servers (a cache does this work there).
STORE_AT=$WORK/stored.deb
read -r st sb scode <<<"$(taskset -c "$SERVER_CPU" curl -s -o "$STORE_AT" \
  -w '%{time_total} %{size_download} %{http_code}\n' "$DIRECT_URL/$F1G" || true)"
rm -f "$STORE_AT"
[ "$sb $scode" = "$SIZE_1G 200" ] || note "curl -o file: got $sb bytes with status $scode"
printf '%-14s %8.2f %8s %8.0f %11s %9s %13s %13s
' "curl -o file" "$st" "$(ratio "$st" "$nt")" \
  "$(calc "$sb / 1048576 / $st")" - - - -
note "curl -o file: the same download saved to disk by curl on the servers' CPU: the floor for any cache"
for c in "${CACHES[@]}"; do
  start_cache "$c" "$ORIGIN_URL"
  before=$(log_lines "$ACCESS_LOG")
  rss0=$(vmhwm "$CACHE_PID")
  read -r t b code <<<"$(get_1g "http://127.0.0.1:$CACHE_PORT/synth/$F1G")"
  rss1=$(vmhwm "$CACHE_PID")
  read -r reqs mb <<<"$(origin_since "$ACCESS_LOG" "$before" f1g)"
  printf '%-14s %8.2f %8s %8.0f %11s %9s %13s %13s\n' "$c" "$t" "$(ratio "$t" "$nt")" \
    "$(calc "$b / 1048576 / $t")" "$reqs" "$mb" "$rss0 MB" "$rss1 MB"
  [ "$b $code" = "$SIZE_1G 200" ] || note "$c: got $b bytes with status $code"
  check_copy "$c" "http://127.0.0.1:$CACHE_PORT/synth/$F1G" "$REPO/$F1G"
  stop_cache "$c" "$CACHE_PID" "$CACHE_DIR"
  rm -rf "$CACHE_DIR/cache"
done
note "VmHWM: the cache process's peak resident memory, before and after the download"
flush_notes

# ---------------------------------------------------------------------------
echo
printf '== 4. Cold apt-get update && apt-get install --download-only, %d packages (%.1f MB), median of %d ==\n' \
  "${#PKGS[@]}" "$(calc "$PKG_BYTES / 1048576")" "$APT_RUNS"
# apt_cache KIND ORIGIN_URL LOG: APT_RUNS runs, each on a fresh cache; sets
# T (median seconds) and REQS (origin requests of each run).
apt_cache() {
  local times=() i before reqs
  REQS=""
  for i in $(seq "$APT_RUNS"); do
    start_cache "$1" "$2"
    before=$(log_lines "$3")
    times+=("$(apt_run "http://127.0.0.1:$CACHE_PORT/synth")")
    read -r reqs _ <<<"$(origin_since "$3" "$before")"
    REQS+="${REQS:+/}$reqs"
    stop_cache "$1" "$CACHE_PID" "$CACHE_DIR"
    rm -rf "$CACHE_DIR"
  done
  T=$(median "${times[@]}")
}
hdr=$(printf '%-22s %9s' origin "direct s")
for c in "${CACHES[@]}"; do hdr+=$(printf ' | %17s %8s %11s' "$c s" "x direct" "origin reqs"); done
echo "$hdr"
for variant in nginx slow; do
  if [ "$variant" = nginx ]; then
    label=nginx direct=$DIRECT_URL via=$ORIGIN_URL log=$ACCESS_LOG
  else
    label="+${DELAY_MS} ms per .deb" direct=$SLOW_URL via=$SLOW_URL log=$WORK/slow.log
  fi
  times=()
  for i in $(seq "$APT_RUNS"); do times+=("$(apt_run "$direct")"); done
  dt=$(median "${times[@]}")
  line=$(printf '%-22s %9.2f' "$label" "$dt")
  for c in "${CACHES[@]}"; do
    apt_cache "$c" "$via" "$log"
    line+=$(printf ' | %17.2f %8s %11s' "$T" "$(ratio "$T" "$dt")" "$REQS")
  done
  echo "$line"
done
note "+${DELAY_MS} ms per .deb: the python origin answers each .deb request ${DELAY_MS} ms after it arrived;" \
  "serialising the ${#PKGS[@]} misses costs about $(printf %.1f "$(calc "${#PKGS[@]} * $DELAY_MS / 1000")") s"
note "origin reqs, per run: a cold run needs $(( ${#PKGS[@]} + 5 )) (InRelease, Release.gpg: 404; Release;" \
  "2 Packages.gz; the .debs)"
flush_notes
