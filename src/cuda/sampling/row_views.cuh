// Row views and slices of the sampling family's row kernels: what a token's
// ranking value and weight are (probabilities, logits at a temperature, bare
// candidates, the speculative residual), and where a block reads its part of
// the row from: device memory through the view, or the resident copy in the
// kernel's dynamic shared memory that the loading pass stored. Every row
// pass (row_passes.cuh, radix_select.cuh, crossing_search.cuh) is written
// once, over a Slice of any view.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/sampling_math.hpp"

namespace kvserve::detail::cuda {

// A row view gives each token's ranking value, as read from device memory,
// and the weight of that value (the weight depends on the value alone, so
// tokens of one code weigh the same).

// A row of floats in device memory, read singly or as 16-byte vectors.
struct FloatRow {
  const float* x;
  __device__ float value(int j) const { return x[j]; }
  __device__ bool aligned(int j) const { return (reinterpret_cast<std::uintptr_t>(x + j) & 15u) == 0; }
  __device__ float4 value4(int j) const { return *reinterpret_cast<const float4*>(x + j); }
};

// A view whose weight is fixed_weight(value) (probabilities, residuals) is
// "scaled": every token of a level-0 bucket shares its binade, so level 0
// sums significands and scales the sum once (Level0).
struct ProbsRow : FloatRow {  // probabilities: ranked by p, weighing fixed_weight(p)
  static constexpr bool kScaled = true;
  __device__ std::uint64_t weight(float v) const { return fixed_weight(v); }
};

struct LogitsRow : FloatRow {  // logits at temperature t > 0 in a row whose largest logit is max
  static constexpr bool kScaled = false;
  float max, temperature;
  __device__ std::uint64_t weight(float v) const { return fixed_weight(logit_weight(v, max, temperature)); }
};

struct CandidateRow : FloatRow {  // logits as bare candidates (greedy, top-k mask): weight 1 above -inf
  static constexpr bool kScaled = false;
  __device__ std::uint64_t weight(float v) const { return v > -INFINITY ? 1 : 0; }
};

struct ResidualRow {  // max(0, target - draft) of speculative sampling, ranked by itself
  static constexpr bool kScaled = true;
  FloatRow target, draft;
  static __device__ float residual(float t, float d) {
    const float r = t - d;
    return 0.f < r ? r : 0.f;  // std::max(0.f, r): NaN becomes 0
  }
  __device__ float value(int j) const { return residual(target.value(j), draft.value(j)); }
  __device__ bool aligned(int j) const { return target.aligned(j) && draft.aligned(j); }
  __device__ float4 value4(int j) const {
    const float4 t = target.value4(j), d = draft.value4(j);
    return {residual(t.x, d.x), residual(t.y, d.y), residual(t.z, d.z), residual(t.w, d.w)};
  }
  __device__ std::uint64_t weight(float v) const { return fixed_weight(v); }
};

// The kernel's dynamic shared memory, where resident slices live (16-byte aligned).
__device__ __forceinline__ float* resident_storage() {
  extern __shared__ float4 dynamic_shared[];
  return reinterpret_cast<float*>(dynamic_shared);
}

// This block's part of a row: tokens [begin, begin + count). A resident
// slice is held in resident_storage() once the loading pass has stored it
// there, and read back with shared-memory loads; any other slice is read
// from its view (device memory) on every pass.
template <class View>
struct Slice {
  static constexpr bool kPlain = std::is_base_of_v<FloatRow, View>;  // one row read, not a residual's two
  View view;
  int begin = 0, count = 0;
  bool resident = false;
  __device__ float value(int i) const { return resident ? resident_storage()[i] : view.value(begin + i); }
  __device__ std::uint64_t weight(float v) const { return view.weight(v); }
};

// Calls pass(read), read(i) giving token i of the slice: two copies of the
// pass, one reading shared memory, so that no token pays a test of where
// its slice lives, and the resident one's loads are shared-memory loads (a
// generic pointer's would be generic loads).
template <class View, class Pass>
__device__ __forceinline__ void with_reader(const Slice<View>& slice, Pass&& pass) {
  if (slice.resident) pass([](int i) { return resident_storage()[i]; });
  else pass([&](int i) { return slice.view.value(slice.begin + i); });
}

}  // namespace kvserve::detail::cuda
