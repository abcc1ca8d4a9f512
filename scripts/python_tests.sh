#!/usr/bin/env bash
# The Python package's tests: `pip install .` into a virtual environment under
# the build directory, then pytest over tests/python. Called by scripts/test.sh
# after the C++ tests. torch and transformers are installed too (best effort,
# KVSERVE_PYTHON_TORCH=0 skips them) for kvserve.flashinfer's tests and the HF
# example on CPU tensors; without them those tests skip.
#
# The package is built CPU-only here (KVSERVE_PYTHON_CUDA=1 to build the CUDA
# backend too): scripts/test.sh has just compiled every CUDA kernel once for
# the C++ tests, a second compile for the wheel would double CI's longest
# step, and the machine CI runs on has no GPU to run them on. The GPU machine
# builds the package with CUDA (scripts/gpu_python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath -m "${1:-${KVSERVE_BUILD_DIR:-build}}")
venv=$build/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
cuda=OFF
[ "${KVSERVE_PYTHON_CUDA:-0}" = 1 ] && cuda=ON
"$venv/bin/python" -m pip install -q ${KVSERVE_PIP_ARGS:-} ".[test]" \
  -C cmake.define.KVSERVE_ENABLE_CUDA=$cuda -C build-dir="$build/python-build"
if [ "${KVSERVE_PYTHON_TORCH:-1}" != 0 ] && ! "$venv/bin/python" -c "import torch, transformers" 2>/dev/null; then
  timeout 900 "$venv/bin/python" -m pip install -q torch transformers ||
    echo "note: torch / transformers could not be installed; kvserve.flashinfer and HF example tests skip" >&2
fi
# From outside the source tree, so the installed package is what is tested.
cd tests/python
"$venv/bin/python" -m pytest -q -p no:cacheprovider .
