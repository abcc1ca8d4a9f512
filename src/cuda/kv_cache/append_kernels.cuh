// The append kernel: each thread moves one 16-byte chunk of a row's K and V
// (PagedKvAppend's K and V, PagedMlaAppend's ckv and kpe: a chunk index past
// a side's width moves nothing there). It loads its chunks of the new rows
// first, then finds the row's slot (append_params.hpp: AppendSlots) through a
// chain of dependent index loads that the data loads are already in flight
// behind, then stores. A row whose request, position or page id is out of
// range is skipped (kv_cache.hpp: never written outside the cache). (The
// first version, one thread per chunk of K or of V with the data load after
// the chain, moved 8192 ragged rows at 69 % of copy bandwidth.)
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/common/device_types.cuh"
#include "cuda/kv_cache/append_params.hpp"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {

// Stores the pool elements of one chunk; into an fp8 pool the row's elements
// are first quantised: stored = real / scale, rounded to nearest even, saturating.
template <DType Row, DType Pool, int Elems>
__device__ __forceinline__ void store_chunk(storage_t<Pool>* dst, const storage_t<Row> (&src)[Elems], float inv_scale) {
  if constexpr (Row == Pool) {
    copy16<16>(dst, src);
  } else {
    static_assert(is_fp8(Pool), "only fp8 pools take rows of another type");
    float x[Elems];
    widen<Row, Elems>(src, x);
    constexpr __nv_fp8_interpretation_t kind = Pool == DType::fp8_e4m3 ? __NV_E4M3 : __NV_E5M2;
    alignas(16) __nv_fp8x2_storage_t packed[Elems / 2];
#pragma unroll
    for (int i = 0; i < Elems / 2; ++i)
      packed[i] = __nv_cvt_float2_to_fp8x2(make_float2(x[2 * i] * inv_scale, x[2 * i + 1] * inv_scale),
                                           __NV_SATFINITE, kind);
    copy16<16>(dst, packed);
  }
}

// Where row `row` lands: (page, slot) of the pool, or found = false.
struct AppendSlot {
  bool found = false;
  std::int64_t page = 0, slot = 0;
};
__device__ __forceinline__ AppendSlot find_slot(const AppendParams& p, std::int64_t row) {
  std::int64_t b = row, pos = 0;
  if (p.slots != AppendSlots::paged_last) {
    if (p.batch_indices) b = p.batch_indices[row];
    pos = p.positions[row];
  }
  if (b < 0 || b >= p.batch) return {};
  if (p.slots == AppendSlots::contiguous) {
    if (pos < 0 || pos >= p.max_len) return {};
    return {true, b, pos};
  }
  const std::int64_t first = p.indptr[b], pages = p.indptr[b + 1] - first;
  if (pages <= 0) return {};  // a request with no pages (decode: a padding row)
  const std::int64_t len = (pages - 1) * p.pool.page_size + p.last_page_len[b];
  if (p.slots == AppendSlots::paged_last) pos = len - 1;
  if (pos < 0 || pos >= len) return {};
  const std::int64_t page = p.indices[first + p.pool.page_index(pos)];
  if (page < 0 || page >= p.num_pages) return {};
  return {true, page, p.pool.slot(pos)};
}

template <DType Row, DType Pool>
__global__ void __launch_bounds__(256) append_kernel(const __grid_constant__ AppendParams p) {
  using row_t = storage_t<Row>;
  using pool_t = storage_t<Pool>;
  constexpr int kElems = 16 / static_cast<int>(sizeof(pool_t));  // pool elements per thread
  const int k_chunks = p.k_dim / kElems, v_chunks = p.v_dim / kElems;
  const int chunks = max(k_chunks, v_chunks);
  const std::int64_t index = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t row = index / (static_cast<std::int64_t>(p.num_kv_heads) * chunks);
  if (row >= p.rows) return;
  const int head = static_cast<int>(index / chunks % p.num_kv_heads), chunk = static_cast<int>(index % chunks);
  const int e0 = chunk * kElems;
  const bool has_k = chunk < k_chunks, has_v = chunk < v_chunks;

  alignas(16) row_t k[kElems], v[kElems];
  if (has_k)
    copy16<kElems * sizeof(row_t)>(k, static_cast<const row_t*>(p.k) + row * p.k_stride_n + head * p.k_stride_h + e0);
  if (has_v)
    copy16<kElems * sizeof(row_t)>(v, static_cast<const row_t*>(p.v) + row * p.v_stride_n + head * p.v_stride_h + e0);

  const AppendSlot at = find_slot(p, row);
  if (!at.found) return;
  const int scaled_head = head % kAppendMaxScaledHeads;
  if (has_k)
    store_chunk<Row, Pool>(static_cast<pool_t*>(p.pool.k) + p.pool.k_offset(at.page, at.slot, head) + e0, k,
                           p.k_inv_scale[scaled_head]);
  if (has_v)
    store_chunk<Row, Pool>(static_cast<pool_t*>(p.pool.v) + p.pool.v_offset(at.page, at.slot, head) + e0, v,
                           p.v_inv_scale[scaled_head]);
}

template <DType Row, DType Pool>
int launch_append(const AppendParams& p, void* stream) {
  constexpr int kElems = 16 / static_cast<int>(sizeof(storage_t<Pool>));
  const std::int64_t threads = p.rows * p.num_kv_heads * (std::max(p.k_dim, p.v_dim) / kElems);
  if (threads == 0) return static_cast<int>(cudaSuccess);
  const auto blocks = static_cast<unsigned>((threads + 255) / 256);
  append_kernel<Row, Pool><<<blocks, 256, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvserve::detail::cuda
