// Device building blocks of the sampling family: one thread-block cluster
// walks one row. Each block of the cluster owns a contiguous slice of the row
// and, when it fits, keeps that slice in shared memory after the one pass that
// reads it from device memory, so every later pass (radix levels, tie
// resolution, the draw, a renorm's rewrite) reads shared memory. Blocks
// exchange their partial results through distributed shared memory.
//
// Every decision is made in the integer arithmetic of core/sampling_math.hpp:
// integer sums do not depend on the order threads, blocks or atomics add in,
// so the cluster arrives at the CPU backend's kept set and token.
//
// A kept set is found like the CPU backend finds it (docs/sampling.md,
// "Finding the kept set without sorting"): a radix selection over the 32-bit
// rank codes, here in four levels of 11, 7, 7 and 7 bits. Level 0's histogram
// comes with the pass that loads the row; it is fine (2048 buckets) so that
// the tokens of a softmax row, which crowd a few binades, rarely collide on
// one shared-memory atomic, and it is exchanged coarse (256 buckets of 8 fine
// ones) plus the 8 fine buckets of the chosen coarse one, to keep the
// distributed-shared-memory traffic small.
#pragma once

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <climits>
#include <cstddef>
#include <cstdint>

#include "core/sampling_math.hpp"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

namespace cg = cooperative_groups;
using u64 = unsigned long long;  // what CUB and the atomics take; 64 bits as std::uint64_t

// Independent loads per thread in the pass that reads the row from device
// memory: 16 KB in flight per block.
inline constexpr int kLoadItems = 16;
// Shared-memory passes: loads issued before their first use.
inline constexpr int kItems = 8;

// Radix levels over the rank code: bits [21, 32), [14, 21), [7, 14), [0, 7).
inline constexpr int kLevel0Bits = 11, kLevelBits = 7, kCoarseBits = 8;
inline constexpr int kLevel0Buckets = 1 << kLevel0Bits, kLevelBuckets = 1 << kLevelBits;
inline constexpr int kCoarseBuckets = 1 << kCoarseBits, kFinePerCoarse = kLevel0Buckets / kCoarseBuckets;
constexpr int level_shift(int level) { return 32 - kLevel0Bits - level * kLevelBits; }
static_assert(level_shift(3) == 0 && kCoarseBuckets <= kRowThreads && kLevelBuckets % kMaxCluster == 0);

// ----------------------------------------------------------- row views -----
// A row view gives each token's ranking value, as read from device memory,
// and the weight of that value (the weight depends on the value alone, so
// tokens of one code weigh the same).

struct ProbsRow {  // probabilities: ranked by p, weighing fixed_weight(p)
  const float* p;
  __device__ float value(int j) const { return p[j]; }
  __device__ std::uint64_t weight(float v) const { return fixed_weight(v); }
};

struct LogitsRow {  // logits at temperature t > 0 in a row whose largest logit is max
  const float* x;
  float max, temperature;
  __device__ float value(int j) const { return x[j]; }
  __device__ std::uint64_t weight(float v) const { return fixed_weight(logit_weight(v, max, temperature)); }
};

struct CandidateRow {  // logits as bare candidates (greedy, top-k mask): weight 1 above -inf
  const float* x;
  __device__ float value(int j) const { return x[j]; }
  __device__ std::uint64_t weight(float v) const { return v > -INFINITY ? 1 : 0; }
};

struct ResidualRow {  // max(0, target - draft) of speculative sampling, ranked by itself
  const float* target;
  const float* draft;
  __device__ float value(int j) const {
    const float r = target[j] - draft[j];
    return 0.f < r ? r : 0.f;  // std::max(0.f, r): NaN becomes 0
  }
  __device__ std::uint64_t weight(float v) const { return fixed_weight(v); }
};

// This block's part of a row: tokens [begin, begin + count). Once loaded, a
// resident slice reads its values from shared memory (`stored`), a streamed
// one (stored == nullptr) from the view again.
template <class View>
struct Slice {
  View view;
  int begin = 0, count = 0;
  float* stored = nullptr;
  __device__ float value(int i) const { return stored ? stored[i] : view.value(begin + i); }
  __device__ std::uint64_t weight(float v) const { return view.weight(v); }
};

