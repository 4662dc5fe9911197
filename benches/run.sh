#!/usr/bin/env bash
# The published benchmark (issue 11, item 5): the whole set in one run, as a
# Markdown table of medians with their spread, side by side with nginx
# serving the files directly, nginx as a caching proxy (proxy_cache with
# proxy_cache_lock), curl storing the file (the floor for a miss) and
# apt-cacher-ng.
#
#   sudo benches/run.sh [-o FILE]     # the table to stdout and FILE (benches/results/latest.md)
#   QUICK=1 sudo benches/run.sh       # a smoke test of every part: tiny sizes, 1 s runs
#
#   a. hits: wrk, DURATION s per run at 1, 16 and 64 connections on a 2 KB,
#      a 100 KB and a 10 MB file: requests/s, the server's CPU time (utime +
#      stime of its process and children, /proc/PID/stat) per request;
#   b. coalescing: CLIENTS curls start together on one uncached COAL_MB file:
#      origin requests, first-byte spread (the last client's first byte minus
#      the first one's), time until the last client is done;
#   c. one uncached BIG_MB file from a settled memory state (before each run:
#      sync, drop_caches, the origin's file read back in; this VM charges the
#      first touch of guest memory heavily, and unsettled figures swing 3-6x):
#      time, CPU, peak RSS (VmHWM);
#   d. `apt-get update && apt-get install --download-only` of N_PKGS packages,
#      cold (empty cache) and warm (the same cache, a fresh apt state),
#      against nginx and against an origin answering each .deb DELAY_MS late.
#
# Every cache run starts on an empty cache directory with a fresh process.
# Servers (nginx static, the caches, curl storing the file) run pinned to
# CPU SERVER_CPU (0); clients (wrk, curl, apt-get) and the origins to
# CLIENT_CPU (1); all on 127.0.0.1. Knobs (environment): RUNS (3; QUICK: 1),
# DURATION (5; QUICK: 1), CLIENTS (32), COAL_MB (100; QUICK: 10), BIG_MB
# (1024; QUICK: 64), N_PKGS (50; QUICK: 10), DELAY_MS (50), SECTIONS (abcd:
# which parts), DEBCACHE (a binary to measure instead of building this
# checkout). Root is needed to drop the page cache (c) and runs apt-get with
# APT::Sandbox::User root. Needs: nginx, wrk, curl, python3, dpkg-deb,
# apt-ftparchive (apt-utils), apt-get, bc, GNU time; apt-cacher-ng optional.
# Disk: about BIG_MB x 3 in $TMPDIR. A full run takes about 12 minutes, QUICK=1 one.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=benches/results/latest.md
while [ $# -gt 0 ]; do
  case $1 in
    -o|--out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [-o FILE] (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "${QUICK:-}" ]; then
  RUNS=${RUNS:-1} DURATION=${DURATION:-1} COAL_MB=${COAL_MB:-10} BIG_MB=${BIG_MB:-64} N_PKGS=${N_PKGS:-10}
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-32}
COAL_MB=${COAL_MB:-100}
BIG_MB=${BIG_MB:-1024}
N_PKGS=${N_PKGS:-50}
DELAY_MS=${DELAY_MS:-50}
SECTIONS=${SECTIONS:-abcd}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for tool in nginx wrk curl taskset python3 dpkg-deb apt-ftparchive apt-get bc /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install nginx wrk curl python3 dpkg apt-utils bc time)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || echo "not root: the page cache is not dropped before the large misses (c)" >&2
SERVERS=(nginx debcache)  # the caches; nginx here is proxy_cache
command -v apt-cacher-ng >/dev/null && SERVERS+=(apt-cacher-ng)
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# shellcheck source=benches/common.sh
source benches/common.sh  # the working directory is the repository
BIN=$(debcache_bin)
scratch
: > "$WORK/notes"
STARTED=$(date +%s)
HZ=$(getconf CLK_TCK)
progress() { echo "[$(date +%T)] $*" >&2; }
label() { case $1 in nginx) echo "nginx proxy_cache" ;; static) echo "nginx static" ;; *) echo "$1" ;; esac; }
labels() { local s; for s in "$@"; do label "$s"; done | paste -sd, | sed 's/,/, /g'; }
has() { [[ $SECTIONS == *$1* ]]; }

