// MergeState / MergeStates kernel over bf16 states (its rows of src/cuda/registry/kernel_rows.hpp).
#include "cuda/merge/merge_kernels.cuh"

namespace kvserve::detail::cuda {

RowLaunchers<MergeLaunch> merge_launchers_bf16() {
  return instantiate_shard<MergeLaunch, Family::merge, q_is<DType::bf16>, MergeRow>();
}

}  // namespace kvserve::detail::cuda
