// Multi-query attention and slot-merge kernels over bf16 (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/multi_query/multi_query_rows.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<MultiQueryLaunch> multi_query_launchers_bf16() {
  return instantiate_shard<MultiQueryLaunch, Family::multi_query, q_is<DType::bf16>, MultiQueryRow>();
}

// The sm_90a kernels are built when the binary holds sm_90a code for them:
// asked of one instance (on a Hopper device, the cubin it would run).
bool multi_query_sm90_built() {
  cudaFuncAttributes attributes{};
  return cudaFuncGetAttributes(&attributes, multi_query_sm90_kernel<DType::bf16, 128>) == cudaSuccess &&
         attributes.binaryVersion >= 90;
}

}  // namespace kvserve::detail::cuda
