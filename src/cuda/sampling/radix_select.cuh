// The rank cut of a row whose kept count (top-k) or weight (top-p) first
// reaches a target, found like the CPU backend finds it (docs/sampling.md,
// "Finding the kept set without sorting"): a radix selection over the rank
// codes (row_histograms.cuh), level 0 from the loading pass, each later level
// one shared-memory pass and one cluster barrier, and the few candidates of a
// small bucket weighed against each other instead of by more levels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/sampling_math.hpp"
#include "cuda/sampling/row_cluster.cuh"
#include "cuda/sampling/row_histograms.cuh"
#include "cuda/sampling/row_passes.cuh"
#include "cuda/sampling/row_shared.cuh"
#include "cuda/sampling/row_views.cuh"

namespace kvserve::detail::cuda {

// A rank cut (KeptSet with min_weight 1) and how many tokens share its code.
struct Cut {
  KeptSet set;
  std::uint64_t tied = 0;
};

// The cut that keeps the whole row (of weight `total`): no selection runs.
__device__ __forceinline__ Cut whole_row(std::uint64_t total) { return {KeptSet{0, ~std::uint64_t{0}, 1, total}, 0}; }

// What a cut reaches its target in: kept tokens (top-k) or kept weight (top-p).
enum class By { count, mass };

__device__ __forceinline__ u64 measure(const Aggregate& a, By by) { return by == By::count ? a.count : a.mass; }

// Walks the cluster's sums of `buckets` buckets in exchange slot `slot` from
// the top down and returns, to every thread, the bucket where s.above plus
// the running count (By::count) or weight (By::mass) first reaches `target`;
// its sums go to s.chosen, and s.above gains the buckets above it.
__device__ inline unsigned pick_bucket(int slot, int buckets, By by, std::uint64_t target, RowShared& s,
                                       const RowCluster& cl) {
  const int bucket = buckets - 1 - static_cast<int>(threadIdx.x);  // thread 0 takes the top bucket
  Aggregate mine{};
  if (bucket >= 0) mine = owner_slot(s, slot, bucket, buckets, cl)->get(bucket);
  Aggregate before;
  RowShared::ScanAggregate(s.temp.scan_aggregate).ExclusiveScan(mine, before, Aggregate{}, Plus{});
  const Aggregate running = s.above + before;
  __syncthreads();  // every thread has read s.above
  const u64 reached = measure(running, by);
  if (bucket >= 0 && reached < target && reached + measure(mine, by) >= target) {
    s.digit = static_cast<unsigned>(bucket);
    s.above = running;
    s.chosen = mine;
  }
  s.owned[(slot + 2) % 3].clear();
  __syncthreads();
  return s.digit;
}

// Level 0 as pick_bucket picks a level: the coarse bucket from the cluster's
// coarse sums, then the fine bucket among its kFinePerCoarse, summed over
// every block's level0.
template <bool Scaled>
__device__ inline unsigned pick_level0(int slot, By by, std::uint64_t target, RowShared& s, const RowCluster& cl) {
  const unsigned first_fine = pick_bucket(slot, kBuckets, by, target, s, cl) * kFinePerCoarse;
  if (threadIdx.x < kFinePerCoarse) {
    const int fine = static_cast<int>(first_fine + threadIdx.x);
    s.fine[threadIdx.x] =
        cluster_sum(cl, Aggregate{}, [&](int q) { return cl.at(&s.level0, q)->template sum<Scaled>(fine); });
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int f = kFinePerCoarse - 1; f >= 0; --f) {
      if (measure(s.above, by) + measure(s.fine[f], by) >= target) {
        s.digit = first_fine + f;
        s.chosen = s.fine[f];
        break;
      }
      s.above = s.above + s.fine[f];
    }
  }
  __syncthreads();
  return s.digit;
}

