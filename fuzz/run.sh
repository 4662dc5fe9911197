#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and runs
# each for SECONDS, then prints executions, speed and crashes per target.
#
#   fuzz/run.sh TARGET|all SECONDS
#
# Stable rustc only: coverage comes from LLVM's SanitizerCoverage pass, asked
# for with -C flags (what cargo-fuzz passes, minus the nightly-only
# -Z sanitizer; see rustc-wrapper.sh); libfuzzer-sys builds libFuzzer itself
# with the system's C++ compiler. The growing corpus lives in fuzz/work/TARGET (seeded from
# fuzz/corpus/TARGET), crashing inputs in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"

all=(classify url head range config)
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
summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  log="$scratch/$t.log"
  echo "== $t: ${seconds}s" >&2
  mkdir -p "$scratch/$t"
  set +e
  DEBCACHE_FUZZ_DIR="$scratch/$t" nice "target/$host/release/$t" \
    "work/$t" "corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  crashes=$(grep -c '^artifact_prefix=\|Test unit written to' "$log" || true)
  if [ "$rc" -ne 0 ]; then
    status=1
    grep -m1 -A12 "panicked at\|ERROR: libFuzzer" "$log" >&2 || tail -20 "$log" >&2
    grep 'Test unit written to' "$log" >&2 || true
  fi
  summary+=("$(printf '%-9s %12s execs %8s exec/s %3s crashes  corpus %s' \
    "$t" "${execs:-?}" "${speed:-?}" "$crashes" "$(find "work/$t" -type f | wc -l)")")
done
printf '%s\n' "${summary[@]}"
exit "$status"
