// BatchPagedPrefill on CUDA: the multi-query kernel over tiles of 64
// (token, head) rows of each request, written straight to out / lse. The
// workspace holds one record per request (prepare() stages it); the kernel
// finds each block's request and tile from them, so the workspace does not
// grow with the tokens, and run() reads only device memory.
#include <string>
#include <vector>

#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/prefill/multi_query_host.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

constexpr const char* kOp = BatchPagedPrefill::kName;

Status create_paged_prefill_resources(PlanState<BatchPagedPrefill>& p) {
  const auto& d = p.desc;
  return create_multi_query_resources(
      kOp, p.device, d.q_dtype, d.kv.dtype, d.kv.head_dim,
      [&](int sm_count) {
        return prefill_sizing(d.max_batch, d.num_qo_heads, d.kv.num_kv_heads, d.kv.head_dim, sm_count);
      },
      &p.backend_resources);
}

Status prepare_paged_prefill(PlanState<BatchPagedPrefill>& p, const PagedPrefillLengths& host, Workspace ws,
                             Stream stream) {
  auto& r = *static_cast<MultiQueryResources*>(p.backend_resources.get());
  const std::size_t batch = host.qo_indptr.size() - 1;
  std::vector<KvSpan> kv(batch);
  for (std::size_t b = 0; b < batch; ++b)
    kv[b] = {host.kv.indptr[b], paged_kv_len(host.kv.indptr.data(), host.kv.last_page_len.data(),
                                             static_cast<std::int64_t>(b), p.desc.kv.page_size)};
  return stage_schedule(kOp, p.device, r, ws, stream, [&](void* staging) {
    return build_prefill_schedule(r.sizing, host.qo_indptr, kv, staging);
  });
}

Status run_paged_prefill(const PlanState<BatchPagedPrefill>& p, const BatchPagedPrefillArgs& a, Workspace ws,
                         Stream stream) {
  const auto& d = p.desc;
  const auto& r = *static_cast<const MultiQueryResources*>(p.backend_resources.get());
  const std::int64_t total_q = a.q.shape[0], batch = a.qo_indptr.shape[0] - 1;
  if (total_q == 0 || batch == 0) return Status::ok();
  KVSERVE_TRY(check_16_byte_rows(kOp, "q", a.q, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "out", a.out, 2));
  KVSERVE_TRY(check_16_byte_rows(kOp, "kv.k_pages", a.kv.k_pages, 3));
  KVSERVE_TRY(check_16_byte_rows(kOp, "kv.v_pages", a.kv.v_pages, 3));

  MultiQueryParams prm;
  prm.q = a.q.data;
  prm.q_stride_t = a.q.strides[0], prm.q_stride_h = a.q.strides[1];
  prm.out = a.out.data;
  prm.out_stride_t = a.out.strides[0], prm.out_stride_h = a.out.strides[1];
  if (a.lse.defined()) {
    prm.lse = a.lse.ptr<float>();
    prm.lse_stride_t = a.lse.strides[0], prm.lse_stride_h = a.lse.strides[1];
  }
  set_paged_pools(&prm, d.kv, a.kv.k_pages, a.kv.v_pages);
  prm.indices[0] = a.kv.indices.ptr<const std::int32_t>();
  prm.causal = d.causal;
  set_logit_scales(&prm, d.attn, d.kv.head_dim);
  set_schedule(&prm, r.sizing, ws.data);
  KVSERVE_TRY(use_prefill_requests(kOp, &prm, prefill_max_tiles(r.sizing, total_q, batch)));
  return launch_multi_query_passes(kOp, p.device, r.kernel, prm, nullptr, stream);
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<BatchPagedPrefill>> cuda_kernel<BatchPagedPrefill>(const BatchPagedPrefillDesc& d, Device device) {
  auto entry = cuda::find_multi_query_kernel(BatchPagedPrefill::kName, d.q_dtype, d.kv.dtype, d.kv.head_dim);
  if (!entry) return entry.status();
  auto facts = cuda::device_facts(device);
  if (!facts) return facts.status();
  const cuda::MultiQuerySizing z =
      cuda::prefill_sizing(d.max_batch, d.num_qo_heads, d.kv.num_kv_heads, d.kv.head_dim, facts->sm_count);
  Kernel<BatchPagedPrefill> k;
  // No split: each row is one block's, whatever the rest of the batch.
  k.info = cuda::multi_query_info(BatchPagedPrefill::kName, facts->arch,
                                  paged_config(d.q_dtype, d.kv) + (d.causal ? " causal" : "") +
                                      " rows=" + std::to_string(z.shape.rows) +
                                      " tile=" + std::to_string(z.shape.tile_tokens) + "x" +
                                      std::to_string(z.shape.stages),
                                  /*batch_invariant=*/true);
  k.workspace_bytes = z.workspace_bytes;
  k.run = cuda::run_paged_prefill;
  k.prepare = cuda::prepare_paged_prefill;
  k.create_resources = cuda::create_paged_prefill_resources;
  return k;
}

}  // namespace kvserve::detail
