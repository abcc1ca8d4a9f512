// Multi-query attention on Hopper (sm_90a): the same work items, rows and
// outputs as multi_query_kernel.cuh, on wgmma with warp specialisation.
// One block per (work item, KV head), three warpgroups:
// - the producer copies the item's Q rows (once) and its K/V tiles into a
//   ring of `stages` shared-memory slots, each tile of K and of V
//   128-byte-swizzled as wgmma reads it (hopper.cuh), with cp.async (which
//   gathers pages of any size and layout), one group of its threads a slot;
//   a group announces its slot on the slot's `full` mbarrier once its copies
//   have landed and waits on the slot's `empty` mbarrier before refilling it;
// - two consumers own 64 query rows each: S = Q K^T with wgmma from shared
//   memory (fp32 in registers), online softmax in base 2, P rounded to the
//   input type in registers and O += P V with wgmma (P from registers, V
//   transposed from shared memory); both arrive on `empty` when done.
// The producer gives registers to the consumers (setmaxnreg): 56 for
// address arithmetic, 224 a consumer thread for S, P and O. Each row sees
// its own keys [lo, hi) (causal, window, split), as in the mma.sync kernel.
#pragma once

#include <cuda_runtime.h>

#include "cuda/common/device_types.cuh"
#include "cuda/common/hopper.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/multi_query/multi_query_items.cuh"

