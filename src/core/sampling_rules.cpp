// Validation and kernel selection for Sampling and SamplingRenorm, and the
// checks the sampling family shares.
#include "core/sampling_rules.hpp"

#include <cmath>

#include "core/plan_impl.hpp"
#include "core/sampling_math.hpp"

namespace kvserve {
namespace detail {

// ------------------------------------------------------------ shared -------

Status check_vocab(std::string_view op, int vocab) {
  static_assert(kMaxVocab <= kMaxSamplingVocab, "a row's fixed-point mass must fit 63 bits");
  return check_size(op, "vocab", vocab, kMaxVocab);
}

Status check_enum(std::string_view op, std::string_view field, int value,
                  std::initializer_list<std::string_view> names) {
  if (value >= 0 && value < static_cast<int>(names.size())) return Status::ok();
  std::string expected = "one of";
  for (std::string_view n : names) expected.append(" ").append(n);
  return invalid_field(op, field, expected, "value " + to_text(std::int64_t{value}));
}

Status check_batch_tensor(std::string_view op, std::string_view name, const TensorView& t, Device device, DType dtype,
                          std::int64_t columns, int max_batch) {
  KVSERVE_TRY(check_tensor(op, name, t, device, dtype, {kAny, columns}));
  if (t.shape[0] <= max_batch) return Status::ok();
  return invalid_arg(op, name, "at most max_batch (" + to_text(std::int64_t{max_batch}) + ") rows",
                     to_text(t.shape[0]) + " rows");
}

Status check_row_tensor(std::string_view op, std::string_view name, const TensorView& t, bool used,
                        std::string_view unused_because, Device device, DType dtype, std::int64_t batch) {
  if (used) return check_tensor(op, name, t, device, dtype, {batch});
  if (!t.defined()) return Status::ok();
  return invalid_arg(op, name, "none (" + std::string(unused_because) + ")", "a tensor " + t.shape_string());
}

Status check_random_tensors(std::string_view op, RandomSource random, bool draws, const TensorView& seeds,
                            const TensorView& offsets, Device device, std::int64_t batch) {
  const bool used = draws && random == RandomSource::per_row;
  const char* why = draws ? "descriptor field 'random' is host" : "the plan draws no random numbers";
  KVSERVE_TRY(check_row_tensor(op, "seeds", seeds, used, why, device, DType::int32, batch));
  return check_row_tensor(op, "offsets", offsets, used, why, device, DType::int32, batch);
}

namespace {

Status check_common_enums(std::string_view op, ParamSource params) {
  return check_enum(op, "params", static_cast<int>(params), {"scalar", "per_row"});
}

Status check_top_k(std::string_view op, int k) {
  if (k >= 1) return Status::ok();
  return invalid_field(op, "top_k", ">= 1 (>= vocab keeps every token)", to_text(std::int64_t{k}));
}

Status check_top_p(std::string_view op, float p) {
  if (p > 0.f && p <= 1.f) return Status::ok();
  return invalid_field(op, "top_p", "in (0, 1]", to_text(double{p}));
}

bool uses_top_k(SamplingFilter f) { return f == SamplingFilter::top_k || f == SamplingFilter::top_k_top_p; }
bool uses_top_p(SamplingFilter f) { return f == SamplingFilter::top_p || f == SamplingFilter::top_k_top_p; }

// Whether a plan ever draws random numbers (greedy plans do not).
bool draws(const SamplingDesc& d) {
  if (d.filter == SamplingFilter::greedy) return false;
  return !(d.input == SamplingInput::logits && d.params == ParamSource::scalar && d.temperature == 0.f);
}

constexpr const char* kScalarParams = "descriptor field 'params' is scalar";

}  // namespace

// ---------------------------------------------------------------- Sampling --

template <>
Status OpRules<Sampling>::check_desc(const SamplingDesc& d) {
  KVSERVE_TRY(check_vocab(op, d.vocab));
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_enum(op, "input", static_cast<int>(d.input), {"probs", "logits"}));
  KVSERVE_TRY(check_enum(op, "filter", static_cast<int>(d.filter),
                         {"none", "top_k", "top_p", "min_p", "top_k_top_p", "greedy"}));
  KVSERVE_TRY(check_enum(op, "order", static_cast<int>(d.order), {"k_then_p", "joint"}));
  KVSERVE_TRY(check_common_enums(op, d.params));
  KVSERVE_TRY(check_enum(op, "random", static_cast<int>(d.random), {"host", "per_row"}));
  if (d.input == SamplingInput::probs && d.temperature != 1.f)
    return invalid_field(op, "temperature", "1 for probs input (temperature applies to logits)",
                         to_text(double{d.temperature}));
  if (d.params == ParamSource::per_row) return Status::ok();
  if (d.input == SamplingInput::logits && !(std::isfinite(d.temperature) && d.temperature >= 0.f))
    return invalid_field(op, "temperature", "a finite value >= 0 (0: greedy)", to_text(double{d.temperature}));
  if (uses_top_k(d.filter)) KVSERVE_TRY(check_top_k(op, d.top_k));
  if (uses_top_p(d.filter)) KVSERVE_TRY(check_top_p(op, d.top_p));
  if (d.filter == SamplingFilter::min_p && !(d.min_p >= 0.f && d.min_p <= 1.f))
    return invalid_field(op, "min_p", "in [0, 1]", to_text(double{d.min_p}));
  return Status::ok();
}

template <>
Status OpRules<Sampling>::check_args(const PlanState<Sampling>& p, const SamplingArgs& a) {
  const auto& d = p.desc;
  KVSERVE_TRY(check_batch_tensor(op, "input", a.input, p.device, DType::f32, d.vocab, d.max_batch));
  const std::int64_t b = a.input.shape[0];
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, DType::int32, {b}));
  const bool per_row = d.params == ParamSource::per_row;
  KVSERVE_TRY(check_row_tensor(op, "temperature", a.temperature, per_row && d.input == SamplingInput::logits,
                               per_row ? "probs input has no temperature" : kScalarParams, p.device, DType::f32, b));
  KVSERVE_TRY(check_row_tensor(op, "top_k", a.top_k, per_row && uses_top_k(d.filter),
                               per_row ? "the filter has no top_k" : kScalarParams, p.device, DType::int32, b));
  KVSERVE_TRY(check_row_tensor(op, "top_p", a.top_p, per_row && uses_top_p(d.filter),
                               per_row ? "the filter has no top_p" : kScalarParams, p.device, DType::f32, b));
  KVSERVE_TRY(check_row_tensor(op, "min_p", a.min_p, per_row && d.filter == SamplingFilter::min_p,
                               per_row ? "the filter has no min_p" : kScalarParams, p.device, DType::f32, b));
  return check_random_tensors(op, d.random, draws(d), a.seeds, a.offsets, p.device, b);
}

