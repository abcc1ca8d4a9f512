// What the append kernel sees (host-visible, no CUDA types). One kernel
// serves the three append ops: PagedKvAppend (decode or ragged rows into a
// paged K/V pool), PagedMlaAppend (ckv and kpe rows into their two pools: one
// "head" whose K and V widths differ) and KvCacheAppend (rows into a
// contiguous [B, H, L_max, D] cache: a pool whose page is the batch row).
// One thread writes one 16-byte chunk of a row's K and V; into an fp8 pool it
// first quantises the matching elements of the new row.
#pragma once

#include <cstdint>

#include "cuda/common/paged_pool.hpp"
#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// fp8 pools with per-head scales: the kernel takes up to this many heads'
// inverse scales by value (a plan for more heads answers Unsupported).
inline constexpr int kAppendMaxScaledHeads = 64;

// How a row finds its slot.
enum class AppendSlots : std::uint8_t {
  paged_last,    // paged, row b -> the last slot of request b
  paged_ragged,  // paged, row i -> (batch_indices[i], positions[i])
  contiguous,    // row i -> batch row batch_indices[i] (i without them), slot positions[i]; page = batch row
};

struct AppendParams {
  AppendSlots slots = AppendSlots::paged_last;
  std::int64_t rows = 0;  // N
  int num_kv_heads = 0;
  int k_dim = 0, v_dim = 0;  // row widths in elements, multiples of the 16-byte chunk
  std::int64_t batch = 0;    // B: requests in the page table, or batch rows of the contiguous cache
  // New rows [N, Hkv, k_dim] and [N, Hkv, v_dim]; strides in elements.
  const void* k = nullptr;
  const void* v = nullptr;
  std::int64_t k_stride_n = 0, k_stride_h = 0, v_stride_n = 0, v_stride_h = 0;
  PagedPool pool;
  std::int64_t num_pages = 0;  // paged: a page id outside [0, num_pages) is skipped
  std::int64_t max_len = 0;    // contiguous: L_max
  const std::int32_t* indptr = nullptr;
  const std::int32_t* indices = nullptr;
  const std::int32_t* last_page_len = nullptr;
  const std::int32_t* batch_indices = nullptr;  // paged_ragged; optional for contiguous
  const std::int32_t* positions = nullptr;      // paged_ragged and contiguous
  // fp8 pools: 1 / scale per head (a per-tensor scale repeated).
  float k_inv_scale[kAppendMaxScaledHeads] = {};
  float v_inv_scale[kAppendMaxScaledHeads] = {};
};

// Launches the kernel on `stream`; returns the cudaError_t as an int.
using AppendLaunch = int (*)(const AppendParams& p, void* stream);
// The launchers of every append row, per family (kv_cache/append.cu).
RowLaunchers<AppendLaunch> paged_append_launchers();
RowLaunchers<AppendLaunch> mla_append_launchers();
RowLaunchers<AppendLaunch> cache_append_launchers();

}  // namespace kvserve::detail::cuda
