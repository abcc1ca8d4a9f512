// Sampling on every test device: the draws follow the truncated distribution
// (chi-square), every token equals the documented draw (the oracle's sorted
// reference with the same Philox bits), and the edge cases of SPEC §3/§5.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <tuple>

#include "core/philox.hpp"
#include "core/sampling_math.hpp"
#include "reference/oracle_sampling.hpp"
#include "sampling/sampling_fixtures.hpp"

namespace kvserve::test {
namespace {

constexpr std::int64_t kDraws = 100000;

// ------------------------------------------------------------ inputs ----

// A known distribution with ties: three tokens of 0.05 at indices 0, 4, 6.
std::vector<float> tied_distribution_7() { return {0.05f, 0.3f, 0.1f, 0.2f, 0.05f, 0.25f, 0.05f}; }

// A random heavy-tailed distribution with a few exact ties, normalised in f32.
std::vector<float> random_distribution(std::mt19937_64& rng, int vocab) {
  std::normal_distribution<double> normal(0, 1.5);
  std::vector<double> w(static_cast<std::size_t>(vocab));
  for (double& x : w) x = std::exp(normal(rng));
  for (int j = 3; j + 7 < vocab; j += 11) w[j + 7] = w[j];  // ties
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<float> p(w.size());
  for (std::size_t j = 0; j < w.size(); ++j) p[j] = static_cast<float>(w[j] / sum);
  return p;
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

std::vector<std::uint64_t> fixed_weights(const std::vector<float>& p) {
  std::vector<std::uint64_t> w(p.size());
  for (std::size_t j = 0; j < p.size(); ++j) w[j] = oracle::fixed_weight(p[j]);
  return w;
}

// Probabilities in rank order (highest first, ties by index).
std::vector<double> ranked_probs(const std::vector<double>& p) {
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
  std::vector<double> r;
  for (std::size_t i : order) r.push_back(p[i]);
  return r;
}

// A top_p halfway between the masses of the first `r` and `r + 1` ranked
// tokens (of `ranked`, renormalised), so the kept set is r + 1 tokens with a
// margin far beyond rounding.
float midpoint_top_p(const std::vector<double>& ranked, std::size_t r) {
  const double total = std::accumulate(ranked.begin(), ranked.end(), 0.0);
  const double before = std::accumulate(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(r), 0.0);
  return static_cast<float>((before + ranked[r] / 2) / total);
}

// A min_p halfway between the r-th and the next smaller ranked probability.
float midpoint_min_p(const std::vector<double>& ranked, std::size_t r) {
  std::size_t next = r + 1;
  while (next + 1 < ranked.size() && ranked[next] == ranked[r]) ++next;
  return static_cast<float>((ranked[r] + ranked[next]) / 2 / ranked[0]);
}

// ------------------------------------------------------- distributions ----

class SamplingTest : public DeviceTest {};

struct FilterCase {
  std::string name;
  SamplingDesc desc;
  oracle::Truncation truncation;
};

// One case per filter, with parameters placed away from any decision boundary.
std::vector<FilterCase> filter_cases(const std::vector<double>& p) {
  const int vocab = static_cast<int>(p.size());
  const std::vector<double> ranked = ranked_probs(p);
  // With vocab 7, the top-k and top-p boundaries fall inside the tie of three 0.05s.
  const bool tied = vocab == 7;
  const int k = tied ? 5 : vocab / 3;
  std::vector<double> top_k_ranked(ranked.begin(), ranked.begin() + k);
  const float p_all = midpoint_top_p(ranked, tied ? 4 : static_cast<std::size_t>(vocab / 4));
  const float p_in_k = midpoint_top_p(top_k_ranked, static_cast<std::size_t>(k / 2));
  const float p_joint = midpoint_top_p(ranked, static_cast<std::size_t>(vocab / 2));  // k binds (vocab > 7)
  const float min_p = midpoint_min_p(ranked, tied ? 2 : static_cast<std::size_t>(vocab / 4));
  const auto desc = [&](SamplingFilter f, int top_k, float top_p, float mp, TopKTopPOrder order) {
    return SamplingDesc{.vocab = vocab, .max_batch = 1, .filter = f, .order = order, .top_k = top_k,
                        .top_p = top_p, .min_p = mp};
  };
  using F = SamplingFilter;
  using O = TopKTopPOrder;
  return {
      {"none", desc(F::none, 1, 1, 0, O::k_then_p), {F::none}},
      {"top_k", desc(F::top_k, k, 1, 0, O::k_then_p), {F::top_k, O::k_then_p, k}},
      {"top_p", desc(F::top_p, 1, p_all, 0, O::k_then_p), {F::top_p, O::k_then_p, 0, p_all}},
      {"min_p", desc(F::min_p, 1, 1, min_p, O::k_then_p), {F::min_p, O::k_then_p, 0, 1, min_p}},
      {"top_k_then_top_p", desc(F::top_k_top_p, k, p_in_k, 0, O::k_then_p),
       {F::top_k_top_p, O::k_then_p, k, p_in_k}},
      {"top_k_top_p_joint", desc(F::top_k_top_p, k, p_joint, 0, O::joint), {F::top_k_top_p, O::joint, k, p_joint}},
      {"top_k_top_p_joint_p_binds", desc(F::top_k_top_p, k, p_all, 0, O::joint),
       {F::top_k_top_p, O::joint, k, p_all}},
  };
}

void expect_filters_follow_truncated_distributions(Device device, const std::vector<float>& row,
                                                   std::mt19937_64& rng) {
  const std::vector<double> p = as_double(row);
  for (const FilterCase& c : filter_cases(p)) {
    const std::vector<bool> kept = oracle::kept_tokens(p, fixed_weights(row), c.truncation);
    const std::vector<double> expected = oracle::truncated_distribution(kept, p);
    KVS_RUN(expect_distribution(c.desc, device, row, expected, kDraws, rng,
                                c.name + " vocab=" + std::to_string(row.size())));
  }
}

TEST_P(SamplingTest, FiltersFollowTheTruncatedDistributionWithTies) {
  auto rng = make_rng();
  expect_filters_follow_truncated_distributions(GetParam(), tied_distribution_7(), rng);
}

TEST_P(SamplingTest, FiltersFollowTheTruncatedDistributionVocab33) {
  auto rng = make_rng();
  expect_filters_follow_truncated_distributions(GetParam(), random_distribution(rng, 33), rng);
}

TEST_P(SamplingTest, FiltersFollowTheTruncatedDistributionVocab1000) {
  auto rng = make_rng();
  expect_filters_follow_truncated_distributions(GetParam(), random_distribution(rng, 1000), rng);
}

TEST_P(SamplingTest, LogitsFollowTheSoftmaxAtTheirTemperature) {
  auto rng = make_rng();
  for (int vocab : {7, 33, 1000}) {
    std::normal_distribution<float> normal(0.f, 2.f);
    std::vector<float> logits(static_cast<std::size_t>(vocab));
    for (float& x : logits) x = normal(rng);
    expect_nonzero(as_double(logits), "logits");
    // Temperatures at the small vocabularies; one at 1000, where each case costs 10^8 exps.
    const std::vector<float> temperatures = vocab < 1000 ? std::vector<float>{0.6f, 1.7f} : std::vector<float>{0.6f};
    for (float temperature : temperatures) {
      const std::vector<double> p = oracle::softmax(as_double(logits), temperature);
      SamplingDesc desc{.vocab = vocab, .max_batch = 1, .input = SamplingInput::logits,
                        .temperature = temperature};
      const std::string what = "vocab=" + std::to_string(vocab) + " T=" + std::to_string(temperature);
      KVS_RUN(expect_distribution(desc, GetParam(), logits, p, kDraws, rng, "none " + what));
      desc.filter = SamplingFilter::top_p;
      desc.top_p = midpoint_top_p(ranked_probs(p), static_cast<std::size_t>(vocab / 3));
      const double top = ranked_probs(p)[0];
      std::vector<std::uint64_t> weights(p.size());  // e^((x - max) / T): the top weighs 1
      for (std::size_t j = 0; j < p.size(); ++j) weights[j] = oracle::fixed_weight(p[j] / top);
      const std::vector<bool> kept =
          oracle::kept_tokens(as_double(logits), weights, {SamplingFilter::top_p, {}, 0, desc.top_p});
      KVS_RUN(expect_distribution(desc, GetParam(), logits, oracle::truncated_distribution(kept, p), kDraws, rng,
                                  "top_p " + what));
    }
  }
}

// --------------------------------------------------------- exact tokens ----

// Random rows of several kinds: flat, peaked, coarse (many ties and zeros),
// and unnormalised.
std::vector<float> random_row(std::mt19937_64& rng, int vocab, SamplingInput input) {
  std::vector<float> row(static_cast<std::size_t>(vocab));
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  std::normal_distribution<float> normal(0.f, 1.f);
  const int kind = static_cast<int>(rng() % 4);
  for (float& x : row) {
    switch (kind) {
      case 0: x = unit(rng); break;
      case 1: x = std::exp(4.f * normal(rng)); break;
      case 2: x = static_cast<float>(rng() % 4) * 0.25f; break;
      default: x = unit(rng) * unit(rng); break;
    }
  }
  if (input == SamplingInput::logits) {
    for (float& x : row) x = x > 0 ? std::log(x) : -INFINITY;  // the same ranking, as logits
    return row;
  }
  if (kind != 3) {  // kind 3 stays unnormalised
    const double sum = std::accumulate(row.begin(), row.end(), 0.0);
    if (sum > 0)
      for (float& x : row) x = static_cast<float>(x / sum);
  }
  return row;
}

// The documented token of one row, from the oracle with the same Philox bits.
std::int32_t documented_token(const std::vector<float>& row, SamplingInput input, float temperature,
                              const oracle::Truncation& t, std::uint64_t bits) {
  std::vector<std::uint64_t> weights(row.size());
  oracle::Truncation truncation = t;
  if (input == SamplingInput::probs) {
    weights = fixed_weights(row);
  } else if (!(temperature > 0)) {  // greedy: every logit above -inf is a candidate
    for (std::size_t j = 0; j < row.size(); ++j) weights[j] = row[j] > -INFINITY ? 1 : 0;
    truncation.filter = SamplingFilter::greedy;
  } else {  // the shared exp: tested against std::exp in sampling_math_test
    float max = -INFINITY;
    for (float x : row) max = std::max(max, x);
    for (std::size_t j = 0; j < row.size(); ++j)
      weights[j] = detail::fixed_weight(detail::logit_weight(row[j], max, temperature));
  }
  const std::vector<bool> kept = oracle::kept_tokens(as_double(row), weights, truncation);
  if (truncation.filter == SamplingFilter::greedy) {
    const auto it = std::find(kept.begin(), kept.end(), true);
    return it == kept.end() ? -1 : static_cast<std::int32_t>(it - kept.begin());
  }
  return oracle::inverse_cdf_token(kept, weights, bits);
}

void expect_documented_tokens(Device device, SamplingInput input, SamplingFilter filter, TopKTopPOrder order,
                              ParamSource params, RandomSource random, std::mt19937_64& rng) {
  const std::vector<int> vocabs = {1, 2, 7, 33, 100, 1000};
  const int vocab = vocabs[rng() % vocabs.size()];
  const std::int64_t batch = 1500;
  SCOPED_TRACE("input=" + std::string(name_of(input)) + " filter=" + std::string(name_of(filter)) +
               " order=" + std::string(name_of(order)) + " params=" + std::string(name_of(params)) +
               " random=" + std::string(name_of(random)) + " vocab=" + std::to_string(vocab));
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .input = input, .filter = filter,
                    .order = order, .temperature = input == SamplingInput::logits ? 0.8f : 1.f,
                    .top_k = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(vocab)),
                    .top_p = std::max(unit(rng), 0.01f), .min_p = unit(rng) * 0.5f, .params = params,
                    .random = random};
  std::vector<float> input_values;
  SamplingRows rows;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::vector<float> row = random_row(rng, vocab, input);
    input_values.insert(input_values.end(), row.begin(), row.end());
    if (params == ParamSource::per_row) {  // including the out-of-range values with documented meanings
      const std::int32_t special_k[] = {0, -3, vocab, vocab + 5};
      const float special_p[] = {0.f, -1.f, 1.f, 1.5f, NAN};
      const float special_temperature[] = {0.f, -1.f, NAN};  // greedy rows
      rows.top_k.push_back(rng() % 5 == 0 ? special_k[rng() % 4]
                                          : 1 + static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(vocab)));
      rows.top_p.push_back(rng() % 5 == 0 ? special_p[rng() % 5] : unit(rng));
      rows.min_p.push_back(rng() % 5 == 0 ? special_p[rng() % 5] : unit(rng) * 0.5f);
      rows.temperature.push_back(rng() % 6 == 0 ? special_temperature[rng() % 3] : 0.3f + 2 * unit(rng));
    }
    if (random == RandomSource::per_row) {
      rows.seeds.push_back(static_cast<std::int32_t>(rng()));
      rows.offsets.push_back(static_cast<std::int32_t>(rng()));
    }
  }
  // Keep only the tensors the plan reads.
  const bool uses_k = filter == SamplingFilter::top_k || filter == SamplingFilter::top_k_top_p;
  const bool uses_p = filter == SamplingFilter::top_p || filter == SamplingFilter::top_k_top_p;
  if (!uses_k) rows.top_k.clear();
  if (!uses_p) rows.top_p.clear();
  if (filter != SamplingFilter::min_p) rows.min_p.clear();
  if (input == SamplingInput::probs) rows.temperature.clear();
  if (filter == SamplingFilter::greedy) rows.seeds.clear(), rows.offsets.clear();
  const std::uint64_t seed = rng(), offset = rng();
  std::vector<std::int32_t> tokens;
  KVS_RUN(run_sampling(desc, device, input_values, seed, offset, rows, &tokens));

  std::int64_t mismatches = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::vector<float> row(input_values.begin() + b * vocab, input_values.begin() + (b + 1) * vocab);
    const bool per_row = params == ParamSource::per_row;
    const oracle::Truncation t{filter, order, per_row && uses_k ? rows.top_k[b] : desc.top_k,
                               per_row && uses_p ? rows.top_p[b] : desc.top_p,
                               per_row && filter == SamplingFilter::min_p ? rows.min_p[b] : desc.min_p};
    const float temperature = per_row && input == SamplingInput::logits ? rows.temperature[b] : desc.temperature;
    const detail::PhiloxBlock block =
        random == RandomSource::host
            ? detail::random_block(seed, offset, static_cast<std::uint32_t>(b), 0)
            : detail::random_block(static_cast<std::uint32_t>(rows.seeds[b]),
                                   static_cast<std::uint32_t>(rows.offsets[b]), 0, 0);
    const std::int32_t want = documented_token(row, input, temperature, t, detail::draw_bits(block));
    if (tokens[b] != want && ++mismatches <= 5)
      ADD_FAILURE() << "row " << b << ": token " << tokens[b] << ", documented draw " << want;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(SamplingTest, EveryTokenIsTheDocumentedDraw) {
  auto rng = make_rng();
  using F = SamplingFilter;
  for (SamplingInput input : {SamplingInput::probs, SamplingInput::logits})
    for (F filter : {F::none, F::top_k, F::top_p, F::min_p, F::top_k_top_p, F::greedy})
      for (ParamSource params : {ParamSource::scalar, ParamSource::per_row})
        KVS_RUN(expect_documented_tokens(GetParam(), input, filter, TopKTopPOrder::k_then_p, params,
                                         params == ParamSource::scalar ? RandomSource::host : RandomSource::per_row,
                                         rng));
  for (ParamSource params : {ParamSource::scalar, ParamSource::per_row})
    KVS_RUN(expect_documented_tokens(GetParam(), SamplingInput::probs, F::top_k_top_p, TopKTopPOrder::joint, params,
                                     RandomSource::host, rng));
}

