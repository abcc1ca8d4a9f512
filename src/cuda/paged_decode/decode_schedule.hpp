// How a paged-decode plan cuts a batch into blocks: the sizes derived from
// the descriptor (workspace layout included) and the host-side schedule that
// prepare() builds from the lengths. Plain C++, no CUDA: the tests check the
// schedule's invariants on any machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cuda/paged_decode/decode_params.hpp"
#include "kvserve/attention.hpp"

namespace kvserve::detail::cuda {

// Everything a decode plan derives from (desc, device): a pure function, so
// workspace_bytes() is one too.
struct DecodeSizing {
  DecodeShape shape;
  int num_qo_heads = 0, num_kv_heads = 0, head_dim = 0;
  int group = 1, heads_per_block = 1, token_slots = 1, head_chunks = 1;
  int max_batch = 0;
  int split_tokens = 0;   // > 0: fixed split (batch invariant)
  int max_splits = 0;     // fixed split: slices per request at most
  int target_items = 0;   // auto split: slices per KV head the batch is cut into
  int max_items = 0;      // grid.x
  // Workspace layout, in bytes from its start (each region 256-byte aligned):
  // [num_items][k_scale, v_scale] | items | split counters | partial lse | partial out.
  std::size_t scales_offset = 0, items_offset = 0;
  SplitRegions regions;  // regions.end: the workspace size
  std::size_t staging_bytes = 0;  // header, scales and max_items items: what prepare() copies at most
};

// Auto split never cuts a slice shorter than this: at 128 bf16 tokens a
// block still streams 64 KB of K/V (4 stages of 32 tokens), while its fixed
// costs (page-table reads, q load, row merge, the split merge) stay small.
inline constexpr int kDecodeMinSliceTokens = 128;
// Fixed split: the partial states kept for the whole batch, i.e. at most
// max(2, 1024 / max_batch) slices per request (a longer request gets longer
// slices, chosen from its own length alone, so batch invariance holds).
inline constexpr int kDecodeFixedSplitPartials = 1024;

DecodeSizing decode_sizing(const BatchPagedDecodeDesc& desc, int sm_count);

// How requests are cut into slices, the split-KV rule of both paged decode
// kernels (BatchPagedDecode, BatchPagedMlaDecode).
struct SplitPolicy {
  int split_tokens = 0;  // > 0: fixed slices of this many tokens (batch invariant)
  int max_splits = 0;    // fixed split: slices per request at most
  int target_items = 0;  // auto split: slices the batch is cut into
  int tile_tokens = 0;   // auto split: slices are whole tiles of the kernel
};

// Writes the work items of the batch `host` describes (keys visible to a
// query at the last position, a window of window_left keys when >= 0) and
// returns their number, at most max_batch + target_items (auto) or
// max_batch * max_splits (fixed). *partials (when given) receives the partial
// state slots the split requests take: at most target_items (auto; each
// request takes at most floor(tokens * target / total)) or max_batch *
// max_splits (fixed).
int build_work_items(const SplitPolicy& policy, const PagedKvLengths& host, int page_size, int window_left,
                     DecodeWorkItem* items, int* partials = nullptr);

// Unsupported naming `op` when a plan's work items exceed one launch's grid.y.
Status check_item_grid(std::string_view op, int max_batch, int max_items);

// Writes the schedule for the batch `host` describes into `staging` (laid
// out as the workspace's first sizing.items_offset + n * 32 bytes) and
// returns n, the number of work items.
int build_decode_schedule(const DecodeSizing& sizing, const BatchPagedDecodeDesc& desc, const PagedKvLengths& host,
                          void* staging);

}  // namespace kvserve::detail::cuda
