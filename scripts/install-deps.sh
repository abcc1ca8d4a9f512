#!/usr/bin/env bash
# Installs what a build needs on Debian/Ubuntu when it is missing: a C++20
# compiler, CMake, Ninja, GoogleTest, cargo (Debian's, for rust/), Python's
# venv. The CUDA toolkit (nvcc) is optional and not installed here; the CUDA
# backend is built when it is found.
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v g++ >/dev/null || missing+=(g++)
[ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev libgmock-dev)
command -v cargo >/dev/null || missing+=(cargo)
# Python with venv and pip, for the Python package's tests (scripts/python_tests.sh).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv python3-pip)
python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
  2>/dev/null || missing+=(python3-dev)
# clang with libFuzzer and the sanitizer runtimes, for the fuzz tier of
# scripts/test.sh (KVSERVE_FUZZ=0 skips both).
if [ "${KVSERVE_FUZZ:-1}" != 0 ]; then
  command -v clang++ >/dev/null || missing+=(clang)
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
    || [ "$(uname -m)" != x86_64 ] || missing+=(libclang-rt-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}"
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "note: nvcc is at /usr/local/cuda/bin but not on PATH; add it to build the CUDA backend" >&2
fi