TEST_P(SamplingTest, LargeVocabularyOfAnySize) {
  auto rng = make_rng();
  const int vocab = 262147;  // past 256k, and prime
  const std::int64_t batch = 3;
  std::vector<float> input;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::vector<float> row = random_distribution(rng, vocab);
    input.insert(input.end(), row.begin(), row.end());
  }
  const std::uint64_t seed = rng();
  for (auto [filter, k, p] : {std::tuple{SamplingFilter::top_p, 1, 0.9f}, std::tuple{SamplingFilter::top_k, 50, 1.f},
                              std::tuple{SamplingFilter::top_k_top_p, 1000, 0.5f}}) {
    const SamplingDesc desc{.vocab = vocab, .max_batch = 4, .filter = filter, .top_k = k, .top_p = p};
    std::vector<std::int32_t> tokens;
    KVS_RUN(run_sampling(desc, GetParam(), input, seed, 0, {}, &tokens));
    for (std::int64_t b = 0; b < batch; ++b) {
      const std::vector<float> row(input.begin() + b * vocab, input.begin() + (b + 1) * vocab);
      const std::uint64_t bits = detail::draw_bits(detail::random_block(seed, 0, static_cast<std::uint32_t>(b), 0));
      EXPECT_EQ(tokens[b], documented_token(row, SamplingInput::probs, 1, {filter, {}, k, p}, bits))
          << name_of(filter) << " row " << b;
    }
  }
}

