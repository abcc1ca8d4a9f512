// Device building blocks of the sampling family: one thread block walks one
// row. Rows are read as tiles of kRowThreads x kItems tokens (each thread's
// kItems loads issued before their first use); every decision is made in the
// integer arithmetic of core/sampling_math.hpp, so the block arrives at the
// CPU backend's kept set and token whatever order its threads add in.
//
// A kept set is found like the CPU backend finds it (docs/sampling.md,
// "Finding the kept set without sorting"): a radix selection over the 32-bit
// rank codes, here in three levels of 11, 11 and 10 bits. Level 0's histogram
// of counts and weights comes with the pass that sums the row; levels 1 and 2
// are one pass each over the tokens whose code starts with the chosen
// prefix. Histograms are shared-memory integer atomics (order-independent, so
// deterministic); the bucket where the running count or weight reaches the
// target is found by one cub::BlockScan over the buckets, top bucket first.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <climits>
#include <cstdint>

#include "core/sampling_math.hpp"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

using u64 = unsigned long long;  // what CUB and the atomics take; 64 bits as std::uint64_t

// 16 loads in flight per thread: 32 KB per block, enough to cover the memory
// latency of a row streamed by one block.
inline constexpr int kItems = 16;
inline constexpr int kTile = kRowThreads * kItems;

// Radix levels over the rank code: bits [21, 32), [10, 21), [0, 10).
inline constexpr int kLevels = 3;
constexpr int level_shift(int level) { return level == 0 ? 21 : level == 1 ? 10 : 0; }
constexpr int level_bits(int level) { return level == 2 ? 10 : 11; }
inline constexpr int kMaxBuckets = 1 << 11;
static_assert(kMaxBuckets % kRowThreads == 0);

// ----------------------------------------------------------- row views -----
// A row view gives each token's ranking value and the weight of that value
// (the weight depends on the value alone, so tokens of one code weigh the same).

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

// ------------------------------------------------------------ reductions ---

// What the summing pass learns about a row. (No member initialisers: the
// type lives in shared memory, which cannot be constructed.)
struct RowStats {
  u64 total;       // sum of weights
  u64 max_weight;
  u64 positive;    // tokens of positive weight
  unsigned best_code;
  int best_index;  // highest-ranked token of positive weight (lowest index first); -1: none
};
__device__ __forceinline__ RowStats empty_row() { return {0, 0, 0, 0, -1}; }

struct CombineStats {
  __device__ RowStats operator()(const RowStats& a, const RowStats& b) const {
    RowStats r;
    r.total = a.total + b.total;
    r.max_weight = a.max_weight > b.max_weight ? a.max_weight : b.max_weight;
    r.positive = a.positive + b.positive;
    const bool take_b = a.best_index < 0 ||
                        (b.best_index >= 0 && (b.best_code > a.best_code ||
                                               (b.best_code == a.best_code && b.best_index < a.best_index)));
    r.best_code = take_b ? b.best_code : a.best_code;
    r.best_index = take_b ? b.best_index : a.best_index;
    return r;
  }
};

// Running (count, weight) of buckets, summed top bucket first.
struct Aggregate {
  u64 count, mass;
};
struct AddAggregates {
  __device__ Aggregate operator()(const Aggregate& a, const Aggregate& b) const {
    return {a.count + b.count, a.mass + b.mass};
  }
};

// The kept set as a per-token predicate: weight >= min_weight and code above
// `code`, or equal to it at an index <= last_tie (the boundary's ties, taken
// in index order). `mass` is the kept weight.
struct Kept {
  unsigned code = 0;
  int last_tie = INT_MAX;
  std::uint64_t min_weight = 1;
  std::uint64_t mass = 0;
  __device__ bool keeps(int j, unsigned c, std::uint64_t w) const {
    return w >= min_weight && (c > code || (c == code && j <= last_tie));
  }
};

