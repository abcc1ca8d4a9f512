// SingleDecode kernels over f16 caches (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/single_decode/single_decode_kernels.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<SingleDecodeLaunch> single_decode_launchers_f16() {
  return instantiate_shard<SingleDecodeLaunch, Family::single_decode, q_is<DType::f16>, SingleDecodeRow>();
}

}  // namespace kvserve::detail::cuda
