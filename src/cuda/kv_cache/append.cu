// PagedKvAppend kernels: every (row dtype, pool dtype) row of
// src/cuda/kernel_table.cpp. Each is a few dozen instructions, so one file.
#include "cuda/kv_cache/append_kernels.cuh"

namespace kvserve::detail::cuda {

template int launch_append<DType::f16, DType::f16>(const AppendParams&, void*);
template int launch_append<DType::bf16, DType::bf16>(const AppendParams&, void*);
template int launch_append<DType::f32, DType::f32>(const AppendParams&, void*);
template int launch_append<DType::fp8_e4m3, DType::fp8_e4m3>(const AppendParams&, void*);
template int launch_append<DType::fp8_e5m2, DType::fp8_e5m2>(const AppendParams&, void*);
template int launch_append<DType::f16, DType::fp8_e4m3>(const AppendParams&, void*);
template int launch_append<DType::bf16, DType::fp8_e4m3>(const AppendParams&, void*);
template int launch_append<DType::f32, DType::fp8_e4m3>(const AppendParams&, void*);
template int launch_append<DType::f16, DType::fp8_e5m2>(const AppendParams&, void*);
template int launch_append<DType::bf16, DType::fp8_e5m2>(const AppendParams&, void*);
template int launch_append<DType::f32, DType::fp8_e5m2>(const AppendParams&, void*);

}  // namespace kvserve::detail::cuda
