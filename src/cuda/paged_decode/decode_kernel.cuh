// The paged-decode kernel: one block per (work item, KV head, query-head
// chunk). K/V tiles stream through shared memory with cp.async (each byte
// loaded once for the whole query-head group), every thread row scores its
// query head against a subset of the tile's tokens, rows of one head merge
// their online-softmax states at the end, and a request split over several
// blocks is merged by whichever of its blocks finishes last.
#pragma once

#include <cuda_runtime.h>

#include "cuda/paged_decode/decode_epilogue.cuh"
#include "cuda/paged_decode/decode_mma_kernel.cuh"
#include "cuda/paged_decode/decode_params.hpp"
#include "cuda/common/device_types.cuh"
#include "cuda/common/kernel_attributes.cuh"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {

template <DType Q, DType KV, int HeadDim>
struct DecodeKernelTraits {
  using q_t = storage_t<Q>;
  using kv_t = storage_t<KV>;
  static constexpr DecodeShape kShape = decode_shape(Q, KV, HeadDim);
  static constexpr int kThreads = kShape.threads;
  static constexpr int kElems = kShape.elems;
  static constexpr int kLanes = kShape.lanes;
  static constexpr int kRows = kShape.rows;
  static constexpr int kTile = kShape.tile_tokens;
  static constexpr int kStages = kShape.stages;
  static constexpr int kVec = 16 / static_cast<int>(sizeof(kv_t));  // elements per 16-byte copy
  static constexpr int kCopiesPerRow = HeadDim / kVec;
  static constexpr int kCopiesPerThread = kTile * kCopiesPerRow / kThreads;
  static constexpr int kTileElems = kTile * HeadDim;
  static constexpr std::size_t kSmemBytes = std::size_t{2} * kStages * kTileElems * sizeof(kv_t);
  // Tokens a row scores before one rescale of its accumulator: four
  // independent dot products and shuffle chains in flight.
  static constexpr int kUnroll = 4;

  static_assert(kLanes <= 32 && 32 % kLanes == 0, "a head's lanes sit in one warp");
  static_assert(kTile * kCopiesPerRow % kThreads == 0, "copies split evenly over the block");
  static_assert(kSmemBytes <= 48 * 1024, "stays under the default dynamic shared-memory limit");
  // The end-of-loop merge reuses the stages: rows * (head_dim + 2) floats and a flag.
  static_assert((kRows * (kElems * kLanes + 2) + 1) * sizeof(float) <= kSmemBytes, "row merge fits in the stages");
};

