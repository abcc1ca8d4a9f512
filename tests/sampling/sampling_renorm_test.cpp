// SamplingRenorm (top-k / top-p renormalised probabilities, top-k masked
// logits) against the oracle's sorted kept sets, on every test device.
#include <cmath>
#include <numeric>

#include "reference/oracle_sampling.hpp"
#include "sampling/sampling_fixtures.hpp"

namespace kvserve::test {
namespace {

struct RenormCase {
  RenormKind kind;
  int vocab;
  std::int64_t batch;
  ParamSource params = ParamSource::scalar;
  bool in_place = false;
};

// Rows with ties (coarse values), zeros, and for logits -inf and NaN entries.
std::vector<float> renorm_input(std::mt19937_64& rng, const RenormCase& c) {
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  std::normal_distribution<float> normal(0.f, 2.f);
  std::vector<float> v(static_cast<std::size_t>(c.batch * c.vocab));
  for (std::int64_t b = 0; b < c.batch; ++b) {
    float* row = v.data() + b * c.vocab;
    const bool coarse = b % 3 == 1;
    for (int j = 0; j < c.vocab; ++j) row[j] = coarse ? static_cast<float>(rng() % 4) * 0.25f : unit(rng);
    if (c.kind == RenormKind::top_k_mask_logits) {
      for (int j = 0; j < c.vocab; ++j) row[j] = coarse ? row[j] * 8 : normal(rng);
      if (c.vocab > 4) row[1] = -INFINITY, row[3] = NAN;
      continue;
    }
    const double sum = std::accumulate(row, row + c.vocab, 0.0);
    for (int j = 0; j < c.vocab; ++j) row[j] = sum > 0 ? static_cast<float>(row[j] / sum) : 0.f;
  }
  return v;
}

void run_case(const RenormCase& c, Device device) {
  SCOPED_TRACE(std::string(name_of(c.kind)) + " vocab=" + std::to_string(c.vocab) + " params=" +
               std::string(name_of(c.params)) + (c.in_place ? " in place" : "") + " on " + device.to_string());
  auto rng = make_rng();
  const bool mask = c.kind == RenormKind::top_k_mask_logits;
  const std::vector<float> input = renorm_input(rng, c);
  expect_nonzero(std::vector<double>(input.begin(), input.end()), "input");
  std::uniform_real_distribution<float> unit(0.05f, 1.f);
  SamplingRenormDesc desc{.vocab = c.vocab, .max_batch = static_cast<int>(c.batch), .kind = c.kind,
                          .top_k = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(c.vocab)),
                          .top_p = unit(rng), .params = c.params};
  std::vector<std::int32_t> top_k(static_cast<std::size_t>(c.batch), desc.top_k);
  std::vector<float> top_p(static_cast<std::size_t>(c.batch), desc.top_p);
  if (c.params == ParamSource::per_row) {
    for (auto& k : top_k)
      k = rng() % 7 == 0 ? 0 : 1 + static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(c.vocab));
    for (auto& p : top_p) p = rng() % 7 == 0 ? 1.f : unit(rng);
  }
  KVS_CREATE_OR_SKIP(plan, SamplingRenormPlan, desc, device);
  Buffer in = float_buffer(input, device), out(DType::f32, c.batch * c.vocab, device);
  out.poison();
  const Buffer k_buffer = int_buffer(top_k, device), p_buffer = float_buffer(top_p, device);
  SamplingRenormArgs args{.input = in.view({c.batch, c.vocab}),
                          .out = c.in_place ? in.view({c.batch, c.vocab}) : out.view({c.batch, c.vocab})};
  if (c.params == ParamSource::per_row) {
    if (c.kind == RenormKind::top_p_renorm_probs) args.top_p = p_buffer.view({c.batch});
    else args.top_k = k_buffer.view({c.batch});
  }
  const Status s = plan->run(args, {}, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  Buffer& result = c.in_place ? in : out;
  result.download();

  std::vector<double> got = result.values(), want;
  for (std::int64_t b = 0; b < c.batch; ++b) {
    const std::vector<double> row(input.begin() + b * c.vocab, input.begin() + (b + 1) * c.vocab);
    std::vector<std::uint64_t> weight(row.size());
    for (std::size_t j = 0; j < row.size(); ++j)
      weight[j] = mask ? (row[j] > -INFINITY ? 1 : 0) : oracle::fixed_weight(row[j]);
    const oracle::Truncation t{c.kind == RenormKind::top_p_renorm_probs ? SamplingFilter::top_p : SamplingFilter::top_k,
                               {}, top_k[b], top_p[b]};
    const std::vector<bool> kept = oracle::kept_tokens(row, weight, t);
    if (mask) {
      for (std::size_t j = 0; j < row.size(); ++j) want.push_back(kept[j] ? row[j] : -INFINITY);
    } else {
      const std::vector<double> renormalised = oracle::truncated_distribution(kept, row);
      want.insert(want.end(), renormalised.begin(), renormalised.end());
    }
  }
  expect_close(got, want, DType::f32, "out");
}

class SamplingRenormTest : public DeviceTest {};

TEST_P(SamplingRenormTest, TopKRenormalisedProbs) {
  for (int vocab : {1, 7, 33, 1000}) run_case({RenormKind::top_k_renorm_probs, vocab, 64}, GetParam());
  run_case({RenormKind::top_k_renorm_probs, 1000, 64, ParamSource::per_row}, GetParam());
}

TEST_P(SamplingRenormTest, TopPRenormalisedProbs) {
  for (int vocab : {1, 7, 33, 1000}) run_case({RenormKind::top_p_renorm_probs, vocab, 64}, GetParam());
  run_case({RenormKind::top_p_renorm_probs, 1000, 64, ParamSource::per_row}, GetParam());
}

TEST_P(SamplingRenormTest, TopKMaskedLogits) {
  for (int vocab : {1, 7, 33, 1000}) run_case({RenormKind::top_k_mask_logits, vocab, 64}, GetParam());
  run_case({RenormKind::top_k_mask_logits, 1000, 64, ParamSource::per_row}, GetParam());
}

TEST_P(SamplingRenormTest, InPlaceAndLargeVocabulary) {
  for (RenormKind kind :
       {RenormKind::top_k_renorm_probs, RenormKind::top_p_renorm_probs, RenormKind::top_k_mask_logits})
    run_case({kind, 128256, 3, ParamSource::scalar, /*in_place=*/true}, GetParam());
}

TEST_P(SamplingRenormTest, RowOfZeroMassStaysZero) {
  const SamplingRenormDesc desc{.vocab = 9, .max_batch = 1, .kind = RenormKind::top_p_renorm_probs, .top_p = 0.5f};
  KVS_CREATE_OR_SKIP(plan, SamplingRenormPlan, desc, GetParam());
  Buffer in = float_buffer(std::vector<float>(9, 0.f), GetParam()), out(DType::f32, 9, GetParam());
  out.poison();
  ASSERT_TRUE(plan->run({.input = in.view({1, 9}), .out = out.view({1, 9})}, {}, {}));
  synchronize(GetParam());
  out.download();
  EXPECT_EQ(out.values(), std::vector<double>(9, 0.0));
}

INSTANTIATE_TEST_SUITE_P(Devices, SamplingRenormTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
