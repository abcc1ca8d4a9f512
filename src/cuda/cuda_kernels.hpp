// What the CUDA backend offers (host-only declarations; no CUDA headers).
// Ops declared here have CUDA kernels; their configurations are the rows of
// the kernel table (src/cuda/kernel_table.cpp).
#pragma once

#include <vector>

#include "core/backends.hpp"  // the primary cuda_kernel<Op> these specialise
#include "kvserve/attention.hpp"

namespace kvserve::detail {

template <>
Result<Kernel<BatchPagedDecode>> cuda_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc&, Device);

// The kernel table as data, for `kvserve list` and the docs.
std::vector<CompiledKernel> cuda_compiled_kernels();

}  // namespace kvserve::detail