template <DType Q, DType KV, int HeadDim>
__global__ void __launch_bounds__(DecodeKernelTraits<Q, KV, HeadDim>::kThreads, kDecodeBlocksPerSm)
    paged_decode_kernel(const __grid_constant__ DecodeParams p) {
  using T = DecodeKernelTraits<Q, KV, HeadDim>;
  using q_t = typename T::q_t;
  using kv_t = typename T::kv_t;
  extern __shared__ __align__(128) unsigned char smem[];  // one declaration per TU: same alignment as the MMA kernel
  kv_t* const k_tiles = reinterpret_cast<kv_t*>(smem);  // [stages][tile][HeadDim]
  kv_t* const v_tiles = k_tiles + T::kStages * T::kTileElems;

  // The item is read before its count is known (the array holds max_items):
  // two independent loads instead of a chain of two.
  const DecodeWorkItem item = p.items[blockIdx.y];
  if (static_cast<int>(blockIdx.y) >= *p.num_items) return;
  const int kv_head = blockIdx.x / p.head_chunks, head_chunk = blockIdx.x % p.head_chunks;
  const int tid = threadIdx.x, row = tid / T::kLanes, lane = tid % T::kLanes;
  // Row r serves query head r / token_slots of this chunk and the tokens
  // congruent to r % token_slots of each tile. Rows past the group compute on
  // a clamped head (so every lane joins every shuffle) and write nothing.
  const int head_in_chunk = row / p.token_slots, slot = row % p.token_slots;
  const int head_in_group = head_chunk * p.heads_per_block + head_in_chunk;
  const bool row_writes = head_in_chunk < p.heads_per_block && head_in_group < p.group;
  const int qo_head = kv_head * p.group + min(head_in_group, p.group - 1);
  const int b = item.request;

  float q[T::kElems];
  {
    alignas(16) q_t raw[T::kElems];
    copy16<T::kElems * sizeof(q_t)>(
        raw, static_cast<const q_t*>(p.q) + b * p.q_stride_b + qo_head * p.q_stride_h + lane * T::kElems);
    widen<Q, T::kElems>(raw, q);
    const float scale = p.q_scale * (p.k_scale ? p.k_scale[kv_head] : 1.f);
#pragma unroll
    for (int e = 0; e < T::kElems; ++e) q[e] *= scale;
  }

  // A tile's copies need its page ids, loaded from the page table one tile
  // ahead into registers (fetch_pages) so that issuing the copies (issue_tile)
  // never waits on a dependent global load. Tokens past item.end are
  // zero-filled, so a masked token's weight 0 never meets an uninitialised
  // (possibly NaN) value.
  const std::int64_t page_base = item.page_base;
  const kv_t* const k_head = static_cast<const kv_t*>(p.pool.k) + kv_head * p.pool.k_stride_head;
  const kv_t* const v_head = static_cast<const kv_t*>(p.pool.v) + kv_head * p.pool.v_stride_head;
  int page[T::kCopiesPerThread], in_page[T::kCopiesPerThread];  // in_page < 0: past the end
  auto fetch_pages = [&](int tile) {
    const int tile_begin = item.begin + tile * T::kTile;
#pragma unroll
    for (int i = 0; i < T::kCopiesPerThread; ++i) {
      const int pos = tile_begin + (tid + i * T::kThreads) / T::kCopiesPerRow;
      const bool valid = pos < item.end;
      page[i] = valid ? p.indices[page_base + p.pool.page_index(pos)] : 0;
      in_page[i] = valid ? p.pool.slot(pos) : -1;
    }
  };
  auto issue_tile = [&](int stage) {
#pragma unroll
    for (int i = 0; i < T::kCopiesPerThread; ++i) {
      const int copy = tid + i * T::kThreads;
      const int token = copy / T::kCopiesPerRow, part = copy % T::kCopiesPerRow;
      const bool valid = in_page[i] >= 0;
      const std::int64_t pg = page[i], slot = valid ? in_page[i] : 0;
      const int smem_offset = stage * T::kTileElems + token * HeadDim + part * T::kVec;
      cp_async16(k_tiles + smem_offset, k_head + pg * p.pool.k_stride_page + slot * p.pool.k_stride_slot + part * T::kVec,
                 valid);
      cp_async16(v_tiles + smem_offset, v_head + pg * p.pool.v_stride_page + slot * p.pool.v_stride_slot + part * T::kVec,
                 valid);
    }
  };

  const int num_tiles = (item.end - item.begin + T::kTile - 1) / T::kTile;
#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) {
    fetch_pages(s);
    issue_tile(s);
    cp_async_commit();
  }
  fetch_pages(T::kStages - 1);

  SoftmaxState state;
  float acc[T::kElems] = {};
  const int step = T::kUnroll * p.token_slots;
  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<T::kStages - 2>();
    __syncthreads();  // tile's stage is in; the stage computed last iteration is free again
    if (tile + T::kStages - 1 < num_tiles) issue_tile((tile + T::kStages - 1) % T::kStages);
    cp_async_commit();  // an empty group past the last tile keeps wait_group's count aligned
    fetch_pages(tile + T::kStages);

    const kv_t* const k_tile = k_tiles + (tile % T::kStages) * T::kTileElems + lane * T::kElems;
    const kv_t* const v_tile = v_tiles + (tile % T::kStages) * T::kTileElems + lane * T::kElems;
    const int tile_tokens = min(T::kTile, item.end - item.begin - tile * T::kTile);
    for (int base = 0; base < T::kTile; base += step) {
      float s[T::kUnroll];
      int token[T::kUnroll];
#pragma unroll
      for (int u = 0; u < T::kUnroll; ++u) {
        token[u] = base + u * p.token_slots + slot;
        const int at = token[u] < tile_tokens ? token[u] : 0;  // masked tokens read a real row
        alignas(16) kv_t raw[T::kElems];
        copy16<T::kElems * sizeof(kv_t)>(raw, k_tile + at * HeadDim);
        float k[T::kElems];
        widen<KV, T::kElems>(raw, k);
        s[u] = 0.f;
#pragma unroll
        for (int e = 0; e < T::kElems; ++e) s[u] = fmaf(q[e], k[e], s[u]);
      }
#pragma unroll
      for (int offset = T::kLanes / 2; offset > 0; offset /= 2)
#pragma unroll
        for (int u = 0; u < T::kUnroll; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], offset);
      float tile_max = -INFINITY;