// A rank cut (KeptSet with min_weight 1) and how many tokens share its code.
struct Cut {
  KeptSet set;
  std::uint64_t tied = 0;
};

struct RowShared {
  using ReduceU64 = cub::BlockReduce<u64, kRowThreads>;
  using ReduceFloat = cub::BlockReduce<float, kRowThreads>;
  using ReduceStats = cub::BlockReduce<RowStats, kRowThreads>;
  using ScanU64 = cub::BlockScan<u64, kRowThreads>;
  using ScanAggregate = cub::BlockScan<Aggregate, kRowThreads>;

  unsigned count[kMaxBuckets];  // histogram of the current radix level
  u64 mass[kMaxBuckets];
  union {
    typename ReduceU64::TempStorage reduce_u64;
    typename ReduceFloat::TempStorage reduce_float;
    typename ReduceStats::TempStorage reduce_stats;
    typename ScanU64::TempStorage scan_u64;
    typename ScanAggregate::TempStorage scan_aggregate;
  } temp;
  // Block-wide results, written by one thread and read by all after a barrier.
  RowStats stats;
  u64 value;
  float max;
  int found;
  unsigned digit;
  Aggregate above;
};

// ------------------------------------------------------------ row passes ---

// Position of a thread's item i of tile `tile`: in index order, or reversed
// (tiles, items and threads all descending) for a walk from the row's end.
template <bool Backward>
__device__ __forceinline__ int position(int tile, int i) {
  if constexpr (Backward) return tile * kTile + (kItems - 1 - i) * kRowThreads + (kRowThreads - 1 - threadIdx.x);
  else return tile * kTile + i * kRowThreads + threadIdx.x;
}

// Calls f(j, value) for every token of the row (each thread its own tokens, no order).
template <class Row, class F>
__device__ __forceinline__ void for_each_token(const Row& row, int vocab, F&& f) {
  const int tiles = (vocab + kTile - 1) / kTile;
  for (int tile = 0; tile < tiles; ++tile) {
    float v[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int j = position<false>(tile, i);
      v[i] = j < vocab ? row.value(j) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int j = position<false>(tile, i);
      if (j < vocab) f(j, v[i]);
    }
  }
}

__device__ __forceinline__ void clear_histogram(RowShared& s) {
  for (int i = threadIdx.x; i < kMaxBuckets; i += kRowThreads) s.count[i] = 0, s.mass[i] = 0;
}

__device__ __forceinline__ void add_to_histogram(RowShared& s, unsigned bucket, std::uint64_t w) {
  atomicAdd(&s.count[bucket], 1u);
  atomicAdd(&s.mass[bucket], static_cast<u64>(w));
}

// Sums the row. With `histogram`, also fills level 0 of the radix selection.
template <class Row>
__device__ RowStats row_stats(const Row& row, int vocab, bool histogram, RowShared& s) {
  if (histogram) {
    clear_histogram(s);
    __syncthreads();
  }
  RowStats mine = empty_row();
  for_each_token(row, vocab, [&](int j, float v) {
    const std::uint64_t w = row.weight(v);
    if (w == 0) return;
    const unsigned c = rank_code(v);
    mine.total += w;
    mine.max_weight = w > mine.max_weight ? w : mine.max_weight;
    ++mine.positive;
    if (mine.best_index < 0 || c > mine.best_code) mine.best_code = c, mine.best_index = j;  // j ascends per thread
    if (histogram) add_to_histogram(s, c >> level_shift(0), w);
  });
  const RowStats all = RowShared::ReduceStats(s.temp.reduce_stats).Reduce(mine, CombineStats{});
  if (threadIdx.x == 0) s.stats = all;
  __syncthreads();
  return s.stats;
}

// The largest logit (NaN never wins; -inf when there is none).
__device__ inline float row_max(const float* x, int vocab, RowShared& s) {
  float mine = -INFINITY;
  for_each_token(ProbsRow{x}, vocab, [&](int, float v) { mine = fmaxf(mine, v); });
  const float all = RowShared::ReduceFloat(s.temp.reduce_float).Reduce(mine, [](float a, float b) { return fmaxf(a, b); });
  if (threadIdx.x == 0) s.max = all;
  __syncthreads();
  return s.max;
}

