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