#pragma unroll
      for (int u = 0; u < T::kUnroll; ++u) {
        if (p.cap_log2 > 0.f) s[u] = p.cap_log2 * tanhf(s[u]);
        if (token[u] >= tile_tokens) s[u] = -INFINITY;
        tile_max = fmaxf(tile_max, s[u]);
      }
      const float factor = state.rescale_to(tile_max);
#pragma unroll
      for (int e = 0; e < T::kElems; ++e) acc[e] *= factor;
#pragma unroll
      for (int u = 0; u < T::kUnroll; ++u) {
        const float w = state.weight(s[u]);
        state.d += w;
        const int at = token[u] < tile_tokens ? token[u] : 0;
        alignas(16) kv_t raw[T::kElems];
        copy16<T::kElems * sizeof(kv_t)>(raw, v_tile + at * HeadDim);
        float v[T::kElems];
        widen<KV, T::kElems>(raw, v);
#pragma unroll
        for (int e = 0; e < T::kElems; ++e) acc[e] = fmaf(w, v[e], acc[e]);
      }
    }
  }

  // Rows of one head merge into the head's first row, through the stages.
  cp_async_wait<0>();
  __syncthreads();
  float* const row_acc = reinterpret_cast<float*>(smem);            // [rows][HeadDim]
  float* const row_md = row_acc + T::kRows * T::kLanes * T::kElems;  // [rows][m, d]
#pragma unroll
  for (int e = 0; e < T::kElems; ++e) row_acc[row * HeadDim + lane * T::kElems + e] = acc[e];
  if (lane == 0) row_md[2 * row] = state.m, row_md[2 * row + 1] = state.d;
  __syncthreads();
  // Only each head's first row writes; every thread still reaches the
  // barriers below.
  const bool writer = slot == 0 && row_writes;
  float result[T::kElems] = {};
  float lse = -INFINITY;
  if (writer) {
    for (int other = row + 1; other < row + p.token_slots; ++other) {
      const float m_other = row_md[2 * other], d_other = row_md[2 * other + 1];
      const float m = fmaxf(state.m, m_other);
      if (m == -INFINITY) continue;  // neither has seen a key
      const float fa = exp2f(state.m - m), fb = exp2f(m_other - m);
      state.d = state.d * fa + d_other * fb;
      state.m = m;
#pragma unroll
      for (int e = 0; e < T::kElems; ++e)
        acc[e] = acc[e] * fa + row_acc[other * HeadDim + lane * T::kElems + e] * fb;
    }
    const float inv_d = state.d > 0.f ? (p.v_scale ? p.v_scale[kv_head] : 1.f) / state.d : 0.f;
#pragma unroll
    for (int e = 0; e < T::kElems; ++e) result[e] = acc[e] * inv_d;
    lse = state.lse2() * kLn2;
  }
  const int e0 = lane * T::kElems;
  if (writer) store_slice_result<Q, T::kElems>(p, item, qo_head, e0, HeadDim, result, lse, lane == 0);
  if (item.num_splits == 1) return;
  if (!arrive_last(p, item, kv_head, head_chunk, reinterpret_cast<int*>(row_md + 2 * T::kRows)) || !writer) return;
  // 32 floats of slices in flight: the kernel runs on 64 registers a thread.
  merge_slices<Q, T::kElems, (T::kElems < 32 ? 32 / T::kElems : 1)>(p, item, qo_head, e0, HeadDim, lane == 0);
}

template <DType Q, DType KV, int HeadDim>
int launch_decode(const DecodeParams& p, void* stream) {
  constexpr DecodeShape shape = decode_shape(Q, KV, HeadDim);
  static std::atomic<std::uint64_t> configured_devices{0};
  const auto kernel = [] {
    if constexpr (decode_shape(Q, KV, HeadDim).mma) return paged_decode_mma_kernel<KV, HeadDim>;
    else return paged_decode_kernel<Q, KV, HeadDim>;
  }();
  if (const cudaError_t e = configure_once(kernel, shape.smem_bytes, configured_devices); e != cudaSuccess)
    return static_cast<int>(e);
  // KV heads vary fastest, so the blocks of all heads of one slice run side by
  // side: in an NHD pool they read one token's heads (a 2 KB span at bf16
  // d=128) close together in time, which keeps DRAM pages open.
  const dim3 grid(p.num_kv_heads * p.head_chunks, p.max_items);
  kernel<<<grid, shape.threads, shape.smem_bytes, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

// A paged-decode row's launcher (instantiated by decode_<kv>.cu).
template <KernelRow R>
struct DecodeRow {
  static constexpr DecodeLaunch launch = &launch_decode<R.q, R.kv, R.head_dim>;
};

}  // namespace kvserve::detail::cuda
