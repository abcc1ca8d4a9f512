// The CPU backend serves every op; one declaration per op, defined in the
// family's file under src/cpu/.
#pragma once

#include "core/backends.hpp"  // the primary cpu_kernel<Op> these specialise

#include "kvserve/attention.hpp"
#include "kvserve/merge.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve::detail {

template <> Result<Kernel<BatchPagedDecode>> cpu_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc&);
template <> Result<Kernel<SingleDecode>> cpu_kernel<SingleDecode>(const SingleDecodeDesc&);
template <> Result<Kernel<SinglePrefill>> cpu_kernel<SinglePrefill>(const SinglePrefillDesc&);
template <> Result<Kernel<BatchRaggedPrefill>> cpu_kernel<BatchRaggedPrefill>(const BatchRaggedPrefillDesc&);
template <> Result<Kernel<BatchPagedPrefill>> cpu_kernel<BatchPagedPrefill>(const BatchPagedPrefillDesc&);
template <> Result<Kernel<CascadeAttention>> cpu_kernel<CascadeAttention>(const CascadeAttentionDesc&);
template <> Result<Kernel<MergeState>> cpu_kernel<MergeState>(const MergeStateDesc&);
template <> Result<Kernel<MergeStates>> cpu_kernel<MergeStates>(const MergeStatesDesc&);
template <> Result<Kernel<RmsNorm>> cpu_kernel<RmsNorm>(const RmsNormDesc&);
template <> Result<Kernel<GdnPrefill>> cpu_kernel<GdnPrefill>(const GdnPrefillDesc&);
template <> Result<Kernel<PagedKvAppend>> cpu_kernel<PagedKvAppend>(const PagedKvAppendDesc&);
template <> Result<Kernel<PagedMlaAppend>> cpu_kernel<PagedMlaAppend>(const PagedMlaDesc&);
template <> Result<Kernel<KvCacheAppend>> cpu_kernel<KvCacheAppend>(const KvCacheAppendDesc&);
template <> Result<Kernel<Sampling>> cpu_kernel<Sampling>(const SamplingDesc&);
template <> Result<Kernel<SamplingRenorm>> cpu_kernel<SamplingRenorm>(const SamplingRenormDesc&);
template <> Result<Kernel<ChainSpeculativeSampling>> cpu_kernel<ChainSpeculativeSampling>(const ChainSpeculativeSamplingDesc&);
template <> Result<Kernel<TokenPenalty>> cpu_kernel<TokenPenalty>(const TokenPenaltyDesc&);

}  // namespace kvserve::detail