# ---------------------------------------------------------------------------
# Results: R[key] holds one value per run; cell prints "median (min–max)".
declare -A R
add() { R[$1]="${R[$1]:-} $2"; }
# cell KEY [PRINTF FORMAT]: the runs' median, with min–max when they differ.
cell() {
  [ -n "${R[$1]:-}" ] || { printf -- '-'; return; }
  # shellcheck disable=SC2086  # the values are words
  printf '%s\n' ${R[$1]} | sort -g | awk -v f="${2:-%.0f}" '
    {v[NR] = $1} END {m = sprintf(f, v[int((NR + 1) / 2)]); lo = sprintf(f, v[1]); hi = sprintf(f, v[NR])
      printf "%s", (lo == hi ? m : m " (" lo "–" hi ")")}'
}
med() { [ -n "${R[$1]:-}" ] || return 0; local v; read -r -a v <<<"${R[$1]}"; median "${v[@]}"; }
# runs KEY: every run's value (counts), once when they are all the same.
runs() {
  [ -n "${R[$1]:-}" ] || { printf -- '-'; return; }
  # shellcheck disable=SC2086  # the values are words
  printf '%s\n' ${R[$1]} | awk '{v[NR] = $1; if ($1 != v[1]) d = 1} END {
    if (!d) {printf "%s", v[1]; exit} for (i = 1; i <= NR; i++) printf "%s%s", (i > 1 ? ", " : ""), v[i]}'
}
REPORT=$WORK/report.md
md() { printf '%s\n' "$*" >> "$REPORT"; }
md_notes() { [ -s "$WORK/notes" ] && { md; sed 's/^/- /' "$WORK/notes" >> "$REPORT"; }; : > "$WORK/notes"; }

# ---------------------------------------------------------------------------
# The origin's files: the repository and the blobs.
progress "building the origin's files"
ORIGIN=$WORK/origin
REPO=$ORIGIN/debian
make_repo "$REPO" "$N_PKGS"
BLOBS=pool/main/b/blobs
mkdir -p "$REPO/$BLOBS"
head -c 2048 /dev/urandom > "$REPO/$BLOBS/f2k.deb"
head -c 102400 /dev/urandom > "$REPO/$BLOBS/f100k.deb"
head -c 10485760 /dev/urandom > "$REPO/$BLOBS/f10m.deb"
has b && head -c $((COAL_MB << 20)) /dev/urandom > "$REPO/$BLOBS/coal.deb"
has c && head -c $((BIG_MB << 20)) /dev/urandom > "$REPO/$BLOBS/big.deb"
chmod -R a+rX "$ORIGIN"

# The origin (access log on: it counts the caches' requests), on the
# clients' CPU like a remote mirror; nginx serving the same files directly,
# pinned like the caches.
ORIGIN_PORT=$(free_port)
SERVER_CPU=$CLIENT_CPU start_nginx "  log_format origin '\$request_method \$uri \$status \$body_bytes_sent';
  sendfile on; tcp_nodelay on;
  server { listen 127.0.0.1:$ORIGIN_PORT; root $ORIGIN; access_log $WORK/origin.log origin; }" "$WORK/origin-nginx"
wait_port "$ORIGIN_PORT" "$NGINX_PID" "$WORK/origin-nginx/stderr" "origin nginx"
STATIC_PORT=$(free_port)
start_nginx "  access_log off;
  sendfile on; tcp_nodelay on;  # tcp_nopush would cap one connection at ~2500 x 100 KB/s
  server { listen 127.0.0.1:$STATIC_PORT; root $ORIGIN; }" "$WORK/static"
STATIC_PID=$NGINX_PID
wait_port "$STATIC_PORT" "$STATIC_PID" "$WORK/static/stderr" "static nginx"
SLOW_PORT=$(free_port)
taskset -c "$CLIENT_CPU" python3 benches/slow_origin.py "$SLOW_PORT" "$ORIGIN" "$DELAY_MS" "$WORK/slow.log" \
  2>"$WORK/slow.stderr" &
