#!/usr/bin/env bash
# The one GPU script: on a machine with an NVIDIA GPU it builds for sm_90a,
# runs the GPU tests (the parametrised tests on cuda0 and the GPU-only
# cuda_*_test.cpp), runs them again under compute-sanitizer memcheck, runs the
# demo on the GPU with --check, the attention / KV-cache and sampling
# benchmarks and their PyTorch peers, and prints the summary tables last.
# Full logs go under $OUT (default ./gpu-check-out).
#   scripts/gpu_check.sh            everything
#   KVSERVE_GPU_CHECK_SKIP="memcheck profile" scripts/gpu_check.sh
#       skips stages (build tests memcheck demo bench sampling norm peers profile)
#   KVSERVE_BASELINE_SRC=dir scripts/gpu_check.sh
#       also builds the kvserve tree in dir (e.g. `git archive <commit>`
#       unpacked under an ignored path carried to the GPU machine) beside this
#       one and runs the sampling benchmarks with both, in the same call
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

baseline_src=${KVSERVE_BASELINE_SRC:-}
baseline_build=$build-baseline
if [ -n "$baseline_src" ]; then
  note "building the baseline in $baseline_src (beside the main build)"
  { cmake -S "$baseline_src" -B "$baseline_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVSERVE_CUDA_ARCHS=90a &&
      cmake --build "$baseline_build" -j "${KVSERVE_JOBS:-16}" --target kvserve_cli; } > "$out/baseline-build.log" 2>&1 &
  baseline_pid=$!
fi
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
  # gtest prints "[  SKIPPED ] Suite.Test" once as each skipped test ends and
  # once more in its closing list: count each test name once.
  skipped=$(sed -n 's/^\[  SKIPPED \] \([^ ]*\.[^ ]*\).*/\1/p' "$out/gpu-tests.log" | sort -u | wc -l)
  echo "$skipped skipped (no CUDA kernel for the op yet, or one GPU only)"
fi

if stage memcheck; then
  note "compute-sanitizer memcheck on the GPU tests"
  # The statistical sampling tests run the same kernels 10^5 times over; they
  # are left out here (they ran above) to keep memcheck's time in bounds.
  timeout 900 compute-sanitizer --tool memcheck --error-exitcode 97 --print-limit 20 \
    "$tests" --gtest_filter="$gpu_filter:-*FollowTheTruncated*:*FollowTheSoftmax*:*FollowTheTarget*" \
    > "$out/memcheck.log" 2>&1
  rc=$?; [ $rc -ne 0 ] && status=1
  grep -E "ERROR SUMMARY|tests ran|FAILED" "$out/memcheck.log" | tail -8
fi

if stage demo; then
  note "demo on the GPU, every step checked"
  timeout 300 "$build/bench/kvserve" demo --device cuda --check > "$out/demo.log" 2>&1 || status=1
  tail -12 "$out/demo.log"
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
  "$cli" bench append --mode decode --batch 256 --json "$json/append-decode.json" >> "$out/bench.log" 2>&1 ||
    { status=1; note "append decode failed"; }
  "$cli" bench append --mode ragged --batch 128 --tokens 64 --json "$json/append-ragged.json" \
    >> "$out/bench.log" 2>&1 || { status=1; note "append ragged failed"; }
  grep -h "per launch inside a CUDA graph" "$out/gpu-tests.log" >> "$out/bench.log" 2>/dev/null
  "$cli" bench merge --tokens 8192 --states 8 --num-heads 32 --head-dim 128 --json "$json/merge.json" \
    >> "$out/bench.log" 2>&1 || { status=1; note "merge failed"; }
  "$cli" bench cascade --json "$json/cascade.json" >> "$out/bench.log" 2>&1 || { status=1; note "cascade failed"; }
  for shape in "1024 8192" "4096 4096"; do
    set -- $shape
    "$cli" bench paged-prefill --q-len "$1" --kv-len "$2" --json "$json/paged-prefill-$1-$2.json" \
      >> "$out/bench.log" 2>&1 || { status=1; note "paged-prefill q=$1 L=$2 failed"; }
  done
  "$cli" bench prefill --json "$json/prefill.json" >> "$out/bench.log" 2>&1 || { status=1; note "prefill failed"; }
fi

if stage peers; then
  note "PyTorch peers"
  PYTHONUNBUFFERED=1 python3 bench/peers/attention_peers.py --json "$out/peers.json" >> "$out/bench.log" 2>&1 ||
    { status=1; tail -5 "$out/bench.log"; }
  PYTHONUNBUFFERED=1 python3 bench/peers/prefill_peers.py --json "$out/prefill-peers.json" >> "$out/bench.log" 2>&1 ||
    { status=1; tail -5 "$out/bench.log"; }