// ------------------------------------------------------------ edges ----

// Rows whose top values are often tied.
std::vector<float> coarse_rows(std::mt19937_64& rng, int vocab, std::int64_t batch) {
  std::vector<float> input(static_cast<std::size_t>(vocab * batch));
  for (float& x : input) x = static_cast<float>(rng() % 5) * 0.125f;
  return input;
}

TEST_P(SamplingTest, TopKOneEqualsGreedyWithTiesToTheLowestIndex) {
  auto rng = make_rng();
  const int vocab = 37;
  const std::int64_t batch = 2000;
  for (SamplingInput input : {SamplingInput::probs, SamplingInput::logits}) {
    const std::vector<float> values = coarse_rows(rng, vocab, batch);
    SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .input = input,
                      .filter = SamplingFilter::greedy};
    std::vector<std::int32_t> greedy, top1;
    KVS_RUN(run_sampling(desc, GetParam(), values, 0, 0, {}, &greedy));
    desc.filter = SamplingFilter::top_k;
    desc.top_k = 1;
    KVS_RUN(run_sampling(desc, GetParam(), values, rng(), rng(), {}, &top1));
    EXPECT_EQ(top1, greedy);
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto first = values.begin() + b * vocab;
      const auto want = static_cast<std::int32_t>(std::max_element(first, first + vocab) - first);  // first maximum
      const bool all_zero_probs = input == SamplingInput::probs && first[want] == 0.f;
      ASSERT_EQ(greedy[b], all_zero_probs ? -1 : want) << "row " << b;
    }
  }
}

