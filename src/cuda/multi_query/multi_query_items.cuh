// The work items of the multi-query kernels (mma.sync and the sm_90a
// warp-specialised one), as each block reads them: a block's item (given by
// the schedule or derived from the prefill requests), the page of a key, and
// the keys each query row of the item sees.
#pragma once

#include <climits>

#include "cuda/multi_query/multi_query_params.hpp"

namespace kvserve::detail::cuda {

// The page holding key `key` of an item's sequence (loaded a tile ahead of
// its copies); contiguous K/V (indices null) is page 0, slot first row + key.
__device__ __forceinline__ int page_of_key(const MultiQueryParams& p, const std::int32_t* indices,
                                           std::int32_t page_base, int key) {
  if (indices == nullptr) return 0;
  return indices[page_base + p.pool.page_index(key)];
}
// The work of block `y`: item y, or the prefill tile y counted from the
// last (the tiles whose queries see the most keys start first). Returns
// false for blocks past the schedule.
__device__ __forceinline__ bool load_item(const MultiQueryParams& p, int y, MultiQueryItem* item) {
  if (p.items != nullptr) {
    *item = p.items[y];  // read before the count is known: two independent loads
    return y < *p.num_items;
  }
  const MultiQueryRequest* const requests = p.requests != nullptr ? p.requests : p.single;
  const int n = p.requests != nullptr ? *p.num_items : 1, total = requests[n].first_tile;
  if (y >= total) return false;
  const int tile = total - 1 - y;
  int lo = 0, hi = n - 1;  // the last request whose first tile is <= tile
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (requests[mid].first_tile <= tile) lo = mid;
    else hi = mid - 1;
  }
  const MultiQueryRequest r = requests[lo];
  const int row_begin = (tile - r.first_tile) * p.rows_per_tile;
  const int last_row = min(row_begin + p.rows_per_tile, r.q_len * p.group) - 1;
  const int pos0 = r.kv_len - r.q_len;
  const int first_pos = pos0 + row_begin / p.group, last_pos = pos0 + last_row / p.group;
  *item = MultiQueryItem{};
  item->q_row0 = r.q_row0;
  item->num_tokens = r.q_len;
  item->row_begin = row_begin;
  item->page_base = r.page_base;
  item->kv_len = r.kv_len;
  item->kv_begin = p.window_left >= 0 ? max(0, first_pos - p.window_left) : 0;
  item->kv_end = max(item->kv_begin, p.causal ? min(r.kv_len, last_pos + 1) : r.kv_len);
  item->pos0 = pos0;
  return true;
}

// The keys [lo, hi) row x of the item's segment sees (causal, window,
// [kv_begin, kv_end)); lo = hi = 0 for a row past the segment or one that
// sees nothing.
__device__ __forceinline__ void row_key_range(const MultiQueryParams& p, const MultiQueryItem& item, int x,
                                              int segment_rows, int* lo, int* hi) {
  *lo = 0, *hi = 0;
  if (x >= segment_rows) return;
  const int token = x / p.group;
  const int pos = item.pos0 == kPositionFromRowInfo ? p.row_info[item.q_row0 + token].position : item.pos0 + token;
  const int top = p.causal ? min(item.kv_len, pos + 1) : item.kv_len;
  const int bottom = p.window_left >= 0 ? max(0, pos - p.window_left) : 0;
  *lo = max(bottom, item.kv_begin);
  *hi = min(top, item.kv_end);
  if (*hi <= *lo) *lo = 0, *hi = 0;
}

}  // namespace kvserve::detail::cuda
