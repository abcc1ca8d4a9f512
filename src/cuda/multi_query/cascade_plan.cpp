// CascadeAttention on CUDA: one multi-query launch attends every group's
// prefix (once, for all its requests' rows) and every request's suffix, each
// writing fp32 partial states into the workspace; the slot merge then folds
// each request's states into out / lse, rounding once. prepare() writes the
// schedule from pinned staging; run() reads only device memory, so a step is
// graph-capturable for fixed max_batch / max_groups.
#include <string>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/multi_query/multi_query_host.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

constexpr const char* kOp = CascadeAttention::kName;

Status create_cascade_resources(PlanState<CascadeAttention>& p) {
  return create_multi_query_resources(
      kOp, p.device, p.desc.q_dtype, p.desc.kv.dtype, p.desc.kv.head_dim,
      [&](int sm_count) { return cascade_sizing(p.desc, sm_count); }, &p.backend_resources);
}

Status prepare_cascade(PlanState<CascadeAttention>& p, const CascadeLengths& host, Workspace ws, Stream stream) {
  auto& r = *static_cast<MultiQueryResources*>(p.backend_resources.get());
  return stage_schedule(kOp, p.device, r, ws, stream, [&](void* staging) {
    const int n = build_cascade_schedule(r.sizing, p.desc, host, staging);
    return r.sizing.items_offset + sizeof(MultiQueryItem) * static_cast<std::size_t>(n);
  });
}

Status run_cascade(const PlanState<CascadeAttention>& p, const CascadeAttentionArgs& a, Workspace ws, Stream stream) {
  const auto& d = p.desc;
  const auto& r = *static_cast<const MultiQueryResources*>(p.backend_resources.get());
  const std::int64_t batch = a.q.shape[0];
  if (batch == 0) return Status::ok();
  KVSERVE_TRY(check_16_byte_rows(kOp, "q", a.q, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "out", a.out, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "prefix.k_pages", a.prefix.k_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "prefix.v_pages", a.prefix.v_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "suffix.k_pages", a.suffix.k_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "suffix.v_pages", a.suffix.v_pages, 3));
  if (a.prefix.k_pages.data != a.suffix.k_pages.data || a.prefix.v_pages.data != a.suffix.v_pages.data)
    return invalid_arg(kOp, "suffix.k_pages", "the pools prefix.k_pages / prefix.v_pages (one pool per plan)",
                       "other pools");

  MultiQueryParams prm;
  prm.q = a.q.data;
  prm.q_stride_t = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
  set_paged_pools(&prm, d.kv, a.prefix.k_pages, a.prefix.v_pages);
  prm.indices[0] = a.prefix.indices.ptr<const std::int32_t>();
  prm.indices[1] = a.suffix.indices.ptr<const std::int32_t>();
  prm.causal = true;
  set_logit_scales(&prm, d.attn, d.kv.head_dim);
  set_schedule(&prm, r.sizing, ws.data);

  SlotMergeParams merge;
  merge.rows = batch;
  merge.num_heads = d.num_qo_heads, merge.head_dim = d.kv.head_dim;
  merge.row_info = prm.row_info;
  merge.partial_out = prm.partial_out, merge.partial_lse = prm.partial_lse;
  merge.out = a.out.data;
  merge.out_stride_t = a.out.strides[0], merge.out_stride_h = a.out.strides[1];
  if (a.lse.defined()) {
    merge.lse = a.lse.ptr<float>();
    merge.lse_stride_t = a.lse.strides[0], merge.lse_stride_h = a.lse.strides[1];
  }
  return launch_multi_query_passes(kOp, p.device, r.kernel, prm, &merge, stream);
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<CascadeAttention>> cuda_kernel<CascadeAttention>(const CascadeAttentionDesc& d, Device device) {
  auto entry = cuda::find_multi_query_kernel(CascadeAttention::kName, d.q_dtype, d.kv.dtype, d.kv.head_dim);
  if (!entry) return entry.status();
  auto facts = cuda::device_facts(device);
  if (!facts) return facts.status();
  const cuda::MultiQuerySizing z = cuda::cascade_sizing(d, facts->sm_count);
  if (z.max_items > 65535)  // grid.y
    return Status::unsupported(std::string(CascadeAttention::kName) + ": max_batch " + std::to_string(d.max_batch) +
                               " and max_groups " + std::to_string(d.max_groups) + " need " +
                               std::to_string(z.max_items) + " work items, more than the 65535 one launch holds");
  Kernel<CascadeAttention> k;
  // The schedule and the merge order depend only on the lengths, so runs
  // repeat bit for bit; how finely a prefix is cut depends on the whole
  // batch, so a row is not batch invariant.
  k.info = cuda::multi_query_info(CascadeAttention::kName, facts->arch,
                                  paged_config(d.q_dtype, d.kv) + " rows=" + std::to_string(z.shape.rows) +
                                      " tile=" + std::to_string(z.shape.tile_tokens) + "x" +
                                      std::to_string(z.shape.stages) +
                                      " prefix_split<=" + std::to_string(cuda::kCascadeMaxPrefixSplits),
                                  /*batch_invariant=*/false);
  k.workspace_bytes = z.workspace_bytes;
  k.run = cuda::run_cascade;
  k.prepare = cuda::prepare_cascade;
  k.create_resources = cuda::create_cascade_resources;
  return k;
}

}  // namespace kvserve::detail
