#include "reference/oracle_kv_cache.hpp"

#include <algorithm>
#include <limits>

namespace kvserve::oracle {

double max_stored(DType stored) {
  if (stored == DType::fp8_e4m3) return 448.0;    // e4m3fn: 1.75 * 2^8
  if (stored == DType::fp8_e5m2) return 57344.0;  // 1.75 * 2^15
  return std::numeric_limits<double>::infinity();
}

double stored_value(double real, double scale, DType stored) {
  const double m = max_stored(stored);
  return std::clamp(real / scale, -m, m);
}

std::int64_t paged_offset(const PoolShape& s, const std::vector<std::int32_t>& indptr,
                          const std::vector<std::int32_t>& indices, std::int64_t b, std::int64_t pos, int h) {
  const std::int64_t page = indices[indptr[b] + pos / s.page_size];
  const std::int64_t slot = pos % s.page_size;
  if (s.hnd) return ((page * s.num_heads + h) * s.page_size + slot) * s.dim;
  return ((page * s.page_size + slot) * s.num_heads + h) * s.dim;
}

Targets decode_targets(const std::vector<std::int32_t>& indptr, const std::vector<std::int32_t>& last_page_len,
                       int page_size) {
  Targets t;
  for (std::size_t b = 0; b + 1 < indptr.size(); ++b) {
    const std::int64_t pages = indptr[b + 1] - indptr[b];
    const std::int64_t kv_len = pages == 0 ? 0 : (pages - 1) * page_size + last_page_len[b];
    t.batch.push_back(kv_len == 0 ? -1 : static_cast<std::int32_t>(b));
    t.position.push_back(static_cast<std::int32_t>(kv_len - 1));
  }
  return t;
}

void paged_append(const PoolShape& s, const std::vector<std::int32_t>& indptr,
                  const std::vector<std::int32_t>& indices, const Targets& t, const std::vector<double>& rows,
                  const std::vector<double>& scales, DType stored, std::vector<double>* pool) {
  for (std::size_t i = 0; i < t.batch.size(); ++i) {
    if (t.batch[i] < 0) continue;
    for (int h = 0; h < s.num_heads; ++h) {
      const double scale = scales.empty() ? 1.0 : scales[h];
      const std::int64_t dst = paged_offset(s, indptr, indices, t.batch[i], t.position[i], h);
      for (int x = 0; x < s.dim; ++x)
        (*pool)[dst + x] = stored_value(rows[(i * s.num_heads + h) * s.dim + x], scale, stored);
    }
  }
}

void contiguous_append(int heads, std::int64_t max_len, int dim, const Targets& t,
                       const std::vector<double>& rows, std::vector<double>* cache) {
  for (std::size_t i = 0; i < t.batch.size(); ++i)
    if (t.batch[i] >= 0)
      for (int h = 0; h < heads; ++h)
        for (int x = 0; x < dim; ++x)
          (*cache)[((t.batch[i] * heads + h) * max_len + t.position[i]) * dim + x] = rows[(i * heads + h) * dim + x];
}

}  // namespace kvserve::oracle
