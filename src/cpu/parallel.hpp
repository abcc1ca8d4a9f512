// A minimal fork-join loop for the CPU backend: no pool (no global state),
// threads only when the work is large enough to pay for starting them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace kvserve::detail::cpu {

// a * b, or INT64_MAX where that overflows (costs are estimates: saturating
// is exact enough, and a size from a tensor's shape can be large).
inline std::int64_t saturating_product(std::int64_t a, std::int64_t b) {
  std::int64_t p = 0;
  return __builtin_mul_overflow(a, b, &p) ? INT64_MAX : p;
}

// Calls f(i) for i in [0, n), on up to hardware_concurrency threads when
// n * cost_per_item (a rough count of flops) exceeds ~1M; f must be thread-safe.
// Nothing runs (and no thread starts) for n <= 0.
template <class F>
void parallel_for(std::int64_t n, std::int64_t cost_per_item, F&& f) {
  if (n <= 0) return;
  const std::int64_t hw = std::max<std::int64_t>(1, std::thread::hardware_concurrency());
  const std::int64_t threads = saturating_product(n, cost_per_item) < (1 << 20) ? 1 : std::min(hw, n);
  if (threads <= 1) {
    for (std::int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::vector<std::jthread> pool;
  pool.reserve(threads);
  for (std::int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::int64_t i = t; i < n; i += threads) f(i);
    });
  }
}

}  // namespace kvserve::detail::cpu
