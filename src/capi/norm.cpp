// C ABI of the norms and the gated delta rule (prefill and decode step).
#include "capi/capi.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/norm.hpp"

using namespace kvserve;

struct kvs_rms_norm_plan : capi::PlanHandle<RmsNorm> {};
struct kvs_gdn_prefill_plan : capi::PlanHandle<GdnPrefill> {};
struct kvs_gdn_decode_plan : capi::PlanHandle<GdnDecode> {};

// The C++ run arguments of each op (KVS_CAPI_PLAN_COMMON's run and can_implement).
namespace {

auto to_args(const kvs_rms_norm_args& a) {
  return RmsNormArgs{.x = capi::to_view(a.x), .weight = capi::to_view(a.weight),
                     .residual = capi::to_view(a.residual), .out = capi::to_view(a.out)};
}

auto to_args(const kvs_gdn_prefill_args& a) {
  return GdnPrefillArgs{.q = capi::to_view(a.q), .k = capi::to_view(a.k), .v = capi::to_view(a.v),
                        .alpha = capi::to_view(a.alpha), .beta = capi::to_view(a.beta),
                        .cu_seqlens = capi::to_view(a.cu_seqlens), .initial_state = capi::to_view(a.initial_state),
                        .out = capi::to_view(a.out), .final_state = capi::to_view(a.final_state)};
}

auto to_args(const kvs_gdn_decode_args& a) {
  return GdnDecodeArgs{.q = capi::to_view(a.q), .k = capi::to_view(a.k), .v = capi::to_view(a.v),
                       .alpha = capi::to_view(a.alpha), .beta = capi::to_view(a.beta),
                       .state_indices = capi::to_view(a.state_indices), .state = capi::to_view(a.state),
                       .out = capi::to_view(a.out)};
}

}  // namespace

extern "C" {

kvs_status_code kvs_rms_norm_create(const kvs_rms_norm_desc* desc, kvs_device device, kvs_rms_norm_plan** plan,
                                    kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_rms_norm_desc& d) {
    return RmsNormDesc{.hidden_size = d.hidden_size, .dtype = capi::to_dtype(d.dtype), .eps = d.eps,
                       .weight_offset = d.weight_offset, .fused_add = capi::to_bool(d.fused_add)};
  });
}

kvs_status_code kvs_gdn_prefill_create(const kvs_gdn_prefill_desc* desc, kvs_device device,
                                       kvs_gdn_prefill_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_gdn_prefill_desc& d) {
    return GdnPrefillDesc{.max_batch = d.max_batch, .max_tokens = d.max_tokens, .num_qk_heads = d.num_qk_heads,
                          .num_v_heads = d.num_v_heads, .head_dim_k = d.head_dim_k, .head_dim_v = d.head_dim_v,
                          .dtype = capi::to_dtype(d.dtype), .scale = capi::positive_or_default(d.scale),
                          .use_qk_l2norm = capi::to_bool(d.use_qk_l2norm), .l2norm_eps = d.l2norm_eps};
  });
}

kvs_status_code kvs_gdn_decode_create(const kvs_gdn_decode_desc* desc, kvs_device device,
                                      kvs_gdn_decode_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_gdn_decode_desc& d) {
    return GdnDecodeDesc{.max_batch = d.max_batch, .num_state_slots = d.num_state_slots,
                         .num_qk_heads = d.num_qk_heads, .num_v_heads = d.num_v_heads, .head_dim_k = d.head_dim_k,
                         .head_dim_v = d.head_dim_v, .dtype = capi::to_dtype(d.dtype),
                         .scale = capi::positive_or_default(d.scale), .use_qk_l2norm = capi::to_bool(d.use_qk_l2norm),
                         .l2norm_eps = d.l2norm_eps};
  });
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(rms_norm)
KVS_CAPI_PLAN_COMMON(gdn_prefill)
KVS_CAPI_PLAN_COMMON(gdn_decode)