PIDS+=($!)
wait_port "$SLOW_PORT" "$!" "$WORK/slow.stderr" "slow origin"
touch "$WORK/origin.log" "$WORK/slow.log"
ORIGIN_URL=http://127.0.0.1:$ORIGIN_PORT/debian
STATIC_URL=http://127.0.0.1:$STATIC_PORT/debian
lines() { wc -l < "$1"; }
# origin_since LOG LINE [PATH]: requests logged after line LINE (for PATH).
origin_since() { tail -n +"$(($2 + 1))" "$1" | awk -v p="${3:-}" 'p == "" || $2 ~ p {n++} END {print n + 0}'; }
# check_copy NAME URL FILE: URL (a hit by now) has FILE's bytes.
check_copy() {
  curl -fsS "$2" 2>/dev/null | cmp -s - "$3" || note "$1: a second fetch of $(basename "$3") differs from the origin's file"
}

# ---------------------------------------------------------------------------
md "# debcache benchmarks"
md
md "$(date -u '+%Y-%m-%d %H:%M UTC')$([ -n "${QUICK:-}" ] && echo ', **QUICK run** (tiny sizes and durations: a smoke test, not figures to quote)');" \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, Linux $(uname -r);" \
  "servers on CPU $SERVER_CPU, clients and origins on CPU $CLIENT_CPU."
md "debcache $(git describe --always --dirty 2>/dev/null || echo '?'), nginx $(nginx -v 2>&1 | sed 's|.*/||')," \
  "apt-cacher-ng $(dpkg-query -W -f '${Version}' apt-cacher-ng 2>/dev/null || echo absent)." \
  "Each figure: the median of $RUNS run(s), (min–max) when they differ."

# ---------------------------------------------------------------------------
# a. Hits.
# wrk_run CONNS URL PID: "requests/s CPU-µs-per-request core-µs-per-request
# errors" of one run, the CPU that of PID and its children, the core's all
# that CPU $SERVER_CPU did.
wrk_run() {
  local out t0 t1 c0 c1 reqs rps errs
  t0=$(cpu_ticks "$3") c0=$(core_ticks)
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$1" -d"${DURATION}s" --timeout 30s "$2")
  t1=$(cpu_ticks "$3") c1=$(core_ticks)
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {e = $NF " responses not 2xx"}
    /Socket errors/ {s = $0; sub(/^ *Socket errors: /, "", s); if (s != "connect 0, read 0, write 0, timeout 0") e = e (e ? "; " : "") "socket errors: " s}
    END {print e}' <<<"$out")
  echo "${rps:-0} $(calc "($t1 - $t0) * 1000000 / $HZ / ${reqs:-1}") $(calc "($c1 - $c0) * 1000000 / $HZ / ${reqs:-1}") ${errs}"
}
if has a; then
  HIT_FILES=(f2k f100k f10m)
  declare -A PORT PID DIR
  PORT[static]=$STATIC_PORT PID[static]=$STATIC_PID
  for s in "${SERVERS[@]}"; do
    start_cache "$s" "$ORIGIN_URL"
    PORT[$s]=$CACHE_PORT PID[$s]=$CACHE_PID DIR[$s]=$CACHE_DIR
    for f in "${HIT_FILES[@]}"; do  # warm: one request per file
      got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$CACHE_PORT/synth/$BLOBS/$f.deb" || true)
      want="200 $(stat -c %s "$REPO/$BLOBS/$f.deb")"
      [ "$got" = "$want" ] || note "$(label "$s"): warming $f gave status and size '$got', want '$want'"
    done
  done
  before=$(lines "$WORK/origin.log")
  for f in "${HIT_FILES[@]}"; do
    for c in 1 16 64; do
      progress "a. hits: $f at $c connections, $RUNS x ${DURATION} s each: $(labels static "${SERVERS[@]}")"
      for _ in $(seq "$RUNS"); do
        for s in static "${SERVERS[@]}"; do
          if [ "$s" = static ]; then url=$STATIC_URL/$BLOBS/$f.deb; else url=http://127.0.0.1:${PORT[$s]}/synth/$BLOBS/$f.deb; fi
          read -r rps us core errs <<<"$(wrk_run "$c" "$url" "${PID[$s]}")"
          add "a|$s|$f|$c|rps" "$rps"
          add "a|$s|$f|$c|us" "$us"
          add "a|$s|$f|$c|core" "$core"
          [ -z "$errs" ] || note "$(label "$s"), $f at $c connections: $errs"
        done
      done
    done
  done
  reqs=$(origin_since "$WORK/origin.log" "$before")
  [ "$reqs" = 0 ] || note "the origin saw $reqs requests during the hit runs (the caches were warmed before)"
  for s in "${SERVERS[@]}"; do stop_cache "$s" "${PID[$s]}" "${DIR[$s]}"; done

  md
  md "## a. Cache hits"
  md
  md "wrk -t1, ${DURATION} s per run, keep-alive connections. r/s: requests per second; ×: r/s against nginx" \
    "serving the file directly; µs/req: the server's CPU time (user + system) per request; core µs:" \
    "all that the server's core did per request (the process, interrupts, softirq: on loopback the" \
    "client's TCP receive work runs on whichever core sent the packet, so the two measures bracket the cost)."
  md
  hdr="| file | conns | nginx static r/s | µs/req | core µs |"
  sep="|---|---:|---:|---:|---:|"
  for s in "${SERVERS[@]}"; do hdr+=" $(label "$s") r/s | × | µs/req | core µs |"; sep+="---:|---:|---:|---:|"; done
  md "$hdr"; md "$sep"
  for f in "${HIT_FILES[@]}"; do
    for c in 1 16 64; do
      line="| ${f#f} | $c | $(cell "a|static|$f|$c|rps") | $(cell "a|static|$f|$c|us" %.1f) | $(cell "a|static|$f|$c|core" %.0f) |"
      for s in "${SERVERS[@]}"; do
        line+=" $(cell "a|$s|$f|$c|rps") | $(ratio "$(med "a|$s|$f|$c|rps")" "$(med "a|static|$f|$c|rps")") | $(cell "a|$s|$f|$c|us" %.1f) | $(cell "a|$s|$f|$c|core" %.0f) |"
      done
      md "$line"
    done
  done
  md_notes
