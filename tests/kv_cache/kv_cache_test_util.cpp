#include "kv_cache/kv_cache_test_util.hpp"

#include <algorithm>

namespace kvserve::test {

TensorView NewRows::k() const {
  return fused.view_strided({n, heads, dim}, {2 * heads * dim, dim, 1});
}

TensorView NewRows::v() const {
  TensorView t = k();
  t.data = static_cast<char*>(t.data) + heads * dim * size_of(fused.dtype());
  return t;
}

namespace {
std::vector<double> half_of(const NewRows& r, int which) {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(r.n * r.heads * r.dim));
  for (std::int64_t i = 0; i < r.n; ++i)
    for (std::int64_t e = 0; e < r.heads * r.dim; ++e) out.push_back(r.fused.get((2 * i + which) * r.heads * r.dim + e));
  return out;
}
}  // namespace

std::vector<double> NewRows::k_values() const { return half_of(*this, 0); }
std::vector<double> NewRows::v_values() const { return half_of(*this, 1); }

NewRows make_rows(std::mt19937_64& rng, DType dtype, std::int64_t n, int heads, int dim, Device device) {
  NewRows r{Buffer(dtype, 2 * n * heads * dim, device), n, heads, dim};
  r.fused.fill_uniform(rng, -2, 2);
  return r;
}

oracle::Targets ragged_targets(std::mt19937_64& rng, const std::vector<std::int64_t>& old_lens,
                               const std::vector<std::int64_t>& new_tokens) {
  std::vector<std::pair<std::int32_t, std::int32_t>> rows;
  for (std::size_t b = 0; b < old_lens.size(); ++b)
    for (std::int64_t j = 0; j < new_tokens[b]; ++j)
      rows.emplace_back(static_cast<std::int32_t>(b), static_cast<std::int32_t>(old_lens[b] + j));
  std::shuffle(rows.begin(), rows.end(), rng);
  oracle::Targets t;
  for (auto [b, p] : rows) {
    t.batch.push_back(b);
    t.position.push_back(p);
  }
  return t;
}

std::vector<double> downloaded_kv(Device device, Buffer& k, Buffer& v) {
  synchronize(device);
  k.download();
  v.download();
  std::vector<double> all = k.values(), vs = v.values();
  all.insert(all.end(), vs.begin(), vs.end());
  return all;
}

}  // namespace kvserve::test
