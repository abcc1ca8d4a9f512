// Lookups into the CUDA kernel table (kernel_table.cpp): the one place that
// says which configurations this build compiled. A configuration that is not
// in the table answers Unsupported naming it and what was built.
#pragma once

#include <string_view>

#include "cuda/paged_decode/decode_params.hpp"
#include "cuda/kv_cache/append_params.hpp"
#include "cuda/merge/merge_params.hpp"
#include "cuda/norm/norm_params.hpp"
#include "cuda/multi_query/multi_query_params.hpp"
#include "cuda/single_decode/single_decode_params.hpp"
#include "kvserve/core.hpp"

namespace kvserve::detail::cuda {

struct DecodeKernelEntry {
  DType q, kv;
  int head_dim;
  DecodeLaunch launch;
};

// The paged-decode kernel for (q, kv, head_dim); `op` names the asking op in
// the Unsupported message.
Result<DecodeKernelEntry> find_decode_kernel(std::string_view op, DType q, DType kv, int head_dim);

using MergeLaunch = int (*)(const MergeParams&, void* stream);
struct MergeKernelEntry {
  DType dtype;
  MergeLaunch launch;
};

// The MergeState / MergeStates kernel for `dtype` (any head_dim that is a
// multiple of the 16-byte chunk: 8 elements of f16 / bf16, 4 of f32).
Result<MergeKernelEntry> find_merge_kernel(std::string_view op, DType dtype, int head_dim);

using AppendLaunch = int (*)(const AppendParams&, void* stream);
struct AppendKernelEntry {
  DType row, pool;
  AppendLaunch launch;
};

// The PagedKvAppend kernel writing rows of `row` into a `pool` cache.
Result<AppendKernelEntry> find_append_kernel(std::string_view op, DType row, DType pool);

using SingleDecodeLaunch = int (*)(const SingleDecodeParams&, void* stream);
struct SingleDecodeKernelEntry {
  DType dtype;
  int head_dim;
  SingleDecodeLaunch launch;
};

// The SingleDecode kernel for (dtype, head_dim).
Result<SingleDecodeKernelEntry> find_single_decode_kernel(std::string_view op, DType dtype, int head_dim);

using NormLaunch = int (*)(const RmsNormParams&, void* stream);
struct NormKernelEntry {
  DType dtype;
  NormLaunch launch;
};
// The RmsNorm kernel for `dtype` (any hidden_size that is a multiple of the
// 16-byte chunk).
Result<NormKernelEntry> find_norm_kernel(std::string_view op, DType dtype, int hidden_size);
struct MultiQueryKernelEntry {
  DType dtype;  // q, K/V pools and out
  int head_dim;
  MultiQueryLaunch attend;
  SlotMergeLaunch merge;
};

// The multi-query attention kernel (CascadeAttention, prefill) for q / KV
// dtypes and head_dim.
Result<MultiQueryKernelEntry> find_multi_query_kernel(std::string_view op, DType q, DType kv, int head_dim);

}  // namespace kvserve::detail::cuda
