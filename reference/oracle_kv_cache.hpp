// The fp64 oracle of the KV-cache append ops: where a new row lands and what
// is stored there, written plainly and apart from the CPU backend. Caches are
// std::vector<double> holding the *stored* values in their logical layout.
#pragma once

#include <cstdint>
#include <vector>

#include "kvserve/dtype.hpp"

namespace kvserve::oracle {

// A paged pool [num_pages, page_size, num_heads, dim] (NHD) or
// [num_pages, num_heads, page_size, dim] (HND). An MLA pool is NHD with one head.
struct PoolShape {
  std::int64_t num_pages = 0;
  int page_size = 0, num_heads = 0, dim = 0;
  bool hnd = false;
};

// Where a stored value saturates: the largest finite fp8 value, +inf otherwise.
double max_stored(DType stored);
// The value a cache of type `stored` holds for `real` under `scale`: real / scale,
// saturated (rounding to the type is left to the comparison's tolerance).
double stored_value(double real, double scale, DType stored);

// Element offset of (request b, position pos, head h, 0) in the pool.
std::int64_t paged_offset(const PoolShape& shape, const std::vector<std::int32_t>& indptr,
                          const std::vector<std::int32_t>& indices, std::int64_t b, std::int64_t pos, int h);

// Where each new row goes: request batch[i], position position[i]; a row with
// batch[i] = -1 is not written.
struct Targets {
  std::vector<std::int32_t> batch, position;
};
// The decode-mode targets of a page table that already counts the new token:
// row b goes to (b, kv_len(b) - 1); a request without pages (kv_len 0) gets none.
Targets decode_targets(const std::vector<std::int32_t>& indptr, const std::vector<std::int32_t>& last_page_len,
                       int page_size);

// Writes rows [n, num_heads, dim] (real values) into the pool at their targets;
// head h stored with scales[h] (scales empty: 1).
void paged_append(const PoolShape& shape, const std::vector<std::int32_t>& indptr,
                  const std::vector<std::int32_t>& indices, const Targets& targets, const std::vector<double>& rows,
                  const std::vector<double>& scales, DType stored, std::vector<double>* pool);

// Writes rows [n, heads, dim] into a contiguous cache [B, heads, max_len, dim]
// at their targets.
void contiguous_append(int heads, std::int64_t max_len, int dim, const Targets& targets,
                       const std::vector<double>& rows, std::vector<double>* cache);

}  // namespace kvserve::oracle