fi

# ---------------------------------------------------------------------------
# b. Coalescing.
# swarm URL: CLIENTS transfers of URL at once, from one curl (--parallel:
# every connection opened at the same moment, no process start-up between
# them); prints "first-byte-spread total failed".
swarm() {
  local args=() t0 t1
  for _ in $(seq "$CLIENTS"); do args+=(-o /dev/null "$1"); done
  t0=$(now)
  taskset -c "$CLIENT_CPU" curl -s --parallel --parallel-immediate --parallel-max "$CLIENTS" \
    -w '%{time_starttransfer} %{http_code} %{size_download}\n' "${args[@]}" > "$WORK/swarm" 2>/dev/null || true  # -s leaves --parallel's meter on
  t1=$(now)
  awk -v want="$(stat -c %s "$REPO/$BLOBS/coal.deb")" -v total="$(calc "$t1 - $t0")" '
    { if ($2 != 200 || $3 != want) bad++
      if (NR == 1 || $1 < fmin) fmin = $1
      if (NR == 1 || $1 > fmax) fmax = $1 }
    END { printf "%.3f %.3f %d\n", fmax - fmin, total, bad + 0 + ('"$CLIENTS"' - NR) }' "$WORK/swarm"
}
if has b; then
  progress "b. coalescing: $CLIENTS clients on one ${COAL_MB} MB file, $RUNS run(s) each: $(labels static "${SERVERS[@]}")"
  COAL=$REPO/$BLOBS/coal.deb
  for r in $(seq "$RUNS"); do
    cat "$COAL" > /dev/null
    read -r spread total bad <<<"$(swarm "$STATIC_URL/$BLOBS/coal.deb")"
    add "b|static|spread" "$spread"; add "b|static|total" "$total"; add "b|static|bad" "$bad"
    for s in "${SERVERS[@]}"; do
      start_cache "$s" "$ORIGIN_URL"
      before=$(lines "$WORK/origin.log")
      read -r spread total bad <<<"$(swarm "http://127.0.0.1:$CACHE_PORT/synth/$BLOBS/coal.deb")"
      [ "$r" != 1 ] || check_copy "$(label "$s")" "http://127.0.0.1:$CACHE_PORT/synth/$BLOBS/coal.deb" "$COAL"
      stop_cache "$s" "$CACHE_PID" "$CACHE_DIR"  # then the origin has logged every request
      add "b|$s|reqs" "$(origin_since "$WORK/origin.log" "$before" coal.deb)"
      add "b|$s|spread" "$spread"; add "b|$s|total" "$total"; add "b|$s|bad" "$bad"
      rm -rf "$CACHE_DIR"
    done
  done
  md
  md "## b. $CLIENTS clients at once on one uncached ${COAL_MB} MB file"
  md
  md "All clients start together (one curl --parallel, -o /dev/null) on an empty cache. Origin requests: per run;" \
    "first-byte spread: the last client's first byte minus the first client's; total: until the last" \
    "client has the whole file; failed: clients with a status other than 200 or a wrong size, per run."
  md
  md "| server | origin requests | first-byte spread s | total s | × static | failed |"
  md "|---|---:|---:|---:|---:|---:|"
  for s in static "${SERVERS[@]}"; do
    md "| $(label "$s") | $(runs "b|$s|reqs") | $(cell "b|$s|spread" %.3f) | $(cell "b|$s|total" %.2f) |" \
      "$(ratio "$(med "b|$s|total")" "$(med "b|static|total")") | $(runs "b|$s|bad") |"
  done
  md_notes
