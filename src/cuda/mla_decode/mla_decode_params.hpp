// What the MLA decode kernel sees (host-visible, no CUDA types): pointers,
// strides and the split schedule prepare() writes into the workspace, the
// same work items as paged decode (decode_schedule.hpp cuts the requests).
#pragma once

#include <cstdint>

#include "cuda/common/paged_pool.hpp"
#include "cuda/paged_decode/decode_params.hpp"
#include "cuda/registry/registry.hpp"

namespace kvserve::detail::cuda {

// The widths compiled: DeepSeek-V2/V3's latent (512) and rope (64) rows.
inline constexpr int kMlaCkvDim = 512;
inline constexpr int kMlaKpeDim = 64;
// A block serves 64 query heads (4 groups of the MMA's 16 rows) with 8
// warps: warp w takes head group w % 4 and half w / 4 of the work, i.e. of
// the 576-wide dot products for S and of the 512 output columns for P V
// (O of 16 heads x 256 columns in fp32: 128 registers a lane).
inline constexpr int kMlaHeadsPerBlock = 64;
inline constexpr int kMlaThreads = 256;
// 32-token tiles of [ckv | kpe] (36 KB in bf16) in 3 stages, the 64 heads'
// queries (72 KB) and the S exchange between the two warps of a head group
// (16 KB): 196 KB, one block per SM.
inline constexpr int kMlaTileTokens = 32;
inline constexpr int kMlaStages = 3;
inline constexpr int kMlaRowElems = kMlaCkvDim + kMlaKpeDim;
inline constexpr int kMlaSmemBytes = kMlaStages * kMlaTileTokens * kMlaRowElems * 2 +
                                     kMlaHeadsPerBlock * kMlaRowElems * 2 + 8 * 32 * 16 * 4 + 16;

// The split schedule (decode_params.hpp): counters [max_batch * head_chunks],
// partial states [partial slots, H, 512].
struct MlaDecodeParams : SplitSchedule {
  // q_nope [B, H, 512], q_pe [B, H, 64], out [B, H, 512], lse [B, H]
  // (null when not asked for); strides in elements, last dimension contiguous.
  const void* q_nope = nullptr;
  std::int64_t q_nope_stride_b = 0, q_nope_stride_h = 0;
  const void* q_pe = nullptr;
  std::int64_t q_pe_stride_b = 0, q_pe_stride_h = 0;
  void* out = nullptr;
  std::int64_t out_stride_b = 0, out_stride_h = 0;
  float* lse = nullptr;
  std::int64_t lse_stride_b = 0, lse_stride_h = 0;

  // The cache as one pool pair: k = the ckv pool, v = the kpe pool (head
  // strides 0: one latent head).
  PagedPool pool;
  const std::int32_t* indices = nullptr;  // page ids

  int num_heads = 0;
  int head_chunks = 1;  // grid.x: blocks of kMlaHeadsPerBlock heads per item
  float q_scale = 1.f;  // sm_scale * log2 e: logits in base 2
};

using MlaDecodeLaunch = int (*)(const MlaDecodeParams&, void* stream);
RowLaunchers<MlaDecodeLaunch> mla_decode_launchers();

}  // namespace kvserve::detail::cuda
