// What the RmsNorm kernel sees (host-visible, no CUDA types). Rows are
// (outer, inner) pairs: [rows, H] has inner extent 1, QK norm's
// [tokens, heads, H] has inner = heads. Strides in elements.
#pragma once

#include <cstdint>

#include "cuda/registry/registry.hpp"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

struct RmsNormParams {
  std::int64_t outer = 0;
  std::int64_t inner = 1;
  int hidden = 0;
  float eps = 0.f, weight_offset = 0.f;
  const void* x = nullptr;
  std::int64_t x_stride_o = 0, x_stride_i = 0;
  void* residual = nullptr;  // fused add: read and written; null otherwise
  std::int64_t residual_stride_o = 0, residual_stride_i = 0;
  void* out = nullptr;
  std::int64_t out_stride_o = 0, out_stride_i = 0;
  const void* weight = nullptr;
  // Threads per row: a power of two up to 32 (a row within one warp) or
  // kNormThreads (a row per block). A function of hidden only, so a row's
  // result never depends on the other rows.
  int team = 32;
};

inline constexpr int kNormThreads = 256;
// 16-byte chunks a thread keeps in registers between the sum of squares and
// the scaling; chunks beyond are read again (from L2) for the second pass.
inline constexpr int kNormChunksInRegisters = 8;

// Threads per row for a row of `chunks` 16-byte chunks: small rows (QK norm's
// head_dim) share a warp, up to 4 chunks a lane; larger ones take a block.
constexpr int norm_team(int chunks) {
  if (chunks > 32 * 4) return kNormThreads;
  int team = 1;
  while (team < 32 && team * 4 < chunks) team *= 2;
  return team;
}

// Launches the kernel on `stream`; returns the cudaError_t as an int.
using NormLaunch = int (*)(const RmsNormParams& p, void* stream);
// The launcher of every norm row (norm/norm.cu).
RowLaunchers<NormLaunch> norm_launchers();

}  // namespace kvserve::detail::cuda
