#!/usr/bin/env bash
# The one GPU script: on a machine with an NVIDIA GPU it builds for sm_90a,
# runs the GPU tests (the parametrised tests on cuda0 and the GPU-only
# cuda_*_test.cpp), runs them again under compute-sanitizer memcheck, runs the
# demo on the GPU with --check, the attention / KV-cache, sampling and norm
# benchmarks and their PyTorch peers, and prints the summary tables last.
# Full logs go under $OUT (default ./gpu-check-out).
#   scripts/gpu_check.sh            everything
#   KVSERVE_GPU_CHECK_SKIP="memcheck profile" scripts/gpu_check.sh
#       skips stages (build tests memcheck racecheck demo prefill bench peers sampling norm profile
#       profile_prefill)
#   KVSERVE_BASELINE_SRC=dir scripts/gpu_check.sh
#       also builds the kvserve tree in dir (e.g. `git archive <commit>`
#       unpacked under an ignored path carried to the GPU machine) beside this
#       one, runs every benchmark of the bench, prefill, sampling and norm stages with
#       both CLIs in the same call, each invocation with the main CLI and then
#       at once with the baseline's, and prints an A/B table last (n/a where
#       the baseline lacks the benchmark or an option; that does not fail)
#   KVSERVE_PREFILL_SIDES=main scripts/gpu_check.sh
#       the prefill stage on the wgmma kernel only (default: main mma_sync)
#   KVSERVE_GPU_TEST_TIMEOUT=120 scripts/gpu_check.sh
#       bounds each GPU test and sanitizer run (default 900 s; a hang in a new
#       kernel then costs minutes, not the call)
#   KVSERVE_GPU_CHECK_DRY_RUN=1 scripts/gpu_check.sh
#       prints each command instead of running it (no nvidia-smi, no build)
# The benchmark invocations (name, arguments, timeout, target) are the lines
# of scripts/gpu_benchmarks.txt. Each stage is a function below. Meant to run
# under the caller's `timeout`: on SIGTERM it prints the summary of what ran.
# The stages are called by name from the loop at the end:
# shellcheck disable=SC2317
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-$PWD/gpu-check-out}
build_dir=${KVSERVE_BUILD_DIR:-build-gpu}
skip=${KVSERVE_GPU_CHECK_SKIP:-}
dry_run=${KVSERVE_GPU_CHECK_DRY_RUN:-0}
jobs=${KVSERVE_JOBS:-16}
test_timeout=${KVSERVE_GPU_TEST_TIMEOUT:-900}  # seconds a test or sanitizer run may take
list=scripts/gpu_benchmarks.txt
baseline_src=${KVSERVE_BASELINE_SRC:-}
baseline_build=$build_dir-baseline
baseline_pid=
baseline_state=  # ok or failed once waited for
tests_bin=$build_dir/tests/kvserve_tests
gpu_filter='*cuda0*:Cuda*'
status=0

stage() { [[ " $skip " != *" $1 "* ]]; }
note() { echo "[gpu_check $(date +%T)] $*"; }
dry() { [ -n "$dry_run" ] && [ "$dry_run" != 0 ]; }
quoted() {
  local a s=
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=,+@%{}*-]+$ ]]; then s+=" $a"; else s+=" $(printf '%q' "$a")"; fi
  done
  echo "${s# }"
}
# x CMD...: runs CMD (in a dry run, prints it).
x() { if dry; then echo "+ $(quoted "$@")"; else "$@"; fi; }
# logged '>'|'>>' LOG CMD...: runs CMD, its stdout and stderr into LOG
# (truncated or appended).
logged() {
  local mode=$1 log=$2
  shift 2
  if dry; then echo "+ $(quoted "$@") $mode $log 2>&1"; return 0; fi
  if [ "$mode" = '>' ]; then "$@" > "$log" 2>&1; else "$@" >> "$log" 2>&1; fi
}

start_baseline_build() {
  note "building the baseline in $baseline_src (beside the main build)"
  local configure=(cmake -S "$baseline_src" -B "$baseline_build" -G Ninja -DCMAKE_BUILD_TYPE=Release
    -DKVSERVE_CUDA_ARCHS=90a)
  local compile=(cmake --build "$baseline_build" -j "$jobs" --target kvserve_cli)
  if dry; then
    echo "+ { $(quoted "${configure[@]}") && $(quoted "${compile[@]}"); } > $out/baseline-build.log 2>&1 &"
    return
  fi
  { "${configure[@]}" && "${compile[@]}"; } > "$out/baseline-build.log" 2>&1 &
  baseline_pid=$!
}

