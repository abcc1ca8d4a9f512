// MergeState / MergeStates kernel over bf16 states (a row of src/cuda/kernel_table.cpp).
#include "cuda/merge/merge_kernels.cuh"

namespace kvserve::detail::cuda {

template int launch_merge<DType::bf16>(const MergeParams&, void*);

}  // namespace kvserve::detail::cuda