namespace kvserve::detail::cuda {

template <DType T, int HeadDim>
struct MultiQuerySm90Traits {
  using t = storage_t<T>;
  static constexpr MultiQueryShape kShape = multi_query_shape_sm90(HeadDim);
  static constexpr int kRows = kShape.rows;          // 128: 64 per consumer
  static constexpr int kKeys = kShape.tile_tokens;   // keys a tile
  static constexpr int kStages = kShape.stages;
  static constexpr int kChunks = HeadDim / 8;        // 16-byte chunks of a row
  static constexpr int kQBytes = kRows * HeadDim * 2;
  static constexpr int kTileBytes = kKeys * HeadDim * 2;
  static constexpr int kBarrierOffset = kQBytes + 2 * kStages * kTileBytes;
  static constexpr int kProducerThreads = 128 / kStages;  // a ring slot's group of producer threads
  // setmaxnreg moves registers within the block's launch allocation (168 a
  // thread, __launch_bounds__(384, 1)): what the producer releases is all
  // the consumers may claim, or a claim waits forever.
  static constexpr int kLaunchRegisters = 168, kProducerRegisters = 56, kConsumerRegisters = 224;
  static_assert(kProducerThreads * kStages == 128 && kProducerThreads % kChunks == 0, "producer groups tile rows");
  static_assert(HeadDim % 64 == 0, "tiles are made of 64-column blocks");
  static_assert(kBarrierOffset + 1024 + 1024 <= kShape.smem_bytes, "alignment slack and barriers fit");
  static_assert(kProducerRegisters + 2 * kConsumerRegisters == 3 * kLaunchRegisters, "claims match releases");
};

#if KVSERVE_SM90A
// The producer warpgroup (thread w of 128) in kStages groups of
// kProducerThreads, group g filling ring slot g with tiles g, g + kStages,
// ...: a group waits for its own copies to land before announcing its slot,
// and meanwhile the other groups' slots are being filled or consumed, so
// the consumers never wait on a copy issued after the tile they are on.
// Group 0 copies the item's Q rows too, with tile 0 (the first `full`
// phase covers both). A thread copies one 16-byte chunk column of every
// (kProducerThreads / kChunks)-th row.
template <DType T, int HeadDim>
__device__ __forceinline__ void produce_tiles(const MultiQueryParams& p, const MultiQueryItem& item, int kv_head,
                                              int w, unsigned char* smem, std::uint64_t* full,
                                              std::uint64_t* empty, int num_tiles) {
  using Tr = MultiQuerySm90Traits<T, HeadDim>;
  using t = typename Tr::t;
  constexpr int kStep = Tr::kProducerThreads / Tr::kChunks;
  const int group = w / Tr::kProducerThreads, gw = w % Tr::kProducerThreads;
  const int chunk = gw % Tr::kChunks, first_row = gw / Tr::kChunks;
  if (group >= num_tiles) return;  // no tile for this slot (nor Q, with no tile at all)
  if (group == 0) {
    const int segment_rows = item.num_tokens * p.group;
    for (int row = first_row; row < Tr::kRows; row += kStep) {
      const int x = item.row_begin + row;
      const bool valid = x < segment_rows;
      const t* src = static_cast<const t*>(p.q);
      if (valid)
        src += (item.q_row0 + std::int64_t{x / p.group}) * p.q_stride_t +
               std::int64_t{kv_head * p.group + x % p.group} * p.q_stride_h + chunk * 8;
      cp_async16(smem + swizzled_offset(Tr::kRows, row, chunk * 8), src, valid);
    }
  }
  const std::int32_t* const indices = p.indices[item.source];
  const t* const k_head = static_cast<const t*>(p.pool.k) + kv_head * p.pool.k_stride_head;
  const t* const v_head = static_cast<const t*>(p.pool.v) + kv_head * p.pool.v_stride_head;
  unsigned char* const k_tile = smem + Tr::kQBytes + group * Tr::kTileBytes;
  unsigned char* const v_tile = k_tile + Tr::kStages * Tr::kTileBytes;
  for (int tile = group, round = 0; tile < num_tiles; tile += Tr::kStages, ++round) {
    if (round > 0) mbarrier_wait(&empty[group], (round - 1) & 1);
    const int tile_begin = item.kv_begin + tile * Tr::kKeys;
    for (int row = first_row; row < Tr::kKeys; row += kStep) {
      const int key = tile_begin + row;
      const bool valid = key < item.kv_end;
      std::int64_t page = 0, slot = item.page_base + key;
      if (indices != nullptr) {
        page = valid ? indices[item.page_base + p.pool.page_index(key)] : 0;
        slot = p.pool.slot(key);
      }
      const int at = swizzled_offset(Tr::kKeys, row, chunk * 8);
      const std::int64_t k_at = valid ? page * p.pool.k_stride_page + slot * p.pool.k_stride_slot + chunk * 8 : 0;
      const std::int64_t v_at = valid ? page * p.pool.v_stride_page + slot * p.pool.v_stride_slot + chunk * 8 : 0;
      cp_async16(k_tile + at, k_head + k_at, valid);
      cp_async16(v_tile + at, v_head + v_at, valid);
    }
    cp_async_commit();
    // Landed: fence the copies into the async proxy wgmma reads, announce.
    cp_async_wait<0>();
    fence_async_shared();
    mbarrier_arrive(&full[group]);
  }
}

// A consumer warpgroup (c = 0 or 1, thread w of 128): rows 64 c .. 64 c + 63
// of the tile. Its warp `warp` owns rows 16 warp .. + 15 of those (the wgmma
// accumulator layout): this thread rows g and g + 8 (g = lane / 4), columns
// 2 (lane % 4) + {0, 1} of every 8-column block, elements 4 n + 2 i + {0, 1}
// of an accumulator for row i of block n.
template <DType T, int HeadDim>
__device__ __forceinline__ void consume_tiles(const MultiQueryParams& p, const MultiQueryItem& item, int kv_head,
                                              int c, int w, unsigned char* smem, std::uint64_t* full,
                                              std::uint64_t* empty, int* wg_ranges, int num_tiles) {
  using Tr = MultiQuerySm90Traits<T, HeadDim>;
  using t = typename Tr::t;
  constexpr int kKeys = Tr::kKeys;
  const int warp = w / 32, lane = w % 32, col = (lane % 4) * 2;
  const int segment_rows = item.num_tokens * p.group;
  auto segment_row = [&](int i) { return item.row_begin + 64 * c + 16 * warp + lane / 4 + 8 * i; };

  // Each row's keys; the warp's intersection (tiles inside it need no mask)
  // and the warpgroup's union (tiles outside it are skipped: the skip must
  // be uniform over the warpgroup, whose wgmma are collective).
  int lo[2], hi[2];
  int union_lo = INT_MAX, union_hi = 0, inter_lo = 0, inter_hi = INT_MAX;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row_key_range(p, item, segment_row(i), segment_rows, &lo[i], &hi[i]);
    if (hi[i] > lo[i]) union_lo = min(union_lo, lo[i]);
    union_hi = max(union_hi, hi[i]);
    inter_lo = max(inter_lo, lo[i]);
    inter_hi = min(inter_hi, hi[i]);
  }
  reduce_ranges_over_warp(&union_lo, &union_hi, &inter_lo, &inter_hi);
  if (lane == 0) wg_ranges[2 * warp] = union_lo, wg_ranges[2 * warp + 1] = union_hi;
  named_barrier_sync(1 + c, 128);
#pragma unroll
  for (int v = 0; v < 4; ++v) union_lo = min(union_lo, wg_ranges[2 * v]), union_hi = max(union_hi, wg_ranges[2 * v + 1]);

