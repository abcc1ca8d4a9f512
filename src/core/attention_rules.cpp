// Validation and kernel selection for the attention ops.
#include "core/paged_kv_rules.hpp"
#include "core/plan_impl.hpp"
#include "kvserve/attention.hpp"

namespace kvserve {
namespace detail {

// ------------------------------------------------------- BatchPagedDecode --

template <>
Status OpRules<BatchPagedDecode>::check_desc(const BatchPagedDecodeDesc& d) {
  constexpr const char* op = BatchPagedDecode::kName;
  KVSERVE_TRY(check_positive(op, "max_batch", d.max_batch));
  KVSERVE_TRY(check_positive(op, "num_qo_heads", d.num_qo_heads));
  KVSERVE_TRY(check_paged_kv_desc(op, "kv", d.kv));
  KVSERVE_TRY(check_divisible(op, "num_qo_heads", d.num_qo_heads, "kv.num_kv_heads", d.kv.num_kv_heads));
  KVSERVE_TRY(check_q_dtype(op, "q_dtype", d.q_dtype, d.kv.dtype));
  KVSERVE_TRY(check_attention_params(op, "attn", d.attn));
  if (d.kv_split_tokens < 0) return invalid_field(op, "kv_split_tokens", "0 (auto) or > 0", to_text(std::int64_t{d.kv_split_tokens}));
  return Status::ok();
}

template <>
Result<Kernel<BatchPagedDecode>> OpRules<BatchPagedDecode>::select(const BatchPagedDecodeDesc& d, Device device) {
  return select_backend<BatchPagedDecode>(d, device);
}

template <>
Status OpRules<BatchPagedDecode>::check_prepare(const BatchPagedDecodeDesc& d, const PagedKvLengths& host,
                                                std::int64_t* batch) {
  return check_paged_lengths(BatchPagedDecode::kName, "host", d.kv, host, d.max_batch, batch);
}

template <>
Status OpRules<BatchPagedDecode>::check_args(const PlanState<BatchPagedDecode>& p, const BatchPagedDecodeArgs& a) {
  constexpr const char* op = BatchPagedDecode::kName;
  const auto& d = p.desc;
  const std::int64_t b = a.q.rank > 0 ? a.q.shape[0] : 0;
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.q_dtype, {kAny, d.num_qo_heads, d.kv.head_dim}));
  KVSERVE_TRY(check_prepared_batch(op, b, p.prepared_batch, d.max_batch));
  KVSERVE_TRY(check_paged_kv_args(op, "kv", d.kv, a.kv, b, p.device));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.q_dtype, {b, d.num_qo_heads, d.kv.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {b, d.num_qo_heads}));
  return Status::ok();
}

}  // namespace detail

template class Plan<BatchPagedDecode>;

std::string_view name_of(KvLayout l) { return l == KvLayout::NHD ? "NHD" : "HND"; }

}  // namespace kvserve