// The cut at `code` given the tokens ranked above it and at it: its ties are
// resolved arithmetically, as on the CPU (`ties = k - count above`, or
// `ceil((target - weight above) / W)`).
__device__ __forceinline__ Cut cut_at(unsigned code, const Aggregate& above, const Aggregate& at, By by,
                                      std::uint64_t target) {
  Cut cut;
  cut.tied = at.count;
  const std::uint64_t unit = at.mass / cut.tied;  // every tied token weighs the same
  const std::uint64_t ties = by == By::count ? target - above.count : (target - above.mass + unit - 1) / unit;
  cut.set = KeptSet{code, ties, 1, above.mass + ties * unit};
  return cut;
}

// Calls f(i, value) for (at least) every token of the slice in the chosen
// level-0 bucket: the tokens level 1 listed, or the whole slice when they
// did not fit the list (f filters).
template <class View, class F>
__device__ __forceinline__ void for_each_listed(const Slice<View>& slice, const RowShared& s, F&& f) {
  const int n = s.num_listed;
  if (n > kListCapacity) {
    for_each_token<false>(slice, f);
    return;
  }
  for (int k = static_cast<int>(threadIdx.x); k < n; k += kRowThreads) {
    const int i = s.listed[k];
    f(i, slice.value(i));
  }
}

// Whether the row's last find_cut listed every token of this block ranked at
// or above `code`.
__device__ __forceinline__ bool lists_all_from(unsigned code, const RowShared& s) {
  return s.num_listed <= kListCapacity && s.listed_above && code >> level_shift(0) >= s.listed_bucket;
}

// The rank cut find_cut(slice, by, target) would find, when it lies among
// few candidates: the tokens of positive weight whose code satisfies
// take(code), at most kMaxCutCandidates in the row, ranked below `above`
// (the count and weight of every other token ranked above any of them) and
// reaching `target` with them. visit(f) calls f(i, value) for (at least)
// every candidate of this block. Each block lists its candidates; every
// block copies all of them (the cluster's lists, then a barrier before any
// list is overwritten) and each thread weighs one against the rest: the
// candidate whose code's running count or weight from the top first reaches
// the target is the cut. Integer sums, so the result does not depend on the
// order candidates were gathered in. Used for a radix bucket that few tokens
// share, and for top-p within a top-k set (the top-k cut's survivors).
template <class View, class Visit, class Take>
__device__ Cut cut_among_candidates(const Slice<View>& slice, Visit&& visit, Take&& take, Aggregate above, By by,
                                    std::uint64_t target, RowShared& s, const RowCluster& cl) {
  if (threadIdx.x == 0) s.num_candidates = 0;
  __syncthreads();  // also: every thread has read `above` (it may be s.above)
  visit([&](int, float v) {
    const unsigned c = rank_code(v);
    if (!take(c)) return;
    const std::uint64_t w = slice.weight(v);
    if (w == 0) return;
    const int at = atomicAdd(&s.num_candidates, 1);
    if (at < kMaxCutCandidates) s.put_candidate(at, Candidate{c, w});
  });
  cl.sync();  // every block's candidates are listed
  const int t = static_cast<int>(threadIdx.x);
  Candidate mine{0, 0};
  int total = 0;
  for (int q = 0; q < cl.size; ++q) {
    const RowShared* other = cl.at(&s, q);
    const int n = min(other->num_candidates, kMaxCutCandidates);
    if (t >= total && t < total + n) mine = other->candidate(t - total);
    total += n;
  }
  cl.sync();  // every block has read every list: they may be overwritten
  if (t < total) s.put_candidate(t, mine);
  __syncthreads();
  if (t < total) {
    Aggregate higher = above, same{};
    bool first = true;  // the first gathered candidate of its code speaks for it
    for (int j = 0; j < total; ++j) {
      const Candidate other = s.candidate(j);
      if (other.code > mine.code) higher = higher + Aggregate{1, other.weight};
      if (other.code == mine.code) {
        same = same + Aggregate{1, other.weight};
        first = first && j >= t;
      }
    }
    if (first && measure(higher, by) < target && target <= measure(higher + same, by)) {
      s.digit = mine.code;
      s.above = higher;
      s.chosen = same;
    }
  }
  __syncthreads();
  const Cut cut = cut_at(s.digit, s.above, s.chosen, by, target);
  __syncthreads();  // s.chosen and s.above are read before anyone rewrites them
  return cut;
}