// ---------------------------------------------------------- SamplingRenorm --

template <>
Status OpRules<SamplingRenorm>::check_desc(const SamplingRenormDesc& d) {
  KVSERVE_TRY(check_vocab(op, d.vocab));
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_enum(op, "kind", static_cast<int>(d.kind),
                         {"top_k_renorm_probs", "top_p_renorm_probs", "top_k_mask_logits"}));
  KVSERVE_TRY(check_common_enums(op, d.params));
  if (d.params == ParamSource::per_row) return Status::ok();
  if (d.kind == RenormKind::top_p_renorm_probs) return check_top_p(op, d.top_p);
  return check_top_k(op, d.top_k);
}

template <>
Status OpRules<SamplingRenorm>::check_args(const PlanState<SamplingRenorm>& p, const SamplingRenormArgs& a) {
  const auto& d = p.desc;
  KVSERVE_TRY(check_batch_tensor(op, "input", a.input, p.device, DType::f32, d.vocab, d.max_batch));
  const std::int64_t b = a.input.shape[0];
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, DType::f32, {b, d.vocab}));
  const bool per_row = d.params == ParamSource::per_row;
  const bool by_p = d.kind == RenormKind::top_p_renorm_probs;
  KVSERVE_TRY(check_row_tensor(op, "top_k", a.top_k, per_row && !by_p,
                               per_row ? "the kind has no top_k" : kScalarParams, p.device, DType::int32, b));
  return check_row_tensor(op, "top_p", a.top_p, per_row && by_p, per_row ? "the kind has no top_p" : kScalarParams,
                          p.device, DType::f32, b);
}

}  // namespace detail

template class Plan<Sampling>;
template class Plan<SamplingRenorm>;

std::string_view name_of(SamplingInput v) { return v == SamplingInput::probs ? "probs" : "logits"; }
std::string_view name_of(SamplingFilter v) {
  switch (v) {
    case SamplingFilter::none: return "none";
    case SamplingFilter::top_k: return "top_k";
    case SamplingFilter::top_p: return "top_p";
    case SamplingFilter::min_p: return "min_p";
    case SamplingFilter::top_k_top_p: return "top_k_top_p";
    case SamplingFilter::greedy: return "greedy";
  }
  return "?";
}
std::string_view name_of(TopKTopPOrder v) { return v == TopKTopPOrder::k_then_p ? "k_then_p" : "joint"; }
std::string_view name_of(ParamSource v) { return v == ParamSource::scalar ? "scalar" : "per_row"; }
std::string_view name_of(RandomSource v) { return v == RandomSource::host ? "host" : "per_row"; }
std::string_view name_of(RenormKind v) {
  switch (v) {
    case RenormKind::top_k_renorm_probs: return "top_k_renorm_probs";
    case RenormKind::top_p_renorm_probs: return "top_p_renorm_probs";
    case RenormKind::top_k_mask_logits: return "top_k_mask_logits";
  }
  return "?";
}

}  // namespace kvserve
