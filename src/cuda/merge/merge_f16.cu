// MergeState / MergeStates kernel over f16 states (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/merge/merge_kernels.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<MergeLaunch> merge_launchers_f16() {
  return instantiate_shard<MergeLaunch, Family::merge, q_is<DType::f16>, MergeRow>();
}

}  // namespace kvserve::detail::cuda