// The rank cut whose kept count or weight first reaches `target` (1 <= target
// < the row's count or weight), from level 0 as row_stats left it (a second
// cut of the row sums the blocks' level 0 again: its exchange slot has been
// reused). Levels 1 to 3 each take one shared-memory pass over the tokens of
// the chosen prefix, whose atomics go straight to the bucket's owner, and
// one cluster barrier; level 1's pass visits the whole slice and lists the
// tokens of the level-0 bucket, later ones visit the list. Once a bucket
// holds at most kMaxCutCandidates tokens, its tokens are gathered and the
// cut found among them (cut_among_candidates) instead of by more levels.
template <class View>
__device__ Cut find_cut(const Slice<View>& slice, By by, std::uint64_t target, RowShared& s, const RowCluster& cl) {
  int exchange = s.exchanges;
  if (exchange > 0) {
    push_level0<View::kScaled>(s, exchange % 3, cl);
    cl.sync();
  }
  if (threadIdx.x == 0) {
    s.above = Aggregate{};
    s.num_listed = slice.count <= kListableSlice ? 0 : kListCapacity + 1;
  }
  __syncthreads();
  unsigned prefix = pick_level0<View::kScaled>(exchange % 3, by, target, s, cl);
  ++exchange;
  // A count cut's tokens above its level-0 bucket are few: listed too when at
  // most kMaxCutCandidates in the row (k_then_p's second cut visits them).
  const bool list_above = by == By::count && s.above.count <= kMaxCutCandidates;
  if (threadIdx.x == 0) s.listed_bucket = prefix, s.listed_above = list_above;  // read after later barriers
  int level = 1;
  for (; level < kLevels; ++level, ++exchange) {
    // Counts are exact from level 1 on (level 0 counts only for count cuts),
    // and every block sees the same: all take the same way.
    if (level > 1 && s.chosen.count <= kMaxCutCandidates) break;
    const int shift = level_shift(level), buckets = 1 << level_bits(level), slot = exchange % 3;
    const auto in_prefix = [&](unsigned c) { return c >> (shift + level_bits(level)) == prefix; };
    const auto add = [&](unsigned c, float v) {
      const std::uint64_t w = slice.weight(v);
      const unsigned bucket = (c >> shift) & (buckets - 1);
      if (w > 0) owner_slot(s, slot, static_cast<int>(bucket), buckets, cl)->add(bucket, 1, w);
    };
    if (level == 1) {
      for_each_token<false>(slice, [&](int i, float v) {
        const unsigned c = rank_code(v);
        const unsigned top = c >> level_shift(0);
        if (top < prefix || (top > prefix && !list_above)) return;
        if (const int at = atomicAdd(&s.num_listed, 1); at < kListCapacity) s.listed[at] = static_cast<std::uint16_t>(i);
        if (top == prefix) add(c, v);
      });
    } else {
      for_each_listed(slice, s, [&](int, float v) {
        const unsigned c = rank_code(v);
        if (in_prefix(c)) add(c, v);
      });
    }
    cl.sync();  // also: this block's list is complete
    prefix = (prefix << level_bits(level)) | pick_bucket(slot, buckets, by, target, s, cl);
  }
  // The code is known in full, or few tokens share the prefix found so far.
  const auto in_bucket = [&](unsigned c) { return c >> level_shift(level - 1) == prefix; };
  const Cut cut = level == kLevels ? cut_at(prefix, s.above, s.chosen, by, target)
                                   : cut_among_candidates(slice, [&](auto&& f) { for_each_listed(slice, s, f); },
                                                          in_bucket, s.above, by, target, s, cl);
  if (threadIdx.x == 0) s.exchanges = exchange;
  __syncthreads();  // s.chosen and s.above are read before anyone rewrites them
  return cut;
}

}  // namespace kvserve::detail::cuda
