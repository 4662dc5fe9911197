# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Shared by the benchmark scripts (sourced, not run).

# scratch: a temporary directory $WORK (readable by nginx's workers, which
# run as nobody) and the list $PIDS of processes the script starts; both
# are cleaned up when the script ends or is interrupted.
scratch() {
  WORK=$(mktemp -d)
  chmod 755 "$WORK"
  PIDS=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

# A free loopback port below 32768: apt-cacher-ng 3.7.4 cannot use higher ones.
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
PY
}

# start_nginx HTTP_LINES [DIR]: one nginx worker pinned to $SERVER_CPU, its
# files in DIR (default $WORK/nginx), with HTTP_LINES (the servers and their
# settings) in its http block. Sets NGINX_PID (the master; the worker is its
# child) and adds it to PIDS.
start_nginx() {
  local dir=${2:-$WORK/nginx}
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
  keepalive_requests 1000000;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
$1
}
CONF
  taskset -c "$SERVER_CPU" nginx -c "$dir/nginx.conf" -p "$dir" 2>"$dir/stderr" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

# The daemon to measure, on stdout: $DEBCACHE when set (another checkout's
# binary, say), else this checkout's release build, built first.
debcache_bin() {
  if [ -n "${DEBCACHE:-}" ]; then
    [ -x "$DEBCACHE" ] || { echo "DEBCACHE=$DEBCACHE is not an executable file" >&2; return 1; }
    realpath "$DEBCACHE"
  else
    cargo build --release --quiet >&2
    echo "$PWD/target/release/debcache"
  fi
}

# wait_port PORT PID LOGFILE NAME: until PORT accepts, or fail showing LOGFILE.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "$4 did not start (port $1); its output:" >&2; cat "$3" >&2 || true; exit 1
}

# ---------------------------------------------------------------------------
# Measuring. The callers set WORK (a temporary directory), PIDS (an array),
# SERVER_CPU and CLIENT_CPU, and BIN (the debcache binary) before using these.