// ------------------------------------------------------------ histograms ---

// Running (count, weight) of buckets.
struct Aggregate {
  u64 count, mass;
};
struct AddAggregates {
  __device__ Aggregate operator()(const Aggregate& a, const Aggregate& b) const {
    return {a.count + b.count, a.mass + b.mass};
  }
};

// Counts and weights per bucket in 32-bit words, so that the shared-memory
// atomics stay 32-bit: a weight's low word is added with a returning atomic
// and its carry goes to the high word with the weight's high bits. The words
// reached are the exact sums whatever the order of the adds.
template <int N>
struct Buckets {
  unsigned count[N], lo[N], hi[N];
  __device__ void clear() {
    for (int i = threadIdx.x; i < N; i += kRowThreads) count[i] = 0, lo[i] = 0, hi[i] = 0;
  }
  __device__ void add(unsigned b, std::uint64_t w) {
    atomicAdd(&count[b], 1u);
    const auto low = static_cast<unsigned>(w);
    const unsigned before = atomicAdd(&lo[b], low);
    const unsigned high = static_cast<unsigned>(w >> 32) + (before + low < before ? 1u : 0u);
    if (high) atomicAdd(&hi[b], high);
  }
  __device__ Aggregate get(int b) const { return {count[b], static_cast<u64>(hi[b]) << 32 | lo[b]}; }
  __device__ void set(int b, const Aggregate& a) {
    count[b] = static_cast<unsigned>(a.count);
    lo[b] = static_cast<unsigned>(a.mass);
    hi[b] = static_cast<unsigned>(a.mass >> 32);
  }
};

// ------------------------------------------------------------ reductions ---

// What the loading pass learns about a row. (No member initialisers: the
// type lives in shared memory, which cannot be constructed.)
struct RowStats {
  u64 total;       // sum of weights
  u64 max_weight;
  u64 positive;    // tokens of positive weight
  unsigned best_code;
  int best_index;  // highest-ranked token of positive weight (lowest index first); -1: none
};
__device__ __forceinline__ RowStats empty_row() { return {0, 0, 0, 0, -1}; }

__device__ __forceinline__ bool ranks_above(unsigned code, int index, unsigned than_code, int than_index) {
  return than_index < 0 || (index >= 0 && (code > than_code || (code == than_code && index < than_index)));
}

struct CombineStats {
  __device__ RowStats operator()(const RowStats& a, const RowStats& b) const {
    RowStats r;
    r.total = a.total + b.total;
    r.max_weight = a.max_weight > b.max_weight ? a.max_weight : b.max_weight;
    r.positive = a.positive + b.positive;
    const bool take_b = ranks_above(b.best_code, b.best_index, a.best_code, a.best_index);
    r.best_code = take_b ? b.best_code : a.best_code;
    r.best_index = take_b ? b.best_index : a.best_index;
    return r;
  }
};

// The kept set as a per-token predicate: weight >= min_weight and code above
// `code`, or equal to it at a row index <= last_tie (the boundary's ties,
// taken in index order).
struct Kept {
  unsigned code = 0;
  int last_tie = INT_MAX;
  std::uint64_t min_weight = 1;
  __device__ bool keeps(int j, unsigned c, std::uint64_t w) const {
    return w >= min_weight && (c > code || (c == code && j <= last_tie));
  }
};

// A rank cut (KeptSet with min_weight 1) and how many tokens share its code.
struct Cut {
  KeptSet set;
  std::uint64_t tied = 0;
};

// What a block shows the rest of its cluster (read through distributed shared
// memory after a cluster barrier).
struct Mailbox {
  RowStats stats;
  float max;
  u64 slice_sum;
  int found;
};

struct RowShared {
  using ReduceStats = cub::BlockReduce<RowStats, kRowThreads>;
  using ReduceFloat = cub::BlockReduce<float, kRowThreads>;
  using ScanU64 = cub::BlockScan<u64, kRowThreads>;
  using ScanAggregate = cub::BlockScan<Aggregate, kRowThreads>;

