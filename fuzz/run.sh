#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and runs
# each for SECONDS, then prints executions, speed and crashes per target.
#
#   fuzz/run.sh TARGET|all SECONDS
#
# FUZZ_JOBS=N runs N processes per target on one corpus (their counts
# add up); FUZZ_RUNS=N stops each process after N executions.
#
# Stable rustc only: coverage comes from LLVM's SanitizerCoverage pass, asked
# for with -C flags (what cargo-fuzz passes, minus the nightly-only
# -Z sanitizer; see rustc-wrapper.sh); libfuzzer-sys builds libFuzzer itself
# with the system's C++ compiler. The growing corpus lives in fuzz/work/TARGET
# (seeded from fuzz/corpus/TARGET), crashing inputs in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"

all=(classify url head range config index version)
if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 TARGET|all SECONDS   (targets: ${all[*]})" >&2
  exit 2
fi
if [ "$1" = all ]; then
  targets=("${all[@]}")
else
  case " ${all[*]} " in
    *" $1 "*) targets=("$1") ;;
    *) echo "unknown target $1 (targets: ${all[*]})" >&2; exit 2 ;;
  esac
fi
seconds=$2

host=$(rustc -vV | sed -n 's/^host: //p')
# The wrapper adds the instrumentation to the crates under test only. An
# explicit --target keeps build scripts and proc macros apart from them.
export RUSTC_WRAPPER="$PWD/rustc-wrapper.sh"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
nice cargo build --release --locked --target "$host" "${bins[@]}"

# tmpfs when there is one: the config target rewrites its files every run.
scratch=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
jobs=${FUZZ_JOBS:-1}
runs=()
if [ -n "${FUZZ_RUNS:-}" ]; then runs=(-runs="$FUZZ_RUNS"); fi
summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  echo "== $t: ${seconds}s, $jobs process(es)" >&2
  # The 60 KiB regression seed of head would make libFuzzer try inputs up to
  # that size, twenty times slower; cargo test replays it whole.
  case $t in
    head) extra=(-max_len=4096) ;;
    *) extra=() ;;
  esac
  pids=()
  for j in $(seq 1 "$jobs"); do
    mkdir -p "$scratch/$t.$j"
    DEBCACHE_FUZZ_DIR="$scratch/$t.$j" nice "target/$host/release/$t" \
      "work/$t" "corpus/$t" "${runs[@]}" "${extra[@]}" \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/" </dev/null >"$scratch/$t.$j.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  logs=("$scratch/$t".*.log)
  execs=$(cat "${logs[@]}" | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{ n += $1 } END { print n + 0 }')
  speed=$(cat "${logs[@]}" | sed -n 's/^stat::average_exec_per_sec: *//p' | awk '{ n += $1 } END { print n + 0 }')
  crashes=$(cat "${logs[@]}" | grep -c 'Test unit written to' || true)
  if [ "$failed" -ne 0 ]; then
    status=1
    for log in "${logs[@]}"; do
      grep -m1 -A12 "panicked at\|ERROR: libFuzzer" "$log" >&2 || true
      grep 'Test unit written to' "$log" >&2 || true
    done
  fi
  summary+=("$(printf '%-9s %12s execs %8s exec/s %3s crashes  corpus %s' \
    "$t" "${execs:-?}" "${speed:-?}" "$crashes" "$(find "work/$t" -type f | wc -l)")")
done
printf '%s\n' "${summary[@]}"
exit "$status"
