// The arithmetic that fixes which token a sampler returns, shared by the CPU
// and CUDA backends so that both return the same token for the same inputs and
// (seed, offset). docs/sampling.md states the same definitions in prose.
//
// Every decision that depends on sums is made in integers: each token's weight
// becomes a 64-bit fixed-point number (fixed_weight), and integer sums do not
// depend on the order they are added in. Floating-point steps are single IEEE
// operations (no contraction into FMA unless written as fmaf), so they round
// the same way on both backends; CUDA code using them must not be built with
// fast math.
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>

#include "core/philox.hpp"

namespace kvserve::detail {

// ------------------------------------------------------------- rank order --

// An unsigned code with the order of the float values: a > b iff
// rank_code(a) > rank_code(b) (-0 sorts just below +0; NaN gets 0, the bottom,
// but NaN never has positive weight). Tokens are ranked by (code desc, index asc).
KVSERVE_HD std::uint32_t rank_code(float x) {
  if (x != x) return 0;
#if defined(__CUDA_ARCH__)
  const std::uint32_t bits = __float_as_uint(x);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
#endif
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// ----------------------------------------------------------- fixed point --

// Weights are multiples of 2^-40: a probability p in [0, 1] weighs floor(p * 2^40).
// Every p >= 2^-17 is represented exactly; p < 2^-40 (~9.1e-13) weighs 0 and is
// never drawn. A row of up to kMaxSamplingVocab weights sums below 2^63.
inline constexpr int kWeightFractionBits = 40;
inline constexpr std::uint64_t kWeightOne = std::uint64_t{1} << kWeightFractionBits;
inline constexpr int kMaxSamplingVocab = 1 << 22;

// NaN, zero and negative weigh 0; values above 1 are clamped to 1.
// Written without branches (fmaxf turns NaN into 0), so that GPU passes over
// a row stay free of divergent paths.
KVSERVE_HD std::uint64_t fixed_weight(float w) {
  return static_cast<std::uint64_t>(fminf(fmaxf(w, 0.f), 1.f) * 0x1p40f);  // exact product, truncated
}

// A fixed-point mass as a float probability (one rounding).
KVSERVE_HD float weight_to_float(std::uint64_t w) { return static_cast<float>(w) * 0x1p-40f; }

// ------------------------------------------------------------ logits -------

// e^x for x <= 0, within ~1 ulp, the same bits on every backend: x = k ln2 + r
// with |r| <= ln2 / 2, e^r by its Taylor polynomial to degree 7 (truncation
// error < 6e-9), then scaled by 2^k. Below -87 the result would leave the
// normal range; it is 0 (such weights are far below 2^-40 anyway).
KVSERVE_HD float exp_nonpositive(float x) {
  if (!(x >= -87.f)) return 0.f;  // also -inf and NaN
  const float k = rintf(x * 1.44269502f);            // round(x / ln 2)
  float r = fmaf(k, -0.693145751953125f, x);         // ln 2, high part (exact product)
  r = fmaf(k, -1.42860677e-06f, r);                  // ln 2, low part
  float p = 1.98412701e-04f;                         // 1/7!
  p = fmaf(p, r, 1.38888892e-03f);                   // 1/6!
  p = fmaf(p, r, 8.33333377e-03f);                   // 1/5!
  p = fmaf(p, r, 4.16666679e-02f);                   // 1/4!
  p = fmaf(p, r, 1.66666672e-01f);                   // 1/3!
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.f);
  p = fmaf(p, r, 1.f);
  const std::uint32_t scale_bits = static_cast<std::uint32_t>(static_cast<int>(k) + 127) << 23;
#if defined(__CUDA_ARCH__)
  const float scale = __uint_as_float(scale_bits);
#else
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
#endif
  return p * scale;
}

// The unnormalised softmax weight of logit x at temperature t > 0 in a row
// whose largest (non-NaN) logit is `max`: e^((x - max) / t), so the top token
// weighs exactly 1. When max is +inf, the +inf logits weigh 1 and the rest 0.
KVSERVE_HD float logit_weight(float x, float max, float temperature) {
  if (max == INFINITY) return x == INFINITY ? 1.f : 0.f;
  return exp_nonpositive((x - max) / temperature);
}

// ------------------------------------------------------ 128-bit products ---

// floor(a * b / 2^64).
KVSERVE_HD std::uint64_t mul_hi_u64(std::uint64_t a, std::uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  const std::uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

// ceil(f * total) computed exactly, for f in [0, 1]; f >= 1 gives total, f <= 0
// and NaN give 0. With f = m * 2^-s (m the 24-bit significand), it is
// ceil(m * total / 2^s) on the 128-bit product.
KVSERVE_HD std::uint64_t ceil_fraction(std::uint64_t total, float f) {
  if (!(f > 0.f)) return 0;
  if (f >= 1.f) return total;
#if defined(__CUDA_ARCH__)
  const std::uint32_t bits = __float_as_uint(f);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
#endif
  const std::uint32_t exponent = bits >> 23;  // f > 0: no sign bit
  const std::uint64_t m = exponent ? ((bits & 0x7fffffu) | 0x800000u) : (bits & 0x7fffffu);
  const int s = exponent ? 150 - static_cast<int>(exponent) : 149;  // f < 1: s >= 24
  const std::uint64_t hi = mul_hi_u64(m, total), lo = m * total;
  std::uint64_t quotient;
  bool remainder;
  if (s < 64) {
    quotient = (hi << (64 - s)) | (lo >> s);
    remainder = (lo & ((std::uint64_t{1} << s) - 1)) != 0;
  } else if (s < 128) {
    const int t = s - 64;
    quotient = t == 0 ? hi : hi >> t;
    remainder = lo != 0 || (t != 0 && (hi & ((std::uint64_t{1} << t) - 1)) != 0);
  } else {
    quotient = 0;
    remainder = hi != 0 || lo != 0;
  }
  return quotient + (remainder ? 1 : 0);
}

// --------------------------------------------------------- kept sets -------

// The tokens a filter keeps, as one rule for every filter: a token is kept
// when its weight is at least max(1, min_weight) and its rank code is above
// `code`, or equal to it and it is among the first `ties` tokens of that code
// in index order (ties broken by index). `mass` is the kept weight's sum.
struct KeptSet {
  std::uint32_t code = 0;
  std::uint64_t ties = ~std::uint64_t{0};
  std::uint64_t min_weight = 1;
  std::uint64_t mass = 0;
};

// Of two rank cuts (min_weight 1), the smaller kept set: their intersection.
KVSERVE_HD KeptSet higher_cut(const KeptSet& a, const KeptSet& b) {
  if (a.code != b.code) return a.code > b.code ? a : b;
  return a.ties <= b.ties ? a : b;
}

// ---------------------------------------------------- per-row parameters ---
// Per-row parameters cannot be validated on the device; out-of-range values
// have these meanings instead (docs/sampling.md).

// k <= 0 or k >= vocab: no top-k.
KVSERVE_HD std::uint64_t effective_top_k(std::int32_t k, std::int32_t vocab) {
  return (k <= 0 || k >= vocab) ? static_cast<std::uint64_t>(vocab) : static_cast<std::uint64_t>(k);
}

// The mass a top-p set must reach: ceil(p * total), at least 1 (p <= 0 keeps
// the top token only); p >= 1 and NaN keep everything.
KVSERVE_HD std::uint64_t top_p_target(float p, std::uint64_t total) {
  if (p != p) return total;
  const std::uint64_t t = ceil_fraction(total, p);
  return t > 0 ? t : (total > 0 ? 1 : 0);
}

// A temperature samples when > 0; 0, negative and NaN mean greedy.
KVSERVE_HD bool samples_at(float temperature) { return temperature > 0.f; }

}  // namespace kvserve::detail
