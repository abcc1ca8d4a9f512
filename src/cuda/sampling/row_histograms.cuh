// The histograms of the row kernels' radix selection (docs/sampling.md,
// "Finding the kept set without sorting"): a radix selection over the 32-bit
// rank codes in four levels of 10, 8, 7 and 7 bits. Level 0's histogram
// comes with the pass that loads the row; it is fine (1024 buckets: half
// binades) so that the tokens of a softmax row, which crowd a few binades,
// rarely collide on one shared-memory atomic, and it is exchanged coarse (256
// buckets of 4 fine ones) plus the 4 fine buckets of the chosen coarse one,
// to keep the distributed-shared-memory traffic small.
//
// Every bucket holds integer sums: they do not depend on the order threads,
// blocks or atomics add in, so the cluster arrives at the CPU backend's kept
// set and token.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/sampling_math.hpp"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

using u64 = unsigned long long;  // what CUB and the atomics take; 64 bits as std::uint64_t

// Radix levels over the rank code: bits [22, 32), [14, 22), [7, 14), [0, 7).
inline constexpr int kLevels = 4;
constexpr int level_bits(int level) { return level == 0 ? 10 : level == 1 ? 8 : 7; }
constexpr int level_shift(int level) { return level == 0 ? 22 : level == 1 ? 14 : level == 2 ? 7 : 0; }
inline constexpr int kLevel0Buckets = 1 << level_bits(0), kBuckets = 1 << level_bits(1);
// Level 0 is exchanged as kBuckets coarse buckets of kFinePerCoarse fine ones.
inline constexpr int kFinePerCoarse = kLevel0Buckets / kBuckets;
static_assert(level_shift(3) + level_bits(3) == level_shift(2) && level_shift(0) + level_bits(0) == 32);
static_assert(kBuckets <= kRowThreads && (kBuckets >> 1) % kMaxCluster == 0 && kFinePerCoarse <= kRowThreads);

// Running (count, weight) of buckets.
struct Aggregate {
  u64 count, mass;
};
__device__ __forceinline__ Aggregate operator+(const Aggregate& a, const Aggregate& b) {
  return {a.count + b.count, a.mass + b.mass};
}

// A histogram filled with shared-memory atomics that nobody waits on
// (non-returning 32-bit adds, local or to another block of the cluster): a
// count and a weight go in as the count and 10-bit pieces of the weight, so
// no 32-bit word can overflow for up to 2^22 tokens; the weight from bit 30 up
// (weights >= 2^-10 or sums, rare) goes to a 64-bit word. The words reached
// are exact sums in any order of arrival.
template <int N>
struct AtomicBuckets {
  u64 top[N];
  unsigned count[N], piece[3][N];
  __device__ void clear() {
    for (int i = threadIdx.x; i < N; i += kRowThreads) top[i] = 0, count[i] = piece[0][i] = piece[1][i] = piece[2][i] = 0;
  }
  __device__ void add(unsigned b, unsigned n, std::uint64_t w) {
    if (n) atomicAdd(&count[b], n);
#pragma unroll
    for (int k = 0; k < 3; ++k)
      if (const auto bits = static_cast<unsigned>(w >> (10 * k)) & 1023u) atomicAdd(&piece[k][b], bits);
    if (w >> 30) atomicAdd(&top[b], static_cast<u64>(w >> 30));
  }
  __device__ Aggregate get(int b) const {
    return {count[b], (top[b] << 30) + (static_cast<u64>(piece[2][b]) << 20) + (static_cast<u64>(piece[1][b]) << 10) +
                          piece[0][b]};
  }
};

// Level 0 of one block (1024 fine buckets: sign, exponent and one mantissa
// bit of the rank code). Counts are filled only when a count cut needs them.
// A scaled view's token (value v >= 2^-40, binade E) adds, in two 12-bit
// pieces, the integer u with W = u << unit_shift(E): its 24-bit significand
// m for v in [2^-17, 1), its weight m >> (110 - E) itself below (truncated
// as fixed_weight truncates), 1 for v >= 1 (weight 2^40). The bucket fixes E,
// so the sum is scaled once when read: two 32-bit adds per token, no 64-bit
// arithmetic. Other views add their weight as AtomicBuckets does.
struct Level0 : AtomicBuckets<kLevel0Buckets> {
  static __device__ __forceinline__ int binade(unsigned bits) { return static_cast<int>(bits >> 23); }
  static __device__ __forceinline__ int unit_shift(int e) {
    return e >= 127 ? kWeightFractionBits : e >= 110 ? e - 110 : 0;
  }
  // A token of a scaled view with value bits `bits` (a float >= 2^-40).
  __device__ __forceinline__ void add_scaled(unsigned bits, bool counted) {
    const int e = binade(bits);
    const unsigned m = (bits & 0x7fffffu) | 0x800000u;
    const unsigned u = e >= 127 ? 1u : e >= 110 ? m : m >> (110 - e);
    const unsigned b = (bits >> level_shift(0)) | (kLevel0Buckets >> 1);  // rank_code(v) >> level_shift(0)
    if (counted) atomicAdd(&count[b], 1u);
    atomicAdd(&piece[0][b], u & 4095u);
    atomicAdd(&piece[1][b], u >> 12);
  }
  template <bool Scaled>
  __device__ Aggregate sum(int b) const {
    if constexpr (!Scaled) return get(b);
    const int e = (b >> 1) & 0xff;  // the bucket's binade
    return {count[b], ((static_cast<u64>(piece[1][b]) << 12) + piece[0][b]) << unit_shift(e)};
  }
};

}  // namespace kvserve::detail::cuda
