// ChainSpeculativeSampling on every test device: the closed-form acceptance of
// a worked example, emitted tokens that follow the target distributions, and
// every row equal to the documented verification with the same Philox bits.
#include <numeric>

#include "core/philox.hpp"
#include "kvserve/speculative.hpp"
#include "reference/oracle_sampling.hpp"
#include "sampling/sampling_fixtures.hpp"

namespace kvserve::test {
namespace {

// One verification problem: B rows of n drafts over a vocabulary.
struct Problem {
  int vocab = 0, n = 0;
  std::int64_t batch = 0;
  std::vector<std::int32_t> draft_ids;  // [B, n]
  std::vector<float> draft_probs;       // [B, n, V]
  std::vector<float> target_probs;      // [B, n + 1, V]
  const float* draft(std::int64_t b, int t) const { return draft_probs.data() + (b * n + t) * vocab; }
  const float* target(std::int64_t b, int t) const { return target_probs.data() + (b * (n + 1) + t) * vocab; }
};

struct Verified {
  std::vector<std::int32_t> out, accepted, emitted;
};

void verify(const Problem& p, Device device, std::uint64_t seed, std::uint64_t offset, Verified* v) {
  const ChainSpeculativeSamplingDesc desc{.vocab = p.vocab, .max_batch = static_cast<int>(p.batch),
                                          .num_draft_tokens = p.n};
  KVS_CREATE_OR_SKIP(plan, ChainSpeculativeSamplingPlan, desc, device);
  const Buffer ids = int_buffer(p.draft_ids, device), draft = float_buffer(p.draft_probs, device),
               target = float_buffer(p.target_probs, device);
  Buffer out(DType::int32, p.batch * (p.n + 1), device), accepted(DType::int32, p.batch, device),
      emitted(DType::int32, p.batch, device);
  out.poison();
  accepted.poison();
  emitted.poison();
  const Status s = plan->run({.draft_token_ids = ids.view({p.batch, p.n}),
                              .draft_probs = draft.view({p.batch, p.n, p.vocab}),
                              .target_probs = target.view({p.batch, p.n + 1, p.vocab}),
                              .out = out.view({p.batch, p.n + 1}),
                              .accepted = accepted.view({p.batch}),
                              .emitted = emitted.view({p.batch}),
                              .seed = seed,
                              .offset = offset},
                             {}, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  *v = {int_values(out), int_values(accepted), int_values(emitted)};
}

// The same distributions for every row; drafts given.
Problem repeated(const std::vector<std::vector<float>>& draft, const std::vector<std::vector<float>>& target,
                 const std::vector<std::int32_t>& ids, std::int64_t batch) {
  Problem p{static_cast<int>(target[0].size()), static_cast<int>(ids.size()), batch};
  for (std::int64_t b = 0; b < batch; ++b) {
    p.draft_ids.insert(p.draft_ids.end(), ids.begin(), ids.end());
    for (const auto& q : draft) p.draft_probs.insert(p.draft_probs.end(), q.begin(), q.end());
    for (const auto& t : target) p.target_probs.insert(p.target_probs.end(), t.begin(), t.end());
  }
  return p;
}

class SpeculativeTest : public DeviceTest {};

// n = 3 over 5 tokens, drafts (1, 3, 0): the tests pass with probabilities
// min(1, p/q) = 0.5, 0.75 and 1, so
//   emitted:  P(0) = 0.5, P(1) = 0.5 * 0.25 = 0.125, P(2) = 0, P(3) = 0.375;
//   accepted: 1 + Bernoulli(0.5) + Bernoulli(0.75): P(1) = 0.125, P(2) = 0.5, P(3) = 0.375;
// the token after a failure at 0 follows (p0 - q0)+ = (0.4, 0, 0.2, 0.4, 0), at 1
// (p1 - q1)+ = (0, 0.5, 0.5, 0, 0), and after three passes the bonus p3.
TEST_P(SpeculativeTest, WorkedExampleMatchesTheClosedForm) {
  auto rng = make_rng();
  const std::vector<std::vector<float>> q = {
      {0.1f, 0.5f, 0.2f, 0.1f, 0.1f}, {0.2f, 0.2f, 0.2f, 0.2f, 0.2f}, {0.4f, 0.1f, 0.1f, 0.2f, 0.2f}};
  const std::vector<std::vector<float>> p = {{0.2f, 0.25f, 0.25f, 0.2f, 0.1f},
                                             {0.1f, 0.3f, 0.3f, 0.15f, 0.15f},
                                             {0.5f, 0.1f, 0.1f, 0.1f, 0.2f},
                                             {0.3f, 0.1f, 0.2f, 0.2f, 0.2f}};
  const Problem problem = repeated(q, p, {1, 3, 0}, 100000);
  Verified v;
  KVS_RUN(verify(problem, GetParam(), rng(), 0, &v));
  std::vector<std::int64_t> emitted(4, 0), accepted(4, 0);
  std::vector<std::vector<std::int64_t>> next(4, std::vector<std::int64_t>(5, 0));
  for (std::int64_t b = 0; b < problem.batch; ++b) {
    const std::int32_t e = v.emitted[b];
    ASSERT_TRUE(e >= 0 && e <= 3 && v.accepted[b] >= e && v.accepted[b] <= 3) << "row " << b;
    ++emitted[e];
    ++accepted[v.accepted[b]];
    const std::int32_t* out = v.out.data() + b * 4;
    for (int t = 0; t < e; ++t) ASSERT_EQ(out[t], (std::vector<std::int32_t>{1, 3, 0})[t]) << "row " << b;
    ASSERT_TRUE(out[e] >= 0 && out[e] < 5) << "row " << b;
    ++next[e][out[e]];
    for (int t = e + 1; t < 4; ++t) ASSERT_EQ(out[t], -1) << "row " << b;
  }
  EXPECT_GT(expect_follows(emitted, {0.5, 0.125, 0, 0.375}, "emitted"), 1e-3);
  EXPECT_GT(expect_follows(accepted, {0, 0.125, 0.5, 0.375}, "accepted"), 1e-3);
  EXPECT_GT(expect_follows(next[0], {0.4, 0, 0.2, 0.4, 0}, "token after failing at 0"), 1e-3);
  EXPECT_GT(expect_follows(next[1], {0, 0.5, 0.5, 0, 0}, "token after failing at 1"), 1e-3);
  EXPECT_GT(expect_follows(next[3], {0.3, 0.1, 0.2, 0.2, 0.2}, "bonus token"), 1e-3);
}

std::vector<float> random_probs(std::mt19937_64& rng, int vocab) {
  std::exponential_distribution<double> e(1.0);
  std::vector<double> w(static_cast<std::size_t>(vocab));
  for (double& x : w) x = e(rng) * e(rng);
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<float> p;
  for (double x : w) p.push_back(static_cast<float>(x / sum));
  return p;
}

std::int32_t sample_from(std::mt19937_64& rng, const std::vector<float>& p) {
  std::discrete_distribution<std::int32_t> d(p.begin(), p.end());
  return d(rng);
}

// Drafts drawn from q: the first emitted token follows p0, and the second
// (when the first draft passed) follows p1, whatever q is.
TEST_P(SpeculativeTest, EmittedTokensFollowTheTarget) {
  auto rng = make_rng();
  const int vocab = 33, n = 2;
  const std::vector<std::vector<float>> q = {random_probs(rng, vocab), random_probs(rng, vocab)};
  const std::vector<std::vector<float>> p = {random_probs(rng, vocab), random_probs(rng, vocab),
                                             random_probs(rng, vocab)};
  std::vector<std::int64_t> first(vocab, 0), second(vocab, 0);
  const std::uint64_t seed = rng();
  for (int run = 0; run < 4; ++run) {
    Problem problem = repeated(q, p, {0, 0}, 25000);
    for (std::int64_t b = 0; b < problem.batch; ++b)
      for (int t = 0; t < n; ++t) problem.draft_ids[b * n + t] = sample_from(rng, q[t]);
    Verified v;
    KVS_RUN(verify(problem, GetParam(), seed, static_cast<std::uint64_t>(run), &v));
    for (std::int64_t b = 0; b < problem.batch; ++b) {
      ++first[v.out[b * (n + 1)]];
      if (v.emitted[b] >= 1) ++second[v.out[b * (n + 1) + 1]];
    }
  }
  EXPECT_GT(expect_follows(first, std::vector<double>(p[0].begin(), p[0].end()), "first token"), 1e-3);
  EXPECT_GT(expect_follows(second, std::vector<double>(p[1].begin(), p[1].end()), "second token"), 1e-3);
}

// The documented verification of row b (speculative.hpp, docs/sampling.md).
Verified documented(const Problem& p, std::uint64_t seed, std::uint64_t offset) {
  Verified v;
  for (std::int64_t b = 0; b < p.batch; ++b) {
    const auto block = [&](int t) {
      return detail::random_block(seed, offset, static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(t));
    };
    std::int32_t accepted = 0, emitted = p.n;
    for (int t = 0; t < p.n; ++t) {
      const std::int32_t id = p.draft_ids[b * p.n + t];
      const bool pass = id >= 0 && id < p.vocab &&
                        double{detail::accept_uniform(block(t))} * p.draft(b, t)[id] < double{p.target(b, t)[id]};
      accepted += pass;
      if (!pass && emitted == p.n) emitted = t;
    }
    std::vector<std::uint64_t> weight(static_cast<std::size_t>(p.vocab));
    std::uint64_t total = 0;
    for (int j = 0; j < p.vocab && emitted < p.n; ++j)
      total += weight[j] = oracle::fixed_weight(std::max(0.f, p.target(b, emitted)[j] - p.draft(b, emitted)[j]));
    if (total == 0)
      for (int j = 0; j < p.vocab; ++j) weight[j] = oracle::fixed_weight(p.target(b, emitted)[j]);
    const std::int32_t token =
        oracle::inverse_cdf_token(std::vector<bool>(weight.size(), true), weight, detail::draw_bits(block(emitted)));
    for (int t = 0; t <= p.n; ++t)
      v.out.push_back(t < emitted ? p.draft_ids[b * p.n + t] : t == emitted ? token : -1);
    v.accepted.push_back(accepted);
    v.emitted.push_back(emitted);
  }
  return v;
}

TEST_P(SpeculativeTest, EveryRowIsTheDocumentedVerification) {
  auto rng = make_rng();
  for (auto [vocab, n] : {std::pair{1, 1}, std::pair{7, 4}, std::pair{1000, 3}}) {
    Problem problem{vocab, n, 300};
    for (std::int64_t b = 0; b < problem.batch; ++b) {
      for (int t = 0; t <= n; ++t) {
        const std::vector<float> target = random_probs(rng, vocab);
        // Drafts close to the target on some rows, so that long prefixes pass.
        const std::vector<float> draft = b % 2 ? random_probs(rng, vocab) : target;
        problem.target_probs.insert(problem.target_probs.end(), target.begin(), target.end());
        if (t < n) {
          problem.draft_probs.insert(problem.draft_probs.end(), draft.begin(), draft.end());
          // Some drafts outside the vocabulary: they never pass.
          problem.draft_ids.push_back(rng() % 17 == 0 ? (rng() % 2 ? -1 : vocab) : sample_from(rng, draft));
        }
      }
    }
    const std::uint64_t seed = rng(), offset = rng();
    Verified v;
    KVS_RUN(verify(problem, GetParam(), seed, offset, &v));
    const Verified want = documented(problem, seed, offset);
    EXPECT_EQ(v.out, want.out) << "vocab " << vocab;
    EXPECT_EQ(v.accepted, want.accepted) << "vocab " << vocab;
    EXPECT_EQ(v.emitted, want.emitted) << "vocab " << vocab;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, SpeculativeTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
