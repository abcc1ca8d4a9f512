// SingleDecode kernels over f32 caches (rows of src/cuda/kernel_table.cpp).
#include "cuda/single_decode/single_decode_kernels.cuh"

namespace kvserve::detail::cuda {

template int launch_single_decode<DType::f32, 64>(const SingleDecodeParams&, void*);
template int launch_single_decode<DType::f32, 128>(const SingleDecodeParams&, void*);
template int launch_single_decode<DType::f32, 256>(const SingleDecodeParams&, void*);

}  // namespace kvserve::detail::cuda
