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
// rank codes, here in four levels of 10, 8, 7 and 7 bits. Level 0's histogram
// comes with the pass that loads the row; it is fine (1024 buckets: half
// binades) so that the tokens of a softmax row, which crowd a few binades,
// rarely collide on one shared-memory atomic, and it is exchanged coarse (256
// buckets of 4 fine ones) plus the 4 fine buckets of the chosen coarse one,
// to keep the distributed-shared-memory traffic small.
#pragma once

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/sampling_math.hpp"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

namespace cg = cooperative_groups;
using u64 = unsigned long long;  // what CUB and the atomics take; 64 bits as std::uint64_t

// The pass that reads the row from device memory: 16-byte loads, kLoadVectors
// per thread in flight (48 KB per block), or kLoadItems 4-byte loads when the
// row is not 16-byte aligned.
inline constexpr int kLoadVectors = 8, kLoadItems = 16;
// Shared-memory passes: loads issued before their first use, as 16-byte
// vectors (16 tokens per thread) from a resident slice, else singly.
inline constexpr int kSharedVectors = 4, kItems = 8;

// Radix levels over the rank code: bits [22, 32), [14, 22), [7, 14), [0, 7).
inline constexpr int kLevels = 4;
constexpr int level_bits(int level) { return level == 0 ? 10 : level == 1 ? 8 : 7; }
constexpr int level_shift(int level) { return level == 0 ? 22 : level == 1 ? 14 : level == 2 ? 7 : 0; }
inline constexpr int kLevel0Buckets = 1 << level_bits(0), kBuckets = 1 << level_bits(1);
// Level 0 is exchanged as kBuckets coarse buckets of kFinePerCoarse fine ones.
inline constexpr int kFinePerCoarse = kLevel0Buckets / kBuckets;
static_assert(level_shift(3) + level_bits(3) == level_shift(2) && level_shift(0) + level_bits(0) == 32);
static_assert(kBuckets <= kRowThreads && (kBuckets >> 1) % kMaxCluster == 0 && kFinePerCoarse <= kRowThreads);

// ----------------------------------------------------------- row views -----
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
  static constexpr bool kPlain = std::is_base_of_v<FloatRow, View>;
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

// ------------------------------------------------------------ histograms ---

// Running (count, weight) of buckets.
struct Aggregate {
  u64 count, mass;
};
__device__ __forceinline__ Aggregate operator+(const Aggregate& a, const Aggregate& b) {
  return {a.count + b.count, a.mass + b.mass};
}
struct Plus {
  template <class T>
  __device__ T operator()(const T& a, const T& b) const {
    return a + b;
  }
};

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

// ------------------------------------------------------------ reductions ---

// What the loading pass learns about a row. (No member initialisers: the
// type lives in shared memory, which cannot be constructed.)
struct RowStats {
  // Each field is filled only when the pass was asked for it (row_stats):
  u64 total;       // sum of weights: with a level-0 histogram, else 0
  u64 max_weight;  // without `Best`
  u64 positive;    // tokens of positive weight: with a counted histogram, else 0
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

// A token of positive weight taking part in a cut among few candidates.
struct Candidate {
  unsigned code;
  u64 weight;
};
// At most this many candidates take the short way (k_then_p's second cut;
// a radix bucket this small after level 1).
inline constexpr int kMaxCutCandidates = 256;
static_assert(kMaxCutCandidates <= kRowThreads, "a thread per gathered candidate");
// Level 1's pass lists up to this many of a block's tokens in the chosen
// level-0 bucket (slice indices, for slices of at most kListableSlice
// tokens), so that later levels visit only them.
inline constexpr int kListCapacity = 768, kListableSlice = 1 << 16;

struct RowShared {
  using ReduceStats = cub::BlockReduce<RowStats, kRowThreads>;
  using ReduceFloat = cub::BlockReduce<float, kRowThreads>;
  // Warp-scan variants: their temporary storage is a few words per warp.
  using ScanU64 = cub::BlockScan<u64, kRowThreads, cub::BLOCK_SCAN_WARP_SCANS>;
  using ScanAggregate = cub::BlockScan<Aggregate, kRowThreads, cub::BLOCK_SCAN_WARP_SCANS>;