fi

# ---------------------------------------------------------------------------
# c. A large miss from a settled memory state.
if has c; then
  progress "c. one ${BIG_MB} MB miss, $RUNS run(s) each: curl -o, $(labels "${SERVERS[@]}")"
  BIG=$REPO/$BLOBS/big.deb
  SIZE=$(stat -c %s "$BIG")
  for r in $(seq "$RUNS"); do
    # The floor: curl storing the file, pinned like the caches.
    settle "$BIG"
    read -r t b code cu cs rss <<<"$(/usr/bin/time -f '%U %S %M' -o "$WORK/time" \
      taskset -c "$SERVER_CPU" curl -s -o "$WORK/stored" -w '%{time_total} %{size_download} %{http_code}' \
      "$ORIGIN_URL/$BLOBS/big.deb" || true; echo " $(cat "$WORK/time")")"
    [ "$b $code" = "$SIZE 200" ] || note "curl -o: got $b bytes with status $code"
    rm -f "$WORK/stored"
    add "c|curl|t" "$t"; add "c|curl|cpu" "$(calc "$cu + $cs")"; add "c|curl|rss" "$(calc "$rss / 1024")"
    for s in "${SERVERS[@]}"; do
      start_cache "$s" "$ORIGIN_URL"
      before=$(lines "$WORK/origin.log")
      settle "$BIG"
      t0=$(cpu_ticks "$CACHE_PID")
      read -r t b code <<<"$(taskset -c "$CLIENT_CPU" curl -s -o /dev/null -w '%{time_total} %{size_download} %{http_code}' \
        "http://127.0.0.1:$CACHE_PORT/synth/$BLOBS/big.deb" || true)"
      t1=$(cpu_ticks "$CACHE_PID")
      add "c|$s|rss" "$(vmhwm "$CACHE_PID")"
      [ "$b $code" = "$SIZE 200" ] || note "$(label "$s"): got $b bytes with status $code"
      [ "$r" != 1 ] || check_copy "$(label "$s")" "http://127.0.0.1:$CACHE_PORT/synth/$BLOBS/big.deb" "$BIG"
      stop_cache "$s" "$CACHE_PID" "$CACHE_DIR"
      add "c|$s|t" "$t"; add "c|$s|cpu" "$(calc "($t1 - $t0) / $HZ")"
      add "c|$s|reqs" "$(origin_since "$WORK/origin.log" "$before" big.deb)"
      rm -rf "$CACHE_DIR"
    done
  done
  md
  md "## c. One uncached ${BIG_MB} MB file"
  md
  md "Before each run: sync, drop_caches, the origin's file read back in. The server on CPU $SERVER_CPU;" \
    "the client (curl -o /dev/null) and the origin on CPU $CLIENT_CPU. curl -o: curl storing the file" \
    "itself on CPU $SERVER_CPU, the floor for any cache's miss. CPU: the server's user + system time;" \
    "peak RSS: VmHWM (of curl, for curl -o)."
  md
  md "| server | time s | × curl -o | MB/s | CPU s | peak RSS MB | origin requests |"
  md "|---|---:|---:|---:|---:|---:|---:|"
  for s in curl "${SERVERS[@]}"; do
    t=$(med "c|$s|t")
    if [ "$s" = curl ]; then name="curl -o (floor)"; else name=$(label "$s"); fi
    md "| $name | $(cell "c|$s|t" %.2f) |" \
      "$(ratio "$t" "$(med "c|curl|t")") | $(printf '%.0f' "$(calc "$BIG_MB / $t")") |" \
      "$(cell "c|$s|cpu" %.2f) | $(cell "c|$s|rss" %.1f) | $(runs "c|$s|reqs") |"
  done
  md_notes
