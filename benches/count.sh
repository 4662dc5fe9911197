#!/usr/bin/env bash
# Count Objects (?doCount=) over a generated cache: wall time, and the
# daemon's peak RSS (VmHWM) before and after, to show that the count's
# memory does not grow with the number of files.
#
#   benches/count.sh [files, default 200000] [runs, default 3]
#
# The cache: FILES data files in 4 repositories (3 Remap- names and a host
# directory), 200 to a directory, 100 bytes to 4 KB each, each with a .head
# in apt-cacher-ng's format; about 10 % of them partial (the head's
# Content-Length larger than the data), 1 % without a head; FILES/100
# .head files without data; plus 100,000 transfer-log lines of the last 7
# days for the log analysis. The first run follows the generation, so the
# cache's metadata is in the page cache; COLD=1 (root only) drops the
# caches before every run. The daemon runs pinned to CPU 0, curl to CPU 1.
# Needs: python3, curl, taskset. Disk: about 8 KB per file in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${1:-200000}
RUNS=${2:-3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for tool in python3 curl taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install python3 curl util-linux)" >&2; exit 1; }
done
if [ "${COLD:-}" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "COLD=1 drops the page cache, which needs root" >&2; exit 1
fi

# shellcheck source=benches/common.sh
source benches/common.sh  # the working directory is the repository
BIN=$(debcache_bin)
scratch

kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }  # a /proc/PID/status size in KiB
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

echo "generating $FILES files (and their .head files) in $WORK/cache ..." >&2
gen_start=$(date +%s.%N)
python3 - "$WORK/cache" "$WORK/log" "$FILES" <<'PY'
import os, sys, time
cache, log, files = sys.argv[1], sys.argv[2], int(sys.argv[3])
repos = ["debian", "ubuntu", "security", "deb.example.org"]
head = "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\nX-Original-Source: http://deb.example.org/{}\r\n\r\n"
blob = bytes(range(256)) * 16
expect = {"complete": [0, 0], "partial": [0, 0], "heads_alone": 0}
for i in range(files):
    repo = repos[i % len(repos)]
    rel = "{}/pool/main/d{:04d}/pkg{}_1.0_amd64.deb".format(repo, i // 200, i)
    path = os.path.join(cache, rel)
    if i % 200 < len(repos):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    size = 100 + (i * 7919) % 3997
    with open(path, "wb") as f:
        f.write(blob[:size])
    if i % 100 == 7:
        kind = "partial"                   # no .head at all
    else:
        partial = i % 10 == 3
        length = size * 2 if partial else size
        kind = "partial" if partial else "complete"
        with open(path + ".head", "w", newline="") as f:
            f.write(head.format(length, rel))
    expect[kind][0] += 1
    expect[kind][1] += size
    if i % 100 == 42:                      # an error head left without data
        with open(path + ".gone.head", "w", newline="") as f:
            f.write("HTTP/1.1 404 Not Found\r\n\r\n")
        expect["heads_alone"] += 1
os.makedirs(log, exist_ok=True)
now = int(time.time())
with open(os.path.join(log, "apt-cacher.log.1"), "w") as f:
    for n in range(100000):
        t = now - (n * 6) % (7 * 86400)
        kind = "I" if n % 3 == 0 else "O"
        f.write("{}|{}|{}|10.0.0.{}|debian/pool/main/x/pkg{}.deb\n".format(t, kind, 1000 + n % 5000, n % 200, n))
with open(os.path.join(cache, "..", "expect"), "w") as f:
    f.write("{} {} {} {} {}\n".format(expect["complete"][0], expect["complete"][1],
                                       expect["partial"][0], expect["partial"][1], expect["heads_alone"]))
PY
gen_end=$(date +%s.%N)
read -r C_FILES C_BYTES P_FILES P_BYTES HEADS_ALONE < "$WORK/expect"
echo "generated in $(awk -v a="$gen_start" -v b="$gen_end" 'BEGIN {printf "%.0f", b - a}') s" >&2

PORT=$(free_port)
mkdir -p "$WORK/conf"
printf 'CacheDir: %s\nLogDir: %s\nRemap-debian: /debian ; http://deb.example.org/debian\nRemap-ubuntu: /ubuntu ; http://deb.example.org/ubuntu\nRemap-security: /security ; http://deb.example.org/security\n' \
  "$WORK/cache" "$WORK/log" > "$WORK/conf/acng.conf"
RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/conf" "BindAddress=127.0.0.1:$PORT" 2>"$WORK/stderr" &
DC_PID=$!
PIDS+=("$DC_PID")
wait_port "$PORT" "$DC_PID" "$WORK/stderr" debcache
URL="http://127.0.0.1:$PORT/acng-report.html?doCount=Count+Objects"

HWM_BEFORE=$(kib "$DC_PID" VmHWM)
printf '%-5s %10s %12s %14s\n' run "wall s" "files/s" "VmHWM MiB"
for run in $(seq "$RUNS"); do
  if [ "${COLD:-}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
  start=$(date +%s.%N)
  taskset -c "$CLIENT_CPU" curl -sS -o "$WORK/count.html" "$URL"
  end=$(date +%s.%N)
  grep -q 'class="GOOD">Done.' "$WORK/count.html" || { echo "the count did not finish:" >&2; tail -20 "$WORK/count.html" >&2; exit 1; }
  # The totals row: complete files and bytes, partial files and bytes, heads alone.
  total=$(grep -F '<tr><th>All</th>' "$WORK/count.html")
  case "$total" in
    "<tr><th>All</th><td>$C_FILES</td><td title=\"$C_BYTES bytes\">"*"<td>$P_FILES</td><td title=\"$P_BYTES bytes\">"*"<td>$HEADS_ALONE</td></tr>") ;;
    *) echo "wrong totals: expected $C_FILES/$C_BYTES complete, $P_FILES/$P_BYTES partial, $HEADS_ALONE heads alone; got $total" >&2; exit 1 ;;
  esac
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
  printf '%-5s %10s %12.0f %14s\n' "$run" "$wall" "$(awk -v n="$FILES" -v w="$wall" 'BEGIN {print n / w}')" "$(mib "$(kib "$DC_PID" VmHWM)")"
done
echo
echo "files: $FILES data files ($C_FILES complete, $P_FILES partial) with $((FILES - FILES / 100)) .head files, $HEADS_ALONE .head files without data, 100000 log lines"
echo "VmHWM (peak RSS) of the daemon: $(mib "$HWM_BEFORE") MiB after start, $(mib "$(kib "$DC_PID" VmHWM)") MiB after $RUNS counts; VmRSS now $(mib "$(kib "$DC_PID" VmRSS)") MiB"
