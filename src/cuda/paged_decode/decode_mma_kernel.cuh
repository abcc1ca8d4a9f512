// The paged-decode kernel on the tensor cores (f16 / bf16 pools). One block
// per (work item, KV head, chunk of up to 16 query heads); 4 warps. K/V tiles
// of 64 tokens stream through shared memory with cp.async; each warp takes 16
// tokens of a tile: S = Q K^T and O += P V with mma.sync m16n8k16 (fp32
// accumulation), the 16 MMA rows being the group's query heads. One K/V load
// serves the whole group, and the arithmetic per byte is a fraction of what
// the CUDA cores would spend, so the kernel is left waiting on memory only.
#pragma once

#include <cuda_runtime.h>

#include "cuda/paged_decode/decode_epilogue.cuh"
#include "cuda/paged_decode/decode_params.hpp"
#include "cuda/common/device_types.cuh"
#include "cuda/common/kv_tiles.cuh"
#include "cuda/common/mma.cuh"

namespace kvserve::detail::cuda {

template <DType T, int HeadDim>
struct DecodeMmaTraits {
  using t = storage_t<T>;
  static constexpr DecodeShape kShape = decode_shape(T, T, HeadDim);
  static constexpr int kThreads = kShape.threads;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kTile = kShape.tile_tokens;
  static constexpr int kStages = kShape.stages;
  static constexpr int kRows = 16;                   // MMA rows: query heads
  static constexpr int kChunks = HeadDim / 8;        // 16-byte chunks per row
  static constexpr int kTileElems = kTile * HeadDim;
  using Tiles = KvTiles<kTile, HeadDim, kThreads>;
  static constexpr int kDTiles = HeadDim / 8;        // n-tiles of O
  static constexpr int kKSteps = HeadDim / 16;       // k-steps of S
  static_assert(kTile == kWarps * 16, "each warp takes 16 tokens of a tile");
  static_assert(kChunks >= 8, "the swizzle spreads 8 rows over 8 chunks");
  static_assert((kWarps * kRows * (HeadDim + 2) + 1) * sizeof(float) <= std::size_t(kShape.smem_bytes),
                "the warps' merge (and the split flag) fits in the stages");
};

template <DType T, int HeadDim>
__global__ void __launch_bounds__(DecodeMmaTraits<T, HeadDim>::kThreads)
    paged_decode_mma_kernel(const __grid_constant__ DecodeParams p) {
  using Tr = DecodeMmaTraits<T, HeadDim>;
  using t = typename Tr::t;
  extern __shared__ __align__(128) unsigned char smem[];
  t* const k_tiles = reinterpret_cast<t*>(smem);  // [stages][tile][HeadDim], swizzled
  t* const v_tiles = k_tiles + Tr::kStages * Tr::kTileElems;

  // The item is read before its count is known (the array holds max_items):
  // two independent loads instead of a chain of two.
  const DecodeWorkItem item = p.items[blockIdx.y];
  if (static_cast<int>(blockIdx.y) >= *p.num_items) return;
  const int kv_head = blockIdx.x / p.head_chunks, head_chunk = blockIdx.x % p.head_chunks;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int b = item.request;
  const int first_head = head_chunk * Tr::kRows;  // within the group
  const int heads = min(Tr::kRows, p.group - first_head);

  // Page ids of a tile are loaded from the page table into registers a tile
  // ahead of its copies, alternating between two sets (tile parity), so that
  // neither the prologue's two tiles nor the loop ever issue copies behind a
  // dependent page-table load.
  const std::int64_t page_base = item.page_base;
  const t* const k_head = static_cast<const t*>(p.pool.k) + kv_head * p.pool.k_stride_head;
  const t* const v_head = static_cast<const t*>(p.pool.v) + kv_head * p.pool.v_stride_head;
  using Tiles = typename Tr::Tiles;
  typename Tiles::Pages pages_even, pages_odd;  // -1: past the end of the slice
  auto fetch_pages = [&](int tile, typename Tiles::Pages& pages) {
    Tiles::fetch(pages, tid, item.begin + tile * Tr::kTile, item.end,
                 [&](int pos) { return p.indices[page_base + p.pool.page_index(pos)]; });
  };
  auto fetch = [&](int tile) { tile % 2 ? fetch_pages(tile, pages_odd) : fetch_pages(tile, pages_even); };
  auto issue_pages = [&](int tile, const typename Tiles::Pages& pages) {
    Tiles::issue(k_tiles, v_tiles, tile % Tr::kStages, k_head, v_head, p.pool, pages, tid,
                 item.begin + tile * Tr::kTile, [&](int pos) { return p.pool.slot(pos); });
  };
  auto issue = [&](int tile) { tile % 2 ? issue_pages(tile, pages_odd) : issue_pages(tile, pages_even); };

  const int num_tiles = (item.end - item.begin + Tr::kTile - 1) / Tr::kTile;
  // Prologue: the first kStages - 1 tiles in flight (their page ids loaded
  // together first), and the page ids of the next one loaded.
  static_assert(Tr::kStages <= 3, "two page-id sets cover the prologue");
#pragma unroll
  for (int s = 0; s < Tr::kStages - 1; ++s) fetch(s);
#pragma unroll
  for (int s = 0; s < Tr::kStages - 1; ++s) {
    if (s < num_tiles) issue(s);
    cp_async_commit();
  }
  fetch(Tr::kStages - 1);

  // Q of the chunk's heads into shared memory (rows past the group are 0),
  // then into A fragments held for the whole block; done while the first
  // tiles are on their way. The last stage is free until the loop's first
  // iteration issues into it.
  unsigned q_frag[Tr::kKSteps][4];
  {
    t* const qs = k_tiles + (Tr::kStages - 1) * Tr::kTileElems;  // the last stage, first written after this
    for (int c = tid; c < Tr::kRows * Tr::kChunks; c += Tr::kThreads) {
      const int row = c / Tr::kChunks, chunk = c % Tr::kChunks;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (row < heads) {
        const int qo_head = kv_head * p.group + first_head + row;
        v = *reinterpret_cast<const uint4*>(static_cast<const t*>(p.q) + b * p.q_stride_b + qo_head * p.q_stride_h +
                                            chunk * 8);
      }
      *reinterpret_cast<uint4*>(qs + row * HeadDim + swizzle(row, chunk) * 8) = v;
    }
    __syncthreads();
    // A fragment of k-step kk: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7),
    // (rows 0-7, k 8-15), (rows 8-15, k 8-15); lane l addresses row l % 8 of
    // matrix l / 8.
    const int m = lane / 8, row = (m % 2) * 8 + lane % 8;
#pragma unroll
    for (int kk = 0; kk < Tr::kKSteps; ++kk)
      ldmatrix_x4(q_frag[kk], qs + row * HeadDim + swizzle(row, 2 * kk + m / 2) * 8);
    // The loop's first barrier comes before the last stage is written again.
  }

  // This lane's rows of the MMA tiles: r0 = lane / 4 and r0 + 8; its columns
  // (lane % 4) * 2 and + 1 of every n-tile. m/d per row as in SoftmaxState
  // (base 2); d is this lane's share of the row sum until the end.
  SoftmaxState st[2];
  float o[Tr::kDTiles][4] = {};
  const int col = (lane % 4) * 2;
  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<Tr::kStages - 2>();
    __syncthreads();
    if (tile + Tr::kStages - 1 < num_tiles) issue(tile + Tr::kStages - 1);
    cp_async_commit();
    fetch(tile + Tr::kStages);

    const t* const ks = k_tiles + (tile % Tr::kStages) * Tr::kTileElems;
    const t* const vs = v_tiles + (tile % Tr::kStages) * Tr::kTileElems;
    const int tile_tokens = min(Tr::kTile, item.end - item.begin - tile * Tr::kTile);
    const int t0 = warp * 16;  // this warp's tokens in the tile
    if (t0 >= tile_tokens) continue;  // nothing of this tile for this warp (no barrier below)

    // S [16 heads x 16 tokens] as two n-tiles of 8 tokens. ldmatrix.x4 on K
    // rows gives both: matrices (tokens 0-7, k 0-7), (tokens 0-7, k 8-15),
    // (tokens 8-15, k 0-7), (tokens 8-15, k 8-15).
    float s[2][4] = {};
    {
      const int m = lane / 8, token = t0 + (m / 2) * 8 + lane % 8;
#pragma unroll
      for (int kk = 0; kk < Tr::kKSteps; ++kk) {
        unsigned kb[4];
        ldmatrix_x4(kb, ks + token * HeadDim + swizzle(token, 2 * kk + m % 2) * 8);
        mma16816<T>(s[0], q_frag[kk], kb[0], kb[1]);
        mma16816<T>(s[1], q_frag[kk], kb[2], kb[3]);
      }
    }
    // Logits in base 2, masked past the tile's end; the row max over the 4
    // lanes that share a row.
    float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j][e] * p.q_scale;
        if (p.cap_log2 > 0.f) x = p.cap_log2 * tanhf(x);
        if (t0 + j * 8 + col + (e & 1) >= tile_tokens) x = -INFINITY;
        s[j][e] = x;
        row_max[e / 2] = fmaxf(row_max[e / 2], x);
      }
    rescale_row_pair(st, row_max, o);
    // P as the A fragment of O += P V (k = the 16 tokens): the two S n-tiles
    // are exactly its two k halves.
    unsigned pa[4];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const float w0 = st[0].weight(s[j][0]), w1 = st[0].weight(s[j][1]);
      const float w2 = st[1].weight(s[j][2]), w3 = st[1].weight(s[j][3]);
      st[0].d += w0 + w1;
      st[1].d += w2 + w3;
      pa[2 * j] = pack2<T>(w0, w1);
      pa[2 * j + 1] = pack2<T>(w2, w3);
    }
    // V [16 tokens x 8 d] per n-tile through ldmatrix.trans: matrices
    // (tokens 0-7, chunk c), (tokens 8-15, chunk c), (tokens 0-7, chunk c+1),
    // (tokens 8-15, chunk c+1) serve n-tiles c and c+1.
    {
      const int m = lane / 8, token = t0 + (m % 2) * 8 + lane % 8;
#pragma unroll
      for (int n = 0; n < Tr::kDTiles; n += 2) {
        unsigned vb[4];
        ldmatrix_x4_trans(vb, vs + token * HeadDim + swizzle(token, n + m / 2) * 8);
        mma16816<T>(o[n], pa, vb[0], vb[1]);
        mma16816<T>(o[n + 1], pa, vb[2], vb[3]);
      }
    }
  }

  // The warps' states merge through the stages: m, d and O per (warp, row).
  cp_async_wait<0>();
  __syncthreads();
  float* const warp_o = reinterpret_cast<float*>(smem);                // [warps][16][HeadDim]
  float* const warp_md = warp_o + Tr::kWarps * Tr::kRows * HeadDim;  // [warps][16][m, d]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    st[r].d += __shfl_xor_sync(0xffffffffu, st[r].d, 1);
    st[r].d += __shfl_xor_sync(0xffffffffu, st[r].d, 2);
    const int row = lane / 4 + 8 * r;
    float* const dst = warp_o + (warp * Tr::kRows + row) * HeadDim + col;