TEST_P(SamplingTest, OnlyTokenOfPositiveWeightIsAlwaysChosen) {
  auto rng = make_rng();
  const int vocab = 300;
  const std::int64_t batch = 200;
  std::vector<std::int32_t> want(static_cast<std::size_t>(batch));
  std::vector<float> logits(static_cast<std::size_t>(vocab * batch), -INFINITY), probs(logits.size(), 0.f);
  for (std::int64_t b = 0; b < batch; ++b) {
    want[b] = static_cast<std::int32_t>(rng() % vocab);
    logits[b * vocab + want[b]] = static_cast<float>(rng() % 100) - 50.f;
    probs[b * vocab + want[b]] = b % 2 ? 1.f : 0.001f;
  }
  using F = SamplingFilter;
  for (SamplingInput input : {SamplingInput::probs, SamplingInput::logits})
    for (F filter : {F::none, F::top_k, F::top_p, F::min_p, F::top_k_top_p, F::greedy})
      for (TopKTopPOrder order : {TopKTopPOrder::k_then_p, TopKTopPOrder::joint}) {
        const SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .input = input,
                                .filter = filter, .order = order, .top_k = 5, .top_p = 0.3f, .min_p = 0.5f};
        std::vector<std::int32_t> tokens;
        KVS_RUN(run_sampling(desc, GetParam(), input == SamplingInput::logits ? logits : probs, rng(), rng(), {},
                             &tokens));
        EXPECT_EQ(tokens, want) << name_of(input) << " " << name_of(filter) << " " << name_of(order);
      }
}

