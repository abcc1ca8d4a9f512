// The end of every paged-decode block: a slice's result goes straight to
// out / lse when its request is one slice; otherwise to the request's
// partial-state slots, and the last of the request's blocks to finish merges
// the slices in slice order (so the result never depends on which block
// finished last).
#pragma once

#include "cuda/paged_decode/decode_params.hpp"
#include "cuda/common/device_types.cuh"

namespace kvserve::detail::cuda {

// Elements [e0, e0 + N) of query head qo_head's normalised result and its lse
// (written by the thread that has `write_lse`).
template <DType Q, int N>
__device__ __forceinline__ void store_slice_result(const DecodeParams& p, const DecodeWorkItem& item, int qo_head,
                                                   int e0, int head_dim, const float (&values)[N], float lse,
                                                   bool write_lse) {
  const std::int64_t b = item.request;
  if (item.num_splits == 1) {
    float* const lse_out = p.lse && write_lse ? p.lse + b * p.lse_stride_b + qo_head * p.lse_stride_h : nullptr;
    store_row<Q, N>(values, lse,
                    static_cast<storage_t<Q>*>(p.out) + b * p.out_stride_b + qo_head * p.out_stride_h + e0, lse_out);
    return;
  }
  const std::int64_t hq = p.num_qo_heads, slot = item.partial_base + item.split;
  copy16<N * sizeof(float)>(p.partial_out + (slot * hq + qo_head) * head_dim + e0, values);
  if (write_lse) p.partial_lse[slot * hq + qo_head] = lse;
}

// Counts this block's slice of a split request as done (last_to_arrive on
// the counter of its request, KV head and head chunk).
__device__ __forceinline__ bool arrive_last(const DecodeParams& p, const DecodeWorkItem& item, int kv_head,
                                            int head_chunk, int* flag_smem) {
  unsigned* const counter =
      p.split_counters + (static_cast<std::int64_t>(item.request) * p.num_kv_heads + kv_head) * p.head_chunks +
      head_chunk;
  return last_to_arrive(counter, item.num_splits, flag_smem);
}

// In the last block: merges elements [e0, e0 + N) of query head qo_head over
// all slices of the request into out (and lse), Batch slices in flight (the
// merge is the tail of a split request's chain: as few L2 round trips as
// the kernel's registers allow).
template <DType Q, int N, int Batch>
__device__ __forceinline__ void merge_slices(const DecodeParams& p, const DecodeWorkItem& item, int qo_head, int e0,
                                             int head_dim, bool write_lse) {
  const std::int64_t b = item.request, hq = p.num_qo_heads;
  float values[N];
  const float lse = merge_states<N, Batch>(item.num_splits, p.partial_lse + item.partial_base * hq + qo_head, hq,
                                           p.partial_out + (item.partial_base * hq + qo_head) * head_dim + e0,
                                           hq * head_dim, values);
  float* const lse_out = p.lse && write_lse ? p.lse + b * p.lse_stride_b + qo_head * p.lse_stride_h : nullptr;
  store_row<Q, N>(values, lse, static_cast<storage_t<Q>*>(p.out) + b * p.out_stride_b + qo_head * p.out_stride_h + e0,
                  lse_out);
}

}  // namespace kvserve::detail::cuda
