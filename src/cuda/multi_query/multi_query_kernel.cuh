// Multi-query attention over paged (or contiguous) KV on the tensor cores,
// f16 / bf16. One block per (work item, KV head): 4 warps, each owning 16
// query rows of the item's 64-row tile (rows are (token, head) pairs of the
// KV head's group, so GQA heads and several tokens fill the MMA rows). K/V
// tiles stream through shared memory with cp.async, `stages` deep; every warp
// scores its rows against the whole tile, S = Q K^T and O += P V with
// mma.sync m16n8k16 (fp32 accumulation), online softmax in base 2. Each row
// sees its own key range [lo, hi) (causal, window, split), so one kernel
// serves prefill, the cascade prefix (one row per request of a group) and the
// cascade suffix; a warp skips the tiles none of its rows can see.
#pragma once

#include <cuda_runtime.h>

#include "cuda/common/device_types.cuh"
#include "cuda/common/kv_tiles.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/multi_query/multi_query_items.cuh"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {

template <DType T, int HeadDim>
struct MultiQueryTraits {
  using t = storage_t<T>;
  static constexpr MultiQueryShape kShape = multi_query_shape(HeadDim);
  static constexpr int kThreads = kMultiQueryThreads;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kMTiles = kShape.m_tiles;  // 16-row MMA tiles per warp
  static constexpr int kWarpRows = 16 * kMTiles;
  static constexpr int kRows = kShape.rows;
  static constexpr int kTile = kShape.tile_tokens;
  static constexpr int kStages = kShape.stages;
  static constexpr int kChunks = HeadDim / 8;  // 16-byte chunks of a row
  static constexpr int kTileElems = kTile * HeadDim;
  using Tiles = KvTiles<kTile, HeadDim, kThreads>;
  static constexpr int kKSteps = HeadDim / 16;  // k-steps of S = Q K^T
  static constexpr int kSTiles = kTile / 8;     // n-tiles of S (8 keys each)
  static constexpr int kDTiles = HeadDim / 8;   // n-tiles of O
  static_assert(kRows == kWarps * kWarpRows, "each warp owns kMTiles MMA tiles of rows");
  static_assert(kChunks >= 8, "the swizzle spreads 8 rows over 8 chunks");
};

