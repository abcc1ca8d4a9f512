// How the plans built on the multi-query kernel cut their work into blocks:
// the workspace layout derived from the descriptor and the host-side
// schedules prepare() builds from the lengths. Plain C++, no CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "cuda/multi_query/multi_query_params.hpp"
#include "kvserve/attention.hpp"

namespace kvserve::detail::cuda {

// A cascade prefix is cut into at most this many key slices (each request
// then keeps that many partial states for its prefix, plus one for its
// suffix), and a slice is never shorter than kMinSliceTokens keys.
inline constexpr int kCascadeMaxPrefixSplits = 8;
inline constexpr int kMinSliceTokens = 256;

// Everything a plan derives from (desc, device): a pure function, so
// workspace_bytes() is one too. Workspace regions, each 256-byte aligned:
// [num_items] | row info [max_rows] | items [max_items] | partial lse | partial out.
struct MultiQuerySizing {
  MultiQueryShape shape;
  int num_qo_heads = 0, num_kv_heads = 0, group = 1, head_dim = 0;
  int max_rows = 0;    // rows of row info (cascade: max_batch; 0 when unused)
  int max_items = 0;   // grid.y
  int max_slots = 0;   // partial states per head (0: the kernel writes out directly)
  int target_blocks = 0;  // a wave: SMs x resident blocks
  std::size_t row_info_offset = 0, items_offset = 0, partial_lse_offset = 0, partial_out_offset = 0,
              workspace_bytes = 0;
  std::size_t staging_bytes = 0;  // what prepare() copies at most
};

// `shape`: the block shape of the kernel the plan runs (MultiQueryKernel).
MultiQuerySizing cascade_sizing(const CascadeAttentionDesc& desc, int sm_count, const MultiQueryShape& shape);

// Writes the cascade schedule for `host` into `staging` (laid out as the
// workspace's first items_offset + n * sizeof(MultiQueryItem) bytes) and
// returns n, the number of items: for each group, its prefix in up to
// kCascadeMaxPrefixSplits key slices x tiles of its requests' rows (each
// request's window start decides which prefix keys its rows see), then one
// item per request's suffix; every request's row info lists its slots.
int build_cascade_schedule(const MultiQuerySizing& sizing, const CascadeAttentionDesc& desc,
                           const CascadeLengths& host, void* staging);

// Prefill: the workspace holds one MultiQueryRequest per request (and the
// closing one) where cascade keeps its items; the kernel derives the tiles.
MultiQuerySizing prefill_sizing(int max_batch, int num_qo_heads, int num_kv_heads, int head_dim, int sm_count,
                                const MultiQueryShape& shape);

// Where request b's keys are: its first page id's offset in indices (or its
// first row of contiguous K/V) and its key count.
struct KvSpan {
  std::int32_t page_base = 0;
  std::int64_t kv_len = 0;
};

// Writes the request records for qo_indptr [B + 1] and the requests' KV
// spans into `staging` and returns the bytes prepare() copies.
std::size_t build_prefill_schedule(const MultiQuerySizing& sizing, std::span<const std::int32_t> qo_indptr,
                                   std::span<const KvSpan> kv, void* staging);

// The grid.y a prefill run needs at most for `total_q` query tokens over
// `batch` requests (each request's last tile may be partial).
std::int64_t prefill_max_tiles(const MultiQuerySizing& sizing, std::int64_t total_q, std::int64_t batch);

}  // namespace kvserve::detail::cuda
