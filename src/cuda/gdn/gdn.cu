// The gated delta rule on the GPU, token by token with the state in
// registers: GdnPrefill over packed sequences and the GdnDecode step (one
// token against a slot of the state pool), one kernel.
//
// A block owns kGdnRowsPerBlock rows of one (sequence, head) state
// (f32 [d_v, d_k]): each warp loads its kGdnRowsPerWarp rows once (all their
// loads in flight together), keeps them in registers for every token of the
// sequence, and stores them once. Per token the block widens q and k (and
// L2-normalises them) into shared memory, each warp updates its rows
//   row_i <- alpha row_i + beta (v_i - alpha row_i . k) k,  o_i = scale row_i . q
// (a lane holds every 32nd element of a row: two warp reductions a row), and
// the outputs leave through shared memory in pairs. Shared buffers alternate
// between tokens, so a token costs one barrier; the outputs of a token are
// stored after the next token's barrier. A decode row whose slot is outside
// [0, num_slots) (the -1 of a padded row) writes zeros and reads no state.
//
// The recurrent form: exact and simple, sequential over a sequence's tokens.
// A chunked (WY / UT) tensor-core form for long prefills is issue 16's next
// step; this kernel is its reference on the GPU.
#include <cuda_runtime.h>

#include "cuda/common/device_types.cuh"
#include "cuda/gdn/gdn_params.hpp"
#include "cuda/registry/instantiate.hpp"

