#!/usr/bin/env bash
# The Rust crates on a GPU machine: builds kvserve with the CUDA backend
# (sm_90a; tests and CLI off), installs it into a scratch prefix, runs
# `cargo test` on the crates against it, then the example that runs paged
# decode and sampling on cuda:0 through the Rust API and compares them with
# the CPU backend (the C++ reference). Each step is bounded by `timeout`;
# logs go under $OUT (default ./gpu-rust-out). Exit status: 0 when all pass.
#   KVSERVE_BUILD_DIR (default build-gpu-rust), KVSERVE_CUDA_ARCHS (default 90a), KVSERVE_JOBS (default 16)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-$PWD/gpu-rust-out}
build=${KVSERVE_BUILD_DIR:-build-gpu-rust}
archs=${KVSERVE_CUDA_ARCHS:-90a}
jobs=${KVSERVE_JOBS:-16}
mkdir -p "$out"
status=0

step() {  # step NAME SECONDS COMMAND...: runs it under timeout, logs to $out/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name (timeout ${limit}s)"
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  echo "== $name: exit $rc"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
# The GPU machine has no Rust toolchain and reaches no registry: there the
# example is built on a machine with cargo against a CUDA build of the same
# commit (statically linked, cudart_static) and carried, e.g.
#   KVSERVE_RUST_EXAMPLE=.carry/rust/gpu_decode_sampling bash scripts/gpu_rust.sh
if [ -n "${KVSERVE_RUST_EXAMPLE:-}" ]; then
  step gpu_example 120 "$KVSERVE_RUST_EXAMPLE"
  exit $status
fi
command -v cargo >/dev/null || { echo "gpu_rust: FAIL: no cargo on this machine (bash scripts/install-deps.sh installs Debian's; or KVSERVE_RUST_EXAMPLE)"; exit 1; }
nvidia-smi -L >"$out/nvidia-smi.txt" 2>&1 || echo "note: nvidia-smi failed (see $out/nvidia-smi.txt)"
step configure 300 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVSERVE_ENABLE_CUDA=ON \
  -DKVSERVE_CUDA_ARCHS="$archs" -DKVSERVE_ENABLE_TESTS=OFF -DKVSERVE_ENABLE_CLI=OFF || exit 1
step build 1200 cmake --build "$build" -j "$jobs" || exit 1
prefix=$(cd "$build" && pwd)/rust-prefix
rm -rf "$prefix"
step install 120 cmake --install "$build" --prefix "$prefix" || exit 1
export KVSERVE_DIR=$prefix CARGO_TARGET_DIR=$prefix/../rust-target
step cargo_test 900 cargo test --offline --manifest-path rust/Cargo.toml --workspace
step gpu_example 300 cargo run --offline --manifest-path rust/Cargo.toml -p kvserve --example gpu_decode_sampling
echo "gpu_rust: $([ "$status" -eq 0 ] && echo PASS || echo FAIL) (logs in $out)"
exit "$status"