  Level0 level0;  // this block's level 0 (fine buckets)
  // One level's buckets summed over the cluster, each bucket in the block
  // that owns it (owner_of), filled by every block's atomics. Level exchange
  // t uses owned[t % 3]; after its pick, owned[(t + 2) % 3] is cleared, which
  // no block reads any more (exchange t - 1 was picked before exchange t's
  // barrier) and none writes before exchange t + 1's barrier.
  AtomicBuckets<kBuckets> owned[3];
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
  int exchanges;  // level exchanges of this row so far
  // A cut among few candidates (cut_among_candidates): this block's tokens
  // ranked at or above a code, then every block's, gathered.
  // (Codes and weights apart: 12 bytes a candidate, not a padded 16.)
  unsigned candidate_code[kMaxCutCandidates];
  u64 candidate_weight[kMaxCutCandidates];
  int num_candidates;
  __device__ void put_candidate(int i, Candidate c) { candidate_code[i] = c.code, candidate_weight[i] = c.weight; }
  __device__ Candidate candidate(int i) const { return {candidate_code[i], candidate_weight[i]}; }
  // This block's tokens in the chosen level-0 bucket (and, when few tokens
  // of the row rank above it in a count cut, in every bucket above it),
  // listed by level 1's pass; more than kListCapacity of them: not listed,
  // levels visit the slice.
  std::uint16_t listed[kListCapacity];
  int num_listed;
  unsigned listed_bucket;  // the level-0 bucket listed
  bool listed_above;       // and the buckets above it
};
// A kernel's static shared memory is at most 48 KB (a few words are left to
// the kernels' own); and two blocks, each with a slice of kSliceTarget
// tokens, share an SM's 228 KB (1 KB of it reserved per block).
static_assert(sizeof(RowShared) + 64 <= 48 * 1024, "RowShared grew past static shared memory");
static_assert(sizeof(RowShared) + sizeof(float) * kSliceTarget + 1024 <= 228 * 1024 / 2,
              "RowShared grew past two row blocks per SM");

// The cluster working on one row and where this block sits in it. Built for
// an architecture without clusters (sm_80), every row is a cluster of one.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define KVSERVE_ROW_CLUSTERS 1
#else
#define KVSERVE_ROW_CLUSTERS 0
#endif
struct RowCluster {
  int size, rank;
  int log2_size;  // size is a power of two
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
  // The same barrier in two halves, so that work between them hides its latency.
  __device__ void arrive() const {
#if KVSERVE_ROW_CLUSTERS
    asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#endif
  }
  __device__ void wait() const {
#if KVSERVE_ROW_CLUSTERS
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
    __syncthreads();
#endif
  }
};

__device__ __forceinline__ RowCluster this_row_cluster() {
#if KVSERVE_ROW_CLUSTERS
  const cg::cluster_group g = cg::this_cluster();
  const auto size = static_cast<int>(g.num_blocks());
  return {size, static_cast<int>(g.block_rank()), 31 - __clz(size)};
#else
  return {1, 0, 0};
#endif
}

// get(0) + ... + get(size - 1) over the cluster's blocks (any `combine`);
// unrolled, so the remote loads can be issued together.
template <class T, class Get, class Combine = Plus>
__device__ __forceinline__ T cluster_sum(const RowCluster& cl, T zero, Get&& get, Combine combine = {}) {
  T sum = zero;
#pragma unroll
  for (int q = 0; q < kMaxCluster; ++q)
    if (q < cl.size) sum = combine(sum, get(q));
  return sum;
}

// The block owning bucket b of a level with `buckets` buckets: each owns
// buckets / cluster-size consecutive ones (both powers of two: a shift, not
// a division, on every token a level pass adds).
__device__ __forceinline__ int owner_of(int b, int buckets, const RowCluster& cl) {
  return b >> (31 - __clz(buckets) - cl.log2_size);
}

// Exchange slot `slot` of the block owning bucket b.
__device__ __forceinline__ AtomicBuckets<kBuckets>* owner_slot(RowShared& s, int slot, int b, int buckets,
                                                                const RowCluster& cl) {
  return cl.at(&s.owned[slot], owner_of(b, buckets, cl));
}

// Adds this block's level 0, folded into kBuckets coarse buckets of
// kFinePerCoarse fine ones, to the owners' sums in exchange slot `slot`;
// returns the sum of the calling thread's coarse buckets.
template <bool Scaled>
__device__ inline Aggregate push_level0(RowShared& s, int slot, const RowCluster& cl) {
  Aggregate mine{};
  for (int coarse = threadIdx.x; coarse < kBuckets; coarse += kRowThreads) {
    Aggregate sum{};
    for (int f = 0; f < kFinePerCoarse; ++f) sum = sum + s.level0.sum<Scaled>(coarse * kFinePerCoarse + f);
    if (sum.mass > 0) owner_slot(s, slot, coarse, kBuckets, cl)->add(coarse, static_cast<unsigned>(sum.count), sum.mass);
    mine = mine + sum;
  }
  return mine;
}

// ------------------------------------------------------------ row passes ---

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

// Loads the slice and learns the row's largest weight (with `Best`: finds
// its top token instead), each block its slice, then the cluster's through
// the mailboxes. With a histogram, also fills level 0 of the radix
// selection (each block's fine buckets in level0, the cluster's coarse sums
// in exchange slot 0), and the row's total weight and (counted) number of
// tokens of positive weight come from it: no per-token 64-bit sums.
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

// ------------------------------------------------------- radix selection ---

enum class By { count, mass };

__device__ __forceinline__ u64 measure(const Aggregate& a, By by) { return by == By::count ? a.count : a.mass; }

// Walks the cluster's sums of `buckets` buckets in exchange slot `slot` from
// the top down: the bucket where s.above plus the running count (By::count)
// or weight (By::mass) first reaches `target` goes to s.digit (its sums to
// s.chosen), and s.above gains the buckets above it.
__device__ inline void pick_bucket(int slot, int buckets, By by, std::uint64_t target, RowShared& s,
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
}

// Level 0: the coarse bucket from the cluster's coarse sums, then the fine
// bucket among its kFinePerCoarse, summed over every block's level0.
template <bool Scaled>
__device__ inline void pick_level0(int slot, By by, std::uint64_t target, RowShared& s, const RowCluster& cl) {
  pick_bucket(slot, kBuckets, by, target, s, cl);
  const unsigned first_fine = s.digit * kFinePerCoarse;
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
}

// The cut at `code` given the tokens above it (s.above) and at it (s.chosen):
// its ties are resolved arithmetically, as on the CPU (`ties = k - count
// above`, or `ceil((target - weight above) / W)`).
__device__ __forceinline__ Cut cut_at(unsigned code, By by, std::uint64_t target, const RowShared& s) {
  Cut cut;
  cut.tied = s.chosen.count;
  const std::uint64_t unit = s.chosen.mass / cut.tied;  // every tied token weighs the same
  const std::uint64_t ties = by == By::count ? target - s.above.count : (target - s.above.mass + unit - 1) / unit;
  cut.set = KeptSet{code, ties, 1, s.above.mass + ties * unit};
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

template <class View, class Visit, class Take>
__device__ Cut cut_among_candidates(const Slice<View>& slice, Visit&& visit, Take&& take, Aggregate above, By by,
                                    std::uint64_t target, RowShared& s, const RowCluster& cl);

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
  pick_level0<View::kScaled>(exchange % 3, by, target, s, cl);
  ++exchange;
  unsigned prefix = s.digit;
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
    pick_bucket(slot, buckets, by, target, s, cl);
    prefix = (prefix << level_bits(level)) | s.digit;
  }
  // The code is known in full, or few tokens share the prefix found so far.
  const auto in_bucket = [&](unsigned c) { return c >> level_shift(level - 1) == prefix; };
  const Cut cut = level == kLevels ? cut_at(prefix, by, target, s)
                                   : cut_among_candidates(slice, [&](auto&& f) { for_each_listed(slice, s, f); },
                                                          in_bucket, s.above, by, target, s, cl);
  if (threadIdx.x == 0) s.exchanges = exchange;
  __syncthreads();  // s.chosen and s.above are read before anyone rewrites them
  return cut;
}

