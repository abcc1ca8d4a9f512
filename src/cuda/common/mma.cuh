// Tensor-core building blocks shared by the attention kernels on mma.sync
// (paged decode, the multi-query kernel of cascade and prefill): the
// shared-memory swizzle their tiles use, ldmatrix loads, the m16n8k16 MMA
// with fp32 accumulation, and packing two floats into an A/B register.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/common/device_types.cuh"
#include "kvserve/dtype.hpp"

namespace kvserve::detail::cuda {

// A row of `chunks` 16-byte chunks lives in shared memory with chunk c of row
// r at c ^ (r % 8): the 8 rows an ldmatrix reads at one chunk then fall in 8
// different bank groups instead of one (rows are 128-512 bytes apart).
__device__ __forceinline__ int swizzle(int row, int chunk) { return chunk ^ (row & 7); }

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// d += a b for one m16n8k16 tile (a: 4 registers, b: 2, d: 4 floats).
template <DType T>
__device__ __forceinline__ void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if constexpr (T == DType::bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats rounded to T and packed (x in the low half).
template <DType T>
__device__ __forceinline__ unsigned pack2(float x, float y) {
  if constexpr (T == DType::bf16) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<const unsigned*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(x, y);
    return *reinterpret_cast<const unsigned*>(&v);
  }
}

// The online-softmax step of a lane's two MMA rows (lane / 4 and lane / 4 +
// 8): each row's max over the 4 lanes sharing it is folded into its state,
// and its columns of the N n-tiles of O are rescaled (skipped once the max
// settles: most tiles then save the 2 N multiplies).
template <int N>
__device__ __forceinline__ void rescale_row_pair(SoftmaxState (&st)[2], float (&row_max)[2], float (&o)[N][4]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 1));
    row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 2));
    const float factor = st[r].rescale_to(row_max[r]);
    if (factor != 1.f) {
#pragma unroll
      for (int n = 0; n < N; ++n) o[n][2 * r] *= factor, o[n][2 * r + 1] *= factor;
    }
  }
}

}  // namespace kvserve::detail::cuda