# True once the baseline CLI is built (waits for it the first time).
baseline_ready() {
  [ -n "$baseline_src" ] || return 1
  if [ -z "$baseline_state" ]; then
    if dry; then
      baseline_state=ok
    elif [ -z "$baseline_pid" ]; then
      baseline_state=failed status=1
      note "baseline build not started"
    else
      note "waiting for the baseline build"
      if wait "$baseline_pid"; then baseline_state=ok
      else
        baseline_state=failed status=1
        tail -20 "$out/baseline-build.log"
        note "baseline build failed (baseline-build.log): main CLI only, the A/B table reads n/a"
      fi
    fi
  fi
  [ "$baseline_state" = ok ]
}

# invoke main|baseline STAGE ID TIMEOUT ARGS...: one `kvserve bench ARGS`
# with that side's CLI; output appended to $out/STAGE.log (baseline:
# STAGE-baseline.log) and alone in $out/runs/ID.log (ID.baseline.log), the
# exit status in ID.rc (ID.baseline.rc). A failing baseline only leaves an
# n/a in the A/B table.
invoke() {
  local side=$1 st=$2 id=$3 tmo=$4
  shift 4
  local cli=$build_dir/bench/kvserve json=$build_dir/bench-json log=$out/$st.log run=$out/runs/$id
  local env_=()
  if [ "$side" = baseline ]; then
    cli=$baseline_build/bench/kvserve json=$baseline_build/bench-json log=$out/$st-baseline.log run=$run.baseline
  elif [ "$side" = mma_sync ]; then
    env_=(env KVSERVE_MULTI_QUERY_KERNEL=mma_sync)
    json=$build_dir/bench-json-mma_sync log=$out/$st-mma_sync.log run=$run.mma_sync
  fi
  local argv=() a
  for a in "$@"; do
    if [[ $a == *"{json}"* ]]; then
      a=${a//"{json}"/"$json"}
      dry || { mkdir -p "$json" && rm -f "$a"; }
    fi
    argv+=("$a")
  done
  local cmd=("${env_[@]}" "$cli" bench "${argv[@]}")
  [ "$tmo" = - ] || cmd=(timeout "$tmo" "${cmd[@]}")
  if dry; then echo "+ $(quoted "${cmd[@]}") >> $log 2>&1    # also $run.log"; return 0; fi
  "${cmd[@]}" < /dev/null 2>&1 | tee -a "$log" > "$run.log"
  local rc=${PIPESTATUS[0]}
  echo "$rc" > "$run.rc"
  [ "$rc" -eq 0 ] && return 0
  if [ "$side" = main ]; then status=1; note "bench $* failed (exit $rc)"
  else note "baseline: bench $* failed (exit $rc; n/a in the A/B table)"; fi
}

# benchmarks STAGE: the invocations of STAGE in $list, in order; with a
# baseline each runs with the main CLI and then at once with the baseline's.
benchmarks() {
  local want=$1 line st id tmo args argv with_baseline=0 side=${2:-main}
  [ "$side" = main ] && baseline_ready && with_baseline=1
  while IFS= read -r -u 3 line || [ -n "$line" ]; do
    line=${line%%#*}
    IFS='|' read -r st id tmo args _ <<< "$line"
    st=${st//[[:space:]]/}
    [ "$st" = "$want" ] || continue
    id=${id//[[:space:]]/} tmo=${tmo//[[:space:]]/}
    read -ra argv <<< "$args"
    invoke "$side" "$st" "$id" "$tmo" "${argv[@]}"
    [ "$with_baseline" = 1 ] && invoke baseline "$st" "$id" "$tmo" "${argv[@]}"
  done 3< "$list"
}

build() {
  note "build (sm_90a)"
  if ! { logged '>' "$out/build.log" cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DKVSERVE_CUDA_ARCHS=90a &&
    logged '>>' "$out/build.log" cmake --build "$build_dir" -j "$jobs" --target kvserve_tests kvserve_cli; }; then
    tail -40 "$out/build.log"
    note "BUILD FAILED"
    exit 1
  fi
}

tests() {
  note "GPU tests ($gpu_filter)"
  logged '>' "$out/gpu-tests.log" timeout "$test_timeout" "$tests_bin" --gtest_filter="$gpu_filter" || status=1
  dry && return
  grep -E "^\[  (PASSED|FAILED)  \]|tests? ran" "$out/gpu-tests.log" | tail -25
  # gtest prints "[  SKIPPED ] Suite.Test" once as each skipped test ends and
  # once more in its closing list: count each test name once.
  local skipped
  skipped=$(sed -n 's/^\[  SKIPPED \] \([^ ]*\.[^ ]*\).*/\1/p' "$out/gpu-tests.log" | sort -u | wc -l)
  echo "$skipped skipped (no case with a CUDA kernel, or one GPU only);" \
    "$(grep -c '^\[ NOT BUILT\]' "$out/gpu-tests.log") cases left out for want of a CUDA row"
}

memcheck() {
  note "compute-sanitizer memcheck on the GPU tests"
  # The statistical sampling tests run the same kernels 10^5 times over; they
  # are left out here (they ran above) to keep memcheck's time in bounds.
  logged '>' "$out/memcheck.log" timeout "$test_timeout" compute-sanitizer --tool memcheck --error-exitcode 97 --print-limit 20 \
    "$tests_bin" --gtest_filter="$gpu_filter:-*FollowTheTruncated*:*FollowTheSoftmax*:*FollowTheTarget*" || status=1
  dry || grep -E "ERROR SUMMARY|tests ran|FAILED" "$out/memcheck.log" | tail -8
}

demo() {
  note "demo on the GPU, every step checked"
  logged '>' "$out/demo.log" timeout 300 "$build_dir/bench/kvserve" demo --device cuda --mla --gdn --check || status=1
  dry || tail -12 "$out/demo.log"
}

bench() {
  note "benchmarks"
  x rm -rf "$build_dir/bench-json"
  x mkdir -p "$build_dir/bench-json"
  if baseline_ready; then
    x rm -rf "$baseline_build/bench-json"
    x mkdir -p "$baseline_build/bench-json"
  fi
  benchmarks bench
  dry || grep -h "per launch inside a CUDA graph" "$out/gpu-tests.log" >> "$out/bench.log" 2>/dev/null
}

peers() {
  note "PyTorch peers"
  logged '>>' "$out/bench.log" env PYTHONUNBUFFERED=1 python3 bench/peers/attention_peers.py --json "$out/peers.json" ||
    { status=1; tail -5 "$out/bench.log"; }
  logged '>>' "$out/bench.log" env PYTHONUNBUFFERED=1 python3 bench/peers/prefill_peers.py --json "$out/prefill-peers.json" ||
    { status=1; tail -5 "$out/bench.log"; }
}

# Issue 14: the GPU tests of every op on the multi-query kernels under
# racecheck and synccheck (the mbarrier protocol of the wgmma kernel), and of
# the MLA decode kernel (its S exchange between warps); then the prefill table
# on both kernels and its SDPA peers.
racecheck() {
  local tool filter='*Prefill*cuda0*:*Cascade*cuda0*:CudaCascade*:*MlaDecode*cuda0*:CudaMla*'
  for tool in racecheck synccheck; do
    note "compute-sanitizer $tool on the prefill, cascade and MLA decode GPU tests"
    logged '>' "$out/$tool.log" timeout "$test_timeout" compute-sanitizer --tool "$tool" --error-exitcode 97 --print-limit 20 \
      "$tests_bin" --gtest_filter="$filter" || status=1
    dry || grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests ran|FAILED" "$out/$tool.log" | tail -6
  done
}

prefill() {
  note "prefill table: wgmma, then mma.sync, then SDPA"
  x mkdir -p "$build_dir/bench-json" "$build_dir/bench-json-mma_sync"
  local side
  for side in ${KVSERVE_PREFILL_SIDES:-main mma_sync}; do benchmarks prefill "$side"; done
  logged '>' "$out/prefill-peers.log" env PYTHONUNBUFFERED=1 timeout 300 python3 bench/peers/prefill_peers.py \
    --issue14 --json "$out/prefill-peers-14.json" || status=1
}

sampling() {
  note "sampling benchmarks and their PyTorch peers"
  benchmarks sampling
  if stage peers; then
    logged '>' "$out/sampling-peers.log" env PYTHONUNBUFFERED=1 timeout 200 python3 bench/peers/sampling_peers.py \
      --json "$out/sampling-peers.json" || status=1
  fi
}

norm() {
  note "norm benchmarks and their PyTorch peers"
  benchmarks norm
  if stage peers; then
    logged '>' "$out/norm-peers.log" env PYTHONUNBUFFERED=1 timeout 120 python3 bench/peers/norm_peers.py || status=1
  fi
}

profile() {
  # One untimed warm-up launch (the timed ones are held back by a host
  # callback, which would deadlock against ncu's serialised launches).
  note "Nsight Compute: one decode launch at (B 64, L 4096)"
  logged '>' "$out/profile.txt" timeout 180 ncu --kernel-name regex:paged_decode --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section SchedulerStats \
    "$build_dir/bench/kvserve" bench decode --batch 64 --kv-len 4096 --iters 1 --no-check ||
    note "ncu stopped (see profile.txt)"
  # The sampling kernels run in clusters and share distributed shared
  # memory, which kernel replay could not profile ("Unknown Error" with
  # --set full): replay the whole application instead, one top-p launch at
  # B 512 (the second warm-up launch: timed launches wait on a host
  # callback), for where its warps stall and how often the schedulers issue.
  note "Nsight Compute: one top-p launch at B 512 (application replay)"
  logged '>' "$out/profile-sampling.txt" timeout 240 ncu --replay-mode application --kernel-name regex:sampling_kernel \
    --launch-skip 1 --launch-count 1 --section WarpStateStats --section SchedulerStats --section Occupancy \
    --section LaunchStats "$build_dir/bench/kvserve" bench top-p --batch 512 --device cuda --iters 1 --warmup 2 \
    --no-check || note "ncu stopped (see profile-sampling.txt)"
}

# Issue 14: where the wgmma prefill kernel's time goes, one launch at
# (B 8, L 4096, D 128, causal): pipe utilisation, stalls, shared-memory banks.
profile_prefill() {
  note "Nsight Compute: one wgmma prefill launch at (B 8, L 4096, D 128)"
  logged '>' "$out/profile-prefill.txt" timeout 240 ncu --kernel-name regex:multi_query_sm90 --launch-skip 1 \
    --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section SchedulerStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis_Tables \
    "$build_dir/bench/kvserve" bench prefill --batch 8 --seq-len 4096 --iters 1 --warmup 2 --no-check ||
    note "ncu stopped (see profile-prefill.txt)"
  dry || grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Issued Ipc|No Eligible|Stall|Pipe|Bank" \
    "$out/profile-prefill.txt" | head -40
}

# The tables, last: sampling and norm rows, issue 4's summary, the A/B table.
summary() {
  if ! dry && stage sampling; then
    echo "=== sampling: PyTorch peers (us)"
    tail -12 "$out/sampling-peers.log" 2>/dev/null
    echo "=== sampling: kvserve (op, shape, time us, TB/s, % copy, TFLOP/s, check)"
    grep -E '^(top|min|mask|renorm|spec|penalty)' "$out/sampling.log" 2>/dev/null | cut -c1-150
    if [ -f "$out/sampling-baseline.log" ]; then
      echo "=== sampling: baseline $baseline_src, same call"
      grep -E '^(top|min|mask|renorm|spec|penalty)' "$out/sampling-baseline.log" | cut -c1-150
    fi
  fi
  if ! dry && stage norm; then
    echo "=== norms: PyTorch peers"
    tail -4 "$out/norm-peers.log" 2>/dev/null
    echo "=== norms: kvserve (op, shape, time us, TB/s, % copy, TFLOP/s, check)"
    grep -E '^(rmsnorm|fused|qk)' "$out/norm.log" 2>/dev/null | cut -c1-150
  fi
  if ! dry && stage prefill; then
    echo "=== prefill (issue 14): kvserve wgmma"
    grep -hE '^(prefill|paged-prefill) ' "$out/prefill.log" 2>/dev/null | cut -c1-160
    echo "=== prefill: kvserve mma.sync (KVSERVE_MULTI_QUERY_KERNEL=mma_sync)"
    grep -hE '^(prefill|paged-prefill) ' "$out/prefill-mma_sync.log" 2>/dev/null | cut -c1-160
    echo "=== prefill: SDPA peers"
    tail -20 "$out/prefill-peers.log" 2>/dev/null
  fi
  x python3 bench/peers/summarize.py "$build_dir/bench-json" "$out/peers.json" "$out/results.json" "$out/bench.log"
  if [ -n "$baseline_src" ]; then
    x python3 bench/peers/benchmarks.py ab "$out/runs" "$build_dir/bench-json" "$baseline_build/bench-json" \
      --json "$out/ab.json" --baseline-name "$baseline_src"
  fi
  note "exit status $status (logs in $out)"
}

on_term() {
  trap - TERM
  status=124
  note "stopped by SIGTERM (the caller's timeout?): the tables of what ran"
  summary
  exit 124
}
trap on_term TERM

dry && note "dry run: commands are printed, not run"
dry || mkdir -p "$out"
x rm -rf "$out/runs"
x mkdir -p "$out/runs"
logged '>' "$out/device.txt" nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
dry || cat "$out/device.txt"
if [ -n "$baseline_src" ] && { stage bench || stage prefill || stage sampling || stage norm; }; then start_baseline_build; fi
for s in build tests memcheck racecheck demo prefill bench peers sampling norm profile profile_prefill; do
  stage "$s" && "$s"
done
summary
exit $status