namespace kvserve::detail::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Element i of a row of T (pairs keep widen's contract: N a multiple of 2;
// every head dim is even).
template <DType T>
__device__ __forceinline__ float load_element(const void* row, int i) {
  float f[2];
  widen<T, 2>(static_cast<const storage_t<T>*>(row) + (i & ~1), f);
  return (i & 1) ? f[1] : f[0];
}

template <DType T>
__device__ __forceinline__ void store_pair(void* row, int i, float a, float b) {
  const float f[2] = {a, b};
  narrow<T, 2>(f, static_cast<storage_t<T>*>(row) + i);
}

template <DType T>
__device__ __forceinline__ void* out_row(const GdnParams& p, std::int64_t t, int h) {
  return static_cast<storage_t<T>*>(p.out) + t * p.out_stride_t + h * p.out_stride_h;
}

// PerLane: d_k / 32 rounded up to a power of two (1, 2, 4 or 8).
template <DType T, int PerLane>
__global__ void __launch_bounds__(kGdnThreads) gdn_kernel(const __grid_constant__ GdnParams p) {
  using t_storage = storage_t<T>;
  const int row_groups = (p.dv + kGdnRowsPerBlock - 1) / kGdnRowsPerBlock;
  const std::int64_t block = blockIdx.x;
  const int group = static_cast<int>(block % row_groups);
  const int h = static_cast<int>((block / row_groups) % p.heads);
  const std::int64_t b = block / (static_cast<std::int64_t>(row_groups) * p.heads);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int row0 = group * kGdnRowsPerBlock, rows = min(kGdnRowsPerBlock, p.dv - row0);

  // The sequence's tokens, clamped to [0, T] (a GPU trusts cu_seqlens, but a
  // bad one must not reach outside the tensors).
  std::int64_t t0 = b, t1 = b + 1;
  if (p.cu) {
    t0 = min(max(static_cast<std::int64_t>(p.cu[b]), std::int64_t{0}), p.tokens);
    t1 = min(max(static_cast<std::int64_t>(p.cu[b + 1]), t0), p.tokens);
  }
  std::int64_t slot = b;
  if (p.slots) {
    slot = p.slots[b];
    if (slot < 0 || slot >= p.num_slots) {
      for (int i = 2 * static_cast<int>(threadIdx.x); i < rows; i += 2 * kGdnThreads)
        store_pair<T>(out_row<T>(p, b, h), row0 + i, 0.f, 0.f);
      return;
    }
  }

  // The warp's rows: r = warp + 4 x, x < kGdnRowsPerWarp, loaded together.
  float s[kGdnRowsPerWarp][PerLane];
  if (p.state_in.data) {
    const float* in = p.state_in.data + slot * p.state_in.stride_s + h * p.state_in.stride_h;
#pragma unroll
    for (int x = 0; x < kGdnRowsPerWarp; ++x) {
      const int r = warp + 4 * x;
#pragma unroll
      for (int m = 0; m < PerLane; ++m) {
        const int j = lane + 32 * m;
        s[x][m] = r < rows && j < p.dk ? in[(row0 + r) * p.state_in.stride_row + j] : 0.f;
      }
    }
  } else {
#pragma unroll
    for (int x = 0; x < kGdnRowsPerWarp; ++x)
#pragma unroll
      for (int m = 0; m < PerLane; ++m) s[x][m] = 0.f;
  }

  __shared__ float q_s[2][256], k_s[2][256], out_s[2][kGdnRowsPerBlock];
  const auto store_outputs = [&](std::int64_t t) {
    const int buf = static_cast<int>(t & 1);
    for (int i = 2 * static_cast<int>(threadIdx.x); i < rows; i += 2 * kGdnThreads)
      store_pair<T>(out_row<T>(p, t, h), row0 + i, out_s[buf][i], out_s[buf][i + 1]);
  };
  const int qk_head = h / p.qk_group, v_head = h / p.v_group;
  for (std::int64_t t = t0; t < t1; ++t) {
    const int buf = static_cast<int>(t & 1);
    const auto* q = static_cast<const t_storage*>(p.q) + t * p.q_stride_t + qk_head * p.q_stride_h;
    const auto* k = static_cast<const t_storage*>(p.k) + t * p.k_stride_t + qk_head * p.k_stride_h;
    for (int j = static_cast<int>(threadIdx.x); j < p.dk; j += kGdnThreads) {
      q_s[buf][j] = load_element<T>(q, j);
      k_s[buf][j] = load_element<T>(k, j);
    }
    __syncthreads();
    if (t > t0) store_outputs(t - 1);  // every warp wrote them before this barrier

    float q_scale = p.scale, k_scale = 1.f;
    if (p.l2norm) {  // every warp sums the squares itself: no second barrier
      float qq = 0.f, kk = 0.f;
      for (int j = lane; j < p.dk; j += 32) qq = fmaf(q_s[buf][j], q_s[buf][j], qq), kk = fmaf(k_s[buf][j], k_s[buf][j], kk);
      q_scale *= 1.f / sqrtf(warp_sum(qq) + p.eps);
      k_scale = 1.f / sqrtf(warp_sum(kk) + p.eps);
    }
    float kr[PerLane], qr[PerLane];
#pragma unroll
    for (int m = 0; m < PerLane; ++m) {
      const int j = lane + 32 * m;
      kr[m] = j < p.dk ? k_s[buf][j] * k_scale : 0.f;
      qr[m] = j < p.dk ? q_s[buf][j] : 0.f;
    }
    const float alpha = p.alpha[t * p.alpha_stride_t + h], beta = p.beta[t * p.beta_stride_t + h];
    const void* v = static_cast<const t_storage*>(p.v) + t * p.v_stride_t + v_head * p.v_stride_h;
#pragma unroll
    for (int x = 0; x < kGdnRowsPerWarp; ++x) {
      const int r = warp + 4 * x;
      if (r >= rows) continue;  // uniform across the warp
      float sk = 0.f;
#pragma unroll
      for (int m = 0; m < PerLane; ++m) sk = fmaf(s[x][m], kr[m], sk);
      const float delta = beta * (load_element<T>(v, row0 + r) - alpha * warp_sum(sk));
      float sq = 0.f;
#pragma unroll
      for (int m = 0; m < PerLane; ++m) {
        s[x][m] = fmaf(alpha, s[x][m], delta * kr[m]);
        sq = fmaf(s[x][m], qr[m], sq);
      }
      sq = warp_sum(sq);
      if (lane == 0) out_s[buf][r] = q_scale * sq;
    }
  }
  if (t1 > t0) {
    __syncthreads();
    store_outputs(t1 - 1);
  }

  if (p.state_out.data) {
    float* out = p.state_out.data + slot * p.state_out.stride_s + h * p.state_out.stride_h;
#pragma unroll
    for (int x = 0; x < kGdnRowsPerWarp; ++x) {
      const int r = warp + 4 * x;
#pragma unroll
      for (int m = 0; m < PerLane; ++m)
        if (const int j = lane + 32 * m; r < rows && j < p.dk) out[(row0 + r) * p.state_out.stride_row + j] = s[x][m];
    }
  }
}

}  // namespace

template <DType T>
int launch_gdn(const GdnParams& p, void* stream) {
  const std::int64_t blocks = gdn_blocks(p.batch, p.heads, p.dv);
  if (blocks == 0) return static_cast<int>(cudaSuccess);
  const dim3 grid(static_cast<unsigned>(blocks));
  const auto s = static_cast<cudaStream_t>(stream);
  if (p.dk <= 32)
    gdn_kernel<T, 1><<<grid, kGdnThreads, 0, s>>>(p);
  else if (p.dk <= 64)
    gdn_kernel<T, 2><<<grid, kGdnThreads, 0, s>>>(p);
  else if (p.dk <= 128)
    gdn_kernel<T, 4><<<grid, kGdnThreads, 0, s>>>(p);
  else
    gdn_kernel<T, 8><<<grid, kGdnThreads, 0, s>>>(p);
  return static_cast<int>(cudaGetLastError());
}

template <KernelRow R>
struct GdnRow {
  static constexpr GdnLaunch launch = &launch_gdn<R.q>;
};
RowLaunchers<GdnLaunch> gdn_launchers() { return instantiate_shard<GdnLaunch, Family::gdn, every_row, GdnRow>(); }

}  // namespace kvserve::detail::cuda
