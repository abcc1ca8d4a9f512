// SingleDecode ("FlashDecoding") on CUDA cores: decode reads each K/V byte
// once, so the work is a stream and tensor cores would buy nothing.
//
// Split kernel: grid (kv head, split, row); each of a block's warps takes an
// even share of the row's visible keys and serves every query head of the
// group (q in registers, kHeadsPerPass heads per pass over the keys). A warp
// holds 32 / kLanes tokens at a time, kLanes lanes per token, each lane 16 or
// 32 bytes of the row. (Loading 4 such steps ahead measured slower: 859
// against 718 us at B 64, L 4096, Hkv 8, bf16 d 128.) The token slots are merged with shuffles at the end and
// the warp writes one normalised partial state (out, lse) per head.
// Combine kernel: merge_states (the MergeStates rule) over a row's states.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/common/device_types.cuh"
#include "cuda/registry/instantiate.hpp"
#include "cuda/single_decode/single_decode_params.hpp"

namespace kvserve::detail::cuda {

template <DType T, int HeadDim>
struct SingleDecodeShape {
  static constexpr int kElems = 16 / static_cast<int>(sizeof(storage_t<T>));  // per 16-byte load
  static constexpr int kLanes = std::min(32, HeadDim / kElems);               // lanes per token
  static constexpr int kPerLane = HeadDim / kLanes;                           // elements per lane
  static constexpr int kSlots = 32 / kLanes;                                  // tokens per warp step
  static constexpr int kHeadsPerPass = 4;
};

// Folds another state of the same row (m, d and accumulator) into `state`.
template <int N>
__device__ __forceinline__ void fold_state(SoftmaxState& state, float (&acc)[N], float m_other, float d_other,
                                           const float (&acc_other)[N]) {
  const float factor = state.rescale_to(m_other);
  const float factor_other = state.weight(m_other);
  state.d += d_other * factor_other;
#pragma unroll
  for (int e = 0; e < N; ++e) acc[e] = acc[e] * factor + acc_other[e] * factor_other;
}

template <DType T, int HeadDim>
__global__ void __launch_bounds__(kSingleDecodeWarps * 32)
    single_decode_split_kernel(const __grid_constant__ SingleDecodeParams p) {
  using t = storage_t<T>;
  using S = SingleDecodeShape<T, HeadDim>;
  const int kv_head = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t b = blockIdx.z;
  const int slot = lane / S::kLanes, e0 = (lane % S::kLanes) * S::kPerLane;
  const int state_index = blockIdx.y * kSingleDecodeWarps + warp;

  // The row's visible keys [first, len), shared evenly among its states. A
  // kv_len outside [0, L] (which run() cannot check on the device) is clamped.
  const std::int64_t len =
      p.kv_len ? std::clamp<std::int64_t>(p.kv_len[b], 0, p.max_len) : p.max_len;
  const std::int64_t first = p.window_left >= 0 ? std::max<std::int64_t>(0, len - 1 - p.window_left) : 0;
  const std::int64_t share = (len - first + p.num_states - 1) / p.num_states;
  const std::int64_t begin = first + state_index * share, end = std::min(len, begin + share);

  const t* k_row = static_cast<const t*>(p.k) + b * p.k_stride_b + kv_head * p.k_stride_h + e0;
  const t* v_row = static_cast<const t*>(p.v) + b * p.v_stride_b + kv_head * p.v_stride_h + e0;
  for (int h0 = 0; h0 < p.group; h0 += S::kHeadsPerPass) {
    const int heads = min(S::kHeadsPerPass, p.group - h0);
    const int qo_head0 = kv_head * p.group + h0;
    float q[S::kHeadsPerPass][S::kPerLane];
    float acc[S::kHeadsPerPass][S::kPerLane] = {};
    SoftmaxState state[S::kHeadsPerPass];
#pragma unroll
    for (int i = 0; i < S::kHeadsPerPass; ++i) {
      alignas(16) t raw[S::kPerLane] = {};
      if (i < heads)
        copy16<sizeof(raw)>(raw, static_cast<const t*>(p.q) + b * p.q_stride_b + (qo_head0 + i) * p.q_stride_h + e0);
      widen<T, S::kPerLane>(raw, q[i]);
    }
    for (std::int64_t j = begin + slot; j - slot < end; j += S::kSlots) {
      const bool live = j < end;  // every lane of the warp takes part in the shuffles
      alignas(16) t k_raw[S::kPerLane] = {}, v_raw[S::kPerLane] = {};
      float k[S::kPerLane], v[S::kPerLane];
      if (live) {
        copy16<sizeof(k_raw)>(k_raw, k_row + j * p.k_stride_l);
        copy16<sizeof(v_raw)>(v_raw, v_row + j * p.v_stride_l);
      }
      widen<T, S::kPerLane>(k_raw, k);
      widen<T, S::kPerLane>(v_raw, v);
#pragma unroll
      for (int i = 0; i < S::kHeadsPerPass; ++i) {
        if (i >= heads) continue;
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < S::kPerLane; ++e) dot = fmaf(q[i][e], k[e], dot);
#pragma unroll
        for (int offset = S::kLanes / 2; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        if (!live) continue;
        const float s = p.cap_log2 > 0.f ? p.cap_log2 * tanhf(dot * p.q_scale) : dot * p.q_scale;
        const float factor = state[i].rescale_to(s);
        const float w = state[i].weight(s);
        state[i].d += w;
#pragma unroll
        for (int e = 0; e < S::kPerLane; ++e) acc[i][e] = fmaf(w, v[e], acc[i][e] * factor);
      }
    }
    // Merge the warp's token slots (lanes holding the same elements), then
    // slot 0 writes this warp's state of each head.
#pragma unroll
    for (int i = 0; i < S::kHeadsPerPass; ++i) {
      if (i >= heads) continue;
#pragma unroll
      for (int offset = S::kLanes; offset < 32; offset *= 2) {
        float other[S::kPerLane];
#pragma unroll
        for (int e = 0; e < S::kPerLane; ++e) other[e] = __shfl_xor_sync(0xffffffffu, acc[i][e], offset);
        const float m_other = __shfl_xor_sync(0xffffffffu, state[i].m, offset);
        const float d_other = __shfl_xor_sync(0xffffffffu, state[i].d, offset);
        fold_state(state[i], acc[i], m_other, d_other, other);
      }
      if (slot != 0) continue;
      const std::int64_t at = (b * p.num_qo_heads + qo_head0 + i) * p.num_states + state_index;
      const float inv = state[i].d > 0.f ? 1.f / state[i].d : 0.f;
      alignas(16) float normalised[S::kPerLane];
#pragma unroll
      for (int e = 0; e < S::kPerLane; ++e) normalised[e] = acc[i][e] * inv;
      copy16<sizeof(normalised)>(p.partial_out + at * HeadDim + e0, normalised);
      if (e0 == 0) p.partial_lse[at] = state[i].lse2() * kLn2;
    }
  }
}

// One thread per 16-byte chunk of an output row.
template <DType T, int HeadDim>
__global__ void __launch_bounds__(128) single_decode_combine_kernel(const __grid_constant__ SingleDecodeParams p) {
  using t = storage_t<T>;
  constexpr int kElems = 16 / static_cast<int>(sizeof(t)), kChunks = HeadDim / kElems;
  const std::int64_t thread = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t row = thread / kChunks;  // b * num_qo_heads + head
  if (row >= p.batch * p.num_qo_heads) return;
  const int e0 = static_cast<int>(thread % kChunks) * kElems;
  const std::int64_t b = row / p.num_qo_heads;
  const int head = static_cast<int>(row % p.num_qo_heads);
  float merged[kElems];
  const float lse = merge_states<kElems>(p.num_states, p.partial_lse + row * p.num_states, 1,
                                         p.partial_out + row * p.num_states * HeadDim + e0, HeadDim, merged);
  float* const lse_out = p.lse && e0 == 0 ? p.lse + b * p.lse_stride_b + head * p.lse_stride_h : nullptr;
  store_row<T, kElems>(merged, lse, static_cast<t*>(p.out) + b * p.out_stride_b + head * p.out_stride_h + e0,
                       lse_out);
}

template <DType T, int HeadDim>
int launch_single_decode(const SingleDecodeParams& p, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 split_grid(p.num_kv_heads, p.num_states / kSingleDecodeWarps, static_cast<unsigned>(p.batch));
  single_decode_split_kernel<T, HeadDim><<<split_grid, kSingleDecodeWarps * 32, 0, s>>>(p);
  constexpr int kChunks = HeadDim / (16 / static_cast<int>(sizeof(storage_t<T>)));
  const std::int64_t threads = p.batch * p.num_qo_heads * kChunks;
  single_decode_combine_kernel<T, HeadDim><<<static_cast<unsigned>((threads + 127) / 128), 128, 0, s>>>(p);
  return static_cast<int>(cudaGetLastError());
}

// A single-decode row's launcher (instantiated by single_decode_<dtype>.cu).
template <KernelRow R>
struct SingleDecodeRow {
  static constexpr SingleDecodeLaunch launch = &launch_single_decode<R.q, R.head_dim>;
};

}  // namespace kvserve::detail::cuda