TEST_P(SamplingTest, RowsWithoutPositiveWeightReturnMinusOne) {
  const int vocab = 50;
  std::vector<float> logits(static_cast<std::size_t>(2 * vocab), -INFINITY), probs(logits.size(), 0.f);
  logits[vocab + 3] = NAN;
  probs[vocab + 7] = -0.5f;
  probs[vocab + 9] = NAN;
  for (SamplingInput input : {SamplingInput::probs, SamplingInput::logits})
    for (SamplingFilter filter : {SamplingFilter::none, SamplingFilter::top_p, SamplingFilter::greedy}) {
      const SamplingDesc desc{.vocab = vocab, .max_batch = 2, .input = input, .filter = filter, .top_p = 0.5f};
      std::vector<std::int32_t> tokens;
      KVS_RUN(run_sampling(desc, GetParam(), input == SamplingInput::logits ? logits : probs, 1, 2, {}, &tokens));
      EXPECT_EQ(tokens, (std::vector<std::int32_t>{-1, -1})) << name_of(input) << " " << name_of(filter);
    }
}

TEST_P(SamplingTest, EdgeParametersKeepEveryToken) {
  auto rng = make_rng();
  const int vocab = 64;
  const std::int64_t batch = 3000;
  std::vector<float> input;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::vector<float> row = random_row(rng, vocab, SamplingInput::probs);
    input.insert(input.end(), row.begin(), row.end());
  }
  const std::uint64_t seed = rng(), offset = rng();
  const SamplingDesc none{.vocab = vocab, .max_batch = static_cast<int>(batch)};
  std::vector<std::int32_t> reference;
  KVS_RUN(run_sampling(none, GetParam(), input, seed, offset, {}, &reference));
  using F = SamplingFilter;
  for (SamplingDesc desc : {SamplingDesc{.filter = F::top_p, .top_p = 1.f},
                            SamplingDesc{.filter = F::top_k, .top_k = vocab},
                            SamplingDesc{.filter = F::top_k, .top_k = vocab + 7},
                            SamplingDesc{.filter = F::min_p, .min_p = 0.f},
                            SamplingDesc{.filter = F::top_k_top_p, .top_k = vocab, .top_p = 1.f}}) {
    desc.vocab = vocab;
    desc.max_batch = static_cast<int>(batch);
    std::vector<std::int32_t> tokens;
    KVS_RUN(run_sampling(desc, GetParam(), input, seed, offset, {}, &tokens));
    EXPECT_EQ(tokens, reference) << name_of(desc.filter) << " k=" << desc.top_k << " p=" << desc.top_p;
  }
}