  const std::uint32_t q_base = smem_address(smem) + 64 * c * 128;
  SoftmaxState st[2];
  float o[HeadDim / 2];
#pragma unroll
  for (int e = 0; e < HeadDim / 2; ++e) o[e] = 0.f;

  for (int tile = 0; tile < num_tiles; ++tile) {
    const int stage = tile % Tr::kStages;
    mbarrier_wait(&full[stage], (tile / Tr::kStages) & 1);
    const int tile_begin = item.kv_begin + tile * kKeys;
    if (tile_begin < union_hi && tile_begin + kKeys > union_lo) {
      const std::uint32_t k_base = smem_address(smem) + Tr::kQBytes + stage * Tr::kTileBytes;
      const std::uint32_t v_base = k_base + Tr::kStages * Tr::kTileBytes;
      // S = Q K^T over HeadDim / 16 k-steps: step kk is 32 bytes into
      // 64-column block kk / 4 of both operands.
      float s[kKeys / 2];
#pragma unroll
      for (int e = 0; e < kKeys / 2; ++e) s[e] = 0.f;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < HeadDim / 16; ++kk) {
        const std::uint64_t a = smem_descriptor(q_base + (kk / 4) * Tr::kRows * 128 + (kk % 4) * 32, 16, 1024);
        const std::uint64_t b = smem_descriptor(k_base + (kk / 4) * kKeys * 128 + (kk % 4) * 32, 16, 1024);
        wgmma_ss<T, kKeys>(s, a, b, kk > 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      pin_registers(s);

      // Logits in base 2, masked outside each row's range (the cap and the
      // mask are uniform per warp: one branch each around the tile).
      if (p.cap_log2 > 0.f) {
#pragma unroll
        for (int e = 0; e < kKeys / 2; ++e) s[e] = p.cap_log2 * tanhf(s[e] * p.q_scale);
      } else {
#pragma unroll
        for (int e = 0; e < kKeys / 2; ++e) s[e] *= p.q_scale;
      }
      if (!(tile_begin >= inter_lo && tile_begin + kKeys <= inter_hi)) {
#pragma unroll
        for (int e = 0; e < kKeys / 2; ++e) {
          const int key = tile_begin + (e / 4) * 8 + col + (e & 1), i = (e / 2) % 2;
          if (key < lo[i] || key >= hi[i]) s[e] = -INFINITY;
        }
      }
      float base[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float row_max = -INFINITY;
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n) row_max = fmaxf(row_max, fmaxf(s[4 * n + 2 * i], s[4 * n + 2 * i + 1]));
        row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 1));
        row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 2));
        const float factor = st[i].rescale_to(row_max);
        base[i] = st[i].m == -INFINITY ? 0.f : st[i].m;
        if (factor != 1.f) {
#pragma unroll
          for (int n = 0; n < HeadDim / 8; ++n) o[4 * n + 2 * i] *= factor, o[4 * n + 2 * i + 1] *= factor;
        }
      }
      // P in the A fragments of O += P V: k-step j (keys 16 j ..) takes S
      // blocks 2 j and 2 j + 1, rows g and g + 8 of each.
      unsigned pa[kKeys / 16][4];
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            const float* const sv = s + 4 * (2 * j + h) + 2 * i;
            const float w0 = exp2f(sv[0] - base[i]), w1 = exp2f(sv[1] - base[i]);
            st[i].d += w0 + w1;
            pa[j][2 * h + i] = pack2<T>(w0, w1);
          }
      // O += P V: k-step j is keys 16 j .. of V (2048 bytes into each
      // block); the 64-column blocks of V are kKeys * 128 bytes apart.
      wgmma_fence();
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j)
        wgmma_rs<T, HeadDim>(o, pa[j], smem_descriptor(v_base + j * 16 * 128, kKeys * 128, 1024), 1);
      wgmma_commit();
      wgmma_wait<0>();
      pin_registers(o);
    }
    mbarrier_arrive(&empty[stage]);
  }

  // Normalise and write this thread's two rows.
