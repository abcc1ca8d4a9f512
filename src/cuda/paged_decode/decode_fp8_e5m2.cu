// Paged-decode kernels over fp8_e5m2 pools (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/paged_decode/decode_kernel.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<DecodeLaunch> decode_launchers_fp8_e5m2() {
  return instantiate_shard<DecodeLaunch, Family::paged_decode, kv_is<DType::fp8_e5m2>, DecodeRow>();
}

}  // namespace kvserve::detail::cuda