template <DType T, int HeadDim>
__global__ void __launch_bounds__(kMultiQueryThreads)
    multi_query_kernel(const __grid_constant__ MultiQueryParams p) {
  using Tr = MultiQueryTraits<T, HeadDim>;
  using t = typename Tr::t;
  extern __shared__ __align__(128) unsigned char smem[];
  t* const k_tiles = reinterpret_cast<t*>(smem);  // [stages][tile][HeadDim], swizzled
  t* const v_tiles = k_tiles + Tr::kStages * Tr::kTileElems;
  t* const q_rows = v_tiles + Tr::kStages * Tr::kTileElems;  // [64][HeadDim], swizzled

  MultiQueryItem item;
  if (!load_item(p, static_cast<int>(blockIdx.y), &item)) return;
  const int kv_head = blockIdx.x;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int segment_rows = item.num_tokens * p.group;
  const std::int32_t* const indices = p.indices[item.source];

  // Q rows of the tile into shared memory (rows past the segment are 0).
  for (int c = tid; c < Tr::kRows * Tr::kChunks; c += Tr::kThreads) {
    const int row = c / Tr::kChunks, chunk = c % Tr::kChunks, x = item.row_begin + row;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (x < segment_rows) {
      const std::int64_t q_row = item.q_row0 + x / p.group;
      const int qo_head = kv_head * p.group + x % p.group;
      v = *reinterpret_cast<const uint4*>(static_cast<const t*>(p.q) + q_row * p.q_stride_t +
                                          qo_head * p.q_stride_h + chunk * 8);
    }
    *reinterpret_cast<uint4*>(q_rows + row * HeadDim + swizzle(row, chunk) * 8) = v;
  }

  // Row i of this lane (i = 2 mt + r): row lane / 4 + 8 r of the warp's MMA
  // tile mt. The keys each sees, then the warp's union and intersection of
  // those ranges: tiles outside the union are skipped, tiles inside the
  // intersection need no mask.
  constexpr int kLaneRows = 2 * Tr::kMTiles;
  auto segment_row = [&](int i) { return item.row_begin + warp * Tr::kWarpRows + (i / 2) * 16 + lane / 4 + 8 * (i % 2); };
  int lo[kLaneRows], hi[kLaneRows];
  int union_lo = INT_MAX, union_hi = 0, inter_lo = 0, inter_hi = INT_MAX;
#pragma unroll
  for (int i = 0; i < kLaneRows; ++i) {
    const int x = segment_row(i);
    row_key_range(p, item, x, segment_rows, &lo[i], &hi[i]);
    if (hi[i] > lo[i]) union_lo = min(union_lo, lo[i]);
    union_hi = max(union_hi, hi[i]);
    inter_lo = max(inter_lo, lo[i]);
    inter_hi = min(inter_hi, hi[i]);
  }
  reduce_ranges_over_warp(&union_lo, &union_hi, &inter_lo, &inter_hi);

  // Page ids of the next tile to issue are loaded a tile ahead into
  // registers, so copies never wait on the page table inside the loop.
  const t* const k_head = static_cast<const t*>(p.pool.k) + kv_head * p.pool.k_stride_head;
  const t* const v_head = static_cast<const t*>(p.pool.v) + kv_head * p.pool.v_stride_head;
  const int num_tiles = (item.kv_end - item.kv_begin + Tr::kTile - 1) / Tr::kTile;
  using Tiles = typename Tr::Tiles;
  typename Tiles::Pages next;  // page ids; -1 past the end (the copy zero-fills)
  auto fetch = [&](int tile) {
    Tiles::fetch(next, tid, item.kv_begin + tile * Tr::kTile, item.kv_end,
                 [&](int key) { return page_of_key(p, indices, item.page_base, key); });
  };
  auto issue_with = [&](int tile, auto slot_of) {
    Tiles::issue(k_tiles, v_tiles, tile % Tr::kStages, k_head, v_head, p.pool, next, tid,
                 item.kv_begin + tile * Tr::kTile, slot_of);
  };
  // The slot rule is uniform: one branch per tile, none per copy.
  auto issue = [&](int tile) {
    if (indices == nullptr) issue_with(tile, [&](int key) { return item.page_base + key; });
    else if (p.pool.page_shift >= 0) issue_with(tile, [&](int key) { return key & (p.pool.page_size - 1); });
    else issue_with(tile, [&](int key) { return key % p.pool.page_size; });
  };
#pragma unroll
  for (int s = 0; s < Tr::kStages - 1; ++s) {
    if (s < num_tiles) {
      fetch(s);
      issue(s);
    }
    cp_async_commit();
  }
  if (Tr::kStages - 1 < num_tiles) fetch(Tr::kStages - 1);

  SoftmaxState st[kLaneRows];
  float o[Tr::kMTiles][Tr::kDTiles][4] = {};
  const int col = (lane % 4) * 2;
  const int wrow = warp * Tr::kWarpRows;  // the warp's first row in q_rows
  const int m = lane / 8;                 // the 8x8 matrix this lane addresses in ldmatrix.x4
  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<Tr::kStages - 2>();
    __syncthreads();  // the tile has landed for all; the stage issued below is free
    if (tile + Tr::kStages - 1 < num_tiles) {
      issue(tile + Tr::kStages - 1);
      if (tile + Tr::kStages < num_tiles) fetch(tile + Tr::kStages);
    }
    cp_async_commit();

    const int tile_begin = item.kv_begin + tile * Tr::kTile;
    if (tile_begin >= union_hi || tile_begin + Tr::kTile <= union_lo) continue;  // no row of this warp sees it
    const bool masked = !(tile_begin >= inter_lo && tile_begin + Tr::kTile <= inter_hi);
    const t* const ks = k_tiles + (tile % Tr::kStages) * Tr::kTileElems;
    const t* const vs = v_tiles + (tile % Tr::kStages) * Tr::kTileElems;

    // S [16 kMTiles rows x kTile keys]: per k-step one A fragment of Q per
    // MMA tile and, per pair of 8-key n-tiles, one ldmatrix.x4 of K rows
    // that feeds every MMA tile.
    float s[Tr::kMTiles][Tr::kSTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < Tr::kKSteps; ++kk) {
      unsigned qa[Tr::kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt) {
        const int qrow = wrow + mt * 16 + (m % 2) * 8 + lane % 8;
        ldmatrix_x4(qa[mt], q_rows + qrow * HeadDim + swizzle(qrow, 2 * kk + m / 2) * 8);
      }
#pragma unroll
      for (int n = 0; n < Tr::kSTiles; n += 2) {
        unsigned kb[4];
        const int token = n * 8 + (m / 2) * 8 + lane % 8;
        ldmatrix_x4(kb, ks + token * HeadDim + swizzle(token, 2 * kk + m % 2) * 8);
#pragma unroll
        for (int mt = 0; mt < Tr::kMTiles; ++mt) {
          mma16816<T>(s[mt][n], qa[mt], kb[0], kb[1]);
          mma16816<T>(s[mt][n + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }
    // Logits in base 2, masked outside each row's range. The cap and the
    // mask are uniform per warp: one branch each around the whole tile, so
    // the common path (no cap, tile inside every row's range) has none.
    if (p.cap_log2 > 0.f) {
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
        for (int n = 0; n < Tr::kSTiles; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][n][e] = p.cap_log2 * tanhf(s[mt][n][e] * p.q_scale);
    } else {
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
        for (int n = 0; n < Tr::kSTiles; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][n][e] *= p.q_scale;
    }
    if (masked) {
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
        for (int n = 0; n < Tr::kSTiles; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = tile_begin + n * 8 + col + (e & 1), i = 2 * mt + e / 2;
            if (key < lo[i] || key >= hi[i]) s[mt][n][e] = -INFINITY;
          }
    }
    // Row max over the quad of lanes sharing a row; accumulators rescaled.
    // base[i]: the max weights are taken against (0 while row i has seen no
    // key, when its logits are all -inf and the weights 0 either way).
    float base[kLaneRows];
#pragma unroll
    for (int mt = 0; mt < Tr::kMTiles; ++mt) {
      float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < Tr::kSTiles; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) row_max[e / 2] = fmaxf(row_max[e / 2], s[mt][n][e]);
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 1));
        row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 2));
        SoftmaxState& row = st[2 * mt + r];
        const float factor = row.rescale_to(row_max[r]);
        base[2 * mt + r] = row.m == -INFINITY ? 0.f : row.m;
        if (factor != 1.f) {
#pragma unroll
          for (int n = 0; n < Tr::kDTiles; ++n) o[mt][n][2 * r] *= factor, o[mt][n][2 * r + 1] *= factor;
        }
      }
    }
    // O += P V, 16 keys per k-step: S n-tiles 2j and 2j+1 are the two k
    // halves of P's A fragment; V's B fragments come from ldmatrix.trans and
    // feed every MMA tile.
