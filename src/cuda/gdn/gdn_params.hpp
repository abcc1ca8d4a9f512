// What the gated delta rule kernel sees (host-visible, no CUDA types). One
// kernel serves GdnPrefill (tokens cu[b] .. cu[b+1] of sequence b, states
// indexed by b) and GdnDecode (token b of sequence b, states indexed by
// slots[b]). Strides in elements; every last dimension is contiguous.
#pragma once

#include <cstdint>

#include "cuda/registry/registry.hpp"

namespace kvserve::detail::cuda {

// A state tensor [*, H, d_v, d_k] (f32): absent when data is null.
struct GdnState {
  float* data = nullptr;
  std::int64_t stride_s = 0, stride_h = 0, stride_row = 0;
};

struct GdnParams {
  std::int64_t batch = 0;           // sequences
  std::int64_t tokens = 0;          // T: token rows of q, k, v, alpha, beta and out
  const std::int32_t* cu = nullptr;  // prefill: [batch + 1] offsets; null: one token a sequence
  const std::int32_t* slots = nullptr;  // decode: [batch] state slots; null: state row b
  int num_slots = 0;                 // with slots: the pool's first extent
  int heads = 0;                     // H = max(num_qk_heads, num_v_heads)
  int qk_group = 1, v_group = 1;     // heads per q/k head, per v head
  int dk = 0, dv = 0;
  float scale = 0.f;
  bool l2norm = false;
  float eps = 0.f;
  const void* q = nullptr;
  std::int64_t q_stride_t = 0, q_stride_h = 0;
  const void* k = nullptr;
  std::int64_t k_stride_t = 0, k_stride_h = 0;
  const void* v = nullptr;
  std::int64_t v_stride_t = 0, v_stride_h = 0;
  const float* alpha = nullptr;
  const float* beta = nullptr;
  std::int64_t alpha_stride_t = 0, beta_stride_t = 0;
  GdnState state_in, state_out;  // in absent: zeros; out absent: not written
  void* out = nullptr;
  std::int64_t out_stride_t = 0, out_stride_h = 0;
};

// A block is 4 warps over kGdnRowsPerBlock state rows of one (sequence, head):
// a warp holds kGdnRowsPerWarp rows in registers for the whole sequence, a
// lane every 32nd element of each (d_k <= 256: at most 8 values a row), and
// reads and writes them once. 32 rows a block: a token's q and k, loaded and
// normalised once per block, serve 32 rows.
inline constexpr int kGdnThreads = 128;
inline constexpr int kGdnRowsPerBlock = 32;
inline constexpr int kGdnRowsPerWarp = kGdnRowsPerBlock / (kGdnThreads / 32);

// Blocks of a launch: batch x heads x ceil(d_v / kGdnRowsPerBlock).
inline std::int64_t gdn_blocks(std::int64_t batch, int heads, int dv) {
  return batch * heads * ((dv + kGdnRowsPerBlock - 1) / kGdnRowsPerBlock);
}

// Launches the kernel on `stream`; returns the cudaError_t as an int.
using GdnLaunch = int (*)(const GdnParams& p, void* stream);
// The launcher of every gdn row (gdn/gdn.cu).
RowLaunchers<GdnLaunch> gdn_launchers();

}  // namespace kvserve::detail::cuda
