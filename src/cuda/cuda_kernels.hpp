// What the CUDA backend offers (host-only declarations; no CUDA headers).
// Ops declared here have CUDA kernels; their configurations are the kernel
// rows (src/cuda/registry/kernel_rows.hpp), each op's plan made by the one
// adapter (src/cuda/common/cuda_plan.hpp).
#pragma once

#include <vector>

#include "core/backends.hpp"  // the primary cuda_kernel<Op> these specialise
#include "kvserve/attention.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/merge.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve::detail {

template <>
Result<Kernel<BatchPagedDecode>> cuda_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc&, Device);
template <>
Result<Kernel<SingleDecode>> cuda_kernel<SingleDecode>(const SingleDecodeDesc&, Device);
// Multi-query attention on the tensor cores (src/cuda/prefill).
template <>
Result<Kernel<CascadeAttention>> cuda_kernel<CascadeAttention>(const CascadeAttentionDesc&, Device);
template <>
Result<Kernel<BatchPagedPrefill>> cuda_kernel<BatchPagedPrefill>(const BatchPagedPrefillDesc&, Device);
template <>
Result<Kernel<BatchRaggedPrefill>> cuda_kernel<BatchRaggedPrefill>(const BatchRaggedPrefillDesc&, Device);
template <>
Result<Kernel<SinglePrefill>> cuda_kernel<SinglePrefill>(const SinglePrefillDesc&, Device);
template <>
Result<Kernel<PagedKvAppend>> cuda_kernel<PagedKvAppend>(const PagedKvAppendDesc&, Device);
template <>
Result<Kernel<PagedMlaAppend>> cuda_kernel<PagedMlaAppend>(const PagedMlaDesc&, Device);
template <>
Result<Kernel<KvCacheAppend>> cuda_kernel<KvCacheAppend>(const KvCacheAppendDesc&, Device);
template <>
Result<Kernel<MergeState>> cuda_kernel<MergeState>(const MergeStateDesc&, Device);
template <>
Result<Kernel<MergeStates>> cuda_kernel<MergeStates>(const MergeStatesDesc&, Device);
template <>
Result<Kernel<RmsNorm>> cuda_kernel<RmsNorm>(const RmsNormDesc&, Device);

// The sampling family (src/cuda/sampling): every filter, input and parameter
// source of each op runs in one kernel per op.
template <>
Result<Kernel<Sampling>> cuda_kernel<Sampling>(const SamplingDesc&, Device);
template <>
Result<Kernel<SamplingRenorm>> cuda_kernel<SamplingRenorm>(const SamplingRenormDesc&, Device);
template <>
Result<Kernel<ChainSpeculativeSampling>> cuda_kernel<ChainSpeculativeSampling>(const ChainSpeculativeSamplingDesc&,
                                                                              Device);
template <>
Result<Kernel<TokenPenalty>> cuda_kernel<TokenPenalty>(const TokenPenaltyDesc&, Device);

// validate_page_table for a table on a CUDA device (src/cuda/validation/
// page_table_check.cpp): one kernel launch and one stream synchronisation; the
// message is the host check's, on a copy of the table up to the bad entry.
Status cuda_validate_page_table(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                                const PagedKv& kv, std::int64_t batch, Stream stream);

// Every kernel row, per op, for `kvserve list` and the docs (registry.cpp).
std::vector<CompiledKernel> cuda_compiled_kernels();

}  // namespace kvserve::detail