// ------------------------------------------------------- crossing search ---

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
// barrier, sets s.prefix, the sums of the blocks before this one, and
// s.target = target_of(every block's sum).
template <class TargetOf>
__device__ void place_block(u64 block_sum, TargetOf&& target_of, RowShared& s, const RowCluster& cl) {
  if (threadIdx.x == 0) s.box.slice_sum = block_sum, s.box.found = -1;
  cl.sync();
  if (threadIdx.x == 0) {
    s.prefix = cluster_sum(cl, u64{0}, [&](int q) { return q < cl.rank ? cl.at(&s.box, q)->slice_sum : 0; });
    s.target = target_of(cluster_sum(cl, u64{0}, [&](int q) { return cl.at(&s.box, q)->slice_sum; }));
  }
  __syncthreads();
}

// The thread whose run holds s.target walks it and gives the row index to
// every block's mailbox.
template <class View, class Value>
__device__ void publish_crossing(const Slice<View>& slice, Value&& value, const Run& r, RowShared& s,
                                 const RowCluster& cl) {
  const u64 target = s.target;
  u64 running = s.prefix + r.before;
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
  place_block(r.block, target_of, s, cl);
  publish_crossing(slice, value, r, s, cl);
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
  const Cut cut = cut_at(s.digit, by, target, s);
  __syncthreads();  // s.chosen and s.above are read before anyone rewrites them
  return cut;
}

// Whether the row's last find_cut listed every token of this block ranked at
// or above `code`.
__device__ __forceinline__ bool lists_all_from(unsigned code, const RowShared& s) {
  return s.num_listed <= kListCapacity && s.listed_above && code >> level_shift(0) >= s.listed_bucket;
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
  place_block(block_sum, target_of, s, cl);
  if (s.prefix <= s.target && s.target - s.prefix < s.box.slice_sum) {  // this block holds t
    publish_crossing(slice, value, sum_runs(slice, value, s), s, cl);
  }
  cl.sync();
  return s.box.found;
}

