// Building attention inputs and oracle references, shared by the tests and
// the CLI: slices of buffers in the oracle's layouts, the oracle's spec for an
// op's parameters, and page tables cut from (or joined over) a PagedCache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kvserve/attention.hpp"
#include "reference/buffer.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {

// Elements [first, first + count) of a buffer's host copy.
std::vector<double> slice(const Buffer& b, std::int64_t first, std::int64_t count);
void append(std::vector<double>* to, const std::vector<double>& from);

// The oracle's description of an attention op (scale 1 / sqrt(head_dim) unless
// attn sets one).
oracle::AttentionSpec attention_spec(int num_qo_heads, int num_kv_heads, int head_dim, int head_dim_v,
                                     const AttentionParams& attn, bool causal);

// A page table built row by row from pages of a PagedCache (e.g. a cache's
// rows split into prefixes and suffixes, or joined), with its device copies.
struct PageTable {
  std::vector<std::int32_t> indptr{0}, indices, last_page_len;
  Buffer indptr_dev, indices_dev, last_dev;

  void add_row(std::span<const std::int32_t> pages, std::int32_t last);
  void upload(Device device);
  // The cache's pools addressed through this table.
  PagedKv view(const PagedCache& cache) const;
  PagedKvLengths lengths() const { return {indptr, last_page_len}; }
};
// The page ids of a cache's row.
std::span<const std::int32_t> pages_of(const PagedCache& cache, std::int64_t row);

}  // namespace kvserve::test
