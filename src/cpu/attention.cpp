// CPU kernels for the attention ops: each gathers KV rows and calls attend().
#include "core/backends.hpp"
#include "core/paged_kv_rules.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/parallel.hpp"

namespace kvserve::detail {

// ------------------------------------------------------- BatchPagedDecode --

namespace {
Status run_batch_paged_decode(const PlanState<BatchPagedDecode>& p, const BatchPagedDecodeArgs& a, Workspace,
                              Stream) {
  const auto& d = p.desc;
  const int hkv = d.kv.num_kv_heads, group = d.num_qo_heads / hkv;
  const cpu::MaskParams mp = cpu::mask_params(d.attn, d.kv.head_dim, /*causal=*/true);
  const std::int64_t batch = a.q.shape[0];
  cpu::parallel_for(batch * hkv, 1 << 16, [&](std::int64_t task) {
    const std::int64_t b = task / hkv;
    const int h = static_cast<int>(task % hkv);
    cpu::KvRows kv;
    cpu::gather_paged(d.kv, a.kv, cpu::paged_row(a.kv, b, d.kv.page_size), h, &kv);
    cpu::attend_group(mp, kv, a.q, b, 1, h, group, a.out, a.lse);
  });
  return Status::ok();
}
}  // namespace

template <>
Result<Kernel<BatchPagedDecode>> cpu_kernel<BatchPagedDecode>(const BatchPagedDecodeDesc& d) {
  Kernel<BatchPagedDecode> k;
  k.info = cpu::kernel_info(BatchPagedDecode::kName, paged_config(d.q_dtype, d.kv));
  k.run = run_batch_paged_decode;
  return k;
}

}  // namespace kvserve::detail
