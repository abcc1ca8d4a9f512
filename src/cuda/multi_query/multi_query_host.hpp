// Host-side pieces every plan on the multi-query kernel shares: the argument
// checks the kernel's 16-byte accesses need, the logit scaling, the pool
// addressing, the schedule pointers into the workspace and the launches.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "cuda/common/staging.hpp"

#include "cuda/kernel_table.hpp"
#include "cuda/multi_query/multi_query_schedule.hpp"
#include "kvserve/attention.hpp"

namespace kvserve::detail::cuda {

// What a plan on the multi-query kernel keeps (PlanState::backend_resources).
struct MultiQueryResources {
  MultiQueryKernelEntry kernel;
  MultiQuerySizing sizing;
  std::unique_ptr<PinnedStaging> staging;
};

// Looks the kernel up, sizes the plan from the device's SM count and
// allocates its pinned staging, into *resources.
Status create_multi_query_resources(std::string_view op, Device device, DType q, DType kv, int head_dim,
                                    const std::function<MultiQuerySizing(int sm_count)>& sizing,
                                    std::shared_ptr<void>* resources);

// prepare(): builds the schedule in pinned staging (`build` returns the
// bytes written) and copies it into the workspace on `stream`.
Status stage_schedule(std::string_view op, Device device, MultiQueryResources& r, Workspace ws, Stream stream,
                      const std::function<std::size_t(void* staging)>& build);

// The identity and promise of a plan on the multi-query kernel: fp32
// products and sums, deterministic; `config` the configuration text.
KernelInfo multi_query_info(std::string_view op, std::string arch, std::string config, bool batch_invariant);

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
Status launch_multi_query_passes(std::string_view op, Device device, const MultiQueryKernelEntry& kernel,
                                 const MultiQueryParams& attend, const SlotMergeParams* merge, Stream stream);

}  // namespace kvserve::detail::cuda
