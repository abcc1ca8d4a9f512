#include "kvserve/dtype.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace kvserve {
namespace {

std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Minifloat layout with `mbits` mantissa bits and exponent bias `bias`.
struct MiniFloat {
  int ebits, mbits, bias;
  bool ieee_specials;  // all-ones exponent means inf/NaN (e5m2); else only S.1111.111 is NaN (e4m3fn)
};
constexpr MiniFloat kE4M3{4, 3, 7, false};
constexpr MiniFloat kE5M2{5, 2, 15, true};

float decode(const MiniFloat& f, std::uint32_t code) {
  const std::uint32_t sign = code >> (f.ebits + f.mbits);
  const std::uint32_t exp = (code >> f.mbits) & ((1u << f.ebits) - 1);
  const std::uint32_t man = code & ((1u << f.mbits) - 1);
  const std::uint32_t exp_max = (1u << f.ebits) - 1;
  float mag;
  if (f.ieee_specials && exp == exp_max) {
    mag = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else if (!f.ieee_specials && exp == exp_max && man == (1u << f.mbits) - 1) {
    mag = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {  // subnormal: man * 2^(1 - bias - mbits)
    mag = std::ldexp(static_cast<float>(man), 1 - f.bias - f.mbits);
  } else {
    mag = std::ldexp(1.0f + static_cast<float>(man) / static_cast<float>(1u << f.mbits),
                     static_cast<int>(exp) - f.bias);
  }
  return sign ? -mag : mag;
}

// Round to nearest even; saturate finite overflow to the largest finite value.
std::uint32_t encode(const MiniFloat& f, float x) {
  const int width = 1 + f.ebits + f.mbits;
  const std::uint32_t sign = std::signbit(x) ? 1u << (width - 1) : 0u;
  const std::uint32_t exp_max = (1u << f.ebits) - 1;
  const std::uint32_t man_all = (1u << f.mbits) - 1;
  if (std::isnan(x)) return sign | (exp_max << f.mbits) | man_all;  // a NaN in both formats
  // Largest finite code: e5m2 S.11110.11, e4m3fn S.1111.110.
  const std::uint32_t max_code = f.ieee_specials ? ((exp_max - 1) << f.mbits) | man_all
                                                 : (exp_max << f.mbits) | (man_all - 1);
  const float a = std::fabs(x);
  if (std::isinf(x) && f.ieee_specials) return sign | (exp_max << f.mbits);
  if (a >= decode(f, max_code)) return sign | max_code;
  const float min_normal = std::ldexp(1.0f, 1 - f.bias);
  if (a < min_normal) {  // subnormal; a result of 2^mbits is the smallest normal's code
    const float q = std::nearbyint(std::ldexp(a, f.bias - 1 + f.mbits));
    return sign | static_cast<std::uint32_t>(q);
  }
  int e2;
  std::frexp(a, &e2);  // a = frac * 2^e2, frac in [0.5, 1)
  int e = e2 - 1;
  float q = std::nearbyint((std::ldexp(a, -e) - 1.0f) * static_cast<float>(1u << f.mbits));
  if (q == static_cast<float>(1u << f.mbits)) {
    q = 0;
    ++e;
  }
  const std::uint32_t code = (static_cast<std::uint32_t>(e + f.bias) << f.mbits) | static_cast<std::uint32_t>(q);
  return sign | (code > max_code ? max_code : code);
}

}  // namespace

bool parse_dtype(std::string_view name, DType* out) {
  for (DType t : {DType::f16, DType::bf16, DType::f32, DType::fp8_e4m3, DType::fp8_e5m2, DType::int32}) {
    if (name == name_of(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1f;
  const std::uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return float_of(sign | 0x7f800000 | (man << 13));  // inf / NaN
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    const float mag = std::ldexp(static_cast<float>(man), -24);
    return sign ? -mag : mag;
  }
  return float_of(sign | ((exp + 112) << 23) | (man << 13));
}

std::uint16_t float_to_f16(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint32_t sign = (u >> 16) & 0x8000;
  const std::uint32_t a = u & 0x7fffffff;
  if (a > 0x7f800000) return static_cast<std::uint16_t>(sign | 0x7e00);  // NaN
  if (a >= 0x477ff000) return static_cast<std::uint16_t>(sign | 0x7c00);  // >= 65520: inf
  if (a < 0x38800000) {  // below 2^-14: subnormal, in units of 2^-24 (exact scaling, RNE)
    const float q = std::nearbyint(std::ldexp(float_of(a), 24));
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(q));
  }
  // Normal: add half an ulp minus one, plus the kept lsb, so ties go to even.
  const std::uint32_t rounded = a + 0xfff + ((a >> 13) & 1) - (112u << 23);
  return static_cast<std::uint16_t>(sign | (rounded >> 13));
}

float bf16_to_float(std::uint16_t b) { return float_of(static_cast<std::uint32_t>(b) << 16); }

std::uint16_t float_to_bf16(float x) {
  const std::uint32_t u = bits_of(x);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<std::uint16_t>((u >> 16) | 0x40);  // quiet NaN
  return static_cast<std::uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

float fp8_e4m3_to_float(std::uint8_t b) { return decode(kE4M3, b); }
std::uint8_t float_to_fp8_e4m3(float x) { return static_cast<std::uint8_t>(encode(kE4M3, x)); }
float fp8_e5m2_to_float(std::uint8_t b) { return decode(kE5M2, b); }
std::uint8_t float_to_fp8_e5m2(float x) { return static_cast<std::uint8_t>(encode(kE5M2, x)); }

float load_as_float(DType t, const void* base, std::int64_t i) {
  switch (t) {
    case DType::f16: return f16_to_float(static_cast<const std::uint16_t*>(base)[i]);
    case DType::bf16: return bf16_to_float(static_cast<const std::uint16_t*>(base)[i]);
    case DType::f32: return static_cast<const float*>(base)[i];
    case DType::fp8_e4m3: return fp8_e4m3_to_float(static_cast<const std::uint8_t*>(base)[i]);
    case DType::fp8_e5m2: return fp8_e5m2_to_float(static_cast<const std::uint8_t*>(base)[i]);
    case DType::int32: return static_cast<float>(static_cast<const std::int32_t*>(base)[i]);
  }
  return 0.f;
}

void store_from_float(DType t, void* base, std::int64_t i, float x) {
  switch (t) {
    case DType::f16: static_cast<std::uint16_t*>(base)[i] = float_to_f16(x); break;
    case DType::bf16: static_cast<std::uint16_t*>(base)[i] = float_to_bf16(x); break;
    case DType::f32: static_cast<float*>(base)[i] = x; break;
    case DType::fp8_e4m3: static_cast<std::uint8_t*>(base)[i] = float_to_fp8_e4m3(x); break;
    case DType::fp8_e5m2: static_cast<std::uint8_t*>(base)[i] = float_to_fp8_e5m2(x); break;
    case DType::int32: static_cast<std::int32_t*>(base)[i] = static_cast<std::int32_t>(x); break;
  }
}

}  // namespace kvserve
