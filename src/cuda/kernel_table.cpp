// The CUDA kernel table: every compiled configuration, as data. Each row's
// kernel is instantiated in the .cu file its comment names; `kvserve list`
// prints the table and selection answers from it.
#include <array>
#include <string>
#include <utility>

#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"
#include "cuda/multi_query/multi_query_schedule.hpp"

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
    // paged_decode/decode_f16.cu
    {DType::f16, DType::f16, 64}, {DType::f16, DType::f16, 128}, {DType::f16, DType::f16, 256},
    // paged_decode/decode_bf16.cu
    {DType::bf16, DType::bf16, 64}, {DType::bf16, DType::bf16, 128}, {DType::bf16, DType::bf16, 256},
    // paged_decode/decode_f32.cu
    {DType::f32, DType::f32, 64}, {DType::f32, DType::f32, 128}, {DType::f32, DType::f32, 256},
    // paged_decode/decode_fp8_e4m3.cu
    {DType::f16, DType::fp8_e4m3, 64}, {DType::f16, DType::fp8_e4m3, 128}, {DType::f16, DType::fp8_e4m3, 256},
    {DType::bf16, DType::fp8_e4m3, 64}, {DType::bf16, DType::fp8_e4m3, 128}, {DType::bf16, DType::fp8_e4m3, 256},
    // paged_decode/decode_fp8_e5m2.cu
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

// MergeState and MergeStates (one kernel for both): state dtype; head_dim,
// N and the strides are run-time values. merge/merge_<dtype>.cu.
constexpr DType kMergeDtypes[] = {DType::f16, DType::bf16, DType::f32};

template <std::size_t... I>
constexpr auto make_merge_entries(std::index_sequence<I...>) {
  return std::array<MergeKernelEntry, sizeof...(I)>{
      MergeKernelEntry{kMergeDtypes[I], &launch_merge<kMergeDtypes[I]>}...};
}
constexpr auto kMergeEntries = make_merge_entries(std::make_index_sequence<std::size(kMergeDtypes)>{});

// PagedKvAppend (decode and ragged modes, any layout, page size, head_dim):
// new rows' dtype x pool dtype; fp8 pools also take f16 / bf16 / f32 rows,
// quantised with the descriptor's scales. kv_cache/append.cu.
struct AppendConfig {
  DType row, pool;
};
constexpr AppendConfig kAppendConfigs[] = {
    {DType::f16, DType::f16},           {DType::bf16, DType::bf16},         {DType::f32, DType::f32},
    {DType::fp8_e4m3, DType::fp8_e4m3}, {DType::fp8_e5m2, DType::fp8_e5m2}, {DType::f16, DType::fp8_e4m3},
    {DType::bf16, DType::fp8_e4m3},     {DType::f32, DType::fp8_e4m3},      {DType::f16, DType::fp8_e5m2},
    {DType::bf16, DType::fp8_e5m2},     {DType::f32, DType::fp8_e5m2},
};

template <std::size_t... I>
constexpr auto make_append_entries(std::index_sequence<I...>) {
  return std::array<AppendKernelEntry, sizeof...(I)>{AppendKernelEntry{
      kAppendConfigs[I].row, kAppendConfigs[I].pool, &launch_append<kAppendConfigs[I].row, kAppendConfigs[I].pool>}...};
}
constexpr auto kAppendEntries = make_append_entries(std::make_index_sequence<std::size(kAppendConfigs)>{});

// RmsNorm (plain, Gemma, fused add, QK norm): dtype; hidden_size (a
// multiple of the 16-byte chunk), row strides and the variant are run-time
// values. norm/norm.cu.
constexpr DType kNormDtypes[] = {DType::f16, DType::bf16, DType::f32};

template <std::size_t... I>
constexpr auto make_norm_entries(std::index_sequence<I...>) {
  return std::array<NormKernelEntry, sizeof...(I)>{NormKernelEntry{kNormDtypes[I], &launch_rms_norm<kNormDtypes[I]>}...};
}
constexpr auto kNormEntries = make_norm_entries(std::make_index_sequence<std::size(kNormDtypes)>{});

// SingleDecode (contiguous caches, split along L): dtype x head_dim; strides,
// GQA ratio, soft-cap, window and split count are run-time values.
// single_decode/single_decode_<dtype>.cu.
struct SingleDecodeConfig {
  DType dtype;
  int head_dim;
};
constexpr SingleDecodeConfig kSingleDecodeConfigs[] = {
    {DType::f16, 64},  {DType::f16, 128},  {DType::f16, 256}, {DType::bf16, 64}, {DType::bf16, 128},
    {DType::bf16, 256}, {DType::f32, 64}, {DType::f32, 128}, {DType::f32, 256},
};

template <std::size_t... I>
constexpr auto make_single_decode_entries(std::index_sequence<I...>) {
  return std::array<SingleDecodeKernelEntry, sizeof...(I)>{SingleDecodeKernelEntry{
      kSingleDecodeConfigs[I].dtype, kSingleDecodeConfigs[I].head_dim,
      &launch_single_decode<kSingleDecodeConfigs[I].dtype, kSingleDecodeConfigs[I].head_dim>}...};
}
constexpr auto kSingleDecodeEntries =
    make_single_decode_entries(std::make_index_sequence<std::size(kSingleDecodeConfigs)>{});

