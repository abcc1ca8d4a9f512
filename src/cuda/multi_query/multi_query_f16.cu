// Multi-query attention and slot-merge kernels over f16 (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/multi_query/multi_query_rows.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<MultiQueryLaunch> multi_query_launchers_f16() {
  return instantiate_shard<MultiQueryLaunch, Family::multi_query, q_is<DType::f16>, MultiQueryRow>();
}

}  // namespace kvserve::detail::cuda
