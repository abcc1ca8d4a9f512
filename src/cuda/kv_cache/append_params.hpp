// What the paged-append kernel sees (host-visible, no CUDA types). One
// thread writes one 16-byte chunk of a pool row; into an fp8 pool it first
// quantises the matching 16 elements of the new row.
#pragma once

#include <cstdint>

#include "cuda/common/paged_pool.hpp"
#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// fp8 pools with per-head scales: the kernel takes up to this many heads'
// inverse scales by value (a plan for more heads answers Unsupported).
inline constexpr int kAppendMaxScaledHeads = 64;

struct AppendParams {
  std::int64_t rows = 0;  // N
  int num_kv_heads = 0, head_dim = 0;
  std::int64_t batch = 0;  // B (requests in the page table)
  // New rows [N, Hkv, D]; strides in elements.
  const void* k = nullptr;
  const void* v = nullptr;
  std::int64_t k_stride_n = 0, k_stride_h = 0, v_stride_n = 0, v_stride_h = 0;
  PagedPool pool;
  const std::int32_t* indptr = nullptr;
  const std::int32_t* indices = nullptr;
  const std::int32_t* last_page_len = nullptr;
  // Ragged mode; null in decode mode (row b -> last slot of request b).
  const std::int32_t* batch_indices = nullptr;
  const std::int32_t* positions = nullptr;
  // fp8 pools: 1 / scale per head (a per-tensor scale repeated).
  float k_inv_scale[kAppendMaxScaledHeads] = {};
  float v_inv_scale[kAppendMaxScaledHeads] = {};
};

// Launches the kernel on `stream`; returns the cudaError_t as an int.
using AppendLaunch = int (*)(const AppendParams& p, void* stream);
// The launcher of every append row (kv_cache/append.cu).
RowLaunchers<AppendLaunch> append_launchers();

}  // namespace kvserve::detail::cuda
