// The passes of a row kernel's block over its slice: the one pass that reads
// the row from device memory (storing a resident slice in shared memory, so
// every later pass reads shared memory), the row's statistics and level 0 of
// the radix selection gathered in that pass, and the largest logit.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/sampling_math.hpp"
#include "cuda/sampling/row_cluster.cuh"
#include "cuda/sampling/row_shared.cuh"
#include "cuda/sampling/row_views.cuh"

namespace kvserve::detail::cuda {

// The pass that reads the row from device memory: 16-byte loads, kLoadVectors
// per thread in flight (48 KB per block), or kLoadItems 4-byte loads when the
// row is not 16-byte aligned.
inline constexpr int kLoadVectors = 8, kLoadItems = 16;
// Shared-memory passes: loads issued before their first use, as 16-byte
// vectors (16 tokens per thread) from a resident slice, else singly.
inline constexpr int kSharedVectors = 4, kItems = 8;

// Calls f(i, value) for every token of the slice (each thread its own tokens,
// no order). With `Load`, values come from the view (device memory, 16-byte
// loads where the row allows) and a resident slice stores them; without,
// from the slice (16-byte shared-memory loads when it is resident).
template <bool Load, class View, class F>
__device__ __forceinline__ void for_each_token(const Slice<View>& slice, F&& f) {
  const int tid = static_cast<int>(threadIdx.x);
  float4* const resident = reinterpret_cast<float4*>(resident_storage());
  int first_single = 0;  // tokens before it went as vectors
  if (Load ? slice.view.aligned(slice.begin) : slice.resident) {
    // A residual reads two rows: half the vectors each.
    constexpr int in_flight = !Load ? kSharedVectors : Slice<View>::kPlain ? kLoadVectors : kLoadVectors / 2;
    const int vectors = slice.count / 4;
    for (int first = 0; first < vectors; first += kRowThreads * in_flight) {
      float4 v[in_flight];
#pragma unroll
      for (int k = 0; k < in_flight; ++k) {
        const int q = first + k * kRowThreads + tid;
        if constexpr (Load) v[k] = q < vectors ? slice.view.value4(slice.begin + 4 * q) : float4{0.f, 0.f, 0.f, 0.f};
        else v[k] = q < vectors ? resident[q] : float4{0.f, 0.f, 0.f, 0.f};
      }
#pragma unroll
      for (int k = 0; k < in_flight; ++k) {
        const int q = first + k * kRowThreads + tid;
        if (q >= vectors) continue;
        if (Load && slice.resident) resident[q] = v[k];
        f(4 * q, v[k].x), f(4 * q + 1, v[k].y), f(4 * q + 2, v[k].z), f(4 * q + 3, v[k].w);
      }
    }
    first_single = 4 * vectors;
  }
  constexpr int items = Load ? kLoadItems : kItems;
  const auto singly = [&](auto read) {
    for (int first = first_single; first < slice.count; first += kRowThreads * items) {
      float v[items];
#pragma unroll
      for (int k = 0; k < items; ++k) {
        const int i = first + k * kRowThreads + tid;
        v[k] = i < slice.count ? read(i) : 0.f;
      }
#pragma unroll
      for (int k = 0; k < items; ++k) {
        const int i = first + k * kRowThreads + tid;
        if (i >= slice.count) continue;
        if (Load && slice.resident) resident_storage()[i] = v[k];
        f(i, v[k]);
      }
    }
  };
  if constexpr (Load) singly([&](int i) { return slice.view.value(slice.begin + i); });
  else with_reader(slice, singly);
}

// What level 0 of the radix selection records in the loading pass.
enum class Histogram { none, mass, count_and_mass };

// Reads the slice (with `Load`, from device memory: the loading pass) and
// learns the row's largest weight (with `Best`: finds its top token
// instead), each block its slice, then the cluster's through the mailboxes.
// With a histogram, also fills level 0 of the radix selection (each block's
// fine buckets in level0, the cluster's coarse sums in exchange slot 0), and
// the row's total weight and (counted) number of tokens of positive weight
// come from it: no per-token 64-bit sums.
template <bool Load, bool Best, class View>
__device__ RowStats row_stats(const Slice<View>& slice, Histogram histogram, RowShared& s, const RowCluster& cl) {
  const bool filled = histogram != Histogram::none, counted = histogram == Histogram::count_and_mass;
  if (filled) {
    s.level0.clear();
    cl.arrive();  // this block's exchange slots are clear (init_shared)
    __syncthreads();
  }
  RowStats mine = empty_row();
  float max = -INFINITY;
  for_each_token<Load>(slice, [&](int i, float v) {
    if constexpr (Best) {
      if (slice.weight(v) == 0) return;
      const unsigned c = rank_code(v);
      const int j = slice.begin + i;
      if (ranks_above(c, j, mine.best_code, mine.best_index)) mine.best_code = c, mine.best_index = j;
    } else {
      max = fmaxf(max, v);
      if (!filled) return;
      if constexpr (View::kScaled) {
        if (v >= 0x1p-40f) s.level0.add_scaled(__float_as_uint(v), counted);  // fixed_weight(v) > 0
      } else if (const std::uint64_t w = slice.weight(v)) {
        s.level0.add(rank_code(v) >> level_shift(0), counted ? 1 : 0, w);
      }
    }
  });
  if constexpr (!Best) {
    mine.max_weight = slice.weight(max);  // weights grow with values
    if (filled) {
      __syncthreads();  // level 0 complete
      cl.wait();        // every owner's slot clear
      const Aggregate folded = push_level0<View::kScaled>(s, 0, cl);
      mine.total = folded.mass;
      mine.positive = folded.count;
    }
  }
  const RowStats block = RowShared::ReduceStats(s.temp.reduce_stats).Reduce(mine, CombineStats{});
  if (threadIdx.x == 0) s.box.stats = block;
  cl.sync();  // every block's stats and exchange 0 (level-0 coarse sums) complete
  if (threadIdx.x == 0)
    s.row = cluster_sum(cl, empty_row(), [&](int q) { return cl.at(&s.box, q)->stats; }, CombineStats{});
  // A greedy row ends here: no block may leave while another reads its
  // mailbox. Every other caller meets a cluster barrier before it ends.
  if constexpr (Best) cl.sync();
  else __syncthreads();
  return s.row;
}

// The largest logit (NaN never wins; -inf when there is none), loading the slice.
template <class View>
__device__ float row_max(const Slice<View>& slice, RowShared& s, const RowCluster& cl) {
  float mine = -INFINITY;
  for_each_token<true>(slice, [&](int, float v) { mine = fmaxf(mine, v); });
  const float block = RowShared::ReduceFloat(s.temp.reduce_float).Reduce(mine, [](float a, float b) { return fmaxf(a, b); });
  if (threadIdx.x == 0) s.box.max = block;
  cl.sync();
  if (threadIdx.x == 0)
    s.max = cluster_sum(cl, -INFINITY, [&](int q) { return cl.at(&s.box, q)->max; },
                        [](float a, float b) { return fmaxf(a, b); });
  __syncthreads();
  return s.max;
}

}  // namespace kvserve::detail::cuda
