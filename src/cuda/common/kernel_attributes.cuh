// Host-side launch configuration shared by the kernels' launchers.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace kvserve::detail::cuda {

// Sets a kernel's shared-memory attributes once per device (a launch then
// costs no attribute calls): the largest carveout (the paged-decode blocks of
// 48 or 96 KB four or two to an SM, the MLA decode block of 196 KB, need it;
// the driver may otherwise favour L1) and, past 48 KB, the opt-in to more
// dynamic shared memory. `configured_devices` is the kernel's own bit set.
template <class Kernel>
cudaError_t configure_once(Kernel kernel, int smem_bytes, std::atomic<std::uint64_t>& configured_devices) {
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const std::uint64_t bit = std::uint64_t{1} << (device % 64);
  if (configured_devices.load(std::memory_order_relaxed) & bit) return cudaSuccess;
  cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
  if (e == cudaSuccess && smem_bytes > 48 * 1024)
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (e == cudaSuccess) configured_devices.fetch_or(bit, std::memory_order_relaxed);
  return e;
}

}  // namespace kvserve::detail::cuda
