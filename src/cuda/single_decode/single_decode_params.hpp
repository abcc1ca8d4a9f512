// What the SingleDecode kernels see (host-visible, no CUDA types). Strides in
// elements; the last dim of q, k, v and out is contiguous.
#pragma once

#include <cstdint>

#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// Warps per block of the split kernel; each warp is one partial state.
inline constexpr int kSingleDecodeWarps = 4;

struct SingleDecodeParams {
  std::int64_t batch = 0;
  int num_qo_heads = 0, num_kv_heads = 0, group = 0;
  // Partial states per (row, query head): splits x kSingleDecodeWarps.
  int num_states = 0;
  const void* q = nullptr;
  std::int64_t q_stride_b = 0, q_stride_h = 0;
  const void* k = nullptr;
  const void* v = nullptr;
  std::int64_t k_stride_b = 0, k_stride_h = 0, k_stride_l = 0;
  std::int64_t v_stride_b = 0, v_stride_h = 0, v_stride_l = 0;
  std::int64_t max_len = 0;                  // L
  const std::int32_t* kv_len = nullptr;      // null: every row uses all L
  float q_scale = 0.f;                       // see cap_log2
  float cap_log2 = 0.f;                      // 0: no soft-cap, logits are q.k * q_scale (base 2)
  int window_left = -1;
  // Workspace: state s of (row b, query head h) at (b * num_qo_heads + h) * num_states + s.
  float* partial_out = nullptr;  // [.., head_dim] normalised outputs
  float* partial_lse = nullptr;  // natural-log lse, -inf for a state that saw no key
  void* out = nullptr;
  std::int64_t out_stride_b = 0, out_stride_h = 0;
  float* lse = nullptr;  // null when not asked for
  std::int64_t lse_stride_b = 0, lse_stride_h = 0;
};

// Launches a row's split kernel and combine kernel on the stream; the
// cudaError_t as an int.
using SingleDecodeLaunch = int (*)(const SingleDecodeParams& p, void* stream);
// The launchers of the single-decode rows of one dtype (single_decode_<dtype>.cu).
RowLaunchers<SingleDecodeLaunch> single_decode_launchers_f16();
RowLaunchers<SingleDecodeLaunch> single_decode_launchers_bf16();
RowLaunchers<SingleDecodeLaunch> single_decode_launchers_f32();

}  // namespace kvserve::detail::cuda
