// C ABI of the norms and the gated delta rule.
#include "capi/capi.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/norm.hpp"

using namespace kvserve;

struct kvs_rms_norm_plan : capi::PlanHandle<RmsNorm> {};
struct kvs_gdn_prefill_plan : capi::PlanHandle<GdnPrefill> {};

extern "C" {

kvs_status_code kvs_rms_norm_create(const kvs_rms_norm_desc* d, kvs_device device, kvs_rms_norm_plan** plan,
                                    kvs_error* err) {
  if (Status s = capi::non_null(d, "desc"); !s) return capi::report(s, err);
  return capi::create(RmsNormDesc{.hidden_size = d->hidden_size, .dtype = capi::to_dtype(d->dtype), .eps = d->eps,
                                  .weight_offset = d->weight_offset, .fused_add = d->fused_add != 0},
                      device, plan, err);
}

kvs_status_code kvs_rms_norm_run(const kvs_rms_norm_plan* plan, const kvs_rms_norm_args* a, void* workspace,
                                 size_t workspace_bytes, void* stream, kvs_error* err) {
  if (Status s = capi::non_null(a, "args"); !s) return capi::report(s, err);
  return capi::run(plan,
                   RmsNormArgs{.x = capi::to_view(a->x), .weight = capi::to_view(a->weight),
                               .residual = capi::to_view(a->residual), .out = capi::to_view(a->out)},
                   workspace, workspace_bytes, stream, err);
}

kvs_status_code kvs_gdn_prefill_create(const kvs_gdn_prefill_desc* d, kvs_device device, kvs_gdn_prefill_plan** plan,
                                       kvs_error* err) {
  if (Status s = capi::non_null(d, "desc"); !s) return capi::report(s, err);
  GdnPrefillDesc desc{.max_batch = d->max_batch, .max_tokens = d->max_tokens, .num_qk_heads = d->num_qk_heads,
                      .num_v_heads = d->num_v_heads, .head_dim_k = d->head_dim_k, .head_dim_v = d->head_dim_v,
                      .dtype = capi::to_dtype(d->dtype),
                      .scale = d->scale > 0 ? std::optional<float>(d->scale) : std::nullopt,
                      .use_qk_l2norm = d->use_qk_l2norm != 0, .l2norm_eps = d->l2norm_eps};
  return capi::create(desc, device, plan, err);
}

kvs_status_code kvs_gdn_prefill_run(const kvs_gdn_prefill_plan* plan, const kvs_gdn_prefill_args* a, void* workspace,
                                    size_t workspace_bytes, void* stream, kvs_error* err) {
  if (Status s = capi::non_null(a, "args"); !s) return capi::report(s, err);
  return capi::run(plan,
                   GdnPrefillArgs{.q = capi::to_view(a->q), .k = capi::to_view(a->k), .v = capi::to_view(a->v),
                                  .alpha = capi::to_view(a->alpha), .beta = capi::to_view(a->beta),
                                  .cu_seqlens = capi::to_view(a->cu_seqlens),
                                  .initial_state = capi::to_view(a->initial_state), .out = capi::to_view(a->out),
                                  .final_state = capi::to_view(a->final_state)},
                   workspace, workspace_bytes, stream, err);
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(rms_norm)
KVS_CAPI_PLAN_COMMON(gdn_prefill)