TEST_P(SamplingTest, SameSeedAndOffsetSameTokensOtherOffsetOtherTokens) {
  auto rng = make_rng();
  const int vocab = 1000;
  const std::int64_t batch = 512;
  const std::vector<float> row(static_cast<std::size_t>(vocab), 1.f / vocab);  // flat: every draw matters
  std::vector<float> input;
  for (std::int64_t b = 0; b < batch; ++b) input.insert(input.end(), row.begin(), row.end());
  const SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .filter = SamplingFilter::top_p,
                          .top_p = 0.9f};
  const std::uint64_t seed = rng();
  std::vector<std::int32_t> first, again, next_offset, other_seed;
  KVS_RUN(run_sampling(desc, GetParam(), input, seed, 5, {}, &first));
  KVS_RUN(run_sampling(desc, GetParam(), input, seed, 5, {}, &again));
  KVS_RUN(run_sampling(desc, GetParam(), input, seed, 6, {}, &next_offset));
  KVS_RUN(run_sampling(desc, GetParam(), input, seed + 1, 5, {}, &other_seed));
  EXPECT_EQ(first, again);
  const auto differing = [&](const std::vector<std::int32_t>& other) {
    std::int64_t n = 0;
    for (std::int64_t b = 0; b < batch; ++b) n += first[b] != other[b];
    return n;
  };
  EXPECT_GT(differing(next_offset), batch * 9 / 10);
  EXPECT_GT(differing(other_seed), batch * 9 / 10);
  // Rows of one batch draw from different streams.
  EXPECT_GT(std::set<std::int32_t>(first.begin(), first.end()).size(), 300u);
}

TEST_P(SamplingTest, PerRowSeedsFollowTheRequestNotItsPosition) {
  auto rng = make_rng();
  const int vocab = 500;
  const std::int64_t batch = 64;
  const std::vector<float> row = random_distribution(rng, vocab);
  std::vector<float> input;
  for (std::int64_t b = 0; b < batch; ++b) input.insert(input.end(), row.begin(), row.end());
  SamplingRows rows;
  for (std::int64_t b = 0; b < batch; ++b) {
    rows.seeds.push_back(static_cast<std::int32_t>(rng() % 4));  // repeated seeds at different positions
    rows.offsets.push_back(static_cast<std::int32_t>(rng() % 2));
  }
  SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .filter = SamplingFilter::min_p,
                    .min_p = 0.01f, .random = RandomSource::per_row};
  std::vector<std::int32_t> tokens;
  KVS_RUN(run_sampling(desc, GetParam(), input, 0, 0, rows, &tokens));
  // A per-row (seed, offset) is the host stream 0 of that seed and offset.
  desc.random = RandomSource::host;
  desc.max_batch = 1;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<std::int32_t> alone;
    KVS_RUN(run_sampling(desc, GetParam(), row, static_cast<std::uint32_t>(rows.seeds[b]),
                         static_cast<std::uint32_t>(rows.offsets[b]), {}, &alone));
    EXPECT_EQ(tokens[b], alone[0]) << "row " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, SamplingTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
