// Helpers shared by the KV-cache append tests: new rows as strided views of
// one fused buffer, shuffled prefill targets, and the caches a rejected run
// must leave as they were (harness.hpp's expect_rejected checks them).
#pragma once

#include <random>
#include <vector>

#include "harness/harness.hpp"
#include "reference/oracle_kv_cache.hpp"

namespace kvserve::test {

// New K and V rows [n, heads, dim] interleaved in one buffer [n, 2, heads, dim]
// (the layout of a fused projection output), so k and v are strided views.
struct NewRows {
  Buffer fused;
  std::int64_t n = 0;
  int heads = 0, dim = 0;
  TensorView k() const;
  TensorView v() const;
  std::vector<double> k_values() const;  // [n, heads, dim]
  std::vector<double> v_values() const;
};
NewRows make_rows(std::mt19937_64& rng, DType dtype, std::int64_t n, int heads, int dim, Device device);

// Prefill-style targets: request b receives positions [old_lens[b], old_lens[b] +
// new_tokens[b]), all requests' rows shuffled together.
oracle::Targets ragged_targets(std::mt19937_64& rng, const std::vector<std::int64_t>& old_lens,
                               const std::vector<std::int64_t>& new_tokens);

// Downloads a cache's K and V buffers (after a device sync) and returns their
// values, K first: the `outputs` of expect_rejected.
std::vector<double> downloaded_kv(Device device, Buffer& k, Buffer& v);

}  // namespace kvserve::test