// ------------------------------------------------------------ plumbing -----

// This block's slice of row `row` under the launch's geometry; resident
// slices live in the kernel's dynamic shared memory.
template <class View>
__device__ Slice<View> slice_of(const View& view, const RowGeometry& g, const RowCluster& cl) {
  Slice<View> s{view};
  s.begin = cl.rank * g.slice;
  const int left = g.vocab - s.begin;
  s.count = left < 0 ? 0 : (left < g.slice ? left : g.slice);
  s.resident = g.resident;
  return s;
}

__device__ __forceinline__ int row_of_cluster(const RowCluster& cl) { return static_cast<int>(blockIdx.x) / cl.size; }

// Before the first cluster barrier: no level exchanged yet, every exchange slot clear.
__device__ __forceinline__ void init_shared(RowShared& s) {
  if (threadIdx.x == 0) s.exchanges = 0, s.num_listed = kListCapacity + 1, s.listed_above = false;  // nothing listed
  for (auto& slot : s.owned) slot.clear();
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

// Finds, once per plan, how `kernel` walks rows of `vocab` tokens on the
// current device: clusters where the architecture has them (sm_90 and later),
// slices resident in shared memory when `may_reside` and they fit beside the
// kernel's static shared memory, and how many clusters of kMaxCluster blocks
// the GPU co-schedules. Also sets the kernel's attributes (all of the SM's
// unified memory as shared memory, so two blocks fit; dynamic shared memory
// up to the device's limit, so plans of any vocabulary share them). Returns
// the first cudaError_t as an int.
template <class Params>
int describe_rows(void (*kernel)(Params, RowGeometry), int vocab, bool may_reside, RowLaunch* out) {
  int device = 0, major = 0, optin = 0;
  cudaFuncAttributes attributes{};
  for (const cudaError_t e : {cudaGetDevice(&device),
                              cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                              cudaDeviceGetAttribute(&out->sms, cudaDevAttrMultiProcessorCount, device),
                              cudaFuncGetAttributes(&attributes, kernel),
                              cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                                   cudaSharedmemCarveoutMaxShared),
                              cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   optin - static_cast<int>(attributes.sharedSizeBytes))})
    if (e != cudaSuccess) return static_cast<int>(e);
  const auto shape = [&](int size) {
    RowGeometry g;
    g.vocab = vocab;
    g.cluster = size;
    g.slice = (vocab + size - 1) / size;
    g.resident = may_reside && sizeof(float) * static_cast<std::size_t>(g.slice) + attributes.sharedSizeBytes <=
                                   static_cast<std::size_t>(optin);
    return g;
  };
  out->portable = shape(major >= 9 ? row_cluster_size(vocab) : 1);
  out->wide = RowGeometry{};
  out->wide.cluster = 0;
  if (out->portable.cluster != kPortableCluster) return static_cast<int>(cudaSuccess);
  const RowGeometry wide = shape(kMaxCluster);
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim = {static_cast<unsigned>(kMaxCluster), 1, 1};
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(kMaxCluster);
  config.blockDim = dim3(kRowThreads);
  config.dynamicSmemBytes = wide.resident ? sizeof(float) * static_cast<std::size_t>(wide.slice) : 0;
  config.attrs = &cluster;
  config.numAttrs = 1;
  int clusters = 0;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess &&
      cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) == cudaSuccess && clusters > 0) {
    out->wide = wide;
    out->wide_max_clusters = clusters;
  }
  cudaGetLastError();  // the wide shape may be refused: clear its error, the portable one serves
  return static_cast<int>(cudaSuccess);
}

// Launches kernel(params, geometry) with one cluster per row for `batch`
// rows: clusters of kMaxCluster blocks when the batch is too small to fill the
// GPU with the portable size and the GPU co-schedules them all, else the
// portable size. No device query: `launch` was found when the plan was made.
template <class Params>
int launch_rows(void (*kernel)(Params, RowGeometry), const RowLaunch& launch, const Params& params, int batch,
                void* stream) {
  const bool wide = launch.wide.cluster > 0 && batch * kMaxCluster <= 2 * launch.sms &&
                    launch.wide_max_clusters >= batch;
  const RowGeometry& g = wide ? launch.wide : launch.portable;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim = {static_cast<unsigned>(g.cluster), 1, 1};
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(batch) * static_cast<unsigned>(g.cluster));
  config.blockDim = dim3(kRowThreads);
  config.dynamicSmemBytes = g.resident ? sizeof(float) * static_cast<std::size_t>(g.slice) : 0;
  config.stream = static_cast<cudaStream_t>(stream);
  config.attrs = &cluster;
  config.numAttrs = g.cluster > 1 ? 1 : 0;
  return static_cast<int>(cudaLaunchKernelEx(&config, kernel, params, g));
}

}  // namespace kvserve::detail::cuda
