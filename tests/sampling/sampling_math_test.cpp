// The arithmetic both sampling backends share (core/philox.hpp,
// core/sampling_math.hpp): Philox against its published known-answer vectors,
// the deterministic exp, the fixed-point helpers; and the test statistics.
#include <cmath>
#include <limits>
#include <random>

#include "core/philox.hpp"
#include "core/sampling_math.hpp"
#include "harness/harness.hpp"
#include "sampling/stats.hpp"

namespace kvserve::test {
namespace {

using detail::PhiloxBlock;
using u128 = unsigned __int128;

void expect_block(PhiloxBlock got, std::array<std::uint32_t, 4> want) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.x[i], want[i]) << "word " << i;
}

// Random123's kat_vectors for philox4x32_10.
TEST(Philox, KnownAnswerVectors) {
  expect_block(detail::philox4x32_10({{0, 0, 0, 0}}, 0, 0), {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  expect_block(detail::philox4x32_10({{~0u, ~0u, ~0u, ~0u}}, ~0u, ~0u),
               {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  expect_block(detail::philox4x32_10({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0),
               {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST(Philox, StreamLayoutIsTheDocumentedCounterAndKey) {
  const std::uint64_t seed = 0x0123456789abcdefull, offset = 0xfedcba9876543210ull;
  const PhiloxBlock got = detail::random_block(seed, offset, 7, 3);
  const PhiloxBlock want = detail::philox4x32_10({{0x76543210, 0xfedcba98, 7, 3}}, 0x89abcdef, 0x01234567);
  expect_block(got, {want.x[0], want.x[1], want.x[2], want.x[3]});
  EXPECT_EQ(detail::draw_bits(got), (std::uint64_t{got.x[1]} << 32) | got.x[0]);
  EXPECT_EQ(detail::accept_uniform(got), static_cast<float>(got.x[2] >> 8) / 16777216.f);
  EXPECT_EQ(detail::accept_uniform({{0, 0, ~0u, 0}}), 1.f - 0x1p-24f);
}

TEST(SamplingMath, ExpIsWithinTwoUlpsAndExactAtZero) {
  EXPECT_EQ(detail::exp_nonpositive(0.f), 1.f);
  EXPECT_EQ(detail::exp_nonpositive(-0.f), 1.f);
  EXPECT_EQ(detail::exp_nonpositive(-INFINITY), 0.f);
  EXPECT_EQ(detail::exp_nonpositive(std::numeric_limits<float>::quiet_NaN()), 0.f);
  EXPECT_EQ(detail::exp_nonpositive(-87.5f), 0.f);
  double worst_ulps = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = -87.f * static_cast<float>(i) / 2000000.f;
    const double ref = std::exp(static_cast<double>(x));
    const double ulp = std::ldexp(1.0, std::ilogb(ref) - 23);
    worst_ulps = std::max(worst_ulps, std::fabs(detail::exp_nonpositive(x) - ref) / ulp);
  }
  EXPECT_LE(worst_ulps, 2.0);
}

TEST(SamplingMath, LogitWeights) {
  EXPECT_EQ(detail::logit_weight(3.f, 3.f, 0.7f), 1.f);
  EXPECT_EQ(detail::logit_weight(-INFINITY, 3.f, 1.f), 0.f);
  EXPECT_EQ(detail::logit_weight(INFINITY, INFINITY, 1.f), 1.f);
  EXPECT_EQ(detail::logit_weight(5.f, INFINITY, 1.f), 0.f);
  EXPECT_NEAR(detail::logit_weight(1.f, 3.f, 2.f), std::exp(-1.0), 1e-7);
}

TEST(SamplingMath, FixedWeights) {
  EXPECT_EQ(detail::fixed_weight(1.f), detail::kWeightOne);
  EXPECT_EQ(detail::fixed_weight(3.f), detail::kWeightOne);
  EXPECT_EQ(detail::fixed_weight(0.5f), detail::kWeightOne / 2);
  EXPECT_EQ(detail::fixed_weight(0x1p-40f), 1u);
  EXPECT_EQ(detail::fixed_weight(0x1.fp-41f), 0u);
  EXPECT_EQ(detail::fixed_weight(0.f), 0u);
  EXPECT_EQ(detail::fixed_weight(-0.25f), 0u);
  EXPECT_EQ(detail::fixed_weight(std::numeric_limits<float>::quiet_NaN()), 0u);
  const float exact = 0x1.000002p-17f;  // 24 significant bits at 2^-17: representable on the 2^-40 grid
  EXPECT_EQ(detail::fixed_weight(exact), (std::uint64_t{1} << 23) + 1);
  EXPECT_EQ(detail::weight_to_float(detail::kWeightOne / 4), 0.25f);
}

TEST(SamplingMath, RankCodesFollowFloatOrder) {
  auto rng = make_rng();
  std::normal_distribution<float> dist(0.f, 10.f);
  for (int i = 0; i < 100000; ++i) {
    const float a = dist(rng), b = i % 7 ? dist(rng) : a;
    EXPECT_EQ(a < b, detail::rank_code(a) < detail::rank_code(b)) << a << " " << b;
  }
  EXPECT_LT(detail::rank_code(-INFINITY), detail::rank_code(-1e30f));
  EXPECT_LT(detail::rank_code(-0.f), detail::rank_code(0.f));
  EXPECT_LT(detail::rank_code(1e30f), detail::rank_code(INFINITY));
  EXPECT_EQ(detail::rank_code(std::numeric_limits<float>::quiet_NaN()), 0u);
}

TEST(SamplingMath, WideProductsAreExact) {
  auto rng = make_rng();
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t a = rng(), b = i % 3 ? rng() : rng() >> (rng() % 64);
    EXPECT_EQ(detail::mul_hi_u64(a, b), static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64));
  }
  EXPECT_EQ(detail::mul_hi_u64(~0ull, ~0ull), ~0ull - 1);
}

// ceil(f * total) for f = m * 2^-s, with 128-bit arithmetic.
std::uint64_t ceil_fraction_ref(std::uint64_t total, float f) {
  int e = 0;
  const double mantissa = std::frexp(static_cast<double>(f), &e);
  const u128 product = static_cast<u128>(static_cast<std::uint64_t>(std::ldexp(mantissa, 53))) * total;
  const int s = 53 - e;  // f = mantissa * 2^53 * 2^-s
  if (s >= 127) return product > 0;
  return static_cast<std::uint64_t>((product + ((u128{1} << s) - 1)) >> s);
}

TEST(SamplingMath, CeilFractionIsExact) {
  auto rng = make_rng();
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t total = rng() >> (1 + rng() % 63);
    float f = unit(rng);
    if (i % 5 == 0) f = std::ldexp(f, -static_cast<int>(rng() % 140));  // down to subnormals
    if (!(f > 0.f)) continue;
    EXPECT_EQ(detail::ceil_fraction(total, f), ceil_fraction_ref(total, f)) << total << " " << f;
  }
  EXPECT_EQ(detail::ceil_fraction(12345, 1.f), 12345u);
  EXPECT_EQ(detail::ceil_fraction(12345, 0.f), 0u);
  EXPECT_EQ(detail::ceil_fraction(12345, std::numeric_limits<float>::quiet_NaN()), 0u);
  EXPECT_EQ(detail::ceil_fraction(10, 0.5f), 5u);
  EXPECT_EQ(detail::ceil_fraction(11, 0.5f), 6u);
  EXPECT_EQ(detail::ceil_fraction(1ull << 62, 0x1p-149f), 1u);
  EXPECT_EQ(detail::top_p_target(0.f, 100), 1u);
  EXPECT_EQ(detail::top_p_target(std::numeric_limits<float>::quiet_NaN(), 100), 100u);
  EXPECT_EQ(detail::effective_top_k(0, 50), 50u);
  EXPECT_EQ(detail::effective_top_k(-2, 50), 50u);
  EXPECT_EQ(detail::effective_top_k(51, 50), 50u);
  EXPECT_EQ(detail::effective_top_k(7, 50), 7u);
}

TEST(Stats, IncompleteGammaAndChiSquareQuantiles) {
  for (double x : {0.1, 1.0, 2.5, 10.0}) EXPECT_NEAR(gamma_q(1.0, x), std::exp(-x), 1e-12);
  EXPECT_NEAR(gamma_q(0.5, 2.0), std::erfc(std::sqrt(2.0)), 1e-12);
  // Tabulated 95th and 99.9th percentiles.
  EXPECT_NEAR(chi_square_p_value(3.841459, 1), 0.05, 1e-6);
  EXPECT_NEAR(chi_square_p_value(18.307038, 10), 0.05, 1e-6);
  EXPECT_NEAR(chi_square_p_value(124.342113, 100), 0.05, 1e-6);
  EXPECT_NEAR(chi_square_p_value(29.588298, 10), 0.001, 1e-7);
  const ChiSquare exact = chi_square_test({250, 250, 500}, {0.25, 0.25, 0.5});
  EXPECT_EQ(exact.statistic, 0);
  EXPECT_EQ(exact.dof, 2);
  EXPECT_EQ(chi_square_test({10, 0, 3}, {0.5, 0.5, 0}).outside_support, 3);
}

}  // namespace
}  // namespace kvserve::test
