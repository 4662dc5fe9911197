#!/usr/bin/env bash
# Expiration over a large cache: FILES package files (hard links of one
# few small .debs, 1,000 to a directory, so the set-up is quick) of which 90 %
# are named by one Packages file of Debian's size (about 300 bytes a
# stanza: 60 MB for 200,000) and 10 % are orphans, with a Release listing
# it. The index is used as it is (skipIxUp): the mirror is not part of the
# measure.
#
#   benches/expire.sh [files, default 200000]
#
# Prints the task's wall time, the daemon's peak RSS (VmHWM) before and
# after it, and 2 KB hits per second (wrk, 16 connections, 5 s from the
# task's start: with a task shorter than that, the figure covers less of
# it) against the same without it. The daemon runs on CPU 0, wrk on CPU 1.
# EXTRA_CONF adds lines to its configuration ('VerifyDownloads: 0\n'
# leaves out the checksum table, whose memory "before" includes).
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${1:-200000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for tool in wrk curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
# shellcheck source=benches/common.sh
source benches/common.sh
BIN=$(debcache_bin)
scratch

CACHE=$WORK/cache
echo "building a cache of $FILES files and its Packages file..." >&2
python3 - "$CACHE" "$FILES" <<'PY'
import os, sys, hashlib
cache, files = sys.argv[1], int(sys.argv[2])
repo = os.path.join(cache, "bench")
head = lambda n: f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n"
os.makedirs(os.path.join(repo, "seed"))
deb = os.urandom(1500)
# A seed per 30,000 links: ext4 allows 65,000 names per inode.
def seed_of(i):
    seed = os.path.join(repo, "seed", f"seed{i // 30000}.deb")
    if i % 30000 == 0:
        open(seed, "wb").write(deb)
        open(seed + ".head", "w").write(head(len(deb)))
    return seed
open(os.path.join(repo, "seed", "hot.deb"), "wb").write(os.urandom(2048))
open(os.path.join(repo, "seed", "hot.deb.head"), "w").write(head(2048))
sha = hashlib.sha256(deb).hexdigest()
desc = " " + "x" * 150
named = files * 9 // 10
out = []
for i in range(files):
    d = f"pool/main/d{i // 1000}"
    path = os.path.join(repo, d)
    if i % 1000 == 0:
        os.makedirs(path)
    name = f"pkg{i}_1.0_all.deb"
    seed = seed_of(i)
    os.link(seed, os.path.join(path, name))
    os.link(seed + ".head", os.path.join(path, name + ".head"))
    if i < named:
        out.append(f"Package: pkg{i}\nVersion: 1.0\nArchitecture: all\nFilename: {d}/{name}\n"
                   f"Size: {len(deb)}\nSHA256: {sha}\nDescription: a package\n{desc}\n")
packages = "\n".join(out).encode()
dists = os.path.join(repo, "dists", "s")
os.makedirs(os.path.join(dists, "main", "binary-all"))
open(os.path.join(dists, "main", "binary-all", "Packages"), "wb").write(packages)
open(os.path.join(dists, "main", "binary-all", "Packages.head"), "w").write(head(len(packages)))
release = (f"Suite: s\nSHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} main/binary-all/Packages\n").encode()
open(os.path.join(dists, "Release"), "wb").write(release)
open(os.path.join(dists, "Release.head"), "w").write(head(len(release)))
print(f"Packages: {len(packages) / 1e6:.1f} MB, {named} packages named", file=sys.stderr)
PY

PORT=$(free_port)
mkdir -p "$WORK/conf" "$WORK/log"
printf 'CacheDir: %s\nLogDir: %s\nRemap-bench: /bench ; http://127.0.0.1:9/\nExThreshold: 4\n%b' \
  "$CACHE" "$WORK/log" "${EXTRA_CONF:-}" > "$WORK/conf/acng.conf"
RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/conf" "BindAddress=127.0.0.1:$PORT" 2>"$WORK/stderr" &
PID=$!
PIDS+=("$PID")
wait_port "$PORT" "$PID" "$WORK/stderr" debcache
HOT=http://127.0.0.1:$PORT/bench/seed/hot.deb
hits() { taskset -c "$CLIENT_CPU" wrk -t1 -c16 -d"$1"s "$HOT" | awk '/^Requests\/sec:/ {print $2}'; }

# The checksum table of the Packages, read at start (VerifyDownloads).
for _ in $(seq 120); do
  sums=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "debcache_index_checksums" {print $2}')
  [ "${sums:-0}" -gt 0 ] || [ -n "${EXTRA_CONF:-}" ] && break
  sleep 0.5
done
hits 2 >/dev/null  # warm
alone=$(hits 5)
rss_before=$(vmhwm "$PID")
t0=$(now)
(curl -sS -o "$WORK/page" "http://127.0.0.1:$PORT/acng-report.html?doExpire=Start+Expiration&skipIxUp=si&ignoreTradeOff=iTO"
 now > "$WORK/ended") &
TASK=$!
during=$(hits 5)
wait "$TASK"
t1=$(cat "$WORK/ended")
rss_after=$(vmhwm "$PID")
grep -q 'Done:' "$WORK/page" || { echo "the task did not finish:" >&2; sed 's/<[^>]*>//g' "$WORK/page" | tail -5 >&2; exit 1; }
tagged=$(wc -l < "$CACHE/_expending_dat")

printf '%s files, %s of them orphans (tagged: %s)\n' "$FILES" "$((FILES - FILES * 9 / 10))" "$tagged"
printf 'checksum table: %s files\n' "${sums:-0}"
printf 'expiration: %.2f s; peak RSS %s MB before, %s MB after\n' "$(calc "$t1 - $t0")" "$rss_before" "$rss_after"
printf '2 KB hits, 16 connections: %s r/s alone, %s r/s during the task (%s)\n' \
  "$alone" "$during" "$(ratio "$during" "$alone")"
sed 's/<[^>]*>//g' "$WORK/page" | grep 'Done:' || true
