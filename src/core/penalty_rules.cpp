// Validation and kernel selection for TokenPenalty.
#include <cmath>

#include "core/plan_impl.hpp"
#include "core/sampling_rules.hpp"
#include "kvserve/penalty.hpp"

namespace kvserve {
namespace detail {

template <>
Status OpRules<TokenPenalty>::check_desc(const TokenPenaltyDesc& d) {
  KVSERVE_TRY(check_vocab(op, d.vocab));
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_enum(op, "history", static_cast<int>(d.history), {"token_counts", "token_ids"}));
  KVSERVE_TRY(check_enum(op, "params", static_cast<int>(d.params), {"scalar", "per_row"}));
  if (d.params == ParamSource::per_row) return Status::ok();
  KVSERVE_TRY(check_finite_positive(op, "repetition", d.repetition));
  if (!std::isfinite(d.frequency))
    return invalid_field(op, "frequency", "a finite value", to_text(double{d.frequency}));
  if (!std::isfinite(d.presence))
    return invalid_field(op, "presence", "a finite value", to_text(double{d.presence}));
  return Status::ok();
}

template <>
Status OpRules<TokenPenalty>::check_args(const PlanState<TokenPenalty>& p, const TokenPenaltyArgs& a) {
  const auto& d = p.desc;
  KVSERVE_TRY(check_batch_tensor(op, "logits", a.logits, p.device, DType::f32, d.vocab, d.max_batch));
  const std::int64_t b = a.logits.shape[0];
  if (d.history == PenaltyHistory::token_counts) {
    KVSERVE_TRY(check_tensor(op, "counts", a.counts, p.device, DType::int32, {b, d.vocab}));
    KVSERVE_TRY(check_row_tensor(op, "token_ids", a.token_ids, false, "descriptor field 'history' is token_counts",
                                 p.device, DType::int32, b));
  } else {
    KVSERVE_TRY(check_tensor(op, "token_ids", a.token_ids, p.device, DType::int32, {b, kAny}));
    KVSERVE_TRY(check_row_tensor(op, "counts", a.counts, false, "descriptor field 'history' is token_ids", p.device,
                                 DType::int32, b));
  }
  const bool per_row = d.params == ParamSource::per_row;
  const char* why = "descriptor field 'params' is scalar";
  KVSERVE_TRY(check_row_tensor(op, "repetition", a.repetition, per_row, why, p.device, DType::f32, b));
  KVSERVE_TRY(check_row_tensor(op, "frequency", a.frequency, per_row, why, p.device, DType::f32, b));
  return check_row_tensor(op, "presence", a.presence, per_row, why, p.device, DType::f32, b);
}

}  // namespace detail

template class Plan<TokenPenalty>;

std::string_view name_of(PenaltyHistory v) { return v == PenaltyHistory::token_counts ? "token_counts" : "token_ids"; }

}  // namespace kvserve
