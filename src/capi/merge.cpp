// C ABI of the attention-state merges.
#include "capi/capi.hpp"
#include "kvserve/merge.hpp"

using namespace kvserve;

struct kvs_merge_state_plan : capi::PlanHandle<MergeState> {};
struct kvs_merge_states_plan : capi::PlanHandle<MergeStates> {};

// The C++ run arguments of each op (KVS_CAPI_PLAN_COMMON's run and can_implement).
namespace {

auto to_args(const kvs_merge_state_args& a) {
  return MergeStateArgs{.v_a = capi::to_view(a.v_a), .lse_a = capi::to_view(a.lse_a), .v_b = capi::to_view(a.v_b),
                        .lse_b = capi::to_view(a.lse_b), .v_out = capi::to_view(a.v_out),
                        .lse_out = capi::to_view(a.lse_out)};
}

auto to_args(const kvs_merge_states_args& a) {
  return MergeStatesArgs{.v = capi::to_view(a.v), .lse = capi::to_view(a.lse), .v_out = capi::to_view(a.v_out),
                         .lse_out = capi::to_view(a.lse_out)};
}

}  // namespace

extern "C" {

kvs_status_code kvs_merge_state_create(const kvs_merge_state_desc* desc, kvs_device device,
                                       kvs_merge_state_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_merge_state_desc& d) {
    return MergeStateDesc{.num_heads = d.num_heads, .head_dim = d.head_dim, .dtype = capi::to_dtype(d.dtype)};
  });
}

kvs_status_code kvs_merge_states_create(const kvs_merge_states_desc* desc, kvs_device device,
                                        kvs_merge_states_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_merge_states_desc& d) {
    return MergeStatesDesc{.num_heads = d.num_heads, .head_dim = d.head_dim, .dtype = capi::to_dtype(d.dtype)};
  });
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(merge_state)
KVS_CAPI_PLAN_COMMON(merge_states)
