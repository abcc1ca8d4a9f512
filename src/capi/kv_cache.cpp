// C ABI of the KV-cache append ops.
#include "capi/capi.hpp"
#include "kvserve/kv_cache.hpp"

using namespace kvserve;

static_assert(KVS_APPEND_DECODE == static_cast<int>(AppendMode::decode) &&
              KVS_APPEND_RAGGED == static_cast<int>(AppendMode::ragged));

struct kvs_paged_kv_append_plan : capi::PlanHandle<PagedKvAppend> {};
struct kvs_paged_mla_append_plan : capi::PlanHandle<PagedMlaAppend> {};
struct kvs_kv_cache_append_plan : capi::PlanHandle<KvCacheAppend> {};

// The C++ run arguments of each op (KVS_CAPI_PLAN_COMMON's run and can_implement).
namespace {

auto to_args(const kvs_paged_kv_append_args& a) {
  return PagedKvAppendArgs{.k = capi::to_view(a.k), .v = capi::to_view(a.v),
                           .batch_indices = capi::to_view(a.batch_indices), .positions = capi::to_view(a.positions),
                           .kv = capi::to_paged(a.kv)};
}

auto to_args(const kvs_paged_mla_append_args& a) {
  return PagedMlaAppendArgs{.ckv = capi::to_view(a.ckv), .kpe = capi::to_view(a.kpe),
                            .batch_indices = capi::to_view(a.batch_indices),
                            .positions = capi::to_view(a.positions), .cache = capi::to_mla_cache(a.cache)};
}

auto to_args(const kvs_kv_cache_append_args& a) {
  return KvCacheAppendArgs{.k = capi::to_view(a.k), .v = capi::to_view(a.v),
                           .batch_indices = capi::to_view(a.batch_indices), .positions = capi::to_view(a.positions),
                           .k_cache = capi::to_view(a.k_cache), .v_cache = capi::to_view(a.v_cache)};
}

}  // namespace

extern "C" {

kvs_status_code kvs_paged_kv_append_create(const kvs_paged_kv_append_desc* desc, kvs_device device,
                                           kvs_paged_kv_append_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_paged_kv_append_desc& d) {
    return PagedKvAppendDesc{.kv = capi::to_desc(d.kv), .dtype = capi::to_dtype(d.dtype),
                             .mode = capi::to_enum<AppendMode>(d.mode)};
  });
}

kvs_status_code kvs_paged_mla_append_create(const kvs_paged_mla_desc* desc, kvs_device device,
                                            kvs_paged_mla_append_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_paged_mla_desc& d) { return capi::to_desc(d); });
}

kvs_status_code kvs_kv_cache_append_create(const kvs_kv_cache_append_desc* desc, kvs_device device,
                                           kvs_kv_cache_append_plan** plan, kvs_error* err) {
  return capi::create(desc, device, plan, err, [](const kvs_kv_cache_append_desc& d) {
    return KvCacheAppendDesc{.num_kv_heads = d.num_kv_heads, .head_dim = d.head_dim,
                             .dtype = capi::to_dtype(d.dtype)};
  });
}

}  // extern "C"

KVS_CAPI_PLAN_COMMON(paged_kv_append)
KVS_CAPI_PLAN_COMMON(paged_mla_append)
KVS_CAPI_PLAN_COMMON(kv_cache_append)