#pragma unroll
    for (int n = 0; n < Tr::kDTiles; ++n) dst[n * 8] = o[n][2 * r], dst[n * 8 + 1] = o[n][2 * r + 1];
    if (lane % 4 == 0) {
      warp_md[2 * (warp * Tr::kRows + row)] = st[r].m;
      warp_md[2 * (warp * Tr::kRows + row) + 1] = st[r].d;
    }
  }
  __syncthreads();

  const float v_scale = p.v_scale ? p.v_scale[kv_head] : 1.f;
  constexpr int kOutChunks = Tr::kRows * Tr::kChunks;  // 8 elements each
  bool owns_any = false;
  for (int c = tid; c < kOutChunks; c += Tr::kThreads) {
    const int row = c / Tr::kChunks, e0 = (c % Tr::kChunks) * 8;
    if (row >= heads) continue;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < Tr::kWarps; ++w) m = fmaxf(m, warp_md[2 * (w * Tr::kRows + row)]);
    float d = 0.f, values[8] = {};
    if (m != -INFINITY) {
#pragma unroll
      for (int w = 0; w < Tr::kWarps; ++w) {
        const float mw = warp_md[2 * (w * Tr::kRows + row)];
        if (mw == -INFINITY) continue;  // a warp that saw no key
        const float f = exp2f(mw - m);
        d += warp_md[2 * (w * Tr::kRows + row) + 1] * f;
        const float* const src = warp_o + (w * Tr::kRows + row) * HeadDim + e0;
#pragma unroll
        for (int e = 0; e < 8; ++e) values[e] = fmaf(src[e], f, values[e]);
      }
    }
    const float inv = d > 0.f ? v_scale / d : 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) values[e] *= inv;
    const float lse = d > 0.f ? (m + log2f(d)) * kLn2 : -INFINITY;
    const int qo_head = kv_head * p.group + first_head + row;
    store_slice_result<T, 8>(p, item, qo_head, e0, HeadDim, values, lse, e0 == 0);
    owns_any = true;
  }
  if (item.num_splits == 1) return;
  if (!arrive_last(p, item, kv_head, head_chunk, reinterpret_cast<int*>(warp_md + 2 * Tr::kWarps * Tr::kRows)))
    return;
  if (!owns_any) return;
  for (int c = tid; c < kOutChunks; c += Tr::kThreads) {
    const int row = c / Tr::kChunks, e0 = (c % Tr::kChunks) * 8;
    if (row < heads)  // the loop's registers are free again: 16 slices in flight
      merge_slices<T, 8, 16>(p, item, kv_head * p.group + first_head + row, e0, HeadDim, e0 == 0);
  }
}

}  // namespace kvserve::detail::cuda
