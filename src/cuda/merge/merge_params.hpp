// What the merge kernels see (host-visible, no CUDA types): one row is one
// (token, head); a kernel thread merges one 16-byte chunk of a row over its
// states. Strides in elements.
#pragma once

#include <cstdint>

#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

struct MergeParams {
  std::int64_t tokens = 0;
  int num_states = 0;  // N: states per row (2 for MergeState)
  int num_heads = 0, head_dim = 0;
  // State s of (token, head): v + token * v_stride_t + s * v_stride_n + head * v_stride_h.
  // MergeState's two states are separate tensors: v_b is used for s = 1.
  const void* v = nullptr;
  const void* v_b = nullptr;
  std::int64_t v_stride_t = 0, v_stride_n = 0, v_stride_h = 0;
  std::int64_t vb_stride_t = 0, vb_stride_h = 0;
  const float* lse = nullptr;
  const float* lse_b = nullptr;
  std::int64_t lse_stride_t = 0, lse_stride_n = 0, lse_stride_h = 0;
  std::int64_t lseb_stride_t = 0, lseb_stride_h = 0;
  void* out = nullptr;
  std::int64_t out_stride_t = 0, out_stride_h = 0;
  float* lse_out = nullptr;  // null when not asked for
  std::int64_t lse_out_stride_t = 0, lse_out_stride_h = 0;
};

// The kernel's shape (merge_kernels.cuh): a block of kMergeThreads merges
// one token (or a slice of its heads), each thread kMergeRowsInFlight output
// chunks side by side with up to kMergeMaxStatesInFlight states of each
// loaded at once.
inline constexpr int kMergeThreads = 256;
inline constexpr int kMergeRowsInFlight = 2;
inline constexpr int kMergeMaxStatesInFlight = 8;
// The lse of a block's heads is staged in shared memory: 48 KB, no opt-in.
inline constexpr int kMergeStagedLse = 12288;
inline constexpr int kMergeMaxStates = kMergeStagedLse;  // at least one head's lse must fit

// Launches the merge kernel of dtype T; the cudaError_t as an int.
// Launches the kernel on `stream`; returns the cudaError_t as an int.
using MergeLaunch = int (*)(const MergeParams& p, void* stream);
// The launchers of the merge rows of one state dtype (merge/merge_<dtype>.cu).
RowLaunchers<MergeLaunch> merge_launchers_f16();
RowLaunchers<MergeLaunch> merge_launchers_bf16();
RowLaunchers<MergeLaunch> merge_launchers_f32();

}  // namespace kvserve::detail::cuda
