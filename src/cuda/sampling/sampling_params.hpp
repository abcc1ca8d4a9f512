// What the sampling-family kernels see: plain structs of pointers, strides and
// scalars (host-visible, no CUDA types). Built by sampling_plans.cpp, read by
// the kernels of this folder. Rows run one cluster of thread blocks each.
#pragma once

#include <cstdint>

#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"

namespace kvserve::detail::cuda {

// A row's random stream: host values (stream = row) or per-row int32 tensors
// read as unsigned 32-bit values (stream 0), docs/sampling.md "Random numbers".
struct RandomParams {
  std::uint64_t seed = 0, offset = 0;
  const std::int32_t* seeds = nullptr;    // per_row, else null
  const std::int32_t* offsets = nullptr;  // per_row, else null
};

// A per-row parameter: the scalar, unless `rows` points at one value per row.
template <class T>
struct RowParam {
  T scalar{};
  const T* rows = nullptr;
};

struct SamplingParams {
  const float* input = nullptr;  // [B, vocab], row stride in elements
  std::int64_t input_stride = 0;
  std::int32_t* out = nullptr;  // [B]
  int batch = 0, vocab = 0;
  SamplingInput input_kind = SamplingInput::probs;
  SamplingFilter filter = SamplingFilter::none;
  TopKTopPOrder order = TopKTopPOrder::k_then_p;
  RowParam<float> temperature{1.f};
  RowParam<std::int32_t> top_k{1};
  RowParam<float> top_p{1.f};
  RowParam<float> min_p{0.f};
  RandomParams random;
};

struct RenormParams {
  const float* input = nullptr;  // [B, vocab]
  std::int64_t input_stride = 0;
  float* out = nullptr;  // [B, vocab]; may be `input`
  std::int64_t out_stride = 0;
  int batch = 0, vocab = 0;
  RenormKind kind = RenormKind::top_k_renorm_probs;
  RowParam<std::int32_t> top_k{1};
  RowParam<float> top_p{1.f};
};

struct SpeculativeParams {
  const std::int32_t* draft_ids = nullptr;  // [B, n]
  std::int64_t draft_ids_stride_b = 0, draft_ids_stride_t = 0;
  const float* draft_probs = nullptr;  // [B, n, vocab]
  std::int64_t draft_stride_b = 0, draft_stride_t = 0;
  const float* target_probs = nullptr;  // [B, n + 1, vocab]
  std::int64_t target_stride_b = 0, target_stride_t = 0;
  std::int32_t* out = nullptr;  // [B, n + 1]
  std::int64_t out_stride_b = 0, out_stride_t = 0;
  std::int32_t* accepted = nullptr;  // [B] or null
  std::int32_t* emitted = nullptr;   // [B] or null
  int batch = 0, vocab = 0, num_draft = 0;
  RandomParams random;
};

struct PenaltyParams {
  float* logits = nullptr;  // [B, vocab]
  std::int64_t logits_stride = 0;
  const std::int32_t* counts = nullptr;  // [B, vocab], token_counts history
  std::int64_t counts_stride = 0;
  const std::int32_t* token_ids = nullptr;  // [B, L], token_ids history
  std::int64_t ids_stride_b = 0, ids_stride_l = 0;
  std::int64_t history_len = 0;
  int batch = 0, vocab = 0;
  RowParam<float> repetition{1.f}, frequency{0.f}, presence{0.f};
};


// Threads per block of the sampling, renorm and speculative kernels.
inline constexpr int kRowThreads = 384;

// A row is walked by a cluster of blocks, each owning a slice of about
// kSliceTarget tokens (64 KB of f32: two blocks fit an SM's shared memory),
// at most kPortableCluster blocks and a power of two. Batches too small to
// fill the GPU take clusters of kMaxCluster (a non-portable size) where the
// GPU can schedule them: more SMs per row. The tokens do not depend on it.
inline constexpr int kSliceTarget = 16384;
inline constexpr int kPortableCluster = 8, kMaxCluster = 16;

constexpr int row_cluster_size(int vocab) {
  int size = 1;
  while (size < kPortableCluster && static_cast<long long>(size) * kSliceTarget < vocab) size *= 2;
  return size;
}

// How one launch splits its rows: `cluster` blocks per row, `slice` tokens
// per block; a resident slice is held in shared memory after one read.
struct RowGeometry {
  int vocab = 0, cluster = 1, slice = 0;
  bool resident = false;
};

// How a plan launches a row kernel (sampling, renorm, speculative), found
// once when the plan is made: the portable cluster shape, and clusters of
// kMaxCluster blocks (cluster 0 where the GPU has none) with how many of them
// it co-schedules. run() only picks one for its batch.
struct RowLaunch {
  RowGeometry portable, wide;
  int wide_max_clusters = 0;
  int sms = 0;
};

// Launchers: enqueue on `stream` (a cudaStream_t) and return the launch's
// cudaError_t as an int, so that this header stays free of CUDA types. The
// describe_* functions fill a RowLaunch for the current device.
int describe_sampling(SamplingInput in, SamplingFilter filter, int vocab, RowLaunch* out);
int describe_renorm(RenormKind kind, int vocab, RowLaunch* out);
int describe_speculative(int vocab, RowLaunch* out);
int launch_sampling(const SamplingParams& p, const RowLaunch& launch, void* stream);
int launch_renorm(const RenormParams& p, const RowLaunch& launch, void* stream);
int launch_speculative(const SpeculativeParams& p, const RowLaunch& launch, void* stream);
int launch_penalty(const PenaltyParams& p, void* stream);

}  // namespace kvserve::detail::cuda
