// The crossing search of the row kernels: the first token, in index order,
// where a running sum over the row exceeds a target. It resolves a cut's
// ties (the kept set as a per-token predicate, Kept) and draws the token
// (the inverse-CDF draw of docs/sampling.md).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "core/sampling_math.hpp"
#include "cuda/sampling/radix_select.cuh"
#include "cuda/sampling/row_cluster.cuh"
#include "cuda/sampling/row_shared.cuh"
#include "cuda/sampling/row_views.cuh"

namespace kvserve::detail::cuda {

// The kept set as a per-token predicate: weight >= min_weight and code above
// `code`, or equal to it at a row index <= last_tie (the boundary's ties,
// taken in index order).
struct Kept {
  unsigned code = 0;
  int last_tie = INT_MAX;
  std::uint64_t min_weight = 1;
  __device__ bool keeps(int j, unsigned c, std::uint64_t w) const {  // bitwise: no branches
    return (w >= min_weight) & ((c > code) | ((c == code) & (j <= last_tie)));
  }
  // The weight of token j (value v) if kept, else 0; tokens ranked below
  // `code` are dropped before their weight is computed.
  // A scaled view's weight is cheap: computed for every token, without a branch.
  template <class Slice>
  __device__ std::uint64_t kept_weight(const Slice& slice, int j, float v) const {
    const unsigned c = rank_code(v);
    if constexpr (!std::remove_cvref_t<decltype(slice.view)>::kScaled)
      if (c < code) return 0;
    const std::uint64_t w = slice.weight(v);
    return keeps(j, c, w) ? w : 0;
  }
};

// A crossing search's part in one thread: a contiguous run [first, last) of
// the block's slice (odd length: conflict-free shared-memory reads), its sum
// of value(i, v), the sum of the block's runs before it and of all of them.
struct Run {
  int first, last;
  u64 mine, before, block;
};

// Sums every thread's run and places the runs (one block scan).
template <class View, class Value>
__device__ Run sum_runs(const Slice<View>& slice, Value&& value, RowShared& s) {
  const int run = ((slice.count + kRowThreads - 1) / kRowThreads) | 1;
  Run r;
  r.first = static_cast<int>(threadIdx.x) * run;
  r.last = r.first + run < slice.count ? r.first + run : slice.count;
  r.mine = 0;
  with_reader(slice, [&](auto read) {
#pragma unroll 4
    for (int i = r.first; i < r.last; ++i) r.mine += value(i, read(i));
  });
  RowShared::ScanU64(s.temp.scan_u64).ExclusiveSum(r.mine, r.before, r.block);
  return r;
}

// Publishes this block's sum (no token found yet) and, after a cluster
// barrier, places it (every thread gets the placement).
template <class TargetOf>
__device__ Placement place_block(u64 block_sum, TargetOf&& target_of, RowShared& s, const RowCluster& cl) {
  if (threadIdx.x == 0) s.box.slice_sum = block_sum, s.box.found = -1;
  cl.sync();
  if (threadIdx.x == 0) {
    s.placed.before = cluster_sum(cl, u64{0}, [&](int q) { return q < cl.rank ? cl.at(&s.box, q)->slice_sum : 0; });
    s.placed.target = target_of(cluster_sum(cl, u64{0}, [&](int q) { return cl.at(&s.box, q)->slice_sum; }));
  }
  __syncthreads();
  return s.placed;
}

// The thread whose run holds the target walks it and gives the row index to
// every block's mailbox.
template <class View, class Value>
__device__ void publish_crossing(const Slice<View>& slice, Value&& value, const Run& r, const Placement& at,
                                 RowShared& s, const RowCluster& cl) {
  const u64 target = at.target;
  u64 running = at.before + r.before;
  if (running <= target && target < running + r.mine) {
    for (int i = r.first; i < r.last; ++i) {
      const u64 x = value(i, slice.value(i));
      if (running + x > target) {
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q)
          if (q < cl.size) cl.at(&s.box, q)->found = slice.begin + i;
        break;
      }
      running += x;
    }
  }
}