now() { date +%s.%N; }
calc() { echo "$1" | bc -l; }
# ratio A B: A / B, two decimals, "-" when one is missing or B is 0.
ratio() { if [ -n "$1" ] && [ -n "$2" ] && [ "$(calc "$2 != 0")" = 1 ]; then printf '%.2f' "$(calc "$1 / $2")"; else printf -- '-'; fi; }
# median VALUES...: the middle one (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# stop PID: SIGTERM, SIGKILL after 3 s.
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# tree PID: PID and its children (an nginx master and its worker).
tree() { echo "$1"; ps -o pid= --ppid "$1" 2>/dev/null || true; }
# core_ticks: everything CPU $SERVER_CPU did (user, nice, system, irq,
# softirq), in clock ticks. On loopback the receiving side's TCP work runs on
# whichever core sent the packet, so a process's own time alone depends on
# timing; the core's busy time counts all of it. Not steal: that is the
# host running other guests (up to a tenth of the core here at times).
core_ticks() { awk -v c="cpu$SERVER_CPU" '$1 == c {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# cpu_ticks PID: user + system CPU time of PID and its children, in clock
# ticks (getconf CLK_TCK a second), threads included.
cpu_ticks() {
  local p t=0 u s
  for p in $(tree "$1"); do
    # Fields 14 and 15 of /proc/PID/stat, counted after the ")" ending the name.
    read -r u s < <(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || continue
    t=$((t + u + s))
  done
  echo "$t"
}
# vmhwm PID: peak resident memory (VmHWM) of PID and its children, in MB.
vmhwm() {
  local p
  for p in $(tree "$1"); do cat "/proc/$p/status" 2>/dev/null || true; done |
    awk '/^VmHWM:/ {k += $2} END {printf "%.1f", k / 1024}'
}
# settle FILE: the page cache dropped (root only), then FILE read back in, so
# every run starts from the same memory state.
settle() {
  sync
  if [ "$(id -u)" = 0 ]; then echo 1 > /proc/sys/vm/drop_caches; fi
  cat "$1" > /dev/null
}

# Remarks on the current table, printed after it; a file, so subshells can add.
note() { echo "$*" >> "$WORK/notes"; }
flush_notes() { [ -s "$WORK/notes" ] && sed 's/^/  * /' "$WORK/notes"; : > "$WORK/notes"; }

# ---------------------------------------------------------------------------
# The origin's files.

# make_repo REPO N: a synthetic repository in REPO (suite synth, component
# main) of N packages bench-pkg-01 ... built with dpkg-deb, 20 to 200 KB of
# incompressible, deterministic content each, no dependencies. Sets PKGS (the
# names) and PKG_BYTES (the size of the .debs).
make_repo() {
  local repo=$1 n=$2 src=$WORK/pkgsrc i
  mkdir -p "$repo/pool/main/b" "$repo/dists/synth/main/binary-amd64" "$repo/dists/synth/main/binary-all"
  python3 - "$src" "$n" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    name = "bench-pkg-%02d" % i
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "DEBIAN"))
    os.makedirs(os.path.join(d, "usr/share", name))
    size = 20000 + (i - 1) * 180000 // max(1, n - 1)  # 20 KB .. 200 KB
    with open(os.path.join(d, "usr/share", name, "data"), "wb") as f:
        f.write(random.Random(i).randbytes(size))
    with open(os.path.join(d, "DEBIAN/control"), "w") as f:
        f.write("Package: %s\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: debcache bench <bench@example.org>\n"
                "Section: misc\nPriority: optional\n"
                "Description: synthetic package %d for debcache's benchmarks\n" % (name, i))
PY
  PKGS=()
  for i in $(seq -f %02g 1 "$n"); do
    PKGS+=("bench-pkg-$i")
    find "$src/bench-pkg-$i" -exec touch -h -d @1700000000 {} +
    SOURCE_DATE_EPOCH=1700000000 dpkg-deb --root-owner-group -Zgzip -z1 -b \
      "$src/bench-pkg-$i" "$repo/pool/main/b/bench-pkg-${i}_1.0_all.deb" >/dev/null
  done
  rm -rf "$src"
  (
    cd "$repo" || exit 1
    apt-ftparchive packages pool/main/b > dists/synth/main/binary-amd64/Packages
    cp dists/synth/main/binary-amd64/Packages dists/synth/main/binary-all/Packages
    for a in amd64 all; do gzip -9nk "dists/synth/main/binary-$a/Packages"; done
    apt-ftparchive -o APT::FTPArchive::Release::Origin=debcache-bench \
      -o APT::FTPArchive::Release::Suite=synth -o APT::FTPArchive::Release::Codename=synth \
      -o "APT::FTPArchive::Release::Architectures=amd64 all" \
      -o APT::FTPArchive::Release::Components=main release dists/synth > "$WORK/Release"
    mv "$WORK/Release" dists/synth/Release
  )
  PKG_BYTES=$(cat "$repo"/pool/main/b/bench-pkg-*.deb | wc -c)
}

# ---------------------------------------------------------------------------
# Caches in front of an origin, each on URLs http://127.0.0.1:PORT/synth/...

# start_cache KIND ORIGIN_URL: a fresh instance of KIND (debcache,
# apt-cacher-ng, or nginx: proxy_cache with proxy_cache_lock) on an empty
# cache directory, pinned to $SERVER_CPU; sets CACHE_PORT, CACHE_PID,
# CACHE_DIR.
N_CACHE=0
start_cache() {
  N_CACHE=$((N_CACHE + 1))
  local dir=$WORK/$1.$N_CACHE
  CACHE_DIR=$dir
  CACHE_PORT=$(free_port)
  mkdir -p "$dir/conf" "$dir/cache" "$dir/log"
  case $1 in
    debcache)
      printf 'CacheDir: %s\nLogDir: %s\nRemap-synth: /synth ; %s\n' \
        "$dir/cache" "$dir/log" "$2" > "$dir/conf/acng.conf"
      RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" -c "$dir/conf" "BindAddress=127.0.0.1:$CACHE_PORT" \
        2>"$dir/stderr" &
      CACHE_PID=$!
      PIDS+=("$CACHE_PID")
      for _ in $(seq 200); do
        grep -q "debcache: listening on" "$dir/stderr" && return 0
        kill -0 "$CACHE_PID" 2>/dev/null || break
        sleep 0.05
      done
      echo "debcache did not start; its stderr:" >&2; cat "$dir/stderr" >&2; exit 1
      ;;
    apt-cacher-ng)
      printf 'CacheDir: %s\nLogDir: %s\nPort: %s\nBindAddress: 127.0.0.1\nForeGround: 1\nRemap-synth: /synth ; %s\n' \
        "$dir/cache" "$dir/log" "$CACHE_PORT" "$2" > "$dir/conf/acng.conf"
      taskset -c "$SERVER_CPU" apt-cacher-ng -c "$dir/conf" SocketPath="$dir/sock" >"$dir/stderr" 2>&1 &
      CACHE_PID=$!
      PIDS+=("$CACHE_PID")
      ;;
    nginx)
      # The lock held for as long as a download takes: with the defaults (5 s)
      # waiters of a longer download go to the origin themselves, uncached.
      chmod 777 "$dir/cache"  # the worker runs as nobody under root
      start_nginx "  access_log off;
  sendfile on; tcp_nodelay on;
  proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:16m max_size=16g inactive=1d use_temp_path=off;
  server {
    listen 127.0.0.1:$CACHE_PORT;
    location /synth/ {
      proxy_pass $2/;
      proxy_http_version 1.1;
      proxy_cache bench;
      proxy_cache_valid 200 1d;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 1h;
      proxy_cache_lock_age 1h;
    }
  }" "$dir/nginx"
      CACHE_PID=$NGINX_PID
      wait_port "$CACHE_PORT" "$CACHE_PID" "$dir/nginx/stderr" nginx
      return 0
      ;;
    *) echo "start_cache: unknown kind $1" >&2; exit 1 ;;
  esac
  wait_port "$CACHE_PORT" "$CACHE_PID" "$dir/stderr" "$1"
}