// Multi-query attention on the tensor cores (CascadeAttention's prefix and
// suffix passes; prefill): q / KV / out dtype x head_dim, with the slot
// merge of the same dtype. Layout, page size, GQA ratio, soft-cap, window
// and splits are run-time values. multi_query/multi_query_<dtype>.cu.
struct MultiQueryConfig {
  DType dtype;
  int head_dim;
};
constexpr MultiQueryConfig kMultiQueryConfigs[] = {
    {DType::f16, 64}, {DType::f16, 128}, {DType::f16, 256}, {DType::bf16, 64}, {DType::bf16, 128}, {DType::bf16, 256},
};

template <std::size_t... I>
constexpr auto make_multi_query_entries(std::index_sequence<I...>) {
  return std::array<MultiQueryKernelEntry, sizeof...(I)>{MultiQueryKernelEntry{
      kMultiQueryConfigs[I].dtype, kMultiQueryConfigs[I].head_dim,
      &launch_multi_query<kMultiQueryConfigs[I].dtype, kMultiQueryConfigs[I].head_dim>,
      &launch_slot_merge<kMultiQueryConfigs[I].dtype>}...};
}
constexpr auto kMultiQueryEntries = make_multi_query_entries(std::make_index_sequence<std::size(kMultiQueryConfigs)>{});

// Appends head_dim d to a comma-separated list. (Spelled as appends: GCC 12
// flags `"," + std::to_string(d)`, inlined, with a false -Wrestrict.)
void append_dim(std::string* list, int d) {
  if (!list->empty()) list->push_back(',');
  list->append(std::to_string(d));
}

std::string decode_config_text(DType q, DType kv, int head_dim) {
  return "q=" + std::string(name_of(q)) + " kv=" + std::string(name_of(kv)) + " d=" + std::to_string(head_dim);
}

// The sampling family (sampling/*.cu): every configuration is compiled, each
// row of a batch walked by one cluster of blocks. Sampling has one kernel
// instantiation per input kind and filter, SamplingRenorm one per kind
// (sampling_kernel_for, renorm_kernel_for in sampling_kernels.cu); the other
// ops one kernel each.
struct SamplingFamilyEntry {
  const char* op;
  const char* config;
};
constexpr SamplingFamilyEntry kSamplingFamily[] = {
    {"Sampling", "f32 probs|logits x every filter (a kernel each), scalar|per_row params and seeds, vocab <= 4194304"},
    {"SamplingRenorm", "f32 top_k_renorm_probs|top_p_renorm_probs|top_k_mask_logits (a kernel each), in place allowed"},
    {"ChainSpeculativeSampling", "f32 probs, any n, host|per_row seeds"},
    {"TokenPenalty", "f32 logits, token_counts|token_ids history, scalar|per_row params"},
};

}  // namespace

Result<DecodeKernelEntry> find_decode_kernel(std::string_view op, DType q, DType kv, int head_dim) {
  std::string built_dims;
  for (const auto& e : kDecodeEntries) {
    if (e.q != q || e.kv != kv) continue;
    if (e.head_dim == head_dim) return e;
    append_dim(&built_dims, e.head_dim);
  }
  return Status::unsupported(std::string(op) + ": no CUDA kernel for " + decode_config_text(q, kv, head_dim) +
                             " (built: " +
                             (built_dims.empty() ? "no kernel for this dtype pair"
                                                 : "d in {" + built_dims + "} for this dtype pair") +
                             ")");
}

Result<MergeKernelEntry> find_merge_kernel(std::string_view op, DType dtype, int head_dim) {
  const int chunk = 16 / static_cast<int>(size_of(dtype));
  for (const auto& e : kMergeEntries) {
    if (e.dtype != dtype) continue;
    if (head_dim % chunk == 0 && head_dim <= 256 * chunk) return e;
    return Status::unsupported(std::string(op) + ": no CUDA kernel for dtype=" + std::string(name_of(dtype)) +
                               " d=" + std::to_string(head_dim) + " (built: d a multiple of " +
                               std::to_string(chunk) + " up to " + std::to_string(256 * chunk) + ")");
  }
  return Status::unsupported(std::string(op) + ": no CUDA kernel for dtype=" + std::string(name_of(dtype)) +
                             " (built: f16, bf16, f32)");
}

Result<NormKernelEntry> find_norm_kernel(std::string_view op, DType dtype, int hidden_size) {
  const int chunk = 16 / static_cast<int>(size_of(dtype));
  for (const auto& e : kNormEntries) {
    if (e.dtype != dtype) continue;
    if (hidden_size % chunk == 0) return e;
    return Status::unsupported(std::string(op) + ": no CUDA kernel for dtype=" + std::string(name_of(dtype)) +
                               " hidden=" + std::to_string(hidden_size) + " (built: hidden a multiple of " +
                               std::to_string(chunk) + ")");
  }
  return Status::unsupported(std::string(op) + ": no CUDA kernel for dtype=" + std::string(name_of(dtype)) +
                             " (built: f16, bf16, f32)");
}

