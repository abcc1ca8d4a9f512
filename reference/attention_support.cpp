#include "reference/attention_support.hpp"

#include <cmath>

namespace kvserve::test {

std::vector<double> slice(const Buffer& b, std::int64_t first, std::int64_t count) {
  std::vector<double> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) v[i] = b.get(first + i);
  return v;
}

void append(std::vector<double>* to, const std::vector<double>& from) {
  to->insert(to->end(), from.begin(), from.end());
}

oracle::AttentionSpec attention_spec(int num_qo_heads, int num_kv_heads, int head_dim, int head_dim_v,
                                     const AttentionParams& attn, bool causal) {
  return {.num_qo_heads = num_qo_heads, .num_kv_heads = num_kv_heads, .head_dim = head_dim, .head_dim_v = head_dim_v,
          .sm_scale = attn.sm_scale ? double{*attn.sm_scale} : 1.0 / std::sqrt(double(head_dim)),
          .soft_cap = attn.logits_soft_cap, .window_left = attn.window_left, .causal = causal};
}

void PageTable::add_row(std::span<const std::int32_t> pages, std::int32_t last) {
  indices.insert(indices.end(), pages.begin(), pages.end());
  indptr.push_back(static_cast<std::int32_t>(indices.size()));
  last_page_len.push_back(last);
}

void PageTable::upload(Device device) {
  indptr_dev = int_buffer(indptr, device);
  indices_dev = int_buffer(indices.empty() ? std::vector<std::int32_t>{0} : indices, device);  // views need memory
  last_dev = int_buffer(last_page_len, device);
}

PagedKv PageTable::view(const PagedCache& cache) const {
  const std::int64_t rows = static_cast<std::int64_t>(last_page_len.size());
  PagedKv kv = cache.view();
  kv.indptr = indptr_dev.view({rows + 1});
  kv.indices = indices_dev.view({indices_dev.size()});
  kv.last_page_len = last_dev.view({rows});
  return kv;
}

std::span<const std::int32_t> pages_of(const PagedCache& cache, std::int64_t row) {
  const std::int32_t first = cache.indptr[row], end = cache.indptr[row + 1];
  return {cache.indices.data() + first, static_cast<std::size_t>(end - first)};
}

}  // namespace kvserve::test
