#!/usr/bin/env bash
# Builds kvserve and runs its main job: `kvserve demo --check`, a
# continuous-batching serving loop over every op, each step verified against
# the fp64 oracle (ops with a CUDA kernel run on the GPU when one is present).
# Extra arguments go to the demo (kvserve demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${KVSERVE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${KVSERVE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "${KVSERVE_JOBS:-$(nproc)}" --target kvserve_cli
exec "$build/bench/kvserve" demo --check "$@"
