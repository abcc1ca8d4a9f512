// Multi-query attention and slot-merge kernels over f16 (rows of src/cuda/kernel_table.cpp).
#include "cuda/multi_query/multi_query_kernel.cuh"

namespace kvserve::detail::cuda {

template int launch_multi_query<DType::f16, 64>(const MultiQueryParams&, void*);
template int launch_multi_query<DType::f16, 128>(const MultiQueryParams&, void*);
template int launch_multi_query<DType::f16, 256>(const MultiQueryParams&, void*);
template int launch_slot_merge<DType::f16>(const SlotMergeParams&, void*);

}  // namespace kvserve::detail::cuda
