#include "cpu/sampling_core.hpp"

#include <algorithm>
#include <array>

namespace kvserve::detail::cpu {

namespace {

// Fills code and weight with f(j) -> {input value, weight} and sums the row.
template <class F>
void load(int vocab, WeightedRow* row, F&& value_and_weight) {
  row->code.resize(static_cast<std::size_t>(vocab));
  row->weight.resize(static_cast<std::size_t>(vocab));
  row->total = row->max_weight = row->positive = 0;
  for (int j = 0; j < vocab; ++j) {
    const auto [value, w] = value_and_weight(j);
    row->code[j] = rank_code(value);
    row->weight[j] = w;
    row->total += w;
    row->max_weight = std::max(row->max_weight, w);
    row->positive += w > 0;
  }
}

enum class By { count, mass };

// Counts and masses of tokens per value of one byte of their rank codes.
struct Histogram {
  std::array<std::uint64_t, 256> count{}, mass{};
  void add(std::uint32_t digit, std::uint64_t weight) {
    ++count[digit];
    mass[digit] += weight;
  }
};

// The bucket, walking down from the top, where the running aggregate reaches
// `target`; the buckets above it are added to *above_count and *above_mass.
std::uint32_t pick_bucket(const Histogram& h, By by, std::uint64_t target, std::uint64_t* above_count,
                          std::uint64_t* above_mass) {
  for (std::uint32_t digit = 255;; --digit) {
    const std::uint64_t reached = by == By::count ? *above_count + h.count[digit] : *above_mass + h.mass[digit];
    if (reached >= target) return digit;
    *above_count += h.count[digit];
    *above_mass += h.mass[digit];
  }
}

// The rank cut whose kept count (By::count) or mass (By::mass) first reaches
// `target`, for 1 <= target <= the row's count or mass. A radix selection over
// the 32-bit rank codes, most significant byte first: each level is one pass
// (over the row, then over the tokens left) that builds a 256-bucket histogram
// of counts and masses and keeps the bucket where the running aggregate, taken
// from the top bucket down, reaches the target. At most four levels; it stops
// early once the tokens left share one code. Those tokens are tied: the cut
// keeps as many of them, in index order, as the target still needs.
KeptSet find_cut(WeightedRow& row, By by, std::uint64_t target) {
  const auto vocab = static_cast<std::int32_t>(row.weight.size());
  std::uint64_t above_count = 0, above_mass = 0;  // kept tokens ranked above every token left
  Histogram top;
  for (std::int32_t j = 0; j < vocab; ++j)
    if (row.weight[j] > 0) top.add(row.code[j] >> 24, row.weight[j]);
  const std::uint32_t top_digit = pick_bucket(top, by, target, &above_count, &above_mass);
  std::vector<std::int32_t>& left = row.candidates;
  left.clear();
  for (std::int32_t j = 0; j < vocab; ++j)
    if (row.weight[j] > 0 && row.code[j] >> 24 == top_digit) left.push_back(j);
  for (int shift = 16; shift >= 0; shift -= 8) {
    const std::uint32_t first = row.code[left.front()];
    if (std::all_of(left.begin(), left.end(), [&](std::int32_t j) { return row.code[j] == first; })) break;
    Histogram h;
    for (std::int32_t j : left) h.add((row.code[j] >> shift) & 0xffu, row.weight[j]);
    const std::uint32_t digit = pick_bucket(h, by, target, &above_count, &above_mass);
    std::erase_if(left, [&](std::int32_t j) { return ((row.code[j] >> shift) & 0xffu) != digit; });
  }
  // Every token left has the cut's code, hence the same weight.
  const std::uint64_t unit = row.weight[left.front()];
  const std::uint64_t ties = by == By::count ? target - above_count : (target - above_mass + unit - 1) / unit;  // ceil
  return KeptSet{row.code[left.front()], ties, 1, above_mass + ties * unit};
}

}  // namespace

void load_probs(const float* p, int vocab, WeightedRow* row) {
  load(vocab, row, [&](int j) { return std::pair{p[j], fixed_weight(p[j])}; });
}

namespace {
void load_logits_generic(const float* x, int vocab, float temperature, WeightedRow* row) {
  float max = -INFINITY;
  for (int j = 0; j < vocab; ++j) max = x[j] > max ? x[j] : max;  // NaN never wins
  load(vocab, row, [&](int j) { return std::pair{x[j], fixed_weight(logit_weight(x[j], max, temperature))}; });
}

// exp_nonpositive's eight fmaf become calls into libm unless the compiler may
// emit FMA instructions, which makes logits rows ~10x slower. On x86-64 the
// loop is compiled a second time with FMA enabled (flatten inlines everything
// it calls) and chosen at run time. fmaf rounds exactly either way, so both
// give the same bits.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("fma"), flatten)) void load_logits_fma(const float* x, int vocab, float temperature,
                                                             WeightedRow* row) {
  load_logits_generic(x, vocab, temperature, row);
}
#endif
}  // namespace

void load_logits(const float* x, int vocab, float temperature, WeightedRow* row) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("fma")) return load_logits_fma(x, vocab, temperature, row);
#endif
  load_logits_generic(x, vocab, temperature, row);
}

void load_candidates(const float* x, int vocab, WeightedRow* row) {
  load(vocab, row, [&](int j) { return std::pair{x[j], std::uint64_t{x[j] > -INFINITY}}; });
}

void load_residual(const float* target, const float* draft, int vocab, WeightedRow* row) {
  load(vocab, row, [&](int j) {
    const float r = std::max(0.f, target[j] - draft[j]);
    return std::pair{r, fixed_weight(r)};
  });
}

KeptSet everything(const WeightedRow& row) { return KeptSet{0, ~std::uint64_t{0}, 1, row.total}; }

KeptSet top_k_set(WeightedRow& row, std::uint64_t k) {
  if (k >= row.positive) return everything(row);
  return find_cut(row, By::count, k);
}

KeptSet top_p_set(WeightedRow& row, std::uint64_t target) {
  if (target >= row.total) return everything(row);
  return find_cut(row, By::mass, target);
}

KeptSet min_weight_set(const WeightedRow& row, std::uint64_t min_weight) {
  KeptSet kept{0, ~std::uint64_t{0}, min_weight, 0};
  visit(row, kept, [&](std::int32_t j, bool keep) {
    if (keep) kept.mass += row.weight[j];
    return true;
  });
  return kept;
}

std::int32_t top_token(const WeightedRow& row) {
  std::int32_t best = -1;
  for (std::int32_t j = 0; j < static_cast<std::int32_t>(row.code.size()); ++j)
    if (row.weight[j] > 0 && (best < 0 || row.code[j] > row.code[best])) best = j;
  return best;
}

std::int32_t draw(const WeightedRow& row, const KeptSet& kept, std::uint64_t bits) {
  if (kept.mass == 0) return -1;
  const std::uint64_t target = mul_hi_u64(bits, kept.mass);
  std::uint64_t running = 0;
  std::int32_t token = -1;
  visit(row, kept, [&](std::int32_t j, bool keep) {
    if (!keep) return true;
    running += row.weight[j];
    if (running <= target) return true;
    token = j;
    return false;
  });
  return token;
}

}  // namespace kvserve::detail::cpu
