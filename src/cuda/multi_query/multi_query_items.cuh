// The work items of the multi-query kernels (mma.sync and the sm_90a
// warp-specialised one), as each block reads them: a block's item (given by
// the schedule or derived from the prefill requests), the page of a key, and
// the keys each query row of the item sees, the warp's union and
// intersection of those keys, the write of a finished row and the launch of
// a grid of (KV head, item) blocks.
#pragma once

#include <cuda_runtime.h>

#include <climits>

#include "cuda/common/device_types.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/multi_query/multi_query_params.hpp"

namespace kvserve::detail::cuda {

// The page holding key `key` of an item's sequence (loaded a tile ahead of
// its copies); contiguous K/V (indices null) is page 0, slot first row + key.
__device__ __forceinline__ int page_of_key(const MultiQueryParams& p, const std::int32_t* indices,
                                           std::int32_t page_base, int key) {
  if (indices == nullptr) return 0;
  return indices[page_base + p.pool.page_index(key)];
}
// The work of block `y`: item y, or the prefill tile y counted from the
// last (the tiles whose queries see the most keys start first). Returns
// false for blocks past the schedule.
__device__ __forceinline__ bool load_item(const MultiQueryParams& p, int y, MultiQueryItem* item) {
  if (p.items != nullptr) {
    *item = p.items[y];  // read before the count is known: two independent loads
    return y < *p.num_items;
  }
  const MultiQueryRequest* const requests = p.requests != nullptr ? p.requests : p.single;
  const int n = p.requests != nullptr ? *p.num_items : 1, total = requests[n].first_tile;
  if (y >= total) return false;
  const int tile = total - 1 - y;
  int lo = 0, hi = n - 1;  // the last request whose first tile is <= tile
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (requests[mid].first_tile <= tile) lo = mid;
    else hi = mid - 1;
  }
  const MultiQueryRequest r = requests[lo];
  const int row_begin = (tile - r.first_tile) * p.rows_per_tile;
  const int last_row = min(row_begin + p.rows_per_tile, r.q_len * p.group) - 1;
  const int pos0 = r.kv_len - r.q_len;
  const int first_pos = pos0 + row_begin / p.group, last_pos = pos0 + last_row / p.group;
  *item = MultiQueryItem{};
  item->q_row0 = r.q_row0;
  item->num_tokens = r.q_len;
  item->row_begin = row_begin;
  item->page_base = r.page_base;
  item->kv_len = r.kv_len;
  item->kv_begin = p.window_left >= 0 ? max(0, first_pos - p.window_left) : 0;
  item->kv_end = max(item->kv_begin, p.causal ? min(r.kv_len, last_pos + 1) : r.kv_len);
  item->pos0 = pos0;
  return true;
}

// The keys [lo, hi) row x of the item's segment sees (causal, window,
// [kv_begin, kv_end)); lo = hi = 0 for a row past the segment or one that
// sees nothing.
__device__ __forceinline__ void row_key_range(const MultiQueryParams& p, const MultiQueryItem& item, int x,
                                              int segment_rows, int* lo, int* hi) {
  *lo = 0, *hi = 0;
  if (x >= segment_rows) return;
  const int token = x / p.group;
  const int pos = item.pos0 == kPositionFromRowInfo ? p.row_info[item.q_row0 + token].position : item.pos0 + token;
  const int top = p.causal ? min(item.kv_len, pos + 1) : item.kv_len;
  const int bottom = p.window_left >= 0 ? max(0, pos - p.window_left) : 0;
  *lo = max(bottom, item.kv_begin);
  *hi = min(top, item.kv_end);
  if (*hi <= *lo) *lo = 0, *hi = 0;
}

// The union [union_lo, union_hi) and intersection [inter_lo, inter_hi) of
// the key ranges of a warp's rows, each lane's partial values in, the warp's
// out: tiles outside the union are skipped, tiles inside the intersection
// need no mask.
__device__ __forceinline__ void reduce_ranges_over_warp(int* union_lo, int* union_hi, int* inter_lo, int* inter_hi) {
#pragma unroll
  for (int off = 1; off < 32; off *= 2) {
    *union_lo = min(*union_lo, __shfl_xor_sync(0xffffffffu, *union_lo, off));
    *union_hi = max(*union_hi, __shfl_xor_sync(0xffffffffu, *union_hi, off));
    *inter_lo = max(*inter_lo, __shfl_xor_sync(0xffffffffu, *inter_lo, off));
    *inter_hi = min(*inter_hi, __shfl_xor_sync(0xffffffffu, *inter_hi, off));
  }
}

// Normalises and writes segment row x from this lane's part of its MMA
// accumulator (the m16n8 layout both kernels share: columns col, col + 1 of
// every 8-column block n at acc[4 n + e], acc[4 n + e + 1]; the quad of lanes
// sharing the row sums its denominators here). A row that saw no key writes
// 0 and lse -inf. Direct output or, for cascade items, a partial slot.
template <DType T, int HeadDim>
__device__ __forceinline__ void write_row(const MultiQueryParams& p, const MultiQueryItem& item, int kv_head, int x,
                                          int segment_rows, SoftmaxState st, const float* acc, int e, int lane) {
  st.d += __shfl_xor_sync(0xffffffffu, st.d, 1);
  st.d += __shfl_xor_sync(0xffffffffu, st.d, 2);
  if (x >= segment_rows) return;
  const int col = (lane % 4) * 2;
  const std::int64_t q_row = item.q_row0 + x / p.group;
  const int qo_head = kv_head * p.group + x % p.group;
  const float inv = st.d > 0.f ? 1.f / st.d : 0.f;
  const float lse = st.lse2() * kLn2;
  if (p.out != nullptr) {
    auto* const dst = static_cast<storage_t<T>*>(p.out) + q_row * p.out_stride_t + qo_head * p.out_stride_h + col;
#pragma unroll
    for (int n = 0; n < HeadDim / 8; ++n)
      *reinterpret_cast<unsigned*>(dst + n * 8) = pack2<T>(acc[4 * n + e] * inv, acc[4 * n + e + 1] * inv);
    if (p.lse != nullptr && lane % 4 == 0) p.lse[q_row * p.lse_stride_t + qo_head * p.lse_stride_h] = lse;
  } else {
    const std::int64_t slot = p.row_info[q_row].slot_base + item.slot;
    float* const dst = p.partial_out + (slot * p.num_qo_heads + qo_head) * HeadDim + col;
#pragma unroll
    for (int n = 0; n < HeadDim / 8; ++n)
      *reinterpret_cast<float2*>(dst + n * 8) = make_float2(acc[4 * n + e] * inv, acc[4 * n + e + 1] * inv);
    if (lane % 4 == 0) p.partial_lse[slot * p.num_qo_heads + qo_head] = lse;
  }
}

// Launches `kernel` over (KV heads, p.max_items) blocks of `threads` with
// `smem_bytes` of dynamic shared memory; the cudaError_t as an int.
template <class Kernel>
int launch_item_grid(Kernel kernel, int threads, int smem_bytes, const MultiQueryParams& p, void* stream) {
  if (p.max_items == 0) return static_cast<int>(cudaSuccess);
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (e != cudaSuccess) return static_cast<int>(e);
  const dim3 grid(static_cast<unsigned>(p.num_kv_heads), static_cast<unsigned>(p.max_items));
  kernel<<<grid, threads, smem_bytes, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvserve::detail::cuda