// The kept weight of the tokens weighing at least min_weight (>= 1).
template <class Row>
__device__ std::uint64_t mass_at_least(const Row& row, int vocab, std::uint64_t min_weight, RowShared& s) {
  u64 mine = 0;
  for_each_token(row, vocab, [&](int, float v) {
    const std::uint64_t w = row.weight(v);
    if (w >= min_weight) mine += w;
  });
  const u64 all = RowShared::ReduceU64(s.temp.reduce_u64).Sum(mine);
  if (threadIdx.x == 0) s.value = all;
  __syncthreads();
  return s.value;
}

enum class By { count, mass };

// Walks the current level's `buckets` from the top down: the bucket where
// s.above plus the running count (By::count) or weight (By::mass) first
// reaches `target` goes to s.digit, and s.above gains the buckets above it.
__device__ inline void pick_bucket(RowShared& s, int buckets, By by, std::uint64_t target) {
  const int per_thread = buckets / kRowThreads;  // 1 or 2; thread t owns buckets top - t*per_thread - i
  Aggregate mine{};
  for (int i = 0; i < per_thread; ++i) {
    const int bucket = buckets - 1 - (static_cast<int>(threadIdx.x) * per_thread + i);
    mine.count += s.count[bucket], mine.mass += s.mass[bucket];
  }
  Aggregate before;
  RowShared::ScanAggregate(s.temp.scan_aggregate).ExclusiveScan(mine, before, Aggregate{}, AddAggregates{});
  Aggregate running{s.above.count + before.count, s.above.mass + before.mass};
  __syncthreads();  // every thread has read s.above
  for (int i = 0; i < per_thread; ++i) {
    const int bucket = buckets - 1 - (static_cast<int>(threadIdx.x) * per_thread + i);
    const u64 reached_before = by == By::count ? running.count : running.mass;
    const u64 here = by == By::count ? s.count[bucket] : s.mass[bucket];
    if (reached_before < target && reached_before + here >= target) {
      s.digit = static_cast<unsigned>(bucket);
      s.above = running;
    }
    running.count += s.count[bucket], running.mass += s.mass[bucket];
  }
  __syncthreads();
}

// Fills the histogram of radix level `level` over the tokens whose code
// starts with `prefix` (the digits of the levels above; level 0 takes all).
template <class Row>
__device__ void build_level(const Row& row, int vocab, int level, unsigned prefix, RowShared& s) {
  const int shift = level_shift(level), bits = level_bits(level);
  clear_histogram(s);
  __syncthreads();
  for_each_token(row, vocab, [&](int, float v) {
    const unsigned c = rank_code(v);
    if (static_cast<u64>(c) >> (shift + bits) != prefix) return;
    const std::uint64_t w = row.weight(v);
    if (w > 0) add_to_histogram(s, (c >> shift) & ((1u << bits) - 1), w);
  });
  __syncthreads();
}

// The rank cut whose kept count or weight first reaches `target` (1 <= target
// < the row's count or weight). Level 0's histogram comes from row_stats when
// `level0_ready` (the first cut of a row); levels 1 and 2 each take one pass
// over the tokens of the chosen prefix. The code is then known in full and its
// ties are resolved arithmetically, as on the CPU (`ties = k - count above`,
// or `ceil((target - weight above) / W)`).
template <class Row>
__device__ Cut find_cut(const Row& row, int vocab, By by, std::uint64_t target, bool level0_ready, RowShared& s) {
  if (threadIdx.x == 0) s.above = Aggregate{};
  unsigned prefix = 0;
  for (int level = 0; level < kLevels; ++level) {
    if (level > 0 || !level0_ready) build_level(row, vocab, level, prefix, s);
    __syncthreads();
    pick_bucket(s, 1 << level_bits(level), by, target);
    prefix = (prefix << level_bits(level)) | s.digit;
  }
  Cut cut;
  cut.tied = s.count[s.digit];
  const std::uint64_t unit = s.mass[s.digit] / cut.tied;  // every tied token weighs the same
  const std::uint64_t ties = by == By::count ? target - s.above.count : (target - s.above.mass + unit - 1) / unit;
  cut.set = KeptSet{prefix, ties, 1, s.above.mass + ties * unit};
  __syncthreads();  // the histogram is read before anyone reuses it
  return cut;
}

