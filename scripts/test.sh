#!/usr/bin/env bash
# Builds kvserve (with the CUDA backend when nvcc is found) and runs the tests.
# Installs the build tools first on a fresh Debian/Ubuntu machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${KVSERVE_BUILD_DIR:-build}
jobs=${KVSERVE_JOBS:-$(nproc)}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${KVSERVE_CMAKE_ARGS:-}
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" -j "$jobs" --output-on-failure

# The host code once more under AddressSanitizer and UndefinedBehaviorSanitizer
# in a CPU-only build: every test of the API boundary (bad ranks, bounds,
# validation) and the CPU backend's op tests. Device code is covered by
# compute-sanitizer on the GPU (scripts/gpu_check.sh). KVSERVE_SANITIZE=0 skips.
if [ "${KVSERVE_SANITIZE:-1}" != 0 ]; then
  san=$build-sanitize
  cmake -S . -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVSERVE_ENABLE_CUDA=OFF \
    -DKVSERVE_ENABLE_CLI=OFF -DKVSERVE_SANITIZE=address,undefined >/dev/null
  cmake --build "$san" -j "$jobs" --target kvserve_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$san/tests/kvserve_tests" --gtest_brief=1 --gtest_filter="${KVSERVE_SANITIZE_FILTER:-*}"
fi

# The thread tests (tests/api/thread_test.cpp: one plan run from several
# threads, plans created on several threads) under ThreadSanitizer, in a
# CPU-only build of the library and that one binary: about 1 minute on 2
# cores. KVSERVE_TSAN=0 skips.
if [ "${KVSERVE_TSAN:-1}" != 0 ]; then
  tsan=$build-tsan
  cmake -S . -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVSERVE_ENABLE_CUDA=OFF \
    -DKVSERVE_ENABLE_CLI=OFF -DKVSERVE_SANITIZE=thread >/dev/null
  cmake --build "$tsan" -j "$jobs" --target kvserve_thread_tests
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "$tsan/tests/kvserve_thread_tests" --gtest_brief=1
fi

# The libFuzzer targets (tests/fuzz/, docs/reliability.md): a clang build of
# kvserve with ASan + UBSan and coverage, each target for KVSERVE_FUZZ_SECONDS
# (15) over its seed corpus; any crash, sanitizer report, leak or hang fails.
# About 4 minutes on 2 cores, the build included. KVSERVE_FUZZ=0 skips.
if [ "${KVSERVE_FUZZ:-1}" != 0 ]; then
  fuzz=$build-fuzz
  cmake -S . -B "$fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVSERVE_ENABLE_CUDA=OFF \
    -DKVSERVE_ENABLE_CLI=OFF -DKVSERVE_ENABLE_TESTS=OFF -DKVSERVE_ENABLE_FUZZ=ON \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  cmake --build "$fuzz" -j "$jobs" --target kvserve_fuzz
  bash scripts/fuzz.sh "$fuzz" "${KVSERVE_FUZZ_SECONDS:-15}"
fi

# The Rust crates (rust/) against the library built above: installed into a
# scratch prefix whose kvserve.pc kvserve-sys reads, so nothing is rebuilt.
# Offline: the crates use the standard library only. KVSERVE_RUST=0 skips.
if [ "${KVSERVE_RUST:-1}" != 0 ]; then
  abs_build=$(cd "$build" && pwd)
  rm -rf "$abs_build/rust-prefix"
  cmake --install "$build" --prefix "$abs_build/rust-prefix" >/dev/null
  KVSERVE_DIR=$abs_build/rust-prefix CARGO_TARGET_DIR=$abs_build/rust-target \
    cargo test --offline --manifest-path rust/Cargo.toml --workspace -j "$jobs"
fi

# The Python package (pip install . into a venv under the build dir, then
# pytest); KVSERVE_PYTHON_TESTS=0 skips. scripts/python_tests.sh says why it
# builds CPU-only.
if [ "${KVSERVE_PYTHON_TESTS:-1}" != 0 ]; then
  bash scripts/python_tests.sh "$build"
fi
