#include "kvserve/core.hpp"

#if KVSERVE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvserve {

bool cuda_backend_built() { return KVSERVE_WITH_CUDA != 0; }

int cuda_device_count() {
#if KVSERVE_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error, report none
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

}  // namespace kvserve
