#include "cuda/multi_query/multi_query_schedule.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/paged_kv_rules.hpp"

namespace kvserve::detail::cuda {
namespace {

std::size_t align256(std::size_t n) { return (n + 255) / 256 * 256; }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Lays out the workspace regions after the sizes are known.
void lay_out(MultiQuerySizing* z) {
  const auto hq = static_cast<std::size_t>(z->num_qo_heads);
  const auto slots = static_cast<std::size_t>(z->max_slots);
  z->row_info_offset = 256;
  z->items_offset = align256(z->row_info_offset + sizeof(MultiQueryRowInfo) * static_cast<std::size_t>(z->max_rows));
  z->staging_bytes = z->items_offset + sizeof(MultiQueryItem) * static_cast<std::size_t>(z->max_items);
  z->partial_lse_offset = align256(z->staging_bytes);
  z->partial_out_offset = align256(z->partial_lse_offset + sizeof(float) * slots * hq);
  z->workspace_bytes = align256(z->partial_out_offset + sizeof(float) * slots * hq * z->head_dim);
}

MultiQuerySizing base_sizing(int num_qo_heads, int num_kv_heads, int head_dim, int sm_count,
                             const MultiQueryShape& shape) {
  MultiQuerySizing z;
  z.shape = shape;
  z.num_qo_heads = num_qo_heads;
  z.num_kv_heads = num_kv_heads;
  z.group = num_qo_heads / num_kv_heads;
  z.head_dim = head_dim;
  z.target_blocks = sm_count * z.shape.blocks_per_sm;
  return z;
}

// The first key a query at `pos` sees (the window's start, else 0).
std::int64_t window_start(const AttentionParams& attn, std::int64_t pos) {
  return attn.window_left >= 0 ? std::max<std::int64_t>(0, pos - attn.window_left) : 0;
}

}  // namespace

MultiQuerySizing cascade_sizing(const CascadeAttentionDesc& d, int sm_count, const MultiQueryShape& shape) {
  MultiQuerySizing z = base_sizing(d.num_qo_heads, d.kv.num_kv_heads, d.kv.head_dim, sm_count, shape);
  // Prefix row tiles over all groups: sum_g ceil(B_g * group / 64), at most
  // ceil(max_batch * group / 64) + max_groups; each cut in up to
  // kCascadeMaxPrefixSplits slices. Suffixes: ceil(group / 64) tiles each.
  const int rows = z.shape.rows;
  const std::int64_t prefix_tiles = ceil_div(std::int64_t{d.max_batch} * z.group, rows) + d.max_groups;
  z.max_items = static_cast<int>(std::min<std::int64_t>(
      INT32_MAX, prefix_tiles * kCascadeMaxPrefixSplits + std::int64_t{d.max_batch} * ceil_div(z.group, rows)));
  z.max_rows = d.max_batch;
  z.max_slots = d.max_batch * (kCascadeMaxPrefixSplits + 1);
  lay_out(&z);
  return z;
}

int build_cascade_schedule(const MultiQuerySizing& z, const CascadeAttentionDesc& d, const CascadeLengths& host,
                           void* staging) {
  auto* bytes = static_cast<unsigned char*>(staging);
  auto* rows = reinterpret_cast<MultiQueryRowInfo*>(bytes + z.row_info_offset);
  auto* items = reinterpret_cast<MultiQueryItem*>(bytes + z.items_offset);
  const std::int64_t groups = static_cast<std::int64_t>(host.group_indptr.size()) - 1;
  const int page_size = d.kv.page_size;
  auto prefix_len = [&](std::int64_t g) {
    return paged_kv_len(host.prefix.indptr.data(), host.prefix.last_page_len.data(), g, page_size);
  };
  auto suffix_len = [&](std::int64_t b) {
    return paged_kv_len(host.suffix.indptr.data(), host.suffix.last_page_len.data(), b, page_size);
  };
  // Request b's query sits after its prefix and suffix; a group's prefix
  // keys seen by any of its requests are [first visible, prefix_len).
  auto first_prefix_key = [&](std::int64_t g) {
    std::int64_t first = INT64_MAX;
    for (std::int64_t b = host.group_indptr[g]; b < host.group_indptr[g + 1]; ++b)
      first = std::min(first, window_start(d.attn, prefix_len(g) + suffix_len(b) - 1));
    return first;
  };
  const int tile_rows = z.shape.rows;
  auto row_tiles = [&](std::int64_t requests) { return ceil_div(requests * z.group, tile_rows); };

  // Keys streamed per KV head by the whole batch, unsplit: the fair share of
  // one block in a wave decides how finely prefixes are cut.
  std::vector<std::int64_t> prefix_span(static_cast<std::size_t>(groups), 0);
  std::int64_t work = 0;
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t requests = host.group_indptr[g + 1] - host.group_indptr[g];
    if (requests == 0) continue;
    prefix_span[g] = std::max<std::int64_t>(0, prefix_len(g) - first_prefix_key(g));
    work += row_tiles(requests) * prefix_span[g];
    for (std::int64_t b = host.group_indptr[g]; b < host.group_indptr[g + 1]; ++b) {
      const std::int64_t s = suffix_len(b);
      work += row_tiles(1) * (s - window_start(d.attn, s - 1));
    }
  }
  const std::int64_t items_per_wave = std::max<std::int64_t>(1, z.target_blocks / z.num_kv_heads);
  const std::int64_t fair = std::max<std::int64_t>(kMinSliceTokens, ceil_div(work, items_per_wave));

