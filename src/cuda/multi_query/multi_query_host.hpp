// Host-side pieces every plan on the multi-query kernel shares: the argument
// checks the kernel's 16-byte accesses need, the logit scaling, the pool
// addressing, the schedule pointers into the workspace and the launches.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cuda/common/staging.hpp"

#include "cuda/common/runtime.hpp"
#include "cuda/multi_query/multi_query_schedule.hpp"
#include "kvserve/attention.hpp"

namespace kvserve::detail::cuda {

// The kernel a plan on the multi-query family runs: its row's attention
// launcher for this device (the sm_90a wgmma kernel on Hopper, mma.sync
// elsewhere), the slot merge, and the block shape the schedule is cut by.
struct MultiQueryKernel {
  int (*attend)(const MultiQueryParams&, void* stream) = nullptr;
  int (*merge)(const SlotMergeParams&, void* stream) = nullptr;
  MultiQueryShape shape;
  bool sm90 = false;
};

// The multi-query row for (q, kv, head_dim) and its kernel for `facts`'
// device: the one lookup of a plan on the family; `op` names the asking op.
// KVSERVE_MULTI_QUERY_KERNEL=mma_sync in the environment keeps Hopper on the
// mma.sync kernel (to compare the two in one process).
Result<MultiQueryKernel> find_multi_query(std::string_view op, DType q, DType kv, int head_dim,
                                          const DeviceFacts& facts);

// " rows=128 tile=128x2 wgmma": the shape and kernel of a plan's config().
std::string kernel_text(const MultiQueryKernel& k);

// What a plan with a schedule keeps (CascadeAttention, BatchPagedPrefill,
// BatchRaggedPrefill): its kernel, the sizing, and pinned staging.
struct ScheduledMultiQuery {
  MultiQueryKernel launch;
  MultiQuerySizing sizing;
  std::unique_ptr<PinnedStaging> staging;  // made by create()
};

// The traits those plans share (src/cuda/common/cuda_plan.hpp).
struct ScheduledMultiQueryTraits {
  using Selected = ScheduledMultiQuery;
  static std::size_t workspace_bytes(const Selected& s) { return s.sizing.workspace_bytes; }
  // The schedule is a pure function of the lengths: deterministic.
  static Precision precision_of(bool batch_invariant) { return {DType::f32, DType::f32, true, batch_invariant}; }
};

// Logits in base 2 from sm_scale (default 1 / sqrt(head_dim)) and soft-cap.
void set_logit_scales(MultiQueryParams* p, const AttentionParams& attn, int head_dim);

// K / V pool strides, page size and heads of a paged cache.
void set_paged_pools(MultiQueryParams* p, const PagedKvDesc& kv, const TensorView& k_pages, const TensorView& v_pages);

// The schedule and partial-state pointers inside `ws` laid out by `z`.
void set_schedule(MultiQueryParams* p, const MultiQuerySizing& z, void* ws);

// Prefill: the workspace's request records instead of items, and a grid of
// `max_tiles` blocks per KV head (Unsupported past one launch's 65535).
Status use_prefill_requests(std::string_view op, MultiQueryParams* p, std::int64_t max_tiles);

// Launches the attention pass, then (when `merge` is given) the slot merge
// of `merge->rows` rows, on `stream` with the plan's device current.
Status launch_multi_query_passes(std::string_view op, Device device, const MultiQueryKernel& launch,
                                 const MultiQueryParams& attend, const SlotMergeParams* merge, Stream stream);

}  // namespace kvserve::detail::cuda
