// What the multi-query attention kernel sees (host-visible, no CUDA types):
// one plain struct of pointers, strides and scalars, and the work items a
// plan's prepare() writes into the workspace. The kernel serves every op in
// which several query rows share one KV sequence: the cascade prefix (all
// requests of a group), the cascade suffix (one request's heads) and prefill
// (a tile of query tokens of one request). Built by the plans in this folder,
// read by multi_query_kernel.cuh.
#pragma once

#include <climits>
#include <cstdint>

#include "cuda/common/paged_pool.hpp"
#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// item.pos0 value that makes each token read its position from
// row_info[q_row].position instead of pos0 + token.
inline constexpr std::int32_t kPositionFromRowInfo = INT_MIN;

// One block's work (with one KV head per block along grid.x): a tile of up to
// MultiQueryShape::rows query rows against keys [kv_begin, kv_end) of one KV
// sequence. Rows are (token, head of the KV head's group) pairs, head
// fastest: row x of the segment is token x / group, head x % group, and token
// t's query is row q_row0 + t of q. Token t sits at key position pos0 + t
// (or row_info's position); each row then sees the keys [lo, hi) that the
// causal and window rules leave, cut to [kv_begin, kv_end).
struct MultiQueryItem {
  std::int32_t q_row0 = 0;
  std::int32_t num_tokens = 0;
  std::int32_t row_begin = 0;  // first row of this block's tile within the segment
  std::int32_t source = 0;     // which page table (0 or 1) holds the sequence
  std::int32_t page_base = 0;  // offset of the sequence's page ids (contiguous KV: its first row)
  std::int32_t kv_len = 0;     // keys of the sequence
  std::int32_t kv_begin = 0, kv_end = 0;
  std::int32_t pos0 = 0;       // or kPositionFromRowInfo
  std::int32_t slot = 0;       // partial output: offset within the token's slots
  std::int32_t pad[2] = {};    // 48 bytes: three 16-byte loads
};
static_assert(sizeof(MultiQueryItem) == 48);

// Per query row of q (a cascade request): where its partial states live and,
// for items with kPositionFromRowInfo, its key position.
struct MultiQueryRowInfo {
  std::int32_t slot_base = 0;   // first partial slot of the row
  std::int32_t slot_count = 0;  // partial slots the merge reads
  std::int32_t position = 0;
  std::int32_t pad = 0;
};
static_assert(sizeof(MultiQueryRowInfo) == 16);

// Prefill (the tiles of each request derived on the device, so that the
// workspace does not grow with the tokens): request b's query rows are cut in
// tiles of MultiQueryShape::rows (token, head) rows, numbered from first_tile; the
// entry after the last request holds the total in first_tile.
struct MultiQueryRequest {
  std::int32_t q_row0 = 0, q_len = 0;
  std::int32_t page_base = 0, kv_len = 0;
  std::int32_t first_tile = 0;
  std::int32_t pad[3] = {};
};
static_assert(sizeof(MultiQueryRequest) == 32);

struct MultiQueryParams {
  // q [rows, Hq, D]; strides in elements, the last dimension contiguous.
  const void* q = nullptr;
  std::int64_t q_stride_t = 0, q_stride_h = 0;
  // Direct output (out != null): out [rows, Hq, D] in the query dtype, lse
  // [rows, Hq] (null when not asked for).
  void* out = nullptr;
  std::int64_t out_stride_t = 0, out_stride_h = 0;
  float* lse = nullptr;
  std::int64_t lse_stride_t = 0, lse_stride_h = 0;
  // Partial output (out == null): the normalised fp32 state of token t's row
  // goes to slot row_info[q_row0 + t].slot_base + item.slot:
  // partial_out [slots, Hq, D], partial_lse [slots, Hq] (natural log).
  float* partial_out = nullptr;
  float* partial_lse = nullptr;
  const MultiQueryRowInfo* row_info = nullptr;

  // K and V: paged pools, or contiguous rows (indices[source] == null:
  // slot = page_base + key, page 0).
  PagedPool pool;
  const std::int32_t* indices[2] = {nullptr, nullptr};

  int num_qo_heads = 0, num_kv_heads = 0, group = 1;
  bool causal = true;
  int window_left = -1;  // >= 0: sliding window
  // Logits in base 2: s * q_scale (no cap) or cap_log2 * tanh(s * q_scale).
  float q_scale = 1.f;
  float cap_log2 = 0.f;

