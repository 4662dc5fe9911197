#!/usr/bin/env bash
# Fault soak (issue 8, item 8): apt-like clients against the daemon, whose
# mock origin injects cuts, stalls, 5xx, wrong lengths, resets, slow bodies,
# ignored Ranges and garbage in chunked bodies at random. Checks that no
# complete body differs from the origin, that upstream requests per client
# miss stay within DlMaxRetries + 1, that nothing reaches the origin long
# after the clients asked, that no client waits past the bound W without a
# byte, and compares cache-hit latency with a fault-free run; reports the
# daemon's RSS. Exit status 1 when a check fails. The details, and how W is
# computed, are at the top of benches/soak.py.
#
#   benches/soak.sh [--duration S] [--clients N] [--fault-rate F] [--seed N]
#                   [--fault-free-duration S] [--quick] [--help for the rest]
#
# Defaults: 600 s with faults after 120 s without, 50 clients, 20 % of the
# origin's answers faulted; --quick: 60 s and 30 s on a smaller repository.
# DEBCACHE=/path/to/debcache measures that binary instead of building this
# checkout's. The daemon runs pinned to CPU $SERVER_CPU (0), the Python
# origin and clients to $CLIENT_CPU (1); set both empty not to pin. Needs
# python3 (standard library only) and taskset; the cache goes to $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU-0}
CLIENT_CPU=${CLIENT_CPU-1}
for tool in python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
# shellcheck source=benches/common.sh
source benches/common.sh  # the working directory is the repository
BIN=$(debcache_bin)

PIN=()
[ -z "$CLIENT_CPU" ] || PIN=(taskset -c "$CLIENT_CPU")
SERVER=()
[ -z "$SERVER_CPU" ] || SERVER=(--server-cpu "$SERVER_CPU")
echo "debcache $(git -C "$(dirname "$BIN")" describe --always --dirty 2>/dev/null || echo '?') ($BIN)" >&2
PYTHONDONTWRITEBYTECODE=1 exec "${PIN[@]}" python3 benches/soak.py --debcache "$BIN" "${SERVER[@]}" "$@"
