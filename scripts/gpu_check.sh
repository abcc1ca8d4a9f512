#!/usr/bin/env bash
# The one GPU script (issue 4): on a machine with an NVIDIA GPU it builds for
# sm_90a, runs the GPU tests (the parametrised tests on cuda0 and the
# GPU-only cuda_*_test.cpp), runs them again under compute-sanitizer memcheck,
# runs the benchmarks and the PyTorch peers, and prints a summary table last.
# Full logs go under $OUT (default ./gpu-check-out).
#   scripts/gpu_check.sh            everything
#   KVSERVE_GPU_CHECK_SKIP="memcheck profile" scripts/gpu_check.sh
#       skips stages (build tests memcheck bench peers profile)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-check-out}
build=${KVSERVE_BUILD_DIR:-build-gpu}
skip=${KVSERVE_GPU_CHECK_SKIP:-}
mkdir -p "$out"
status=0
stage() { [[ " $skip " != *" $1 "* ]]; }
note() { echo "[gpu_check $(date +%T)] $*"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$out/device.txt" 2>&1
cat "$out/device.txt"

if stage build; then
  note "build (sm_90a)"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVSERVE_CUDA_ARCHS=90a > "$out/build.log" 2>&1 &&
    cmake --build "$build" -j "${KVSERVE_JOBS:-16}" --target kvserve_tests kvserve_cli >> "$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log"; note "BUILD FAILED"; exit 1; }
fi
tests=$build/tests/kvserve_tests
gpu_filter='*cuda0*:Cuda*'

if stage tests; then
  note "GPU tests ($gpu_filter)"
  timeout 900 "$tests" --gtest_filter="$gpu_filter" > "$out/gpu-tests.log" 2>&1
  rc=$?; [ $rc -ne 0 ] && status=1
  grep -E "^\[  (PASSED|FAILED)  \]|tests? ran" "$out/gpu-tests.log" | tail -25
  echo "$(grep -c '^\[  SKIPPED \]' "$out/gpu-tests.log") skipped (no CUDA kernel for the op yet, or one GPU only)"
fi

if stage memcheck; then
  note "compute-sanitizer memcheck on the GPU tests"
  timeout 900 compute-sanitizer --tool memcheck --error-exitcode 97 --print-limit 20 \
    "$tests" --gtest_filter="$gpu_filter" > "$out/memcheck.log" 2>&1
  rc=$?; [ $rc -ne 0 ] && status=1
  grep -E "ERROR SUMMARY|tests ran|FAILED" "$out/memcheck.log" | tail -8
fi

if stage bench; then
  note "benchmarks"
  cli=$build/bench/kvserve
  json=$build/bench-json
  rm -rf "$json" && mkdir -p "$json"
  for shape in "1 4096" "16 4096" "64 4096" "128 2048" "8 32768" "1 32768"; do
    set -- $shape
    "$cli" bench decode --batch "$1" --kv-len "$2" --json "$json/decode-$1-$2.json" >> "$out/bench.log" 2>&1 ||
      { status=1; note "decode B=$1 L=$2 failed"; }
  done
  "$cli" bench decode --batch 64 --kv-len 4096 --layout HND >> "$out/bench.log" 2>&1 || status=1
  for extra in merge append-decode append-graph append-ragged; do
    if "$cli" bench "$extra" --help > /dev/null 2>&1; then
      "$cli" bench "$extra" --json "$json/$extra.json" >> "$out/bench.log" 2>&1 || { status=1; note "$extra failed"; }
    fi
  done
fi

if stage peers; then
  note "PyTorch peers"
  PYTHONUNBUFFERED=1 python3 bench/peers/attention_peers.py --json "$out/peers.json" >> "$out/bench.log" 2>&1 ||
    { status=1; tail -5 "$out/bench.log"; }
fi

if stage profile; then
  # One untimed warm-up launch (the timed ones are held back by a host
  # callback, which would deadlock against ncu's serialised launches).
  note "Nsight Compute: one decode launch at (B 64, L 4096)"
  timeout 180 ncu --kernel-name regex:paged_decode --launch-skip 1 --launch-count 1 --section SpeedOfLight \
    --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section SchedulerStats "$build/bench/kvserve" bench decode --batch 64 --kv-len 4096 --iters 1 --no-check \
    > "$out/profile.txt" 2>&1 || note "ncu stopped (see profile.txt)"
fi

python3 bench/peers/summarize.py "$build/bench-json" "$out/peers.json" "$out/results.json"
note "exit status $status (logs in $out)"
exit $status
