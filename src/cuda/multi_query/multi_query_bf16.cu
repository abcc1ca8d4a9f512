// Multi-query attention and slot-merge kernels over bf16 (rows of src/cuda/kernel_table.cpp).
#include "cuda/multi_query/multi_query_kernel.cuh"

namespace kvserve::detail::cuda {

template int launch_multi_query<DType::bf16, 64>(const MultiQueryParams&, void*);
template int launch_multi_query<DType::bf16, 128>(const MultiQueryParams&, void*);
template int launch_multi_query<DType::bf16, 256>(const MultiQueryParams&, void*);
template int launch_slot_merge<DType::bf16>(const SlotMergeParams&, void*);

}  // namespace kvserve::detail::cuda