  Buckets<kLevel0Buckets> level0;                     // this block's level 0, kept for a second cut
  Buckets<kCoarseBuckets> folded0, reduced0;          // level 0 coarse: this block's, and the sums it owns
  Buckets<kLevelBuckets> level[2], reduced_level[2];  // levels 1-3, alternating
  union {
    typename ReduceStats::TempStorage reduce_stats;
    typename ReduceFloat::TempStorage reduce_float;
    typename ScanU64::TempStorage scan_u64;
    typename ScanAggregate::TempStorage scan_aggregate;
  } temp;
  Mailbox box;
  // Block-wide results, written by one thread and read by all after a barrier.
  RowStats row;
  float max;
  u64 target, prefix;
  unsigned digit;
  Aggregate above, chosen;
  Aggregate fine[kFinePerCoarse];
  int parity;  // which of the alternating level buffers comes next
};

// The cluster working on one row and where this block sits in it. Built for
// an architecture without clusters (sm_80), every row is a cluster of one.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define KVSERVE_ROW_CLUSTERS 1
#else
#define KVSERVE_ROW_CLUSTERS 0
#endif
struct RowCluster {
  int size, rank;
  // `local`'s counterpart in block `block` of the cluster (distributed shared memory).
  template <class T>
  __device__ T* at(T* local, int block) const {
#if KVSERVE_ROW_CLUSTERS
    return cg::this_cluster().map_shared_rank(local, block);
#else
    return local;
#endif
  }
  // Barrier over every thread of the cluster; orders shared-memory accesses across its blocks.
  __device__ void sync() const {
#if KVSERVE_ROW_CLUSTERS
    cg::this_cluster().sync();
#else
    __syncthreads();
#endif
  }
};

__device__ __forceinline__ RowCluster this_row_cluster() {
#if KVSERVE_ROW_CLUSTERS
  const cg::cluster_group g = cg::this_cluster();
  return {static_cast<int>(g.num_blocks()), static_cast<int>(g.block_rank())};
#else
  return {1, 0};
#endif
}

// Each block owns N / cluster-size consecutive buckets: it sums them over
// every block's `local` and stores the sums in its `reduced`.
template <int N>
__device__ void reduce_scatter(Buckets<N>& local, Buckets<N>& reduced, const RowCluster& cl) {
  const int owned = N / cl.size, first = cl.rank * owned;
  for (int k = threadIdx.x; k < owned; k += kRowThreads) {
    Aggregate sum{};
    for (int q = 0; q < cl.size; ++q) sum = AddAggregates{}(sum, cl.at(&local, q)->get(first + k));
    reduced.set(first + k, sum);
  }
}

// ------------------------------------------------------------ row passes ---

// Calls f(i, value) for every token of the slice (each thread its own tokens,
// no order). With `load`, values come from the view (device memory) and a
// resident slice stores them.
template <bool Load, class View, class F>
__device__ __forceinline__ void for_each_token(const Slice<View>& slice, F&& f) {
  constexpr int items = Load ? kLoadItems : kItems;
  constexpr int tile = kRowThreads * items;
  for (int first = 0; first < slice.count; first += tile) {
    float v[items];
#pragma unroll
    for (int k = 0; k < items; ++k) {
      const int i = first + k * kRowThreads + static_cast<int>(threadIdx.x);
      v[k] = i < slice.count ? (Load ? slice.view.value(slice.begin + i) : slice.value(i)) : 0.f;
    }
#pragma unroll
    for (int k = 0; k < items; ++k) {
      const int i = first + k * kRowThreads + static_cast<int>(threadIdx.x);
      if (i < slice.count) {
        if (Load && slice.stored) slice.stored[i] = v[k];
        f(i, v[k]);
      }
    }
  }
}