fi

# ---------------------------------------------------------------------------
# d. apt-get.
if has d; then
  md
  md "## d. apt-get update && apt-get install --download-only, $N_PKGS packages ($(printf %.1f "$(calc "$PKG_BYTES / 1048576")") MB)"
  md
  md "Cold: an empty cache; warm: the same cache again, with a fresh apt state. Direct: apt against the" \
    "origin itself. +${DELAY_MS} ms: the origin answers each .deb ${DELAY_MS} ms after the request arrived" \
    "(pipelined requests overlap, as over a link with that latency). ×: against direct. Origin" \
    "requests: cold/warm, per run."
  md
  md "| origin | client of | cold s | × | warm s | × | origin requests |"
  md "|---|---|---:|---:|---:|---:|---:|"
  for variant in nginx slow; do
    if [ "$variant" = nginx ]; then name=nginx url=$ORIGIN_URL log=$WORK/origin.log
    else name="+${DELAY_MS} ms per .deb" url=http://127.0.0.1:$SLOW_PORT/debian log=$WORK/slow.log; fi
    progress "d. apt-get against $name: $RUNS run(s) each: direct, $(labels "${SERVERS[@]}" | sed 's/nginx proxy_cache, //')"
    for _ in $(seq "$RUNS"); do
      add "d|$variant|direct|cold" "$(apt_run "$url")"
      for s in "${SERVERS[@]}"; do
        [ "$s" != nginx ] || continue  # apt through proxy_cache is not in the set
        start_cache "$s" "$url"
        l0=$(lines "$log")
        add "d|$variant|$s|cold" "$(apt_run "http://127.0.0.1:$CACHE_PORT/synth")"
        l1=$(lines "$log")
        add "d|$variant|$s|warm" "$(apt_run "http://127.0.0.1:$CACHE_PORT/synth")"
        stop_cache "$s" "$CACHE_PID" "$CACHE_DIR"
        add "d|$variant|$s|reqs" "$((l1 - l0))/$(( $(lines "$log") - l1 ))"
        rm -rf "$CACHE_DIR"
      done
    done
    dc=$(med "d|$variant|direct|cold")
    md "| $name | direct | $(cell "d|$variant|direct|cold" %.2f) | 1.00 | - | - | - |"
    for s in "${SERVERS[@]}"; do
      [ "$s" != nginx ] || continue
      md "| $name | $(label "$s") | $(cell "d|$variant|$s|cold" %.2f) | $(ratio "$(med "d|$variant|$s|cold")" "$dc") |" \
        "$(cell "d|$variant|$s|warm" %.2f) | $(ratio "$(med "d|$variant|$s|warm")" "$dc") | $(runs "d|$variant|$s|reqs") |"
    done
  done
  note "a cold run asks the origin $((N_PKGS + 5)) times (InRelease and Release.gpg: 404; Release;" \
    "2 Packages.gz; the .debs); serialising the .deb misses behind a ${DELAY_MS} ms origin costs" \
    "$(printf %.1f "$(calc "$N_PKGS * $DELAY_MS / 1000")") s"
  md_notes
fi

md
md "The whole run took $(( ($(date +%s) - STARTED + 30) / 60 )) min (\`$([ -n "${QUICK:-}" ] && printf 'QUICK=1 ')RUNS=$RUNS benches/run.sh\`)."
mkdir -p "$(dirname "$OUT")"
cp "$REPORT" "$OUT"
cat "$REPORT"
progress "written to $OUT"
