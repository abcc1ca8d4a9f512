// Element types and their host conversions.
//
// Every narrow type is stored as its raw bits; conversions to float are exact,
// conversions from float round to nearest, ties to even (RNE). The fp8 types
// saturate to their largest finite value instead of overflowing (the behaviour
// serving engines want when quantising a KV cache); NaN stays NaN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kvserve {

enum class DType : std::uint8_t { f16, bf16, f32, fp8_e4m3, fp8_e5m2, int32 };

constexpr std::size_t size_of(DType t) {
  switch (t) {
    case DType::f16:
    case DType::bf16: return 2;
    case DType::fp8_e4m3:
    case DType::fp8_e5m2: return 1;
    case DType::f32:
    case DType::int32: return 4;
  }
  return 0;
}

constexpr std::string_view name_of(DType t) {
  switch (t) {
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::f32: return "f32";
    case DType::fp8_e4m3: return "fp8_e4m3";
    case DType::fp8_e5m2: return "fp8_e5m2";
    case DType::int32: return "int32";
  }
  return "?";
}

// Parses the names printed by name_of; returns false for anything else.
bool parse_dtype(std::string_view name, DType* out);

constexpr bool is_fp8(DType t) { return t == DType::fp8_e4m3 || t == DType::fp8_e5m2; }
// Types attention accepts for queries and outputs (activations).
constexpr bool is_activation(DType t) {
  return t == DType::f16 || t == DType::bf16 || t == DType::f32;
}

// Raw-bit storage types, so that a std::vector<f16_t> is a buffer of halves.
struct f16_t { std::uint16_t bits; };
struct bf16_t { std::uint16_t bits; };
struct fp8_e4m3_t { std::uint8_t bits; };
struct fp8_e5m2_t { std::uint8_t bits; };

float f16_to_float(std::uint16_t bits);
std::uint16_t float_to_f16(float x);
float bf16_to_float(std::uint16_t bits);
std::uint16_t float_to_bf16(float x);
// e4m3 "fn": bias 7, no infinities, 0x7f/0xff are NaN, largest finite 448.
float fp8_e4m3_to_float(std::uint8_t bits);
std::uint8_t float_to_fp8_e4m3(float x);
// e5m2: IEEE-like, bias 15, infinities, largest finite 57344.
float fp8_e5m2_to_float(std::uint8_t bits);
std::uint8_t float_to_fp8_e5m2(float x);

// Element i of a buffer of type t, widened to float (int32 converts by value).
float load_as_float(DType t, const void* base, std::int64_t i);
// Stores x, rounded to t, at element i.
void store_from_float(DType t, void* base, std::int64_t i, float x);

}  // namespace kvserve
