// The CUDA kernel table: every compiled configuration, as data. Each row's
// kernel is instantiated in the .cu file its comment names; `kvserve list`
// prints the table and selection answers from it.
#include <array>
#include <string>
#include <utility>

#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

struct DecodeConfig {
  DType q, kv;
  int head_dim;
};

// Paged decode (BatchPagedDecode, and the attention inside CascadeAttention
// and SingleDecode): q/out dtype x KV pool dtype x head_dim. Layout, page
// size, GQA ratio, soft-cap, window and split are run-time values.
constexpr DecodeConfig kDecodeConfigs[] = {
    // attention/decode_f16.cu
    {DType::f16, DType::f16, 64}, {DType::f16, DType::f16, 128}, {DType::f16, DType::f16, 256},
    // attention/decode_bf16.cu
    {DType::bf16, DType::bf16, 64}, {DType::bf16, DType::bf16, 128}, {DType::bf16, DType::bf16, 256},
    // attention/decode_f32.cu
    {DType::f32, DType::f32, 64}, {DType::f32, DType::f32, 128}, {DType::f32, DType::f32, 256},
    // attention/decode_fp8_e4m3.cu
    {DType::f16, DType::fp8_e4m3, 64}, {DType::f16, DType::fp8_e4m3, 128}, {DType::f16, DType::fp8_e4m3, 256},
    {DType::bf16, DType::fp8_e4m3, 64}, {DType::bf16, DType::fp8_e4m3, 128}, {DType::bf16, DType::fp8_e4m3, 256},
    // attention/decode_fp8_e5m2.cu
    {DType::f16, DType::fp8_e5m2, 64}, {DType::f16, DType::fp8_e5m2, 128}, {DType::f16, DType::fp8_e5m2, 256},
    {DType::bf16, DType::fp8_e5m2, 64}, {DType::bf16, DType::fp8_e5m2, 128}, {DType::bf16, DType::fp8_e5m2, 256},
};

// One entry per row, its launcher chosen at compile time from the row's values.
template <std::size_t... I>
constexpr auto make_decode_entries(std::index_sequence<I...>) {
  return std::array<DecodeKernelEntry, sizeof...(I)>{
      DecodeKernelEntry{kDecodeConfigs[I].q, kDecodeConfigs[I].kv, kDecodeConfigs[I].head_dim,
                        &launch_decode<kDecodeConfigs[I].q, kDecodeConfigs[I].kv, kDecodeConfigs[I].head_dim>}...};
}
constexpr auto kDecodeEntries = make_decode_entries(std::make_index_sequence<std::size(kDecodeConfigs)>{});

std::string decode_config_text(DType q, DType kv, int head_dim) {
  return "q=" + std::string(name_of(q)) + " kv=" + std::string(name_of(kv)) + " d=" + std::to_string(head_dim);
}

}  // namespace

Result<DecodeKernelEntry> find_decode_kernel(std::string_view op, DType q, DType kv, int head_dim) {
  std::string built_dims;
  for (const auto& e : kDecodeEntries) {
    if (e.q != q || e.kv != kv) continue;
    if (e.head_dim == head_dim) return e;
    built_dims += (built_dims.empty() ? "" : ",") + std::to_string(e.head_dim);
  }
  return Status::unsupported(std::string(op) + ": no CUDA kernel for " + decode_config_text(q, kv, head_dim) +
                             " (built: " +
                             (built_dims.empty() ? "no kernel for this dtype pair"
                                                 : "d in {" + built_dims + "} for this dtype pair") +
                             ")");
}

}  // namespace cuda

std::vector<CompiledKernel> cuda_compiled_kernels() {
  std::vector<CompiledKernel> out;
  for (const auto& e : cuda::kDecodeEntries)
    out.push_back({Backend::cuda, "BatchPagedDecode",
                   cuda::decode_config_text(e.q, e.kv, e.head_dim) + " layout=NHD|HND any page size and GQA ratio"});
  return out;
}

}  // namespace kvserve::detail
