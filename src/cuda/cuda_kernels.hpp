// What the CUDA backend offers (host-only declarations; no CUDA headers).
// Ops declared here have CUDA kernels; their configurations are the rows of
// the kernel table (src/cuda/kernel_table.cpp).
#pragma once

#include <vector>

#include "core/plan_state.hpp"
#include "kvserve/attention.hpp"

namespace kvserve::detail {

// The kernel table as data, for `kvserve list` and the docs.
std::vector<CompiledKernel> cuda_compiled_kernels();

}  // namespace kvserve::detail
