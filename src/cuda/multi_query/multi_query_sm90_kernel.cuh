// Multi-query attention on Hopper (sm_90a): the same work items, rows and
// outputs as multi_query_kernel.cuh, on wgmma with warp specialisation.
// One block per (work item, KV head), three warpgroups:
// - the producer copies the item's Q rows (once) and its K/V tiles into a
//   ring of `stages` shared-memory slots, each tile of K and of V
//   128-byte-swizzled as wgmma reads it (hopper.cuh), with cp.async (which
//   gathers pages of any size and layout), one group of its threads a slot;
//   a group has a tile's K and V copies in flight together, announces each
//   on its own `full` mbarrier once landed, and waits on their `empty`
//   mbarriers before refilling them (K is free once S is computed, V only
//   after P V, a tile later: see consume_tiles);
// - two consumers own 64 query rows each: S = Q K^T with wgmma from shared
//   memory (fp32 in registers), online softmax in base 2, P rounded to the
//   input type in registers and O += P V with wgmma (P from registers, V
//   transposed from shared memory); both arrive on `empty` when done with K, then V.
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
  static_assert(kStages >= 2, "a slot's V is released a tile after its K (produce_tiles)");
  static_assert(kBarrierOffset + 1024 + 1024 <= kShape.smem_bytes, "alignment slack and barriers fit");
  static_assert(kProducerRegisters + 2 * kConsumerRegisters == 3 * kLaunchRegisters, "claims match releases");
};

// A ring slot's mbarriers: `full` completes when the slot's K (V) tile has
// landed (the slot's producer group arrives), `empty` when both consumers
// are done reading it (256 threads arrive).
// Named barriers: a consumer's range exchange, then the consumers' turns.
inline constexpr int kRangeBarrier = 1, kTurnBarrier = 3;

struct RingSlot {
  std::uint64_t k_full, v_full, k_empty, v_empty;
};

#if KVSERVE_SM90A
// The producer warpgroup (thread w of 128) in kStages groups of
// kProducerThreads, group g filling ring slot g with tiles g, g + kStages,
// ...: a group waits for its own copies to land before announcing its slot,
// and meanwhile the other groups' slots are being filled or consumed, so
// the consumers never wait on a copy issued after the tile they are on.
// Group 0 copies the item's Q rows too, with K tile 0 (the first `k_full`
// phase covers both). A thread copies one 16-byte chunk column of every
// (kProducerThreads / kChunks)-th row.
template <DType T, int HeadDim>
__device__ __forceinline__ void produce_tiles(const MultiQueryParams& p, const MultiQueryItem& item, int kv_head,
                                              int w, unsigned char* smem, RingSlot* ring, int num_tiles) {
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
  RingSlot& slot = ring[group];
  // Issues the copies of a tile's K or V rows into the slot (pages looked up
  // for each) as one cp.async group.
  auto issue_tile = [&](unsigned char* dst, const t* head, std::int64_t stride_page, std::int64_t stride_slot,
                        int tile_begin) {
    for (int row = first_row; row < Tr::kKeys; row += kStep) {
      const int key = tile_begin + row;
      const bool valid = key < item.kv_end;
      std::int64_t page = 0, at = item.page_base + key;
      if (indices != nullptr) {
        page = valid ? indices[item.page_base + p.pool.page_index(key)] : 0;
        at = p.pool.slot(key);
      }
      cp_async16(dst + swizzled_offset(Tr::kKeys, row, chunk * 8),
                 head + (valid ? page * stride_page + at * stride_slot + chunk * 8 : 0), valid);
    }
    cp_async_commit();
  };
  // K and V of a tile are in flight together (a group waiting for K to land
  // before issuing V halved the bytes in flight: paged prefill fell from 204
  // to 169 TFLOP/s); each is announced once landed and fenced into the async
  // proxy wgmma reads. V's `empty` comes a tile after K's, still a tile
  // before the consumers need this K (kStages >= 2).
  for (int tile = group, round = 0; tile < num_tiles; tile += Tr::kStages, ++round) {
    const int tile_begin = item.kv_begin + tile * Tr::kKeys;
    if (round > 0) mbarrier_wait(&slot.k_empty, (round - 1) & 1);
    issue_tile(k_tile, k_head, p.pool.k_stride_page, p.pool.k_stride_slot, tile_begin);
    if (round > 0) mbarrier_wait(&slot.v_empty, (round - 1) & 1);
    issue_tile(v_tile, v_head, p.pool.v_stride_page, p.pool.v_stride_slot, tile_begin);
    cp_async_wait<1>();
    fence_async_shared();
    mbarrier_arrive(&slot.k_full);
    cp_async_wait<0>();
    fence_async_shared();
    mbarrier_arrive(&slot.v_full);
  }
}