// Sums the row: each block its slice, then the cluster's sums through the
// mailboxes. With `histogram`, also fills level 0 of the radix selection and
// leaves its coarse sums, each owned by one block, in reduced0.
template <bool Load, class View>
__device__ RowStats row_stats(const Slice<View>& slice, bool histogram, RowShared& s, const RowCluster& cl) {
  if (histogram) {
    s.level0.clear();
    __syncthreads();
  }
  RowStats mine = empty_row();
  for_each_token<Load>(slice, [&](int i, float v) {
    const std::uint64_t w = slice.weight(v);
    if (w == 0) return;
    const unsigned c = rank_code(v);
    const int j = slice.begin + i;
    mine.total += w;
    mine.max_weight = w > mine.max_weight ? w : mine.max_weight;
    ++mine.positive;
    if (ranks_above(c, j, mine.best_code, mine.best_index)) mine.best_code = c, mine.best_index = j;
    if (histogram) s.level0.add(c >> level_shift(0), w);
  });
  const RowStats block = RowShared::ReduceStats(s.temp.reduce_stats).Reduce(mine, CombineStats{});
  if (threadIdx.x == 0) s.box.stats = block;
  if (histogram) {
    __syncthreads();
    for (int coarse = threadIdx.x; coarse < kCoarseBuckets; coarse += kRowThreads) {
      Aggregate sum{};
      for (int f = 0; f < kFinePerCoarse; ++f) sum = AddAggregates{}(sum, s.level0.get(coarse * kFinePerCoarse + f));
      s.folded0.set(coarse, sum);
    }
  }
  cl.sync();
  if (threadIdx.x == 0) {
    RowStats all = empty_row();
    for (int q = 0; q < cl.size; ++q) all = CombineStats{}(all, cl.at(&s.box, q)->stats);
    s.row = all;
  }
  if (histogram) reduce_scatter(s.folded0, s.reduced0, cl);
  cl.sync();  // reduced0 complete in every block; also orders s.row
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
  if (threadIdx.x == 0) {
    float all = -INFINITY;
    for (int q = 0; q < cl.size; ++q) all = fmaxf(all, cl.at(&s.box, q)->max);
    s.max = all;
  }
  __syncthreads();
  return s.max;
}

// ------------------------------------------------------- radix selection ---

enum class By { count, mass };

__device__ __forceinline__ u64 measure(const Aggregate& a, By by) { return by == By::count ? a.count : a.mass; }

// Walks the cluster's sums of N buckets (left by reduce_scatter in the
// owners' `reduced`) from the top down: the bucket where s.above plus the
// running count (By::count) or weight (By::mass) first reaches `target` goes
// to s.digit (its sums to s.chosen), and s.above gains the buckets above it.
template <int N>
__device__ void pick_bucket(Buckets<N>& reduced, By by, std::uint64_t target, RowShared& s, const RowCluster& cl) {
  const int bucket = N - 1 - static_cast<int>(threadIdx.x);  // thread 0 takes the top bucket
  Aggregate mine{};
  if (bucket >= 0) mine = cl.at(&reduced, bucket / (N / cl.size))->get(bucket);
  Aggregate before;
  RowShared::ScanAggregate(s.temp.scan_aggregate).ExclusiveScan(mine, before, Aggregate{}, AddAggregates{});
  const Aggregate running = AddAggregates{}(s.above, before);
  __syncthreads();  // every thread has read s.above
  const u64 reached = measure(running, by);
  if (bucket >= 0 && reached < target && reached + measure(mine, by) >= target) {
    s.digit = static_cast<unsigned>(bucket);
    s.above = running;
    s.chosen = mine;
  }
  __syncthreads();
}

// Level 0: the coarse bucket from the cluster's coarse sums, then the fine
// bucket among its kFinePerCoarse, summed over every block's level0.
__device__ inline void pick_level0(By by, std::uint64_t target, RowShared& s, const RowCluster& cl) {
  pick_bucket(s.reduced0, by, target, s, cl);
  const unsigned first_fine = s.digit * kFinePerCoarse;
  if (threadIdx.x < kFinePerCoarse) {
    Aggregate sum{};
    for (int q = 0; q < cl.size; ++q)
      sum = AddAggregates{}(sum, cl.at(&s.level0, q)->get(static_cast<int>(first_fine + threadIdx.x)));
    s.fine[threadIdx.x] = sum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int f = kFinePerCoarse - 1; f >= 0; --f) {
      if (measure(s.above, by) + measure(s.fine[f], by) >= target) {
        s.digit = first_fine + f;
        s.chosen = s.fine[f];
        break;
      }
      s.above = AddAggregates{}(s.above, s.fine[f]);
    }
  }
  __syncthreads();
}

