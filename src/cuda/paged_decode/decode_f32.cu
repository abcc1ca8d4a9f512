// Paged-decode kernels over f32 pools (rows of src/cuda/kernel_table.cpp).
#include "cuda/paged_decode/decode_kernel.cuh"

namespace kvserve::detail::cuda {

template int launch_decode<DType::f32, DType::f32, 64>(const DecodeParams&, void*);
template int launch_decode<DType::f32, DType::f32, 128>(const DecodeParams&, void*);
template int launch_decode<DType::f32, DType::f32, 256>(const DecodeParams&, void*);

}  // namespace kvserve::detail::cuda