// The first token, walking the row in index order (or from its end), where
// the running sum of value(j, v) exceeds `target`; -1 if it never does. One
// block reduction per tile finds the tile, then one scan per item row inside it.
template <bool Backward, class Row, class Value>
__device__ int find_crossing(const Row& row, int vocab, Value&& value, std::uint64_t target, RowShared& s) {
  const int tiles = (vocab + kTile - 1) / kTile;
  std::uint64_t running = 0;  // the same in every thread
  for (int step = 0; step < tiles; ++step) {
    const int tile = Backward ? tiles - 1 - step : step;
    float v[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int j = position<Backward>(tile, i);
      v[i] = j < vocab ? row.value(j) : 0.f;
    }
    u64 mine = 0;
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int j = position<Backward>(tile, i);
      if (j < vocab) mine += value(j, v[i]);
    }
    const u64 tile_sum = RowShared::ReduceU64(s.temp.reduce_u64).Sum(mine);
    if (threadIdx.x == 0) s.value = tile_sum;
    __syncthreads();
    const std::uint64_t sum = s.value;
    __syncthreads();
    if (running + sum <= target) {
      running += sum;
      continue;
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int j = position<Backward>(tile, i);
      const u64 x = j < vocab ? value(j, v[i]) : 0;
      u64 before, item_sum;
      RowShared::ScanU64(s.temp.scan_u64).ExclusiveSum(x, before, item_sum);
      if (x > 0 && running + before <= target && target < running + before + x) s.found = j;
      __syncthreads();
      if (running + item_sum > target) return s.found;
      running += item_sum;
    }
  }
  return -1;
}

// The kept set of a cut as a per-token predicate: when only some of the
// tokens at the cut's code are kept, the last kept one is the ties-th of
// them in index order.
template <class Row>
__device__ Kept resolve(const Row& row, int vocab, const Cut& cut, RowShared& s) {
  Kept k{cut.set.code, INT_MAX, 1, cut.set.mass};
  if (cut.set.ties >= cut.tied) return k;
  k.last_tie = find_crossing<false>(
      row, vocab,
      [&](int, float v) -> u64 { return rank_code(v) == cut.set.code && row.weight(v) > 0 ? 1 : 0; },
      cut.set.ties - 1, s);
  return k;
}

__device__ __forceinline__ Cut whole_row(std::uint64_t total) { return {KeptSet{0, ~std::uint64_t{0}, 1, total}, 0}; }

// The inverse-CDF draw of docs/sampling.md: t = floor(bits * M / 2^64), the
// first kept token whose running kept weight exceeds t. Walked from the row's
// end (the part a preceding pass touched last, most likely still in L2): the
// same token is the first, from the end, whose suffix weight reaches M - t.
template <class Row>
__device__ int draw(const Row& row, int vocab, const Kept& kept, std::uint64_t bits, RowShared& s) {
  if (kept.mass == 0) return -1;
  const std::uint64_t t = mul_hi_u64(bits, kept.mass);
  return find_crossing<true>(
      row, vocab,
      [&](int j, float v) -> u64 {
        const std::uint64_t w = row.weight(v);
        return kept.keeps(j, rank_code(v), w) ? w : 0;
      },
      kept.mass - t - 1, s);
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

}  // namespace kvserve::detail::cuda
