#!/usr/bin/env bash
# RUSTC_WRAPPER for run.sh: compiles debcache, the fuzz targets and the two
# parsers whose branches the targets steer (http, httpdate) with libFuzzer's
# coverage instrumentation, everything else plainly. Instrumenting the regex
# crates made configuration loading ten times slower and pointed the fuzzer
# at regex syntax, which is not what is under test.
rustc=$1
shift
instrument=false
prev=
for arg in "$@"; do
  if [ "$prev" = --crate-name ]; then
    case "$arg" in
      debcache | http | httpdate | classify | url | head | range | config | index | version) instrument=true ;;
    esac
  fi
  prev=$arg
done
if $instrument; then
  exec "$rustc" "$@" \
    -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing
fi
exec "$rustc" "$@"
