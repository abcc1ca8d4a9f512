// C ABI of the attention ops.
#include "capi/capi.hpp"

using namespace kvserve;

struct kvs_batch_paged_decode_plan : capi::PlanHandle<BatchPagedDecode> {};

extern "C" {

kvs_status_code kvs_batch_paged_decode_create(const kvs_batch_paged_decode_desc* d, kvs_device device,
                                              kvs_batch_paged_decode_plan** plan, kvs_error* err) {
  if (Status s = capi::non_null(d, "desc"); !s) return capi::report(s, err);
  const BatchPagedDecodeDesc desc{.max_batch = d->max_batch, .num_qo_heads = d->num_qo_heads, .kv = capi::to_desc(d->kv),
                                  .q_dtype = capi::to_dtype(d->q_dtype), .attn = capi::to_params(d->attn),
                                  .kv_split_tokens = d->kv_split_tokens};
  return capi::create(desc, device, plan, err);
}

kvs_status_code kvs_batch_paged_decode_prepare(kvs_batch_paged_decode_plan* plan, const int32_t* indptr,
                                               const int32_t* last_page_len, int64_t batch, void* workspace,
                                               size_t workspace_bytes, void* stream, kvs_error* err) {
  return capi::guarded(err, [&]() -> Status {
    KVSERVE_TRY(capi::check_handle(plan));
    if (batch < 0 || indptr == nullptr || (batch > 0 && last_page_len == nullptr))
      return Status::invalid_argument("C ABI: prepare: expected batch >= 0 with non-null indptr and last_page_len");
    const PagedKvLengths host{{indptr, static_cast<std::size_t>(batch + 1)},
                              {last_page_len, static_cast<std::size_t>(batch)}};
    return plan->plan.prepare(host, Workspace{workspace, workspace_bytes}, Stream{stream});
  });
}

kvs_status_code kvs_batch_paged_decode_run(const kvs_batch_paged_decode_plan* plan,
                                           const kvs_batch_paged_decode_args* a, void* workspace,
                                           size_t workspace_bytes, void* stream, kvs_error* err) {
  if (Status s = capi::non_null(a, "args"); !s) return capi::report(s, err);
  const BatchPagedDecodeArgs args{.q = capi::to_view(a->q), .kv = capi::to_paged(a->kv), .out = capi::to_view(a->out),
                                  .lse = capi::to_view(a->lse)};
  return capi::run(plan, args, workspace, workspace_bytes, stream, err);
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(batch_paged_decode)
