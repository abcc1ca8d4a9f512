// Hopper (sm_90a) building blocks of the warp-specialised attention kernel:
// mbarriers (the producer / consumer handshake over a shared-memory ring),
// named barriers, register reallocation between warpgroups, the wgmma
// fence / commit / wait and the shared-memory matrix descriptors; the MMAs
// themselves are in wgmma_ops.cuh. Every function compiles to nothing (or a
// trap) outside sm_90a, where the kernels using them are never launched.
//
// Tile layout wgmma and this file agree on ("128-byte swizzle"): a matrix of
// `rows` rows is stored as column blocks of 64 16-bit elements (128 bytes a
// row), each block rows x 128 bytes, 1024-byte aligned; within a block the
// 16-byte chunk c of row r sits at chunk c ^ (r % 8), the swizzle() of
// mma.cuh, so that 8 rows read at one column hit 8 different bank groups.
#pragma once

#include <cstdint>

#include "cuda/common/wgmma_ops.cuh"

namespace kvserve::detail::cuda {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KVSERVE_SM90A 1
#else
#define KVSERVE_SM90A 0
#endif

__device__ __forceinline__ std::uint32_t smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// ------------------------------------------------------------ mbarrier ----

__device__ __forceinline__ void mbarrier_init(std::uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_address(bar)), "r"(count) : "memory");
}
// Release: this thread's earlier writes are visible to whoever waits for the phase.
__device__ __forceinline__ void mbarrier_arrive(std::uint64_t* bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(smem_address(bar))
               : "memory");
}
// Blocks until the barrier's phase of parity `parity` has completed (acquire).
// A protocol bug must not hang the process: after ~10 s (2^34 cycles) of
// waiting the kernel traps, and the launch's stream reports the error.
__device__ __forceinline__ void mbarrier_wait(std::uint64_t* bar, int parity) {
  const std::uint32_t address = smem_address(bar);
  std::uint32_t done = 0;
  long long start = 0;
  for (;;) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address), "r"(parity)
        : "memory");
    if (done != 0) return;
    if (start == 0) start = clock64();
    else if (clock64() - start > (1ll << 34)) __trap();
  }
}

// ------------------------------------------------------ other barriers ----

// Threads `count` (a multiple of 32) meet at named barrier `id` (1..15; 0 is
// __syncthreads()).
__device__ __forceinline__ void named_barrier_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

// Generic-proxy writes to shared memory (st.shared, cp.async) made visible
// to the async proxy wgmma reads through: each writer fences before the
// barrier its readers wait on.
__device__ __forceinline__ void fence_async_shared() {
#if KVSERVE_SM90A
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// --------------------------------------------------------- registers ----

// Moves registers between warpgroups (every thread of the warpgroup runs it):
// the producer gives up what its copies do not need to the consumers' fp32
// accumulators. Counts are multiples of 8 in [24, 256].
template <int Count>
__device__ __forceinline__ void registers_release() {
#if KVSERVE_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Count));
#endif
}
template <int Count>
__device__ __forceinline__ void registers_claim() {
#if KVSERVE_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Count));
#endif
}

// -------------------------------------------------------------- wgmma ----

// Orders earlier register writes (accumulators, A fragments) before the
// wgmma that reads them.
__device__ __forceinline__ void wgmma_fence() {
#if KVSERVE_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if KVSERVE_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until at most `Pending` committed groups are still running.
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
#if KVSERVE_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
#endif
}
// Keeps the compiler from moving accesses of accumulator `r` across an
// asynchronous wgmma that owns it.
template <int N>
__device__ __forceinline__ void pin_registers(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// A shared-memory matrix descriptor for the 128-byte swizzle layout above.
// start: the first element's byte address; `leading` and `stride` byte
// offsets as the PTX ISA defines them for the operand's major-ness:
// - K-major (A = Q, B = K; the reduction dimension contiguous): 8-row groups
//   are `stride` = 1024 bytes apart, `leading` unused (a k16 step stays inside
//   a 128-byte row); stepping k moves `start` by 32 bytes.
// - MN-major (B = V, transposed: head-dim columns contiguous): 8-key groups
//   are `stride` = 1024 bytes apart, 64-column blocks `leading` bytes apart.
__device__ __forceinline__ std::uint64_t smem_descriptor(std::uint32_t start, std::uint32_t leading,
                                                         std::uint32_t stride) {
  std::uint64_t d = 0;
  d |= static_cast<std::uint64_t>((start & 0x3FFFF) >> 4);
  d |= static_cast<std::uint64_t>((leading & 0x3FFFF) >> 4) << 16;
  d |= static_cast<std::uint64_t>((stride & 0x3FFFF) >> 4) << 32;
  d |= std::uint64_t{1} << 62;  // 128-byte swizzle
  return d;
}

// Byte offset of element (row, col) of a 128-byte-swizzled tile of `rows` rows.
__device__ __forceinline__ int swizzled_offset(int rows, int row, int col) {
  return (col / 64) * rows * 128 + row * 128 + ((((col % 64) / 8) ^ (row % 8)) * 16) + (col % 8) * 2;
}

}  // namespace kvserve::detail::cuda
