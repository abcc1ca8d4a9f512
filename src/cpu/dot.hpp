// fp32 dot product over interleaved partial sums, for the CPU kernels' long
// reductions (norm rows, GDN state rows).
#pragma once

#include <array>

namespace kvserve::detail::cpu {

// sum_i a[i] * b[i] in fp32. kLanes independent partial sums (what a vector
// unit or a GPU warp keeps) let the compiler vectorise without reassociating,
// and keep the rounding error near sqrt(n / kLanes) ulps rather than n.
inline float dot(const float* a, const float* b, int n) {
  constexpr int kLanes = 16;
  std::array<float, kLanes> lane{};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) lane[l] += a[i] * b[i];
  float total = 0.f;
  for (float s : lane) total += s;
  return total;
}

}  // namespace kvserve::detail::cpu
