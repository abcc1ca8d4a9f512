// MergeState / MergeStates kernel over f32 states (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/merge/merge_kernels.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<MergeLaunch> merge_launchers_f32() {
  return instantiate_shard<MergeLaunch, Family::merge, q_is<DType::f32>, MergeRow>();
}

}  // namespace kvserve::detail::cuda
