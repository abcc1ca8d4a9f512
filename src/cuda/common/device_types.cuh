// Device building blocks shared by the CUDA kernels: element types and their
// widening to fp32, 16-byte vectors, asynchronous copies into shared memory,
// and the online-softmax state with its merge rule.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// ------------------------------------------------------------ elements ----

// The storage type of each DType on the device.
template <DType T> struct Storage;
template <> struct Storage<DType::f16> { using type = __half; };
template <> struct Storage<DType::bf16> { using type = __nv_bfloat16; };
template <> struct Storage<DType::f32> { using type = float; };
template <> struct Storage<DType::fp8_e4m3> { using type = __nv_fp8_storage_t; };
template <> struct Storage<DType::fp8_e5m2> { using type = __nv_fp8_storage_t; };
template <DType T> using storage_t = typename Storage<T>::type;

// Widens N consecutive elements starting at `src` (N a multiple of 2) to fp32.
template <DType T, int N>
__device__ __forceinline__ void widen(const storage_t<T>* src, float (&dst)[N]) {
  if constexpr (T == DType::f32) {
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = src[i];
  } else if constexpr (T == DType::f16) {
    const auto* p = reinterpret_cast<const __half2*>(src);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float2 f = __half22float2(p[i]);
      dst[2 * i] = f.x, dst[2 * i + 1] = f.y;
    }
  } else if constexpr (T == DType::bf16) {
    const auto* p = reinterpret_cast<const __nv_bfloat162*>(src);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float2 f = __bfloat1622float2(p[i]);
      dst[2 * i] = f.x, dst[2 * i + 1] = f.y;
    }
  } else {
    constexpr __nv_fp8_interpretation_t kind = T == DType::fp8_e4m3 ? __NV_E4M3 : __NV_E5M2;
    const auto* p = reinterpret_cast<const __nv_fp8x2_storage_t*>(src);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(p[i], kind)));
      dst[2 * i] = f.x, dst[2 * i + 1] = f.y;
    }
  }
}

// Rounds N fp32 values to T (f16, bf16 or f32) into dst (N a multiple of 2).
template <DType T, int N>
__device__ __forceinline__ void narrow(const float (&src)[N], storage_t<T>* dst) {
  if constexpr (T == DType::f32) {
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = src[i];
  } else if constexpr (T == DType::f16) {
    auto* p = reinterpret_cast<__half2*>(dst);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) p[i] = __floats2half2_rn(src[2 * i], src[2 * i + 1]);
  } else {
    static_assert(T == DType::bf16, "outputs are f16, bf16 or f32");
    auto* p = reinterpret_cast<__nv_bfloat162*>(dst);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) p[i] = __floats2bfloat162_rn(src[2 * i], src[2 * i + 1]);
  }
}

// Copies `Bytes` (a multiple of 16) between 16-byte aligned addresses with
// 16-byte accesses: the register round trip of a vectorised load or store.
template <int Bytes>
__device__ __forceinline__ void copy16(void* dst, const void* src) {
  static_assert(Bytes % 16 == 0, "16-byte accesses only");
#pragma unroll
  for (int i = 0; i < Bytes / 16; ++i) static_cast<uint4*>(dst)[i] = static_cast<const uint4*>(src)[i];
}

// Loads `Bytes` from global memory that another block of this grid may have
// written (through L2, skipping the incoherent L1).
template <int Bytes>
__device__ __forceinline__ void load16_cg(void* dst, const void* src) {
#pragma unroll
  for (int i = 0; i < Bytes / 16; ++i) static_cast<uint4*>(dst)[i] = __ldcg(static_cast<const uint4*>(src) + i);
}

// ---------------------------------------------------------- cp.async -------

// 16 bytes global -> shared without passing through registers; when `valid`
// is false the 16 shared bytes are zero-filled and global memory is not read.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// ------------------------------------------------------- softmax state -----

// The online-softmax state of one query row over a set of keys, in base 2
// (logits are pre-multiplied by log2 e so that exp2 does the work):
//   m: the largest logit seen, -inf while no key has been seen;
//   d: sum_j 2^(s_j - m), 0 while no key has been seen.
// The caller keeps the matching accumulator sum_j 2^(s_j - m) v_j beside it.
struct SoftmaxState {
  float m = -INFINITY;
  float d = 0.f;

