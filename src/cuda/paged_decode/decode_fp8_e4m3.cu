// Paged-decode kernels over fp8_e4m3 pools (rows of src/cuda/kernel_table.cpp).
#include "cuda/paged_decode/decode_kernel.cuh"

namespace kvserve::detail::cuda {

template int launch_decode<DType::f16, DType::fp8_e4m3, 64>(const DecodeParams&, void*);
template int launch_decode<DType::f16, DType::fp8_e4m3, 128>(const DecodeParams&, void*);
template int launch_decode<DType::f16, DType::fp8_e4m3, 256>(const DecodeParams&, void*);
template int launch_decode<DType::bf16, DType::fp8_e4m3, 64>(const DecodeParams&, void*);
template int launch_decode<DType::bf16, DType::fp8_e4m3, 128>(const DecodeParams&, void*);
template int launch_decode<DType::bf16, DType::fp8_e4m3, 256>(const DecodeParams&, void*);

}  // namespace kvserve::detail::cuda