  int n = 0, slot_base = 0;
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t r0 = host.group_indptr[g], requests = host.group_indptr[g + 1] - r0;
    if (requests == 0) continue;
    const std::int64_t plen = prefix_len(g), span = prefix_span[g];
    int splits = 0;
    if (span > 0) {
      const std::int64_t wanted = std::clamp<std::int64_t>(ceil_div(span, fair), 1, kCascadeMaxPrefixSplits);
      const std::int64_t slice = ceil_div(ceil_div(span, wanted), 64) * 64;
      splits = static_cast<int>(ceil_div(span, slice));
      for (int s = 0; s < splits; ++s)
        for (std::int64_t tile = 0; tile < row_tiles(requests); ++tile) {
          MultiQueryItem& it = items[n++];
          it = MultiQueryItem{};
          it.q_row0 = static_cast<std::int32_t>(r0);
          it.num_tokens = static_cast<std::int32_t>(requests);
          it.row_begin = static_cast<std::int32_t>(tile * tile_rows);
          it.source = 0;
          it.page_base = host.prefix.indptr[g];
          it.kv_len = static_cast<std::int32_t>(plen);
          it.kv_begin = static_cast<std::int32_t>(plen - span + s * slice);
          it.kv_end = static_cast<std::int32_t>(std::min(plen, plen - span + (s + 1) * slice));
          it.pos0 = kPositionFromRowInfo;
          it.slot = s;
        }
    }
    for (std::int64_t b = r0; b < r0 + requests; ++b) {
      const std::int64_t slen = suffix_len(b);
      rows[b] = MultiQueryRowInfo{slot_base, splits + (slen > 0 ? 1 : 0), static_cast<std::int32_t>(plen + slen - 1),
                                  0};
      slot_base += rows[b].slot_count;
      if (slen == 0) continue;
      for (std::int64_t tile = 0; tile < row_tiles(1); ++tile) {
        MultiQueryItem& it = items[n++];
        it = MultiQueryItem{};
        it.q_row0 = static_cast<std::int32_t>(b);
        it.num_tokens = 1;
        it.row_begin = static_cast<std::int32_t>(tile * tile_rows);
        it.source = 1;
        it.page_base = host.suffix.indptr[b];
        it.kv_len = static_cast<std::int32_t>(slen);
        it.kv_begin = static_cast<std::int32_t>(window_start(d.attn, slen - 1));
        it.kv_end = static_cast<std::int32_t>(slen);
        it.pos0 = static_cast<std::int32_t>(slen - 1);
        it.slot = splits;
      }
    }
  }
  std::memset(bytes, 0, z.row_info_offset);
  std::memcpy(bytes, &n, sizeof n);
  return n;
}

MultiQuerySizing prefill_sizing(int max_batch, int num_qo_heads, int num_kv_heads, int head_dim, int sm_count,
                                const MultiQueryShape& shape) {
  MultiQuerySizing z = base_sizing(num_qo_heads, num_kv_heads, head_dim, sm_count, shape);
  // The request records take the items' place: (max_batch + 1) x 32 bytes
  // is (max_batch + 1) x 2/3 items.
  z.max_items = static_cast<int>(ceil_div((std::int64_t{max_batch} + 1) * sizeof(MultiQueryRequest),
                                          sizeof(MultiQueryItem)));
  lay_out(&z);
  return z;
}

std::size_t build_prefill_schedule(const MultiQuerySizing& z, std::span<const std::int32_t> qo_indptr,
                                   std::span<const KvSpan> kv, void* staging) {
  auto* bytes = static_cast<unsigned char*>(staging);
  auto* requests = reinterpret_cast<MultiQueryRequest*>(bytes + z.items_offset);
  const int batch = static_cast<int>(qo_indptr.size()) - 1;
  std::int32_t tiles = 0;
  for (int b = 0; b < batch; ++b) {
    MultiQueryRequest& r = requests[b];
    r = MultiQueryRequest{};
    r.q_row0 = qo_indptr[b];
    r.q_len = qo_indptr[b + 1] - qo_indptr[b];
    r.page_base = kv[b].page_base;
    r.kv_len = static_cast<std::int32_t>(kv[b].kv_len);
    r.first_tile = tiles;
    tiles += static_cast<std::int32_t>(ceil_div(std::int64_t{r.q_len} * z.group, z.shape.rows));
  }
  requests[batch] = MultiQueryRequest{};
  requests[batch].first_tile = tiles;
  std::memset(bytes, 0, z.row_info_offset);
  std::memcpy(bytes, &batch, sizeof batch);
  return z.items_offset + sizeof(MultiQueryRequest) * static_cast<std::size_t>(batch + 1);
}

std::int64_t prefill_max_tiles(const MultiQuerySizing& z, std::int64_t total_q, std::int64_t batch) {
  return ceil_div(total_q * z.group, z.shape.rows) + batch;
}

}  // namespace kvserve::detail::cuda