# stop_cache KIND PID DIR: stops it and notes what it logged as errors (its
# stderr, apt-cacher-ng's apt-cacher.err, nginx's error.log).
stop_cache() {
  stop "$2"
  local msgs
  msgs=$( { grep -v "debcache: listening on" "$3/stderr" 2>/dev/null || true
            [ "$1" != apt-cacher-ng ] || sed 's/^[^|]*|//' "$3/log/apt-cacher.err" 2>/dev/null || true
            [ "$1" != nginx ] || grep -E '\[(error|crit|alert|emerg)\]' "$3/nginx/error.log" 2>/dev/null || true; } |
          sed -E "s|$3/cache/||g; s/[0-9]{6,}/N/g" | cut -c1-150 | sort | uniq -c | sort -rn | head -3 |
          sed 's/^ *\([0-9]*\) /\1 x /')
  [ -z "$msgs" ] || note "$1 logged: $(echo "$msgs" | paste -sd ';' | sed 's/;/; /g')"
}

# ---------------------------------------------------------------------------
# apt-get as a client.

# apt_run BASE_URL: `apt-get update && apt-get install --download-only` of
# PKGS from BASE_URL (suite synth) with a private, empty apt state, pinned to
# $CLIENT_CPU; prints its seconds and notes failures.
N_APT=0
apt_run() {
  N_APT=$((N_APT + 1))
  local d=$WORK/apt.$N_APT t0 t1 n
  mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" "$d/empty"
  : > "$d/status"
  echo "deb [trusted=yes] $1 synth main" > "$d/sources.list"
  cat > "$d/apt.conf" <<CONF
Dir::State "$d/state";
Dir::State::status "$d/status";
Dir::Cache "$d/cache";
Dir::Etc::sourcelist "$d/sources.list";
Dir::Etc::sourceparts "$d/empty";
Dir::Etc::parts "$d/empty";
Dir::Etc::preferencesparts "$d/empty";
Dir::Etc::trustedparts "$d/empty";
Acquire::Languages "none";
Acquire::http::Proxy "DIRECT";
Debug::NoLocking "true";
APT::Architectures { "amd64"; };
Acquire::http::Pipeline-Depth "10";
CONF
  [ "$(id -u)" != 0 ] || echo 'APT::Sandbox::User "root";' >> "$d/apt.conf"
  t0=$(now)
  APT_CONFIG=$d/apt.conf taskset -c "$CLIENT_CPU" \
    sh -c 'apt-get -q update && apt-get -q install --download-only -y "$@"' apt "${PKGS[@]}" > "$d/out" 2>&1 ||
    note "apt-get failed against $1: $(grep -E '^(E|W):' "$d/out" | head -3 | paste -sd ' ')"
  t1=$(now)
  n=$(find "$d/cache/archives" -maxdepth 1 -name '*.deb' | wc -l)
  [ "$n" = "${#PKGS[@]}" ] || note "apt-get downloaded $n of ${#PKGS[@]} packages against $1"
  grep -E '^(W|E):' "$d/out" | head -3 | sed "s|^|apt-get against $1: |" >> "$WORK/notes" || true
  rm -rf "$d"
  calc "$t1 - $t0"
}