Result<AppendKernelEntry> find_append_kernel(std::string_view op, DType row, DType pool) {
  for (const auto& e : kAppendEntries)
    if (e.row == row && e.pool == pool) return e;
  return Status::unsupported(std::string(op) + ": no CUDA kernel for rows=" + std::string(name_of(row)) +
                             " pool=" + std::string(name_of(pool)));
}

Result<SingleDecodeKernelEntry> find_single_decode_kernel(std::string_view op, DType dtype, int head_dim) {
  std::string built_dims;
  for (const auto& e : kSingleDecodeEntries) {
    if (e.dtype != dtype) continue;
    if (e.head_dim == head_dim) return e;
    append_dim(&built_dims, e.head_dim);
  }
  std::string message = std::string(op) + ": no CUDA kernel for dtype=" + std::string(name_of(dtype)) +
                        " d=" + std::to_string(head_dim) + " (built: ";
  message += built_dims.empty() ? std::string("no kernel for this dtype") : std::string("d in {") + built_dims + "}";
  return Status::unsupported(message + ")");
}

Result<MultiQueryKernelEntry> find_multi_query_kernel(std::string_view op, DType q, DType kv, int head_dim) {
  std::string built_dims;
  for (const auto& e : kMultiQueryEntries) {
    if (e.dtype != q || e.dtype != kv) continue;
    if (e.head_dim == head_dim) return e;
    append_dim(&built_dims, e.head_dim);
  }
  return Status::unsupported(std::string(op) + ": no CUDA kernel for " + decode_config_text(q, kv, head_dim) +
                             " (built: " +
                             (built_dims.empty() ? "q = kv in {f16, bf16} only" : "d in {" + built_dims + "} for this dtype pair") +
                             ")");
}

}  // namespace cuda

std::vector<CompiledKernel> cuda_compiled_kernels() {
  std::vector<CompiledKernel> out;
  for (const char* op : {"MergeState", "MergeStates"})
    for (const auto& e : cuda::kMergeEntries)
      out.push_back({Backend::cuda, op,
                     "dtype=" + std::string(name_of(e.dtype)) + " d a multiple of " +
                         std::to_string(16 / size_of(e.dtype)) + ", N <= " +
                         std::to_string(cuda::kMergeMaxStates) + ", any strides"});
  for (const auto& e : cuda::kAppendEntries)
    out.push_back({Backend::cuda, "PagedKvAppend",
                   "rows=" + std::string(name_of(e.row)) + " pool=" + std::string(name_of(e.pool)) +
                       " decode|ragged, NHD|HND, any page size and head_dim"});
  for (const auto& e : cuda::kDecodeEntries)
    out.push_back({Backend::cuda, "BatchPagedDecode",
                   cuda::decode_config_text(e.q, e.kv, e.head_dim) + " layout=NHD|HND any page size and GQA ratio"});
  for (const auto& e : cuda::kSingleDecodeEntries)
    out.push_back({Backend::cuda, "SingleDecode",
                   "dtype=" + std::string(name_of(e.dtype)) + " d=" + std::to_string(e.head_dim) +
                       " any strides (head stride 0 allowed), GQA ratio and L, split along L"});
  for (const auto& e : cuda::kNormEntries)
    out.push_back({Backend::cuda, "RmsNorm",
                   "dtype=" + std::string(name_of(e.dtype)) + " hidden a multiple of " +
                       std::to_string(16 / size_of(e.dtype)) + ", plain|Gemma|fused add|QK norm, any row strides"});
  for (const auto& e : cuda::kMultiQueryEntries)
    out.push_back({Backend::cuda, "CascadeAttention",
                   cuda::decode_config_text(e.dtype, e.dtype, e.head_dim) +
                       " layout=NHD|HND any page size and GQA ratio, prefix split <= " +
                       std::to_string(cuda::kCascadeMaxPrefixSplits)});
  for (const auto& e : cuda::kMultiQueryEntries)
    out.push_back({Backend::cuda, "BatchPagedPrefill",
                   cuda::decode_config_text(e.dtype, e.dtype, e.head_dim) +
                       " layout=NHD|HND any page size and GQA ratio, causal or not"});
  for (const auto& e : cuda::kMultiQueryEntries)
    out.push_back({Backend::cuda, "BatchRaggedPrefill",
                   "dtype=" + std::string(name_of(e.dtype)) + " d=" + std::to_string(e.head_dim) +
                       " head_dim_v = head_dim, any GQA ratio, causal or not"});
  for (const auto& e : cuda::kMultiQueryEntries)
    out.push_back({Backend::cuda, "SinglePrefill",
                   "dtype=" + std::string(name_of(e.dtype)) + " d=" + std::to_string(e.head_dim) +
                       " layout=NHD|HND head_dim_v = head_dim, any GQA ratio, causal or not"});
  for (const auto& e : cuda::kSamplingFamily) out.push_back({Backend::cuda, e.op, e.config});
  return out;
}

}  // namespace kvserve::detail