fi

# The sampling benchmarks with the CLI of build dir $1, into log $2.
sampling_benches() {
  sbench() { timeout 60 "$1/bench/kvserve" bench "${@:3}" --device cuda >> "$2" 2>&1 || { status=1; note "bench ${*:3} failed"; }; }
  for b in 1 64 512; do sbench "$1" "$2" top-p --batch $b; done
  sbench "$1" "$2" top-k
  sbench "$1" "$2" min-p
  sbench "$1" "$2" top-k-top-p --order k_then_p
  sbench "$1" "$2" top-k-top-p --order joint
  sbench "$1" "$2" renorm --kind top-k
  sbench "$1" "$2" renorm --kind top-p
  sbench "$1" "$2" mask
  sbench "$1" "$2" spec-verify
  sbench "$1" "$2" penalty --history ids
  sbench "$1" "$2" penalty --history counts
}

if stage sampling; then
  note "sampling benchmarks and their PyTorch peers"
  sampling_benches "$build" "$out/sampling.log"
  if [ -n "$baseline_src" ]; then
    if wait "$baseline_pid"; then sampling_benches "$baseline_build" "$out/sampling-baseline.log"
    else status=1; note "baseline build failed (baseline-build.log)"; fi
  fi
  stage peers && { PYTHONUNBUFFERED=1 timeout 200 python3 bench/peers/sampling_peers.py --json "$out/sampling-peers.json" \
    > "$out/sampling-peers.log" 2>&1 || status=1; }
fi

if stage norm; then
  note "norm benchmarks and their PyTorch peers"
  for op in rmsnorm fused-add-rmsnorm qk-norm; do
    timeout 60 "$build/bench/kvserve" bench $op --device cuda >> "$out/norm.log" 2>&1 || { status=1; note "bench $op failed"; }
  done
  stage peers && { PYTHONUNBUFFERED=1 timeout 120 python3 bench/peers/norm_peers.py > "$out/norm-peers.log" 2>&1 ||
    status=1; }
fi

if stage profile; then
  # One untimed warm-up launch (the timed ones are held back by a host
  # callback, which would deadlock against ncu's serialised launches).
  note "Nsight Compute: one decode launch at (B 64, L 4096)"
  timeout 180 ncu --kernel-name regex:paged_decode --launch-skip 1 --launch-count 1 --section SpeedOfLight \
    --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section SchedulerStats "$build/bench/kvserve" bench decode --batch 64 --kv-len 4096 --iters 1 --no-check \
    > "$out/profile.txt" 2>&1 || note "ncu stopped (see profile.txt)"
  # The sampling kernels run in clusters and share distributed shared
  # memory, which kernel replay could not profile ("Unknown Error" with
  # --set full): replay the whole application instead, one top-p launch at
  # B 512 (the second warm-up launch: timed launches wait on a host
  # callback), for where its warps stall and how often the schedulers issue.
  note "Nsight Compute: one top-p launch at B 512 (application replay)"
  timeout 240 ncu --replay-mode application --kernel-name regex:sampling_kernel --launch-skip 1 --launch-count 1 \
    --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats \
    "$build/bench/kvserve" bench top-p --batch 512 --device cuda --iters 1 --warmup 2 --no-check \
    > "$out/profile-sampling.txt" 2>&1 || note "ncu stopped (see profile-sampling.txt)"
fi

if stage sampling; then
  echo "=== sampling: PyTorch peers (us)"
  tail -12 "$out/sampling-peers.log" 2>/dev/null
  echo "=== sampling: kvserve (op, shape, time us, TB/s, % copy, TFLOP/s, check)"
  grep -E '^(top|min|mask|renorm|spec|penalty)' "$out/sampling.log" | cut -c1-150
  if [ -f "$out/sampling-baseline.log" ]; then
    echo "=== sampling: baseline $baseline_src, same call"
    grep -E '^(top|min|mask|renorm|spec|penalty)' "$out/sampling-baseline.log" | cut -c1-150
  fi
fi
if stage norm; then
  echo "=== norms: PyTorch peers"
  tail -4 "$out/norm-peers.log" 2>/dev/null
  echo "=== norms: kvserve (op, shape, time us, TB/s, % copy, TFLOP/s, check)"
  grep -E '^(rmsnorm|fused|qk)' "$out/norm.log" | cut -c1-150
fi
python3 bench/peers/summarize.py "$build/bench-json" "$out/peers.json" "$out/results.json" "$out/bench.log"
note "exit status $status (logs in $out)"
exit $status