// A consumer warpgroup (c = 0 or 1, thread w of 128): rows 64 c .. 64 c + 63
// of the tile. Its warp `warp` owns rows 16 warp .. + 15 of those (the wgmma
// accumulator layout): this thread rows g and g + 8 (g = lane / 4), columns
// 2 (lane % 4) + {0, 1} of every 8-column block, elements 4 n + 2 i + {0, 1}
// of an accumulator for row i of block n.
template <DType T, int HeadDim>
__device__ __forceinline__ void consume_tiles(const MultiQueryParams& p, const MultiQueryItem& item, int kv_head,
                                              int c, int w, unsigned char* smem, RingSlot* ring, int* wg_ranges,
                                              int num_tiles) {
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
  named_barrier_sync(kRangeBarrier + c, 128);
#pragma unroll
  for (int v = 0; v < 4; ++v) union_lo = min(union_lo, wg_ranges[2 * v]), union_hi = max(union_hi, wg_ranges[2 * v + 1]);

  const std::uint32_t q_base = smem_address(smem) + 64 * c * 128;
  // With a soft cap the logits are capped in place (already in base 2);
  // otherwise the scale is fused into exp2's argument (one FFMA a logit),
  // and taken max of raw logits is the max of scaled ones (scale > 0).
  const bool capped = p.cap_log2 > 0.f;
  const float scale = capped ? 1.f : p.q_scale;
  SoftmaxState st[2];
  float o[HeadDim / 2];
#pragma unroll
  for (int e = 0; e < HeadDim / 2; ++e) o[e] = 0.f;
  // P of the previous tile in the A fragments of O += P V: k-step j (keys
  // 16 j ..) takes S blocks 2 j and 2 j + 1, rows g and g + 8 of each.
  unsigned pa[kKeys / 16][4];
  // O += P V of a tile: k-step j is keys 16 j .. of V (2048 bytes into each
  // block); the 64-column blocks of V are kKeys * 128 bytes apart.
  auto issue_pv = [&](std::uint32_t v_base) {
    wgmma_fence();
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j)
      wgmma_rs<T, HeadDim>(o, pa[j], smem_descriptor(v_base + j * 16 * 128, kKeys * 128, 1024), 1);
    wgmma_commit();
  };
  // S = Q K^T of a tile over HeadDim / 16 k-steps: step kk is 32 bytes into
  // 64-column block kk / 4 of both operands.
  auto issue_s = [&](float (&s)[kKeys / 2], std::uint32_t k_base) {
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
  };
  // Caps and masks a tile's logits (the cap and the mask are uniform per
  // warp: one branch each around the tile) and folds their row maxima into
  // the softmax state: the factor O must be rescaled by, the new base.
  auto fold_max = [&](float (&s)[kKeys / 2], int tile_begin, float (&factor)[2], float (&base)[2]) {
    if (capped) {
#pragma unroll
      for (int e = 0; e < kKeys / 2; ++e) s[e] = p.cap_log2 * tanhf(s[e] * p.q_scale);
    }
    if (!(tile_begin >= inter_lo && tile_begin + kKeys <= inter_hi)) {
#pragma unroll
      for (int e = 0; e < kKeys / 2; ++e) {
        const int key = tile_begin + (e / 4) * 8 + col + (e & 1), i = (e / 2) % 2;
        if (key < lo[i] || key >= hi[i]) s[e] = -INFINITY;
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float row_max = -INFINITY;
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) row_max = fmaxf(row_max, fmaxf(s[4 * n + 2 * i], s[4 * n + 2 * i + 1]));
      row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 1));
      row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 2));
      factor[i] = st[i].rescale_to(row_max * scale);
      base[i] = st[i].m == -INFINITY ? 0.f : st[i].m;
    }
  };
  // P = 2^(scale s - base) into the A fragments, summed into the state.
  auto make_p = [&](const float (&s)[kKeys / 2], const float (&base)[2]) {
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const float* const sv = s + 4 * (2 * j + h) + 2 * i;
          const float w0 = fast_exp2(fmaf(sv[0], scale, -base[i])), w1 = fast_exp2(fmaf(sv[1], scale, -base[i]));
          st[i].d += w0 + w1;
          pa[j][2 * h + i] = pack2<T>(w0, w1);
        }
  };
  // Waits for tiles from `tile` on until one the warpgroup attends to,
  // releasing those it skips (uniformly over the warpgroup, whose wgmma are
  // collective); false past the last.
  int tile = 0, stage = 0, tile_begin = 0;
  // Turns (FlashAttention-3's ping-pong): the two consumers issue their
  // wgmma in alternation, consumer 0 first, so that one's softmax runs
  // while the other's products hold the tensor cores. Each takes one turn a
  // tile, skipped ones included, so the turns pair up whatever the masks.
  auto take_turn = [&] { named_barrier_sync(kTurnBarrier + c, 256); };
  auto pass_turn = [&] { named_barrier_arrive(kTurnBarrier + 1 - c, 256); };
  if (c == 1) pass_turn();
  auto next_attended = [&]() {
    for (; tile < num_tiles; ++tile) {
      stage = tile % Tr::kStages;
      tile_begin = item.kv_begin + tile * kKeys;
      const int parity = (tile / Tr::kStages) & 1;
      mbarrier_wait(&ring[stage].k_full, parity);
      if (tile_begin < union_hi && tile_begin + kKeys > union_lo) return true;
      // Skipped, released once landed: the producer then runs at most one
      // phase ahead, as the parity waits need.
      mbarrier_wait(&ring[stage].v_full, parity);
      mbarrier_arrive(&ring[stage].k_empty);
      mbarrier_arrive(&ring[stage].v_empty);
      take_turn();
      pass_turn();
    }
    return false;
  };
  auto k_tile = [&] { return smem_address(smem) + Tr::kQBytes + stage * Tr::kTileBytes; };

  // A tile's O += P V runs on the tensor cores while the next tile's
  // softmax runs on the ALUs (FlashAttention-3's intra-warpgroup overlap):
  // the next S is committed first, so waiting for all groups but one waits
  // for S; the slot is released, and O rescaled, once P V has finished.
  // The first tile is peeled so that no wgmma sits in a divergent path.
  if (next_attended()) {
    float s[kKeys / 2], factor[2], base[2];
    take_turn();
    issue_s(s, k_tile());
    pass_turn();
    wgmma_wait<0>();
    pin_registers(s);
    mbarrier_arrive(&ring[stage].k_empty);
    fold_max(s, tile_begin, factor, base);  // O is 0: no rescale
    make_p(s, base);
    int pending_tile = tile;
    // Issues the pending tile's P V once its V has landed.
    auto issue_pending_pv = [&] {
      const int pending_stage = pending_tile % Tr::kStages;
      mbarrier_wait(&ring[pending_stage].v_full, (pending_tile / Tr::kStages) & 1);
      issue_pv(smem_address(smem) + Tr::kQBytes + (Tr::kStages + pending_stage) * Tr::kTileBytes);
    };
    for (++tile; next_attended(); ++tile) {
      take_turn();
      issue_s(s, k_tile());
      issue_pending_pv();
      pass_turn();
      wgmma_wait<1>();
      pin_registers(s);
      mbarrier_arrive(&ring[stage].k_empty);
      fold_max(s, tile_begin, factor, base);
      wgmma_wait<0>();
      pin_registers(o);
      mbarrier_arrive(&ring[pending_tile % Tr::kStages].v_empty);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        if (factor[i] != 1.f) {
#pragma unroll
          for (int n = 0; n < HeadDim / 8; ++n) o[4 * n + 2 * i] *= factor[i], o[4 * n + 2 * i + 1] *= factor[i];
        }
      }
      make_p(s, base);
      pending_tile = tile;
    }
    issue_pending_pv();
    wgmma_wait<0>();
    pin_registers(o);
    mbarrier_arrive(&ring[pending_tile % Tr::kStages].v_empty);
  }
  if (c == 0) take_turn();  // consumer 1's last pass: every arrival met

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
  auto* const ring = reinterpret_cast<RingSlot*>(smem + Tr::kBarrierOffset);
  int* const wg_ranges = reinterpret_cast<int*>(ring + Tr::kStages);  // [2 consumers][4 warps][lo, hi]

  MultiQueryItem item;
  if (!load_item(p, static_cast<int>(blockIdx.y), &item)) return;
  const int kv_head = blockIdx.x;
  const int warpgroup = threadIdx.x / 128, w = threadIdx.x % 128;
  const int num_tiles = (item.kv_end - item.kv_begin + Tr::kKeys - 1) / Tr::kKeys;
  if (threadIdx.x == 0) {
    for (int s = 0; s < Tr::kStages; ++s) {
      mbarrier_init(&ring[s].k_full, Tr::kProducerThreads);  // the slot's producer group arrives
      mbarrier_init(&ring[s].v_full, Tr::kProducerThreads);
      mbarrier_init(&ring[s].k_empty, 256);  // every consumer thread arrives
      mbarrier_init(&ring[s].v_empty, 256);
    }
  }
  __syncthreads();
  if (warpgroup == 0) {
    registers_release<Tr::kProducerRegisters>();
    produce_tiles<T, HeadDim>(p, item, kv_head, w, smem, ring, num_tiles);
  } else {
    registers_claim<Tr::kConsumerRegisters>();
    consume_tiles<T, HeadDim>(p, item, kv_head, warpgroup - 1, w, smem, ring, wg_ranges + 8 * (warpgroup - 1),
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
