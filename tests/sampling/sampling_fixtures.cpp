#include "sampling/sampling_fixtures.hpp"

#include <algorithm>
#include <type_traits>

#include "sampling/stats.hpp"

namespace kvserve::test {

Buffer float_buffer(const std::vector<float>& values, Device device) {
  Buffer b(DType::f32, static_cast<std::int64_t>(values.size()), device);
  for (std::size_t i = 0; i < values.size(); ++i) b.set(static_cast<std::int64_t>(i), values[i]);
  b.upload();
  return b;
}

std::vector<std::int32_t> int_values(Buffer& b) {
  b.download();
  std::vector<std::int32_t> v(static_cast<std::size_t>(b.size()));
  for (std::int64_t i = 0; i < b.size(); ++i) v[i] = static_cast<std::int32_t>(b.get(i));
  return v;
}

void run_sampling(const SamplingDesc& desc, Device device, const std::vector<float>& input, std::uint64_t seed,
                  std::uint64_t offset, const SamplingRows& rows, std::vector<std::int32_t>* tokens) {
  const std::int64_t batch = static_cast<std::int64_t>(input.size()) / desc.vocab;
  KVS_CREATE_OR_SKIP(plan, SamplingPlan, desc, device);
  Buffer in = float_buffer(input, device), out(DType::int32, batch, device);
  out.poison();
  SamplingArgs args{.input = in.view({batch, desc.vocab}), .out = out.view({batch}), .seed = seed, .offset = offset};
  Buffer temperature, top_k, top_p, min_p, seeds, offsets;  // alive until the run ends
  const auto attach = [&](const auto& values, Buffer* buffer, TensorView* view) {
    if (values.empty()) return;
    if constexpr (std::is_same_v<std::decay_t<decltype(values)>, std::vector<float>>)
      *buffer = float_buffer(values, device);
    else
      *buffer = int_buffer(values, device);
    *view = buffer->view({batch});
  };
  attach(rows.temperature, &temperature, &args.temperature);
  attach(rows.top_k, &top_k, &args.top_k);
  attach(rows.top_p, &top_p, &args.top_p);
  attach(rows.min_p, &min_p, &args.min_p);
  attach(rows.seeds, &seeds, &args.seeds);
  attach(rows.offsets, &offsets, &args.offsets);
  const Status s = plan->run(args, {}, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  *tokens = int_values(out);
}

std::vector<std::int64_t> histogram(const std::vector<std::int32_t>& tokens, int vocab) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(vocab), 0);
  std::int64_t bad = 0;
  for (std::int32_t t : tokens) {
    if (t >= 0 && t < vocab) ++counts[t];
    else ++bad;
  }
  EXPECT_EQ(bad, 0) << "tokens outside [0, " << vocab << ")";
  return counts;
}

double expect_follows(const std::vector<std::int64_t>& counts, const std::vector<double>& expected,
                      const std::string& what) {
  const ChiSquare c = chi_square_test(counts, expected);
  EXPECT_EQ(c.outside_support, 0) << what << ": draws of tokens the distribution excludes";
  return c.p_value;
}

void expect_distribution(SamplingDesc desc, Device device, const std::vector<float>& row,
                         const std::vector<double>& expected, std::int64_t draws, std::mt19937_64& rng,
                         const std::string& what) {
  SCOPED_TRACE(what);
  const int vocab = desc.vocab;
  // Batches of at most ~4M input values.
  const std::int64_t batch = std::min<std::int64_t>(draws, std::max<std::int64_t>(1, (std::int64_t{4} << 20) / vocab));
  desc.max_batch = static_cast<int>(batch);
  std::vector<float> input;
  input.reserve(static_cast<std::size_t>(batch * vocab));
  for (std::int64_t b = 0; b < batch; ++b) input.insert(input.end(), row.begin(), row.end());
  KVS_CREATE_OR_SKIP(plan, SamplingPlan, desc, device);
  const Buffer in = float_buffer(input, device);
  Buffer out(DType::int32, batch, device);
  double p_value = 0;
  for (int attempt = 0; attempt < 2 && p_value <= 1e-3; ++attempt) {
    const std::uint64_t seed = rng();
    std::vector<std::int64_t> counts(static_cast<std::size_t>(vocab), 0);
    for (std::int64_t done = 0, offset = 0; done < draws; done += batch, ++offset) {
      out.poison();
      const SamplingArgs args{.input = in.view({batch, vocab}), .out = out.view({batch}), .seed = seed,
                              .offset = static_cast<std::uint64_t>(offset)};
      const Status s = plan->run(args, {}, {});
      ASSERT_TRUE(s) << s.to_string();
      synchronize(device);
      const std::vector<std::int64_t> h = histogram(int_values(out), vocab);
      for (int j = 0; j < vocab; ++j) counts[j] += h[j];
    }
    p_value = expect_follows(counts, expected, what);
    if (p_value <= 1e-3) std::printf("[  retry   ] %s: chi-square p = %.3g\n", what.c_str(), p_value);
  }
  EXPECT_GT(p_value, 1e-3) << "the draws do not follow the truncated distribution (chi-square, twice)";
}

}  // namespace kvserve::test