// The rank cut whose kept count or weight first reaches `target` (1 <= target
// < the row's count or weight), from level 0 as row_stats left it. Levels 1
// to 3 each take one shared-memory pass over the tokens of the chosen prefix.
// The code is then known in full and its ties are resolved arithmetically, as
// on the CPU (`ties = k - count above`, or `ceil((target - weight above) / W)`).
template <class View>
__device__ Cut find_cut(const Slice<View>& slice, By by, std::uint64_t target, RowShared& s, const RowCluster& cl) {
  if (threadIdx.x == 0) s.above = Aggregate{};
  __syncthreads();
  pick_level0(by, target, s, cl);
  unsigned prefix = s.digit;
  for (int level = 1; level < 4; ++level) {
    const int shift = level_shift(level), parity = s.parity;
    Buckets<kLevelBuckets>& local = s.level[parity];
    local.clear();
    __syncthreads();
    if (threadIdx.x == 0) s.parity = parity ^ 1;
    for_each_token<false>(slice, [&](int, float v) {
      const unsigned c = rank_code(v);
      if (c >> (shift + kLevelBits) != prefix) return;
      const std::uint64_t w = slice.weight(v);
      if (w > 0) local.add((c >> shift) & (kLevelBuckets - 1), w);
    });
    cl.sync();
    reduce_scatter(local, s.reduced_level[parity], cl);
    cl.sync();
    pick_bucket(s.reduced_level[parity], by, target, s, cl);
    prefix = (prefix << kLevelBits) | s.digit;
  }
  Cut cut;
  cut.tied = s.chosen.count;
  const std::uint64_t unit = s.chosen.mass / cut.tied;  // every tied token weighs the same
  const std::uint64_t ties = by == By::count ? target - s.above.count : (target - s.above.mass + unit - 1) / unit;
  cut.set = KeptSet{prefix, ties, 1, s.above.mass + ties * unit};
  __syncthreads();  // s.chosen and s.above are read before anyone rewrites them
  return cut;
}

// ------------------------------------------------------- crossing search ---

