// fp64 / exact-integer oracle for the sampling family, written apart from
// src/cpu and deliberately naive: it sorts the vocabulary, walks it in rank
// order and sums in 128-bit integers. It states the documented semantics
// (docs/sampling.md) directly, so that the selection passes of the backends
// can be checked against them token for token.
#pragma once

#include <cstdint>
#include <vector>

#include "kvserve/sampling.hpp"

namespace kvserve::oracle {

// A Sampling / SamplingRenorm filter as plain values (per-row meanings:
// top_k <= 0 or >= vocab and top_p >= 1 keep everything).
struct Truncation {
  SamplingFilter filter = SamplingFilter::none;
  TopKTopPOrder order = TopKTopPOrder::k_then_p;
  std::int64_t top_k = 0;
  float top_p = 1.f;
  float min_p = 0.f;
};

// floor(p * 2^40), p clamped to [0, 1]; NaN weighs 0.
std::uint64_t fixed_weight(double p);

// Which tokens the filter keeps. `rank` orders the tokens (higher first, equal
// values to the lower index); `weight` holds their fixed-point weights, and a
// token of weight 0 is never kept. greedy keeps the top token.
std::vector<bool> kept_tokens(const std::vector<double>& rank, const std::vector<std::uint64_t>& weight,
                              const Truncation& t);

// `prob` on the kept tokens, renormalised; 0 elsewhere.
std::vector<double> truncated_distribution(const std::vector<bool>& kept, const std::vector<double>& prob);

// The documented draw over the kept tokens: t = floor(bits * M / 2^64) with M
// the kept weight, then the first kept token in index order whose running
// weight exceeds t; -1 when M is 0.
std::int32_t inverse_cdf_token(const std::vector<bool>& kept, const std::vector<std::uint64_t>& weight,
                               std::uint64_t bits);

// softmax(x / temperature); -inf logits get 0.
std::vector<double> softmax(const std::vector<double>& logits, double temperature);

// The residual max(0, p - q), renormalised (speculative sampling's correction).
std::vector<double> residual_distribution(const std::vector<double>& target, const std::vector<double>& draft);

// Logits after the penalties for one row: `counts` per token (0: unseen).
std::vector<double> penalised_logits(const std::vector<double>& logits, const std::vector<std::int64_t>& counts,
                                     double repetition, double frequency, double presence);

}  // namespace kvserve::oracle