// The first row index, in index order, where the running sum of
// value(i, v) over the cluster's slices exceeds target_of(total), total being
// the whole row's sum; -1 if it never does. Each thread sums its run, one
// block scan places the runs, the blocks' sums go through the mailboxes, and
// the one thread whose run holds the crossing walks it. Every block returns
// the index.
template <class View, class Value, class TargetOf>
__device__ int find_crossing(const Slice<View>& slice, Value&& value, TargetOf&& target_of, RowShared& s,
                             const RowCluster& cl) {
  const Run r = sum_runs(slice, value, s);
  const Placement at = place_block(r.block, target_of, s, cl);
  publish_crossing(slice, value, r, at, s, cl);
  cl.sync();
  return s.box.found;
}

// The kept set of a cut as a per-token predicate: when only some of the
// tokens at the cut's code are kept, the last kept one is the ties-th of
// them in index order.
template <class View>
__device__ Kept resolve(const Slice<View>& slice, const Cut& cut, RowShared& s, const RowCluster& cl) {
  Kept k{cut.set.code, INT_MAX, 1};
  if (cut.set.ties >= cut.tied) return k;
  k.last_tie = find_crossing(
      slice, [&](int, float v) -> u64 { return rank_code(v) == cut.set.code && slice.weight(v) > 0 ? 1 : 0; },
      [&](u64) -> u64 { return cut.set.ties - 1; }, s, cl);
  return k;
}

// Whether this block's kept weight can be read off its level-0 histogram and
// list: the kept set is a rank cut (min_weight 1) whose code lies in the
// level-0 bucket that the row's last find_cut listed in full, or whose kept
// tokens are all listed.
__device__ __forceinline__ bool listed_covers(const Kept& kept, const RowShared& s) {
  return kept.min_weight == 1 && s.num_listed <= kListCapacity &&
         (kept.code >> level_shift(0) == s.listed_bucket || lists_all_from(kept.code, s));
}

// The inverse-CDF draw of docs/sampling.md: t = floor(bits * M / 2^64) with M
// the kept weight, then the first kept token whose running kept weight
// exceeds t; -1 when nothing is kept. When listed_covers(), each block's
// kept weight is exact without a pass over its slice (its level-0 buckets
// above the cut's, unless they are listed, plus its listed tokens the cut
// keeps), and only the block holding t searches its slice; otherwise every
// block sums its slice (find_crossing).
template <class View>
__device__ int draw(const Slice<View>& slice, const Kept& kept, std::uint64_t bits, RowShared& s,
                    const RowCluster& cl) {
  const auto value = [&](int i, float v) -> u64 { return kept.kept_weight(slice, slice.begin + i, v); };
  const auto target_of = [&](u64 mass) -> u64 { return mass == 0 ? ~u64{0} : mul_hi_u64(bits, mass); };
  if (!listed_covers(kept, s)) return find_crossing(slice, value, target_of, s, cl);
  u64 mine = 0;
  if (!lists_all_from(kept.code, s))
    for (int b = static_cast<int>(s.listed_bucket) + 1 + static_cast<int>(threadIdx.x); b < kLevel0Buckets;
         b += kRowThreads)
      mine += s.level0.template sum<View::kScaled>(b).mass;
  for (int k = static_cast<int>(threadIdx.x); k < s.num_listed; k += kRowThreads) {
    const int i = s.listed[k];
    mine += value(i, slice.value(i));
  }
  u64 before, block_sum;
  RowShared::ScanU64(s.temp.scan_u64).ExclusiveSum(mine, before, block_sum);
  const Placement at = place_block(block_sum, target_of, s, cl);
  if (at.before <= at.target && at.target - at.before < s.box.slice_sum) {  // this block holds t
    publish_crossing(slice, value, sum_runs(slice, value, s), at, s, cl);
  }
  cl.sync();
  return s.box.found;
}

}  // namespace kvserve::detail::cuda
