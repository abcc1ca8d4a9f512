// Validation of the MLA decode op (mla.hpp).
#include "core/paged_kv_rules.hpp"
#include "core/plan_impl.hpp"
#include "kvserve/mla.hpp"

namespace kvserve {
namespace detail {

template <>
Status OpRules<BatchPagedMlaDecode>::check_desc(const BatchPagedMlaDecodeDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_size(op, "num_heads", d.num_heads, kMaxHeads));
  KVSERVE_TRY(check_paged_mla_desc(op, "cache", d.cache));
  KVSERVE_TRY(check_finite_positive(op, "sm_scale", d.sm_scale));
  return check_split_tokens(op, d.kv_split_tokens);
}

template <>
Status OpRules<BatchPagedMlaDecode>::check_prepare(const BatchPagedMlaDecodeDesc& d, const PagedKvLengths& host,
                                                   std::int64_t* batch) {
  return check_paged_lengths(BatchPagedMlaDecode::kName, "host", page_geometry(d.cache), host, d.max_batch, batch);
}

template <>
Status OpRules<BatchPagedMlaDecode>::check_args(const PlanState<BatchPagedMlaDecode>& p,
                                                const BatchPagedMlaDecodeArgs& a) {
  const auto& d = p.desc;
  const std::int64_t b = a.q_nope.rank > 0 ? a.q_nope.shape[0] : 0;
  KVSERVE_TRY(check_tensor(op, "q_nope", a.q_nope, p.device, d.cache.dtype, {kAny, d.num_heads, d.cache.ckv_dim}));
  KVSERVE_TRY(check_tensor(op, "q_pe", a.q_pe, p.device, d.cache.dtype, {b, d.num_heads, d.cache.kpe_dim}));
  KVSERVE_TRY(check_prepared_batch(op, "q_nope", b, p.prepared_batch, d.max_batch));
  KVSERVE_TRY(check_paged_mla_cache(op, "cache", d.cache, a.cache, b, p.device));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.cache.dtype, {b, d.num_heads, d.cache.ckv_dim}));
  return check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {b, d.num_heads});
}

}  // namespace detail

template class Plan<BatchPagedMlaDecode>;

}  // namespace kvserve
