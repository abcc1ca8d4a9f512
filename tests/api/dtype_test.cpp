// Host conversions, exhaustively over every 8- and 16-bit pattern: decoding is
// checked against the format's definition, encoding round-trips every value and
// rounds every midpoint between neighbours to the even one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "kvserve/dtype.hpp"

namespace kvserve {
namespace {

struct Format {
  const char* name;
  int bits, ebits, mbits, bias;
  bool ieee_specials;  // all-ones exponent is inf/NaN (f16, bf16, e5m2); e4m3fn has only NaN
  std::function<float(std::uint32_t)> decode;
  std::function<std::uint32_t(float)> encode;
};

std::vector<Format> formats() {
  return {
      {"f16", 16, 5, 10, 15, true, [](std::uint32_t b) { return f16_to_float(static_cast<std::uint16_t>(b)); },
       [](float x) -> std::uint32_t { return float_to_f16(x); }},
      {"bf16", 16, 8, 7, 127, true, [](std::uint32_t b) { return bf16_to_float(static_cast<std::uint16_t>(b)); },
       [](float x) -> std::uint32_t { return float_to_bf16(x); }},
      {"fp8_e4m3", 8, 4, 3, 7, false, [](std::uint32_t b) { return fp8_e4m3_to_float(static_cast<std::uint8_t>(b)); },
       [](float x) -> std::uint32_t { return float_to_fp8_e4m3(x); }},
      {"fp8_e5m2", 8, 5, 2, 15, true, [](std::uint32_t b) { return fp8_e5m2_to_float(static_cast<std::uint8_t>(b)); },
       [](float x) -> std::uint32_t { return float_to_fp8_e5m2(x); }},
  };
}

// The value of a bit pattern, straight from the format's definition, in double.
double reference_value(const Format& f, std::uint32_t b) {
  const std::uint32_t sign = b >> (f.bits - 1), e = (b >> f.mbits) & ((1u << f.ebits) - 1),
                      m = b & ((1u << f.mbits) - 1);
  const std::uint32_t emax = (1u << f.ebits) - 1;
  double v;
  if (f.ieee_specials && e == emax) v = m ? std::nan("") : INFINITY;
  else if (!f.ieee_specials && e == emax && m == (1u << f.mbits) - 1) v = std::nan("");
  else if (e == 0) v = std::ldexp(static_cast<double>(m), 1 - f.bias - f.mbits);
  else v = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.mbits), static_cast<int>(e) - f.bias);
  return sign ? -v : v;
}

class DTypeExhaustive : public ::testing::TestWithParam<int> {};

TEST_P(DTypeExhaustive, DecodeMatchesDefinitionAndRoundTrips) {
  const Format f = formats()[GetParam()];
  for (std::uint32_t b = 0; b < (1u << f.bits); ++b) {
    const double ref = reference_value(f, b);
    const float x = f.decode(b);
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(x)) << f.name << " pattern " << b;
      ASSERT_TRUE(std::isnan(f.decode(f.encode(x)))) << f.name << " NaN must stay NaN";
      continue;
    }
    ASSERT_EQ(static_cast<double>(x), ref) << f.name << " pattern " << b;
    ASSERT_EQ(f.encode(x), b) << f.name << " round trip of pattern " << b << " (" << x << ")";
  }
}

TEST_P(DTypeExhaustive, MidpointsRoundToNearestEven) {
  const Format f = formats()[GetParam()];
  // Walk the positive finite values in order; between each pair of neighbours
  // the midpoint rounds to the one with an even mantissa, and points just
  // either side of it round to the nearer neighbour.
  const std::uint32_t sign_bit = 1u << (f.bits - 1);
  std::vector<std::uint32_t> finite;
  for (std::uint32_t b = 0; b < sign_bit; ++b)
    if (std::isfinite(reference_value(f, b))) finite.push_back(b);
  for (std::size_t i = 0; i + 1 < finite.size(); ++i) {
    const double lo = reference_value(f, finite[i]), hi = reference_value(f, finite[i + 1]);
    const double mid = (lo + hi) / 2;
    const float midf = static_cast<float>(mid);  // exact: the formats are narrower than float
    ASSERT_EQ(static_cast<double>(midf), mid);
    const std::uint32_t even = (finite[i] & 1) == 0 ? finite[i] : finite[i + 1];
    ASSERT_EQ(f.encode(midf), even) << f.name << " midpoint " << mid;
    ASSERT_EQ(f.encode(-midf), even | sign_bit) << f.name << " midpoint " << -mid;
    ASSERT_EQ(f.encode(std::nextafter(midf, 0.f)), finite[i]) << f.name << " below midpoint " << mid;
    ASSERT_EQ(f.encode(std::nextafter(midf, INFINITY)), finite[i + 1]) << f.name << " above midpoint " << mid;
  }
  // Beyond the largest finite value: IEEE-like formats go to infinity past the
  // rounding midpoint, fp8 saturates.
  const double max = reference_value(f, finite.back());
  const float big = static_cast<float>(max * 4);
  const std::uint32_t got = f.encode(big);
  if (f.bits == 16) ASSERT_TRUE(std::isinf(f.decode(got))) << f.name;
  else ASSERT_EQ(got, finite.back()) << f.name << " saturates";
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DTypeExhaustive, ::testing::Range(0, 4),
                         [](const auto& info) { return std::string(formats()[info.param].name); });

TEST(DType, ParseAndNames) {
  for (DType t : {DType::f16, DType::bf16, DType::f32, DType::fp8_e4m3, DType::fp8_e5m2, DType::int32}) {
    DType parsed;
    ASSERT_TRUE(parse_dtype(name_of(t), &parsed));
    EXPECT_EQ(parsed, t);
  }
  DType parsed;
  EXPECT_FALSE(parse_dtype("f64", &parsed));
  EXPECT_EQ(size_of(DType::bf16), 2u);
  EXPECT_EQ(size_of(DType::fp8_e5m2), 1u);
}

}  // namespace
}  // namespace kvserve
