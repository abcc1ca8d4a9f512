// Helpers shared by the KV-cache append tests: new rows as strided views of
// one fused buffer, shuffled prefill targets, and the checks of a rejected run.
#pragma once

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "oracle_kv_cache.hpp"
#include "test_util.hpp"

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

// The status is InvalidArgument and its message names `name` ('name' as the
// argument or field helpers quote it).
void expect_names(const Status& s, const std::string& name);

// For validation tests: `run` must be refused naming `name`, and the outputs
// (`outputs` downloads and returns them) must be unchanged.
void expect_rejected(const std::function<Status()>& run, const std::string& name,
                     const std::function<std::vector<double>()>& outputs);

// Downloads a cache's K and V buffers (after a device sync) and returns their
// values, K first: the `outputs` of expect_rejected.
std::vector<double> downloaded_kv(Device device, Buffer& k, Buffer& v);

}  // namespace kvserve::test
