// Validation and kernel selection for ChainSpeculativeSampling.
#include "core/plan_impl.hpp"
#include "core/sampling_rules.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve {
namespace detail {

template <>
Status OpRules<ChainSpeculativeSampling>::check_desc(const ChainSpeculativeSamplingDesc& d) {
  KVSERVE_TRY(check_vocab(op, d.vocab));
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_size(op, "num_draft_tokens", d.num_draft_tokens, kMaxDraftTokens));
  return check_enum(op, "random", static_cast<int>(d.random), {"host", "per_row"});
}

template <>
Status OpRules<ChainSpeculativeSampling>::check_args(const PlanState<ChainSpeculativeSampling>& p,
                                                     const ChainSpeculativeSamplingArgs& a) {
  const auto& d = p.desc;
  const std::int64_t n = d.num_draft_tokens;
  KVSERVE_TRY(check_batch_tensor(op, "draft_token_ids", a.draft_token_ids, p.device, DType::int32, n, d.max_batch));
  const std::int64_t b = a.draft_token_ids.shape[0];
  KVSERVE_TRY(check_tensor(op, "draft_probs", a.draft_probs, p.device, DType::f32, {b, n, d.vocab}));
  KVSERVE_TRY(check_tensor(op, "target_probs", a.target_probs, p.device, DType::f32, {b, n + 1, d.vocab}));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, DType::int32, {b, n + 1}));
  KVSERVE_TRY(check_optional_tensor(op, "accepted", a.accepted, p.device, DType::int32, {b}));
  KVSERVE_TRY(check_optional_tensor(op, "emitted", a.emitted, p.device, DType::int32, {b}));
  return check_random_tensors(op, d.random, /*draws=*/true, a.seeds, a.offsets, p.device, b);
}

}  // namespace detail

template class Plan<ChainSpeculativeSampling>;

}  // namespace kvserve