  // Folds in the scores of new keys whose largest is `m_new_max`; returns the
  // factor the accumulator must be multiplied by before adding the new keys'
  // 2^(s - m) v terms (with m the updated max).
  __device__ __forceinline__ float rescale_to(float m_new_max) {
    const float m_next = fmaxf(m, m_new_max);
    // While both are -inf (no visible key yet) keep the factor finite: the
    // accumulator is 0 anyway, and -inf - -inf would be NaN.
    const float factor = m_next == -INFINITY ? 1.f : exp2f(m - m_next);
    d *= factor;
    m = m_next;
    return factor;
  }
  // 2^(s - m) for a key already folded in by rescale_to (0 for s = -inf).
  __device__ __forceinline__ float weight(float s) const { return m == -INFINITY ? 0.f : exp2f(s - m); }

  // log2 of the softmax denominator: -inf for a row that saw no key.
  __device__ __forceinline__ float lse2() const { return d > 0.f ? m + log2f(d) : -INFINITY; }
};

// Merges n normalised states of one row (MergeStates' rule, natural log):
// lse = log(sum_s e^lse_s), out = sum_s e^(lse_s - lse) v_s, over this lane's
// N elements of each v_s (v + s * v_stride, f32, 16-byte aligned; all n
// states must lie in readable memory). States with lse = -inf take no part
// (their v is loaded but never used); when all are -inf the row is 0 with
// lse -inf. Reads through L2: the states may have been written by other
// blocks of the same grid. The states are taken Batch at a time (Batch x N
// floats of registers), every load of a batch issued before the first is
// used, so that a merge of n states waits on n / Batch L2 round trips, not
// 2 n; the running maximum is rescaled once per batch. Returns the merged lse.
template <int N, int Batch = (N < 64 ? 64 / N : 1)>
__device__ __forceinline__ float merge_states(int n, const float* lse, std::int64_t lse_stride, const float* v,
                                              std::int64_t v_stride, float (&out)[N]) {
  float m = -INFINITY, sum = 0.f;
#pragma unroll
  for (int e = 0; e < N; ++e) out[e] = 0.f;
  for (int s0 = 0; s0 < n; s0 += Batch) {
    float l[Batch];
    alignas(16) float vs[Batch][N];
#pragma unroll
    for (int i = 0; i < Batch; ++i) {
      const int s = min(s0 + i, n - 1);  // past n: the last state again, left out below
      l[i] = s0 + i < n ? __ldcg(lse + s * lse_stride) : -INFINITY;
      load16_cg<N * sizeof(float)>(vs[i], v + s * v_stride);
    }
    float m_next = m;
#pragma unroll
    for (int i = 0; i < Batch; ++i) m_next = fmaxf(m_next, l[i]);
    if (m_next == -INFINITY) continue;  // no state with a key yet
    const float factor = expf(m - m_next);  // 0 while m is -inf (sum and out are 0 then)
    sum *= factor;
#pragma unroll
    for (int e = 0; e < N; ++e) out[e] *= factor;
#pragma unroll
    for (int i = 0; i < Batch; ++i) {
      const float w = expf(l[i] - m_next);
      if (w == 0.f) continue;  // an empty state's v (possibly never written) is not used
      sum += w;
#pragma unroll
      for (int e = 0; e < N; ++e) out[e] = fmaf(w, vs[i][e], out[e]);
    }
    m = m_next;
  }
  if (sum == 0.f) return -INFINITY;
  const float inv = 1.f / sum;
#pragma unroll
  for (int e = 0; e < N; ++e) out[e] *= inv;
  return m + logf(sum);
}

// Counts this block as one of `arrivals` blocks that write partial results
// for one `counter` (zero between runs). Every thread of the block calls it;
// it returns true in all threads of the block that arrived last, to which the
// other blocks' results are then visible, and leaves the counter at zero.
__device__ __forceinline__ bool last_to_arrive(unsigned* counter, int arrivals, int* flag_smem) {
  __threadfence();  // this block's results are visible device-wide before it is counted
  __syncthreads();
  if (threadIdx.x == 0) {
    const bool last = atomicAdd(counter, 1u) == static_cast<unsigned>(arrivals - 1);
    if (last) *counter = 0;  // every block has arrived: ready for the next run
    *flag_smem = last;
  }
  __syncthreads();
  const bool last = *flag_smem != 0;
  if (last) __threadfence();
  return last;
}

// Writes N results rounded to T (16-byte stores) and, where lse_out is not
// null, the row's lse.
template <DType T, int N>
__device__ __forceinline__ void store_row(const float (&values)[N], float lse, storage_t<T>* out, float* lse_out) {
  alignas(16) storage_t<T> packed[N];
  narrow<T, N>(values, packed);
  copy16<N * sizeof(storage_t<T>)>(out, packed);
  if (lse_out) *lse_out = lse;
}

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

}  // namespace kvserve::detail::cuda
