// Paged-decode kernels over f16 pools (rows of src/cuda/kernel_table.cpp).
#include "cuda/paged_decode/decode_kernel.cuh"

namespace kvserve::detail::cuda {

template int launch_decode<DType::f16, DType::f16, 64>(const DecodeParams&, void*);
template int launch_decode<DType::f16, DType::f16, 128>(const DecodeParams&, void*);
template int launch_decode<DType::f16, DType::f16, 256>(const DecodeParams&, void*);

}  // namespace kvserve::detail::cuda
