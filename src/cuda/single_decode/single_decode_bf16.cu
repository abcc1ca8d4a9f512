// SingleDecode kernels over bf16 caches (rows of src/cuda/kernel_table.cpp).
#include "cuda/single_decode/single_decode_kernels.cuh"

namespace kvserve::detail::cuda {

template int launch_single_decode<DType::bf16, 64>(const SingleDecodeParams&, void*);
template int launch_single_decode<DType::bf16, 128>(const SingleDecodeParams&, void*);
template int launch_single_decode<DType::bf16, 256>(const SingleDecodeParams&, void*);

}  // namespace kvserve::detail::cuda
