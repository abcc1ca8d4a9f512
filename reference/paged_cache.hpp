// A randomly filled paged KV cache for tests: pages handed out in a random
// permutation, the whole pool filled (so stray reads see garbage, not zeros),
// and each request's logical K/V readable back as fp64 for the oracle.
#pragma once

#include <random>
#include <vector>

#include "kvserve/attention.hpp"
#include "kvserve/kv_cache.hpp"
#include "reference/buffer.hpp"

namespace kvserve::test {

struct PagedCache {
  PagedKvDesc desc;
  Buffer k, v;
  std::vector<std::int32_t> indptr, indices, last_page_len;  // host copies
  Buffer indptr_dev, indices_dev, last_dev;
  std::vector<std::int64_t> lens;

  PagedKv view() const;
  PagedKvLengths lengths() const { return {indptr, last_page_len}; }
  // Request b's keys / values as [len, num_kv_heads, head_dim], dequantised.
  std::vector<double> keys(std::int64_t b) const;
  std::vector<double> values(std::int64_t b) const;
  // Pool element offset of (page, slot, head, 0).
  std::int64_t offset(std::int64_t page, std::int64_t slot, int head) const;
};

// Allocates pages for `lens` (in random order, with `spare_pages` unused ones
// mixed in) and fills the pools with values in [-1, 1].
PagedCache make_paged_cache(std::mt19937_64& rng, PagedKvDesc desc, const std::vector<std::int64_t>& lens,
                            Device device, std::int64_t spare_pages = 3);

// A paged MLA cache for tests: the page table and ckv pool of a random paged
// cache with one head of width ckv_dim (its unused v pool aside), plus a kpe
// pool on the same pages, filled with values in [-1, 1].
struct MlaCache {
  PagedCache table;
  Buffer kpe_pages;
  PagedMlaDesc desc;
  PagedMlaCache view() const;
  // Request b's absorbed-attention keys [len, 1, ckv_dim + kpe_dim] (ckv then
  // kpe); its values are table.keys(b), [len, 1, ckv_dim].
  std::vector<double> keys(std::int64_t b) const;
};
MlaCache make_mla_cache(std::mt19937_64& rng, DType dtype, int page_size, int ckv_dim, int kpe_dim,
                        const std::vector<std::int64_t>& lens, Device device);

}  // namespace kvserve::test