#pragma unroll
    for (int j = 0; j < Tr::kSTiles / 2; ++j) {
      unsigned pa[Tr::kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float* const sv = s[mt][2 * j + h];
          const float w0 = exp2f(sv[0] - base[2 * mt]), w1 = exp2f(sv[1] - base[2 * mt]);
          const float w2 = exp2f(sv[2] - base[2 * mt + 1]), w3 = exp2f(sv[3] - base[2 * mt + 1]);
          st[2 * mt].d += w0 + w1;
          st[2 * mt + 1].d += w2 + w3;
          pa[mt][2 * h] = pack2<T>(w0, w1);
          pa[mt][2 * h + 1] = pack2<T>(w2, w3);
        }
      const int token = 16 * j + (m % 2) * 8 + lane % 8;
#pragma unroll
      for (int n = 0; n < Tr::kDTiles; n += 2) {
        unsigned vb[4];
        ldmatrix_x4_trans(vb, vs + token * HeadDim + swizzle(token, n + m / 2) * 8);
#pragma unroll
        for (int mt = 0; mt < Tr::kMTiles; ++mt) {
          mma16816<T>(o[mt][n], pa[mt], vb[0], vb[1]);
          mma16816<T>(o[mt][n + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

  // Each warp owns its rows: normalise and write them.
#pragma unroll
  for (int i = 0; i < kLaneRows; ++i)
    write_row<T, HeadDim>(p, item, kv_head, segment_row(i), segment_rows, st[i], &o[i / 2][0][0], 2 * (i % 2), lane);
}

template <DType T, int HeadDim>
int launch_multi_query(const MultiQueryParams& p, void* stream) {
  using Tr = MultiQueryTraits<T, HeadDim>;
  return launch_item_grid(multi_query_kernel<T, HeadDim>, Tr::kThreads, Tr::kShape.smem_bytes, p, stream);
}

// One thread per 8 elements of a row (head_dim / 8 threads a row); the row's
// slots merge with the MergeStates rule and the result is rounded once.
template <DType T>
__global__ void __launch_bounds__(128) slot_merge_kernel(const __grid_constant__ SlotMergeParams p) {
  const int chunks = p.head_dim / 8;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (blockDim.x / chunks) + threadIdx.x / chunks;
  if (row >= p.rows * p.num_heads || static_cast<int>(threadIdx.x) >= blockDim.x / chunks * chunks) return;
  const std::int64_t token = row / p.num_heads;
  const int head = static_cast<int>(row % p.num_heads), e0 = (threadIdx.x % chunks) * 8;
  const MultiQueryRowInfo info = p.row_info[token];
  const std::int64_t first = static_cast<std::int64_t>(info.slot_base) * p.num_heads + head;
  float values[8];
  const float lse = merge_states<8>(info.slot_count, p.partial_lse + first, p.num_heads,
                                    p.partial_out + first * p.head_dim + e0,
                                    static_cast<std::int64_t>(p.num_heads) * p.head_dim, values);
  float* const lse_out = p.lse && e0 == 0 ? p.lse + token * p.lse_stride_t + head * p.lse_stride_h : nullptr;
  store_row<T, 8>(values, lse, static_cast<storage_t<T>*>(p.out) + token * p.out_stride_t + head * p.out_stride_h + e0,
                  lse_out);
}

template <DType T>
int launch_slot_merge(const SlotMergeParams& p, void* stream) {
  const std::int64_t rows = p.rows * p.num_heads;
  if (rows == 0) return static_cast<int>(cudaSuccess);
  const int rows_per_block = 128 / (p.head_dim / 8);  // head_dim <= 256: at least 4
  const auto blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  slot_merge_kernel<T><<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvserve::detail::cuda
