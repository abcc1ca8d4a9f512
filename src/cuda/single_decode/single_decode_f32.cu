// SingleDecode kernels over f32 caches (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/single_decode/single_decode_kernels.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<SingleDecodeLaunch> single_decode_launchers_f32() {
  return instantiate_shard<SingleDecodeLaunch, Family::single_decode, q_is<DType::f32>, SingleDecodeRow>();
}

}  // namespace kvserve::detail::cuda