// The first row index, in index order, where the running sum of
// value(i, v) over the cluster's slices exceeds target_of(total), total being
// the whole row's sum; -1 if it never does. Each thread sums a contiguous run
// of its block's slice (odd length: conflict-free shared-memory reads), one
// block scan places the runs, the blocks' sums go through the mailboxes, and
// the one thread whose run holds the crossing walks it. Every block returns
// the index.
template <class View, class Value, class TargetOf>
__device__ int find_crossing(const Slice<View>& slice, Value&& value, TargetOf&& target_of, RowShared& s,
                             const RowCluster& cl) {
  const int run = ((slice.count + kRowThreads - 1) / kRowThreads) | 1;
  const int first = static_cast<int>(threadIdx.x) * run;
  const int last = first + run < slice.count ? first + run : slice.count;
  u64 mine = 0;
#pragma unroll 4
  for (int i = first; i < last; ++i) mine += value(i, slice.value(i));
  u64 before, block_sum;
  RowShared::ScanU64(s.temp.scan_u64).ExclusiveSum(mine, before, block_sum);
  if (threadIdx.x == 0) s.box.slice_sum = block_sum, s.box.found = -1;
  cl.sync();
  if (threadIdx.x == 0) {
    u64 prefix = 0, total = 0;
    for (int q = 0; q < cl.size; ++q) {
      const u64 sum = cl.at(&s.box, q)->slice_sum;
      prefix += q < cl.rank ? sum : 0;
      total += sum;
    }
    s.prefix = prefix;
    s.target = target_of(total);
  }
  __syncthreads();
  const u64 target = s.target;
  u64 running = s.prefix + before;
  if (running <= target && target < running + mine) {
    for (int i = first; i < last; ++i) {
      const u64 x = value(i, slice.value(i));
      if (running + x > target) {
        for (int q = 0; q < cl.size; ++q) cl.at(&s.box, q)->found = slice.begin + i;
        break;
      }
      running += x;
    }
  }
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

__device__ __forceinline__ Cut whole_row(std::uint64_t total) { return {KeptSet{0, ~std::uint64_t{0}, 1, total}, 0}; }

// The inverse-CDF draw of docs/sampling.md: t = floor(bits * M / 2^64) with M
// the kept weight (summed here, exactly, by the same pass that places the
// blocks' runs), then the first kept token whose running kept weight exceeds
// t; -1 when nothing is kept.
template <class View>
__device__ int draw(const Slice<View>& slice, const Kept& kept, std::uint64_t bits, RowShared& s,
                    const RowCluster& cl) {
  return find_crossing(
      slice,
      [&](int i, float v) -> u64 {
        const std::uint64_t w = slice.weight(v);
        return kept.keeps(slice.begin + i, rank_code(v), w) ? w : 0;
      },
      [&](u64 mass) -> u64 { return mass == 0 ? ~u64{0} : mul_hi_u64(bits, mass); }, s, cl);
}

// ------------------------------------------------------------ plumbing -----

// This block's slice of row `row` under the launch's geometry; resident
// slices live in the kernel's dynamic shared memory.
template <class View>
__device__ Slice<View> slice_of(const View& view, const RowGeometry& g, const RowCluster& cl, float* resident) {
  Slice<View> s{view};
  s.begin = cl.rank * g.slice;
  const int left = g.vocab - s.begin;
  s.count = left < 0 ? 0 : (left < g.slice ? left : g.slice);
  s.stored = g.resident ? resident : nullptr;
  return s;
}

__device__ __forceinline__ int row_of_cluster(const RowCluster& cl) { return static_cast<int>(blockIdx.x) / cl.size; }

__device__ __forceinline__ void init_shared(RowShared& s) {
  if (threadIdx.x == 0) s.parity = 0;
}

// The random block `draw` of row b.
__device__ __forceinline__ PhiloxBlock row_random_block(const RandomParams& r, int b, std::uint32_t draw) {
  if (r.seeds == nullptr) return random_block(r.seed, r.offset, static_cast<std::uint32_t>(b), draw);
  return random_block(static_cast<std::uint32_t>(r.seeds[b]), static_cast<std::uint32_t>(r.offsets[b]), 0, draw);
}

template <class T>
__device__ __forceinline__ T row_param(const RowParam<T>& p, int b) {
  return p.rows ? p.rows[b] : p.scalar;
}

// ---------------------------------------------------------------- launch --

// Launches kernel(params, geometry) with one cluster per row on the current
// device: clusters where the architecture has them (sm_90 and later), slices
// resident in shared memory when `may_reside` and they fit beside the
// kernel's static shared memory. Returns the first cudaError_t as an int.
template <class Params>
int launch_rows(void (*kernel)(Params, RowGeometry), const Params& params, int batch, int vocab, bool may_reside,
                void* stream) {
  int device = 0, major = 0, optin = 0;
  cudaFuncAttributes attributes{};
  for (const cudaError_t e : {cudaGetDevice(&device),
                              cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                              cudaFuncGetAttributes(&attributes, kernel)})
    if (e != cudaSuccess) return static_cast<int>(e);
  RowGeometry g;
  g.vocab = vocab;
  g.cluster = major >= 9 ? row_cluster_size(vocab) : 1;
  g.slice = (vocab + g.cluster - 1) / g.cluster;
  const std::size_t slice_bytes = sizeof(float) * static_cast<std::size_t>(g.slice);
  g.resident = may_reside && slice_bytes + attributes.sharedSizeBytes <= static_cast<std::size_t>(optin);
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(batch) * static_cast<unsigned>(g.cluster));
  config.blockDim = dim3(kRowThreads);
  config.dynamicSmemBytes = g.resident ? slice_bytes : 0;
  config.stream = static_cast<cudaStream_t>(stream);
  if (config.dynamicSmemBytes > 0) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(config.dynamicSmemBytes));
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = static_cast<unsigned>(g.cluster);
  cluster.val.clusterDim.y = cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = g.cluster > 1 ? 1 : 0;
  return static_cast<int>(cudaLaunchKernelEx(&config, kernel, params, g));
}

}  // namespace kvserve::detail::cuda
