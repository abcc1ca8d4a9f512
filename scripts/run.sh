#!/usr/bin/env bash
# Builds kvserve and runs its main job: the benchmark over a serving-shaped
# decode workload, checked against the fp64 oracle (on the GPU when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${KVSERVE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${KVSERVE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "${KVSERVE_JOBS:-$(nproc)}" --target kvserve_cli
exec "$build/bench/kvserve" bench "$@"