#pragma unroll
  for (int i = 0; i < 2; ++i) write_row<T, HeadDim>(p, item, kv_head, segment_row(i), segment_rows, st[i], o, 2 * i, lane);
}
#endif  // KVSERVE_SM90A

template <DType T, int HeadDim>
__global__ void __launch_bounds__(kMultiQuerySm90Threads, 1)
    multi_query_sm90_kernel(const __grid_constant__ MultiQueryParams p) {
#if KVSERVE_SM90A
  using Tr = MultiQuerySm90Traits<T, HeadDim>;
  extern __shared__ unsigned char smem_raw[];
  // The swizzle is a function of address bits 4-9: tiles start 1024-aligned.
  unsigned char* const smem = smem_raw + ((1024 - smem_address(smem_raw) % 1024) % 1024);
  auto* const full = reinterpret_cast<std::uint64_t*>(smem + Tr::kBarrierOffset);
  std::uint64_t* const empty = full + Tr::kStages;
  int* const wg_ranges = reinterpret_cast<int*>(empty + Tr::kStages);  // [2 consumers][4 warps][lo, hi]

  MultiQueryItem item;
  if (!load_item(p, static_cast<int>(blockIdx.y), &item)) return;
  const int kv_head = blockIdx.x;
  const int warpgroup = threadIdx.x / 128, w = threadIdx.x % 128;
  const int num_tiles = (item.kv_end - item.kv_begin + Tr::kKeys - 1) / Tr::kKeys;
  if (threadIdx.x == 0) {
    for (int s = 0; s < Tr::kStages; ++s) {
      mbarrier_init(&full[s], Tr::kProducerThreads);  // the slot's producer group arrives
      mbarrier_init(&empty[s], 256);                  // every consumer thread arrives
    }
  }
  __syncthreads();
  if (warpgroup == 0) {
    registers_release<Tr::kProducerRegisters>();
    produce_tiles<T, HeadDim>(p, item, kv_head, w, smem, full, empty, num_tiles);
  } else {
    registers_claim<Tr::kConsumerRegisters>();
    consume_tiles<T, HeadDim>(p, item, kv_head, warpgroup - 1, w, smem, full, empty, wg_ranges + 8 * (warpgroup - 1),
                              num_tiles);
  }
#endif
}

template <DType T, int HeadDim>
int launch_multi_query_sm90(const MultiQueryParams& p, void* stream) {
  return launch_item_grid(multi_query_sm90_kernel<T, HeadDim>, kMultiQuerySm90Threads,
                          MultiQuerySm90Traits<T, HeadDim>::kShape.smem_bytes, p, stream);
}

}  // namespace kvserve::detail::cuda
