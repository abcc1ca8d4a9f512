// Paged-decode kernels over f32 pools (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/paged_decode/decode_kernel.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<DecodeLaunch> decode_launchers_f32() {
  return instantiate_shard<DecodeLaunch, Family::paged_decode, kv_is<DType::f32>, DecodeRow>();
}

}  // namespace kvserve::detail::cuda
