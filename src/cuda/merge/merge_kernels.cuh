// MergeState / MergeStates on the GPU. A block merges one token's states for
// its heads (or a slice of them: at most two 16-byte chunks per thread); a
// pure stream, each input byte read once. Every thread issues the loads of
// its chunks of the first (up to) 8 states at its first instruction, before the block
// stages the lse values ([N, heads]) in shared memory and before any weight
// is known: no load waits on another. A token's states are one contiguous
// region ([N, H, D]), which its block reads as a whole.
// (The first version, a block per 16 rows that each read their own lse from
// global memory before loading any chunk, reached 2.75 TB/s at
// [8192, 8, 32, 128] bf16 and 1.73 TB/s with N = 2; a version of this one
// whose loads waited for the staged lse, 2.42 and 1.40.)
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/common/device_types.cuh"
#include "cuda/merge/merge_params.hpp"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {

// S: states loaded at once, N rounded up to 2, 4 or 8, so that few states
// cost few registers (and more resident blocks).
template <DType T, int S>
__global__ void __launch_bounds__(kMergeThreads)
    merge_states_kernel(const __grid_constant__ MergeParams p, int heads_per_block) {
  using t = storage_t<T>;
  constexpr int kElems = 16 / sizeof(t);
  constexpr int R = kMergeRowsInFlight;
  extern __shared__ float staged_lse[];  // [N][heads]
  const std::int64_t token = blockIdx.x;
  const int h0 = static_cast<int>(blockIdx.y) * heads_per_block;
  const int heads = min(heads_per_block, p.num_heads - h0);
  const int chunks = p.head_dim / kElems, states = p.num_states;
  const bool pair = p.v_b != nullptr;  // MergeState: state 1 is a tensor of its own

  int head[R], e0[R];  // head -1: no chunk for this slot
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int item = r * kMergeThreads + static_cast<int>(threadIdx.x);
    head[r] = item < heads * chunks ? item / chunks : -1;
    e0[r] = (item % chunks) * kElems;
  }
  uint4 raw[R][S];
  auto load_states = [&](int s0) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < S; ++i) {
        const int s = s0 + i, h = h0 + head[r];
        const t* chunk = pair && s == 1
                             ? static_cast<const t*>(p.v_b) + token * p.vb_stride_t + h * p.vb_stride_h + e0[r]
                             : static_cast<const t*>(p.v) + token * p.v_stride_t + s * p.v_stride_n +
                                   h * p.v_stride_h + e0[r];
        raw[r][i] = head[r] >= 0 && s < states ? __ldcs(reinterpret_cast<const uint4*>(chunk))
                                               : make_uint4(0, 0, 0, 0);
      }
  };
  load_states(0);

  for (int i = threadIdx.x; i < states * heads; i += blockDim.x) {
    const int s = i / heads, h = h0 + i % heads;
    staged_lse[i] = pair && s == 1 ? p.lse_b[token * p.lseb_stride_t + h * p.lseb_stride_h]
                                   : p.lse[token * p.lse_stride_t + s * p.lse_stride_n + h * p.lse_stride_h];
  }
  // Also orders every read of the lse before any write of lse_out, which may
  // be the same memory (MergeState in place); out may alias v_a, but each
  // thread reads its own chunks before it writes them.
  __syncthreads();

  // The MergeStates rule (merge.hpp): weights e^(lse_s - max); a state with
  // lse -inf gets weight 0 and its v, whatever it holds, is never used.
  float m[R], sum[R], acc[R][kElems];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY, sum[r] = 0.f;
    for (int s = 0; head[r] >= 0 && s < states; ++s) m[r] = fmaxf(m[r], staged_lse[s * heads + head[r]]);
#pragma unroll
    for (int e = 0; e < kElems; ++e) acc[r][e] = 0.f;
  }
  for (int s0 = 0; s0 < states; s0 += S) {
    if (s0 > 0) load_states(s0);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < S; ++i) {
        const int s = s0 + i;
        if (head[r] < 0 || s >= states || m[r] == -INFINITY) continue;
        const float w = expf(staged_lse[s * heads + head[r]] - m[r]);
        if (w == 0.f) continue;
        float v[kElems];
        widen<T, kElems>(reinterpret_cast<const t*>(&raw[r][i]), v);
        sum[r] += w;
#pragma unroll
        for (int e = 0; e < kElems; ++e) acc[r][e] = fmaf(w, v[e], acc[r][e]);
      }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (head[r] < 0) continue;
    if (sum[r] > 0.f) {
      const float inv = 1.f / sum[r];
#pragma unroll
      for (int e = 0; e < kElems; ++e) acc[r][e] *= inv;
    }
    const int h = h0 + head[r];
    const float lse = m[r] == -INFINITY ? -INFINITY : m[r] + logf(sum[r]);
    float* const lse_out =
        p.lse_out && e0[r] == 0 ? p.lse_out + token * p.lse_out_stride_t + h * p.lse_out_stride_h : nullptr;
    store_row<T, kElems>(acc[r], lse, static_cast<t*>(p.out) + token * p.out_stride_t + h * p.out_stride_h + e0[r],
                         lse_out);
  }
}

template <DType T>
int launch_merge(const MergeParams& p, void* stream) {
  if (p.tokens == 0) return static_cast<int>(cudaSuccess);
  // Heads per block: as many as the block's chunks (kMergeRowsInFlight per
  // thread) and the lse staging area (N x heads floats) hold; the plan
  // refuses N > kMergeMaxStates, and the merge plan at most 256 chunks a head.
  constexpr int kElems = 16 / static_cast<int>(sizeof(storage_t<T>));
  int heads_per_block = std::min(p.num_heads, kMergeRowsInFlight * kMergeThreads / (p.head_dim / kElems));
  if (p.num_states > 0) heads_per_block = std::min(heads_per_block, kMergeStagedLse / p.num_states);
  const dim3 grid(static_cast<unsigned>(p.tokens),
                  static_cast<unsigned>((p.num_heads + heads_per_block - 1) / heads_per_block));
  const std::size_t smem = sizeof(float) * static_cast<std::size_t>(p.num_states) * heads_per_block;
  const auto kernel = p.num_states <= 2   ? merge_states_kernel<T, 2>
                      : p.num_states <= 4 ? merge_states_kernel<T, 4>
                                          : merge_states_kernel<T, kMergeMaxStatesInFlight>;
  kernel<<<grid, kMergeThreads, smem, static_cast<cudaStream_t>(stream)>>>(p, heads_per_block);
  return static_cast<int>(cudaGetLastError());
}

// A merge row's launcher (instantiated by merge_<dtype>.cu).
template <KernelRow R>
struct MergeRow {
  static constexpr MergeLaunch launch = &launch_merge<R.q>;
};

}  // namespace kvserve::detail::cuda
