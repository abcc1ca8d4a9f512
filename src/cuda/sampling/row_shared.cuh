// The one shared-memory struct of a row kernel's block (RowShared): its
// histograms and exchange slots, CUB's temporary storage, the mailbox the
// other blocks of the cluster read, the broadcast slots of block-wide
// results, and the candidate and token lists of the radix selection. Also
// the reductions that combine what blocks learn about a row, and the pushes
// of level 0 to the buckets' owners.
#pragma once

#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "cuda/sampling/row_cluster.cuh"
#include "cuda/sampling/row_histograms.cuh"
#include "cuda/sampling/sampling_params.hpp"

namespace kvserve::detail::cuda {

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

// Whether token (code, index) ranks above token (than_code, than_index): a
// higher code, or the same at a lower index; index -1 is no token.
__device__ __forceinline__ bool ranks_above(unsigned code, int index, unsigned than_code, int than_index) {
  return than_index < 0 || (index >= 0 && (code > than_code || (code == than_code && index < than_index)));
}

// Two parts' RowStats as the whole's (the block reduction, then the cluster's).
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

// What a block shows the rest of its cluster (read through distributed shared
// memory after a cluster barrier).
struct Mailbox {
  RowStats stats;
  float max;
  u64 slice_sum;
  int found;
};

// Where a block's sum sits in the row's, for a crossing search: the
// crossing's target, target_of(every block's sum), and the sums of the
// blocks before this one.
struct Placement {
  u64 target, before;
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
  // Block-wide results, written by one thread and read by all after a
  // barrier, each inside the function that returns it (row_stats, row_max,
  // place_block, pick_bucket).
  RowStats row;
  float max;
  Placement placed;
  unsigned digit;
  // The radix selection's running sums: the tokens ranked above the chosen
  // prefix, and at it (the chosen bucket); fine: level 0's chosen coarse
  // bucket, summed over the cluster.
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

// Before the first cluster barrier: no level exchanged yet, every exchange slot clear.
__device__ __forceinline__ void init_shared(RowShared& s) {
  if (threadIdx.x == 0) s.exchanges = 0, s.num_listed = kListCapacity + 1, s.listed_above = false;  // nothing listed
  for (auto& slot : s.owned) slot.clear();
}

}  // namespace kvserve::detail::cuda
