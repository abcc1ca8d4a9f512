#include "cuda/paged_decode/decode_schedule.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/paged_kv_rules.hpp"
#include "cuda/registry/registry.hpp"

namespace kvserve::detail::cuda {
namespace {
std::size_t align256(std::size_t n) { return (n + 255) / 256 * 256; }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
}  // namespace

DecodeSizing decode_sizing(const BatchPagedDecodeDesc& d, int sm_count) {
  DecodeSizing z;
  z.shape = decode_shape(d.q_dtype, d.kv.dtype, d.kv.head_dim);
  z.num_qo_heads = d.num_qo_heads;
  z.num_kv_heads = d.kv.num_kv_heads;
  z.head_dim = d.kv.head_dim;
  z.max_batch = d.max_batch;
  z.group = d.num_qo_heads / d.kv.num_kv_heads;
  // One block serves as many heads of a group as it has rows (16 on either
  // kernel at d=128), so each K/V byte is loaded once for groups up to 16.
  // The CUDA-core kernel's rows left over score more tokens of a tile side by
  // side (GQA 4 at bf16 d=128: 4 rows per head).
  z.heads_per_block = std::min(z.group, z.shape.rows);
  z.token_slots = z.shape.rows / z.heads_per_block;
  z.head_chunks = static_cast<int>(ceil_div(z.group, z.heads_per_block));
  z.split_tokens = d.kv_split_tokens;
  const int blocks_per_item = z.num_kv_heads * z.head_chunks;
  if (z.split_tokens > 0) {
    z.max_splits = std::max(2, static_cast<int>(ceil_div(kDecodeFixedSplitPartials, d.max_batch)));
    z.max_items = d.max_batch * z.max_splits;
  } else {
    // As many slices as one wave of blocks holds: every SM's slots once
    // (bf16 d=128 on an H100: 132 SMs x 2 blocks = 264 slots over 8 KV heads
    // = 33 slices). Measured on the H100: a partial second wave costs up to
    // a whole slice (8 requests of 32k cut in 5 slices, 320 blocks: 542 us;
    // in 4, 256 blocks: 369 us), and four waves of shorter slices lose to
    // one (16 requests of 4k in 512-token slices: 120 us; in 2048: 103 us).
    z.target_items = std::max(1, sm_count * z.shape.blocks_per_sm / blocks_per_item);
    z.max_items = d.max_batch + z.target_items;
  }
  const std::size_t hq = static_cast<std::size_t>(d.num_qo_heads);
  z.scales_offset = 16;
  z.items_offset = align256(z.scales_offset + 2 * sizeof(float) * static_cast<std::size_t>(z.num_kv_heads));
  z.staging_bytes = z.items_offset + sizeof(DecodeWorkItem) * static_cast<std::size_t>(z.max_items);
  z.regions = SplitRegions::after(z.staging_bytes, static_cast<std::size_t>(d.max_batch) * blocks_per_item,
                                  static_cast<std::size_t>(z.max_items), hq, static_cast<std::size_t>(z.head_dim));
  return z;
}

int build_work_items(const SplitPolicy& sp, const PagedKvLengths& host, int page_size, int window_left,
                     DecodeWorkItem* items, int* partials_out) {
  const std::int64_t batch = static_cast<std::int64_t>(host.indptr.size()) - 1;
  auto visible = [&](std::int64_t b, std::int64_t* begin) {
    const std::int64_t len = paged_kv_len(host.indptr.data(), host.last_page_len.data(), b, page_size);
    // The query sits at len - 1; a window keeps keys from len - 1 - window_left on.
    *begin = window_left >= 0 ? std::max<std::int64_t>(0, len - 1 - window_left) : 0;
    return len;
  };

  // Auto split: request b gets floor(tokens_b * target_items / total)
  // slices (at least 1, none shorter than kDecodeMinSliceTokens), so the
  // slices of the batch fill one wave without spilling into a second; a
  // request's slices are equal (whole tiles), so none finishes early and
  // leaves its slot idle.
  std::int64_t total = 0;
  if (sp.split_tokens == 0)
    for (std::int64_t b = 0; b < batch; ++b) {
      std::int64_t begin = 0;
      total += visible(b, &begin) - begin;
    }
  int n = 0, partials = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int64_t begin = 0;
    const std::int64_t end = visible(b, &begin);
    const std::int64_t tokens = end - begin;
    std::int64_t slice = 0;
    if (sp.split_tokens > 0) {
      // Fixed split, from this request's length alone.
      const std::int64_t pieces = ceil_div(tokens, sp.split_tokens);
      slice = sp.split_tokens * std::max<std::int64_t>(1, ceil_div(pieces, sp.max_splits));
    } else {
      const std::int64_t share = total > 0 ? tokens * sp.target_items / total : 0;
      const std::int64_t pieces = std::max<std::int64_t>(1, std::min(share, tokens / kDecodeMinSliceTokens));
      const std::int64_t tile = sp.tile_tokens;
      slice = std::max<std::int64_t>(tile, ceil_div(ceil_div(tokens, pieces), tile) * tile);
    }
    const int splits = static_cast<int>(std::max<std::int64_t>(1, ceil_div(tokens, slice)));
    for (int s = 0; s < splits; ++s) {
      DecodeWorkItem& it = items[n++];
      it = DecodeWorkItem{};
      it.request = static_cast<std::int32_t>(b);
      it.begin = static_cast<std::int32_t>(begin + s * slice);
      it.end = static_cast<std::int32_t>(std::min(end, begin + (s + 1) * slice));
      it.split = s;
      it.num_splits = splits;
      it.partial_base = partials;
      it.page_base = host.indptr[b];
    }
    if (splits > 1) partials += splits;
  }
  if (partials_out) *partials_out = partials;
  return n;
}

Status check_item_grid(std::string_view op, int max_batch, int max_items) {
  if (max_items <= 65535) return Status::ok();
  return no_kernel(op, "max_batch " + std::to_string(max_batch) + " (" + std::to_string(max_items) + " work items)",
                   "up to the 65535 work items one launch holds");
}

int build_decode_schedule(const DecodeSizing& z, const BatchPagedDecodeDesc& d, const PagedKvLengths& host,
                          void* staging) {
  auto* bytes = static_cast<unsigned char*>(staging);
  const SplitPolicy policy{z.split_tokens, z.max_splits, z.target_items, z.shape.tile_tokens};
  const int n = build_work_items(policy, host, d.kv.page_size, d.attn.window_left,
                                 reinterpret_cast<DecodeWorkItem*>(bytes + z.items_offset));

  std::memset(bytes, 0, z.scales_offset);
  std::memcpy(bytes, &n, sizeof n);
  auto* scales = reinterpret_cast<float*>(bytes + z.scales_offset);
  for (int h = 0; h < z.num_kv_heads; ++h) {
    scales[h] = d.kv.k_scale_of(h);
    scales[z.num_kv_heads + h] = d.kv.v_scale_of(h);
  }
  return n;
}

}  // namespace kvserve::detail::cuda
