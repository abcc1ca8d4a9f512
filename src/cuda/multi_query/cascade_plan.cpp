// CascadeAttention on CUDA: one multi-query launch attends every group's
// prefix (once, for all its requests' rows) and every request's suffix, each
// writing fp32 partial states into the workspace; the slot merge then folds
// each request's states into out / lse, rounding once. prepare() writes the
// schedule from pinned staging; run() reads only device memory, so a step is
// graph-capturable for fixed max_batch / max_groups.
#include <string>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/multi_query/multi_query_host.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

struct CascadeAttentionTraits : ScheduledMultiQueryTraits {
  using Op = CascadeAttention;

  static Result<Selected> select(const CascadeAttentionDesc& d, const DeviceFacts& facts) {
    auto launch = find_multi_query(Op::kName, d.q_dtype, d.kv.dtype, d.kv.head_dim, facts);
    if (!launch) return launch.status();
    Selected s{*launch, cascade_sizing(d, facts.sm_count, launch->shape), nullptr};
    if (s.sizing.max_items > 65535)  // grid.y
      return no_kernel(Op::kName,
                       "max_batch " + std::to_string(d.max_batch) + " and max_groups " + std::to_string(d.max_groups) +
                           " (" + std::to_string(s.sizing.max_items) + " work items)",
                       "up to the 65535 work items one launch holds");
    return s;
  }
  static std::string config(const CascadeAttentionDesc& d, const Selected& s) {
    return paged_config(d.q_dtype, d.kv) + kernel_text(s.launch) +
           " prefix_split<=" + std::to_string(kCascadeMaxPrefixSplits);
  }
  // How finely a prefix is cut depends on the whole batch, so a row is not
  // batch invariant.
  static Precision precision(const CascadeAttentionDesc&) { return precision_of(/*batch_invariant=*/false); }
  static Status create(Selected& s, const CascadeAttentionDesc&, Device device) { return create_staging(s, device); }

  static Status prepare(Selected& s, const CascadeAttentionDesc& d, Device device, const CascadeLengths& host,
                        Workspace ws, Stream stream) {
    return stage_schedule(Op::kName, device, *s.staging, ws, stream, [&](void* staging) -> Result<std::size_t> {
      const int n = build_cascade_schedule(s.sizing, d, host, staging);
      return s.sizing.items_offset + sizeof(MultiQueryItem) * static_cast<std::size_t>(n);
    });
  }

  static Status run(const Selected& s, const CascadeAttentionDesc& d, Device device, const CascadeAttentionArgs& a,
                    Workspace ws, Stream stream) {
    constexpr const char* op = Op::kName;
    const std::int64_t batch = a.q.shape[0];
    if (batch == 0) return Status::ok();
    KVSERVE_TRY(check_16_byte_rows(op, "q", a.q, 2));
    KVSERVE_TRY(check_16_byte_rows(op, "out", a.out, 2));
    KVSERVE_TRY(check_16_byte_rows(op, "prefix.k_pages", a.prefix.k_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(op, "prefix.v_pages", a.prefix.v_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(op, "suffix.k_pages", a.suffix.k_pages, 3));
    KVSERVE_TRY(check_16_byte_rows(op, "suffix.v_pages", a.suffix.v_pages, 3));
    if (a.prefix.k_pages.data != a.suffix.k_pages.data || a.prefix.v_pages.data != a.suffix.v_pages.data)
      return invalid_arg(op, "suffix.k_pages", "the pools prefix.k_pages / prefix.v_pages (one pool per plan)",
                         "other pools");

    MultiQueryParams prm;
    prm.q = a.q.data;
    prm.q_stride_t = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
    set_paged_pools(&prm, d.kv, a.prefix.k_pages, a.prefix.v_pages);
    prm.indices[0] = a.prefix.indices.ptr<const std::int32_t>();
    prm.indices[1] = a.suffix.indices.ptr<const std::int32_t>();
    prm.causal = true;
    set_logit_scales(&prm, d.attn, d.kv.head_dim);
    set_schedule(&prm, s.sizing, ws.data);

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
    return launch_multi_query_passes(op, device, s.launch, prm, &merge, stream);
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(CascadeAttention, CascadeAttentionTraits)

}  // namespace kvserve::detail
