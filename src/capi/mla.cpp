// C ABI of the MLA decode op.
#include "capi/capi.hpp"
#include "kvserve/mla.hpp"

using namespace kvserve;

struct kvs_batch_paged_mla_decode_plan : capi::PlanHandle<BatchPagedMlaDecode> {};

namespace {

auto to_args(const kvs_batch_paged_mla_decode_args& a) {
  return BatchPagedMlaDecodeArgs{.q_nope = capi::to_view(a.q_nope), .q_pe = capi::to_view(a.q_pe),
                                 .cache = capi::to_mla_cache(a.cache), .out = capi::to_view(a.out),
                                 .lse = capi::to_view(a.lse)};
}

}  // namespace

extern "C" {

kvs_status_code kvs_batch_paged_mla_decode_create(const kvs_batch_paged_mla_decode_desc* desc, kvs_device device,
                                                  kvs_batch_paged_mla_decode_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_batch_paged_mla_decode_desc& d) {
    return BatchPagedMlaDecodeDesc{.max_batch = d.max_batch, .num_heads = d.num_heads,
                                   .cache = capi::to_desc(d.cache), .sm_scale = d.sm_scale,
                                   .kv_split_tokens = d.kv_split_tokens};
  });
}

kvs_status_code kvs_batch_paged_mla_decode_prepare(kvs_batch_paged_mla_decode_plan* plan, const int32_t* indptr,
                                                   const int32_t* last_page_len, int64_t batch, void* workspace,
                                                   size_t workspace_bytes, void* stream, kvs_error* err) {
  return capi::prepare_paged(plan, indptr, last_page_len, batch, workspace, workspace_bytes, stream, err);
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(batch_paged_mla_decode)
