// TokenPenalty against the fp64 oracle on every test device: both history
// forms, scalar and per-row parameters.
#include "kvserve/penalty.hpp"
#include "reference/oracle_sampling.hpp"
#include "sampling/sampling_fixtures.hpp"

namespace kvserve::test {
namespace {

struct PenaltyCase {
  PenaltyHistory history;
  ParamSource params;
  int vocab;
  std::int64_t batch, history_len;
};

void run_case(const PenaltyCase& c, Device device) {
  SCOPED_TRACE(std::string(name_of(c.history)) + " params=" + std::string(name_of(c.params)) +
               " vocab=" + std::to_string(c.vocab) + " on " + device.to_string());
  auto rng = make_rng();
  std::uniform_real_distribution<float> logit(-5.f, 5.f), unit(0.f, 1.f);
  const TokenPenaltyDesc desc{.vocab = c.vocab, .max_batch = static_cast<int>(c.batch), .history = c.history,
                              .repetition = 1.3f, .frequency = 0.25f, .presence = -0.4f, .params = c.params};
  KVS_CREATE_OR_SKIP(plan, TokenPenaltyPlan, desc, device);

  std::vector<float> logits(static_cast<std::size_t>(c.batch * c.vocab));
  for (float& x : logits) x = logit(rng);
  // Every other history id drawn from a small range so tokens repeat, the
  // rest from the whole vocabulary (every part of a long row is touched);
  // ids outside [0, vocab) (padding) on the token-id form.
  std::vector<std::vector<std::int64_t>> counts(static_cast<std::size_t>(c.batch),
                                                std::vector<std::int64_t>(static_cast<std::size_t>(c.vocab), 0));
  std::vector<std::int32_t> ids, count_tensor;
  for (std::int64_t b = 0; b < c.batch; ++b) {
    const std::int64_t len = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(c.history_len + 1));
    for (std::int64_t i = 0; i < c.history_len; ++i) {
      const int range = i % 2 ? std::min(c.vocab, 50) : c.vocab;
      std::int32_t id = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(range));
      if (i >= len) id = i % 2 ? -1 : c.vocab + 3;
      ids.push_back(id);
      if (id >= 0 && id < c.vocab) ++counts[b][id];
    }
    for (std::int64_t n : counts[b]) count_tensor.push_back(static_cast<std::int32_t>(n));
  }
  std::vector<float> repetition(static_cast<std::size_t>(c.batch), desc.repetition),
      frequency(repetition.size(), desc.frequency), presence(repetition.size(), desc.presence);
  if (c.params == ParamSource::per_row) {
    for (std::size_t b = 0; b < repetition.size(); ++b) {
      repetition[b] = 0.5f + 1.5f * unit(rng);
      frequency[b] = unit(rng) - 0.3f;
      presence[b] = b % 4 ? unit(rng) : 0.f;
    }
  }

  Buffer x = float_buffer(logits, device);
  const Buffer history = c.history == PenaltyHistory::token_counts ? int_buffer(count_tensor, device)
                                                                   : int_buffer(ids, device);
  const Buffer rep = float_buffer(repetition, device), freq = float_buffer(frequency, device),
               pres = float_buffer(presence, device);
  TokenPenaltyArgs args{.logits = x.view({c.batch, c.vocab})};
  if (c.history == PenaltyHistory::token_counts) args.counts = history.view({c.batch, c.vocab});
  else args.token_ids = history.view({c.batch, c.history_len});
  if (c.params == ParamSource::per_row) {
    args.repetition = rep.view({c.batch});
    args.frequency = freq.view({c.batch});
    args.presence = pres.view({c.batch});
  }
  expect_nonzero(x.values(), "logits");
  const Status s = plan->run(args, {}, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  x.download();

  std::vector<double> want;
  std::int64_t seen = 0;
  for (std::int64_t b = 0; b < c.batch; ++b) {
    const std::vector<double> row(logits.begin() + b * c.vocab, logits.begin() + (b + 1) * c.vocab);
    const std::vector<double> r = oracle::penalised_logits(row, counts[b], repetition[b], frequency[b], presence[b]);
    want.insert(want.end(), r.begin(), r.end());
    for (std::int64_t n : counts[b]) seen += n > 0;
  }
  ASSERT_GT(seen, c.batch) << "histories too short to test anything";
  expect_close(x.values(), want, DType::f32, "logits");
}

class TokenPenaltyTest : public DeviceTest {};

TEST_P(TokenPenaltyTest, FromTokenCounts) {
  run_case({PenaltyHistory::token_counts, ParamSource::scalar, 1000, 16, 64}, GetParam());
  run_case({PenaltyHistory::token_counts, ParamSource::per_row, 33, 16, 64}, GetParam());
  // Many 4096-token chunks per row, rows not 16-byte aligned (odd vocab).
  run_case({PenaltyHistory::token_counts, ParamSource::per_row, 128259, 3, 2048}, GetParam());
}

TEST_P(TokenPenaltyTest, FromTokenIdsWithPadding) {
  run_case({PenaltyHistory::token_ids, ParamSource::scalar, 1000, 16, 64}, GetParam());
  run_case({PenaltyHistory::token_ids, ParamSource::per_row, 7, 16, 40}, GetParam());
  run_case({PenaltyHistory::token_ids, ParamSource::per_row, 128256, 2, 2048}, GetParam());
  // Longer than the kernel's 4096-slot table: the exact quadratic count.
  run_case({PenaltyHistory::token_ids, ParamSource::scalar, 50000, 2, 5000}, GetParam());
}

TEST_P(TokenPenaltyTest, NeutralParametersLeaveLogitsUnchanged) {
  const TokenPenaltyDesc desc{.vocab = 5, .max_batch = 1, .history = PenaltyHistory::token_ids};
  KVS_CREATE_OR_SKIP(plan, TokenPenaltyPlan, desc, GetParam());
  const std::vector<float> logits = {-2.f, 0.f, 3.5f, 1e-3f, -INFINITY};
  Buffer x = float_buffer(logits, GetParam());
  const Buffer ids = int_buffer({0, 1, 2, 3, 4, 2}, GetParam());
  ASSERT_TRUE(plan->run({.logits = x.view({1, 5}), .token_ids = ids.view({1, 6})}, {}, {}));
  synchronize(GetParam());
  x.download();
  EXPECT_EQ(x.values(), std::vector<double>(logits.begin(), logits.end()));
}

INSTANTIATE_TEST_SUITE_P(Devices, TokenPenaltyTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
