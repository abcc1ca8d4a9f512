// The CPU side of the sampling family: a row's rank codes and fixed-point
// weights, the selection passes that find a filter's kept set without sorting,
// and the inverse-CDF draw. The rules these follow live in
// core/sampling_math.hpp, shared with the CUDA backend.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/sampling_math.hpp"
#include "cpu/parallel.hpp"
#include "kvserve/sampling.hpp"

namespace kvserve::detail::cpu {

// One row ready for selection. Scratch reused row after row by one thread.
struct WeightedRow {
  std::vector<std::uint32_t> code;    // rank_code of each token's input value
  std::vector<std::uint64_t> weight;  // fixed_weight; 0: never kept
  std::uint64_t total = 0;            // sum of weight
  std::uint64_t max_weight = 0;
  std::uint64_t positive = 0;         // tokens with weight > 0
  std::vector<std::int32_t> candidates;  // selection scratch
};

// Probabilities: ranked by p, weighing fixed_weight(p).
void load_probs(const float* p, int vocab, WeightedRow* row);
// Logits at temperature t > 0: ranked by x, weighing fixed_weight(logit_weight(x, max, t)).
void load_logits(const float* x, int vocab, float temperature, WeightedRow* row);
// Logits as bare candidates: ranked by x, weighing 1 unless -inf or NaN (greedy, top-k mask).
void load_candidates(const float* x, int vocab, WeightedRow* row);
// The residual max(0, target - draft) of speculative sampling, ranked by itself.
void load_residual(const float* target, const float* draft, int vocab, WeightedRow* row);

// Every token of positive weight.
KeptSet everything(const WeightedRow& row);
// The k highest-ranked tokens (k >= 1). Uses row.candidates as scratch.
KeptSet top_k_set(WeightedRow& row, std::uint64_t k);
// The shortest ranked prefix of mass >= target (1 <= target, or the row is
// empty). Uses row.candidates as scratch.
KeptSet top_p_set(WeightedRow& row, std::uint64_t target);
// Tokens weighing at least min_weight.
KeptSet min_weight_set(const WeightedRow& row, std::uint64_t min_weight);

// The highest-ranked token of positive weight, lowest index first; -1 if none.
std::int32_t top_token(const WeightedRow& row);

// Calls f(j, kept) for each token j in index order while f returns true.
template <class F>
void visit(const WeightedRow& row, const KeptSet& kept, F&& f) {
  const std::uint64_t min_weight = kept.min_weight > 0 ? kept.min_weight : 1;
  std::uint64_t tie_rank = 0;
  const auto n = static_cast<std::int32_t>(row.code.size());
  for (std::int32_t j = 0; j < n; ++j) {
    const std::uint32_t c = row.code[j];
    bool keep = row.weight[j] >= min_weight && c >= kept.code;
    if (keep && c == kept.code) keep = tie_rank++ < kept.ties;
    if (!f(j, keep)) return;
  }
}

// The inverse-CDF draw: t = floor(bits * mass / 2^64), then the first kept
// token in index order whose running kept weight exceeds t; -1 when the kept
// mass is 0.
std::int32_t draw(const WeightedRow& row, const KeptSet& kept, std::uint64_t bits);

// The random block `draw` of row b, from host values or per-row tensors
// (Args: SamplingArgs, ChainSpeculativeSamplingArgs).
template <class Args>
PhiloxBlock row_random_block(RandomSource source, const Args& a, std::int64_t b, std::uint32_t draw) {
  if (source == RandomSource::host) return random_block(a.seed, a.offset, static_cast<std::uint32_t>(b), draw);
  const auto seed = static_cast<std::uint32_t>(a.seeds.template ptr<std::int32_t>()[b]);
  const auto offset = static_cast<std::uint32_t>(a.offsets.template ptr<std::int32_t>()[b]);
  return random_block(seed, offset, 0, draw);
}

// Calls f(b, scratch) for every row b, rows spread over threads, one scratch
// row per chunk of rows.
template <class F>
void for_each_row(std::int64_t rows, std::int64_t cost_per_row, F&& f) {
  const std::int64_t chunks = std::min<std::int64_t>(rows, 64);
  parallel_for(chunks, cost_per_row * (rows / std::max<std::int64_t>(chunks, 1)), [&](std::int64_t chunk) {
    WeightedRow scratch;
    for (std::int64_t b = chunk; b < rows; b += chunks) f(b, scratch);
  });
}

}  // namespace kvserve::detail::cpu
