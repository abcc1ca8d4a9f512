// RmsNorm on the GPU (plain, Gemma, fused add, QK norm): a team of threads per
// row (norm_team), 16-byte loads. Pass 1 reads the row (and with fused_add the
// residual, adds, rounds once to the dtype and writes the residual back, as
// the CPU backend does), keeping up to kNormChunksInRegisters chunks a thread
// in registers and summing squares in fp32; the team reduces the sum in a
// fixed order (shuffles, then shared memory across warps); pass 2 scales and
// writes. Every row is read in full before any of it is written, so out may
// be x (or residual) itself.
#include <cuda_runtime.h>

#include "cuda/common/device_types.cuh"
#include "cuda/norm/norm_params.hpp"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {
namespace {

template <DType T>
__device__ __forceinline__ float sum_of_squares(const uint4& chunk) {
  constexpr int kElems = 16 / sizeof(storage_t<T>);
  float f[kElems];
  widen<T, kElems>(reinterpret_cast<const storage_t<T>*>(&chunk), f);
  float s = 0.f;
#pragma unroll
  for (int e = 0; e < kElems; ++e) s = fmaf(f[e], f[e], s);
  return s;
}

// residual + x rounded once to T; the rounded chunk is returned and stored.
template <DType T>
__device__ __forceinline__ uint4 add_into_residual(const uint4& x, uint4* residual) {
  constexpr int kElems = 16 / sizeof(storage_t<T>);
  float a[kElems], b[kElems];
  widen<T, kElems>(reinterpret_cast<const storage_t<T>*>(&x), a);
  widen<T, kElems>(reinterpret_cast<const storage_t<T>*>(residual), b);
#pragma unroll
  for (int e = 0; e < kElems; ++e) a[e] += b[e];
  uint4 sum;
  narrow<T, kElems>(a, reinterpret_cast<storage_t<T>*>(&sum));
  *residual = sum;
  return sum;
}

template <DType T>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const __grid_constant__ RmsNormParams p) {
  using t = storage_t<T>;
  constexpr int kElems = 16 / sizeof(t);
  constexpr int K = kNormChunksInRegisters;
  const int team = p.team, lane = static_cast<int>(threadIdx.x) % team;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (kNormThreads / team) + threadIdx.x / team;
  const bool live = row < p.outer * p.inner;
  const std::int64_t o = live ? row / p.inner : 0, i = live ? row % p.inner : 0;
  const auto* x = reinterpret_cast<const uint4*>(static_cast<const t*>(p.x) + o * p.x_stride_o + i * p.x_stride_i);
  auto* residual =
      p.residual ? reinterpret_cast<uint4*>(static_cast<t*>(p.residual) + o * p.residual_stride_o +
                                            i * p.residual_stride_i)
                 : nullptr;
  auto* out = reinterpret_cast<uint4*>(static_cast<t*>(p.out) + o * p.out_stride_o + i * p.out_stride_i);
  const auto* weight = static_cast<const uint4*>(p.weight);
  const int chunks = live ? p.hidden / kElems : 0;

  // Pass 1: the row's values (x, or the updated residual) and their squares.
  uint4 kept[K];
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (const int c = lane + k * team; c < chunks) kept[k] = x[c];
  float squares = 0.f;
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (const int c = lane + k * team; c < chunks) {
      if (residual) kept[k] = add_into_residual<T>(kept[k], residual + c);
      squares += sum_of_squares<T>(kept[k]);
    }
  for (int c = lane + K * team; c < chunks; c += team)
    squares += sum_of_squares<T>(residual ? add_into_residual<T>(x[c], residual + c) : x[c]);

  // The team's sum, in an order fixed by the team size.
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    if (offset < team) squares += __shfl_xor_sync(0xffffffffu, squares, offset);
  if (team == kNormThreads) {
    __shared__ float warp_sums[kNormThreads / 32];
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = squares;
    __syncthreads();
    squares = 0.f;
#pragma unroll
    for (int w = 0; w < kNormThreads / 32; ++w) squares += warp_sums[w];
  }
  const float inv_rms = 1.f / sqrtf(squares / static_cast<float>(p.hidden) + p.eps);

  // Pass 2: y = value * inv_rms * (weight_offset + w), rounded once.
  auto write = [&](int c, const uint4& value) {
    float v[kElems], w[kElems];
    widen<T, kElems>(reinterpret_cast<const t*>(&value), v);
    const uint4 wc = weight[c];
    widen<T, kElems>(reinterpret_cast<const t*>(&wc), w);
#pragma unroll
    for (int e = 0; e < kElems; ++e) v[e] = v[e] * inv_rms * (p.weight_offset + w[e]);
    uint4 y;
    narrow<T, kElems>(v, reinterpret_cast<t*>(&y));
    out[c] = y;
  };
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (const int c = lane + k * team; c < chunks) write(c, kept[k]);
  for (int c = lane + K * team; c < chunks; c += team) write(c, residual ? residual[c] : x[c]);
}

}  // namespace

template <DType T>
int launch_rms_norm(const RmsNormParams& p, void* stream) {
  const std::int64_t rows = p.outer * p.inner;
  if (rows == 0) return static_cast<int>(cudaSuccess);
  const std::int64_t rows_per_block = kNormThreads / p.team;
  const auto blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  rms_norm_kernel<T><<<blocks, kNormThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

template <KernelRow R>
struct NormRow {
  static constexpr NormLaunch launch = &launch_rms_norm<R.q>;
};
RowLaunchers<NormLaunch> norm_launchers() { return instantiate_shard<NormLaunch, Family::norm, every_row, NormRow>(); }

}  // namespace kvserve::detail::cuda
