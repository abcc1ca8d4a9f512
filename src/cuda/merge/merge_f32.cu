// MergeState / MergeStates kernel over f32 states (a row of src/cuda/kernel_table.cpp).
#include "cuda/merge/merge_kernels.cuh"

namespace kvserve::detail::cuda {

template int launch_merge<DType::f32>(const MergeParams&, void*);

}  // namespace kvserve::detail::cuda
