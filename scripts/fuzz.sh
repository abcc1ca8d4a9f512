#!/usr/bin/env bash
# Runs every libFuzzer target of a KVSERVE_ENABLE_FUZZ build for a bounded
# time over its seed corpus (tests/fuzz/corpus/<target>/, read only: new
# inputs go to a scratch folder under the build dir). A crash, a sanitizer
# report, a leak or a hang (-timeout) fails the run and leaves the input as
# <build>/fuzz-out/<target>/crash-* (or timeout-*, leak-*); reproduce with
#   <build>/tests/fuzz/<target> <that file>
# Usage: scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "$1" && pwd)
repo=$(pwd)
seconds=${2:-15}
shift $(( $# >= 2 ? 2 : 1 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_attention fuzz_kv_append fuzz_merge fuzz_norm fuzz_sampling fuzz_gdn fuzz_capi)
status=0
for t in "${targets[@]}"; do
  out=$build/fuzz-out/$t
  rm -rf "$out" && mkdir -p "$out/new"
  corpus=tests/fuzz/corpus/$t
  mkdir -p "$corpus"
  if (cd "$out" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 new "$repo/$corpus" >log 2>&1); then
    echo "$t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/log" | grep -o '[0-9]*$') executions in ${seconds}s"
  else
    echo "$t: FAILED (log: $out/log)"; tail -n 40 "$out/log"; status=1
  fi
done
exit $status
