// Paged-decode kernels over bf16 pools (rows of src/cuda/kernel_table.cpp).
#include "cuda/paged_decode/decode_kernel.cuh"

namespace kvserve::detail::cuda {

template int launch_decode<DType::bf16, DType::bf16, 64>(const DecodeParams&, void*);
template int launch_decode<DType::bf16, DType::bf16, 128>(const DecodeParams&, void*);
template int launch_decode<DType::bf16, DType::bf16, 256>(const DecodeParams&, void*);

}  // namespace kvserve::detail::cuda
