#include "reference/oracle_sampling.hpp"

#include <algorithm>
#include <cmath>

namespace kvserve::oracle {

namespace {

using u128 = unsigned __int128;

// ceil(f * total) for a float f in [0, 1], exact: f = m / 2^s.
std::uint64_t ceil_times(std::uint64_t total, float f) {
  if (!(f > 0)) return 0;
  if (f >= 1) return total;
  int e = 0;
  const double mantissa = std::frexp(static_cast<double>(f), &e);  // f = mantissa * 2^e, mantissa in [0.5, 1)
  const auto m = static_cast<std::uint64_t>(std::ldexp(mantissa, 24));
  const int s = 24 - e;
  const u128 product = static_cast<u128>(m) * total;
  if (s >= 127) return product > 0 ? 1 : 0;
  const u128 one = 1;
  return static_cast<std::uint64_t>((product + (one << s) - 1) >> s);
}

// Tokens of positive weight, highest rank first, equal ranks by index.
std::vector<std::size_t> ranked(const std::vector<double>& rank, const std::vector<std::uint64_t>& weight) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < rank.size(); ++i)
    if (weight[i] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rank[a] > rank[b]; });
  return order;
}

// The shortest prefix of `order` whose weight reaches max(1, ceil(p * base)).
std::vector<bool> nucleus(const std::vector<std::size_t>& order, const std::vector<std::uint64_t>& weight, float p,
                          std::uint64_t base) {
  const std::uint64_t target = p != p ? base : std::max<std::uint64_t>(1, ceil_times(base, p));
  std::vector<bool> kept(weight.size(), false);
  u128 before = 0;
  for (std::size_t i : order) {
    if (before >= target) break;
    kept[i] = true;
    before += weight[i];
  }
  return kept;
}

}  // namespace

std::uint64_t fixed_weight(double p) {
  if (!(p > 0)) return 0;
  return static_cast<std::uint64_t>(std::floor(std::min(p, 1.0) * std::ldexp(1.0, 40)));
}

std::vector<bool> kept_tokens(const std::vector<double>& rank, const std::vector<std::uint64_t>& weight,
                              const Truncation& t) {
  const std::vector<std::size_t> order = ranked(rank, weight);
  const auto vocab = static_cast<std::int64_t>(rank.size());
  const std::int64_t k = (t.top_k <= 0 || t.top_k >= vocab) ? vocab : t.top_k;
  std::vector<bool> top_k(rank.size(), false);
  std::uint64_t top_k_mass = 0, total = 0;
  for (std::size_t r = 0; r < order.size(); ++r) {
    total += weight[order[r]];
    if (static_cast<std::int64_t>(r) < k) top_k[order[r]] = true, top_k_mass += weight[order[r]];
  }
  switch (t.filter) {
    case SamplingFilter::none: {
      std::vector<bool> all(rank.size());
      for (std::size_t i = 0; i < rank.size(); ++i) all[i] = weight[i] > 0;
      return all;
    }
    case SamplingFilter::greedy: {
      std::vector<bool> kept(rank.size(), false);
      if (!order.empty()) kept[order.front()] = true;
      return kept;
    }
    case SamplingFilter::top_k: return top_k;
    case SamplingFilter::top_p: return nucleus(order, weight, t.top_p, total);
    case SamplingFilter::min_p: {
      const std::uint64_t top = order.empty() ? 0 : weight[order.front()];
      const float min_p = t.min_p != t.min_p ? 0.f : t.min_p;  // NaN keeps all
      const std::uint64_t floor_weight = std::max<std::uint64_t>(1, ceil_times(top, min_p));
      std::vector<bool> kept(rank.size());
      for (std::size_t i = 0; i < rank.size(); ++i) kept[i] = weight[i] >= floor_weight;
      return kept;
    }
    case SamplingFilter::top_k_top_p: {
      std::vector<bool> kept;
      if (t.order == TopKTopPOrder::k_then_p) {
        std::vector<std::size_t> in_k;
        for (std::size_t i : order)
          if (top_k[i]) in_k.push_back(i);
        kept = nucleus(in_k, weight, t.top_p, top_k_mass);
      } else {
        kept = nucleus(order, weight, t.top_p, total);
      }
      for (std::size_t i = 0; i < kept.size(); ++i) kept[i] = kept[i] && top_k[i];
      return kept;
    }
  }
  return top_k;
}

std::vector<double> truncated_distribution(const std::vector<bool>& kept, const std::vector<double>& prob) {
  double mass = 0;
  for (std::size_t i = 0; i < prob.size(); ++i) mass += kept[i] ? prob[i] : 0;
  std::vector<double> out(prob.size(), 0);
  for (std::size_t i = 0; i < prob.size(); ++i) out[i] = kept[i] && mass > 0 ? prob[i] / mass : 0;
  return out;
}

std::int32_t inverse_cdf_token(const std::vector<bool>& kept, const std::vector<std::uint64_t>& weight,
                               std::uint64_t bits) {
  u128 mass = 0;
  for (std::size_t i = 0; i < weight.size(); ++i) mass += kept[i] ? weight[i] : 0;
  if (mass == 0) return -1;
  const u128 target = (static_cast<u128>(bits) * mass) >> 64;
  u128 running = 0;
  for (std::size_t i = 0; i < weight.size(); ++i) {
    if (!kept[i]) continue;
    running += weight[i];
    if (running > target) return static_cast<std::int32_t>(i);
  }
  return -1;
}

std::vector<double> softmax(const std::vector<double>& logits, double temperature) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - max) / temperature);
  for (double& x : p) x /= sum;
  return p;
}

std::vector<double> residual_distribution(const std::vector<double>& target, const std::vector<double>& draft) {
  std::vector<double> r(target.size());
  double sum = 0;
  for (std::size_t i = 0; i < r.size(); ++i) sum += r[i] = std::max(0.0, target[i] - draft[i]);
  for (double& x : r) x /= sum;
  return r;
}

std::vector<double> penalised_logits(const std::vector<double>& logits, const std::vector<std::int64_t>& counts,
                                     double repetition, double frequency, double presence) {
  std::vector<double> out = logits;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (counts[i] <= 0) continue;
    double x = out[i] > 0 ? out[i] / repetition : out[i] * repetition;
    x -= frequency * static_cast<double>(counts[i]);
    out[i] = x - presence;
  }
  return out;
}

}  // namespace kvserve::oracle