  // The schedule, in the workspace: either items (num_items of them) or,
  // for prefill, requests (num_items of them, plus the closing entry).
  const std::int32_t* num_items = nullptr;  // device scalar
  const MultiQueryItem* items = nullptr;    // [max_items]
  const MultiQueryRequest* requests = nullptr;
  // SinglePrefill (no prepare, so no workspace): its one request and the
  // closing record inline, used when both items and requests are null.
  MultiQueryRequest single[2] = {};
  int max_items = 0;                        // grid.y: items, or an upper bound on the tiles
  int rows_per_tile = 0;                    // MultiQueryShape::rows (prefill tiles)
};

// Merges each row's partial slots (MergeStates' rule) into out / lse.
struct SlotMergeParams {
  std::int64_t rows = 0;
  int num_heads = 0, head_dim = 0;
  const MultiQueryRowInfo* row_info = nullptr;
  const float* partial_out = nullptr;  // [slots, Hq, D]
  const float* partial_lse = nullptr;  // [slots, Hq]
  void* out = nullptr;
  std::int64_t out_stride_t = 0, out_stride_h = 0;
  float* lse = nullptr;  // null when not asked for
  std::int64_t lse_stride_t = 0, lse_stride_h = 0;
};

inline constexpr int kMultiQueryThreads = 128;  // 4 warps

// The block shape of a head_dim, shared by the host (tiles, occupancy) and
// the kernel. Each warp owns m_tiles MMA tiles of 16 query rows, so every
// K / V fragment loaded from shared memory feeds m_tiles MMAs: 2 (128 rows a
// block) up to d=128; 1 (64 rows) at d=256, where the fp32 O accumulators of
// 16 rows x 256 already take 128 registers a thread. K/V tiles of 64 tokens
// (32 from d=128 on, where S of 64 keys would push the registers past 255)
// stream through `stages` shared-memory stages beside Q's rows: 80 KB at
// d=128, 96 KB at d=256, 64 KB at d=64; registers (up to 255 a thread) keep
// 2 blocks on an SM.
struct MultiQueryShape {
  int m_tiles = 0;
  int rows = 0;
  int tile_tokens = 0;
  int stages = 0;
  int smem_bytes = 0;
  int blocks_per_sm = 0;
};
constexpr MultiQueryShape multi_query_shape(int head_dim) {
  MultiQueryShape s;
  s.m_tiles = head_dim > 128 ? 1 : 2;
  s.rows = (kMultiQueryThreads / 32) * 16 * s.m_tiles;
  s.tile_tokens = head_dim >= 128 ? 32 : 64;
  s.stages = head_dim > 128 ? 2 : 3;
  s.smem_bytes = (2 * s.stages * s.tile_tokens + s.rows) * head_dim * 2;
  const int fit = (228 * 1024) / (s.smem_bytes + 1024);
  s.blocks_per_sm = fit < 2 ? fit : 2;
  return s;
}

// The sm_90a kernel (multi_query_sm90_kernel.cuh): 3 warpgroups, one
// producer and two consumers of 64 rows each, so 128 rows a block at every
// head_dim. K/V tiles of 128 keys (64 at d=256, where O alone takes 128
// fp32 registers a thread and S of 128 keys would not fit beside it) in a
// ring of `stages`: Q 32 KB + 2 x 64 KB at d=128, 64 + 2 x 64 KB at d=256,
// 16 + 4 x 32 KB at d=64; one block an SM. 1 KB more for the alignment the
// swizzled tiles need and the barriers.
inline constexpr int kMultiQuerySm90Threads = 384;
constexpr MultiQueryShape multi_query_shape_sm90(int head_dim) {
  MultiQueryShape s;
  s.m_tiles = 4;  // 16-row MMA tiles a consumer warpgroup (one per warp)
  s.rows = 128;
  s.tile_tokens = head_dim > 128 ? 64 : 128;
  s.stages = head_dim == 64 ? 4 : 2;
  s.smem_bytes = (2 * s.stages * s.tile_tokens + s.rows) * head_dim * 2 + 2048;
  s.blocks_per_sm = 1;
  return s;
}

// A multi-query row's launchers: the attention pass (mma.sync for sm_80 on,
// and the warp-specialised wgmma kernel for sm_90a) and the slot merge of
// its dtype; each returns the cudaError_t of the launch as an int.
struct MultiQueryLaunch {
  int (*attend)(const MultiQueryParams&, void* stream);
  int (*attend_sm90)(const MultiQueryParams&, void* stream);
  int (*merge)(const SlotMergeParams&, void* stream);
};
// Whether this build holds sm_90a code for the wgmma kernel (the kernels
// compile to nothing for other targets).
bool multi_query_sm90_built();
// The launchers of the multi-query rows of one dtype (multi_query_<dtype>.cu).
RowLaunchers<MultiQueryLaunch> multi_query_launchers_f16();
RowLaunchers<MultiQueryLaunch> multi_query_launchers_bf16();

}  // namespace kvserve::detail::cuda
