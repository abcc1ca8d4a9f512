// Validation and kernel selection for RmsNorm.
#include "core/plan_impl.hpp"
#include "kvserve/norm.hpp"

namespace kvserve {
namespace detail {

template <>
Status OpRules<RmsNorm>::check_desc(const RmsNormDesc& d) {
  KVSERVE_TRY(check_size(op, "hidden_size", d.hidden_size, kMaxRowWidth));
  KVSERVE_TRY(check_activation_dtype(op, "dtype", d.dtype));
  KVSERVE_TRY(check_finite_positive(op, "eps", d.eps));
  if (d.weight_offset != 0.f && d.weight_offset != 1.f)
    return invalid_field(op, "weight_offset", "0 (plain) or 1 (Gemma)", to_text(double{d.weight_offset}));
  return Status::ok();
}

template <>
Status OpRules<RmsNorm>::check_args(const PlanState<RmsNorm>& p, const RmsNormArgs& a) {
  const auto& d = p.desc;
  // x fixes the shape every other row tensor must have: [rows, H] or [tokens, heads, H].
  if (a.x.defined()) KVSERVE_TRY(check_view(op, "x", a.x));
  if (a.x.defined() && a.x.rank != 2 && a.x.rank != 3)
    return invalid_arg(op, "x", "rank 2 [rows, hidden_size] or rank 3 [tokens, heads, hidden_size]",
                       "rank " + to_text(std::int64_t{a.x.rank}) + " " + a.x.shape_string());
  const bool per_head = a.x.rank == 3;
  const auto check_rows = [&](const char* name, const TensorView& t, std::int64_t n0, std::int64_t n1) {
    return per_head ? check_tensor(op, name, t, p.device, d.dtype, {n0, n1, d.hidden_size})
                    : check_tensor(op, name, t, p.device, d.dtype, {n0, d.hidden_size});
  };
  KVSERVE_TRY(check_rows("x", a.x, kAny, kAny));
  const std::int64_t n0 = a.x.shape[0], n1 = per_head ? a.x.shape[1] : kAny;
  KVSERVE_TRY(check_tensor(op, "weight", a.weight, p.device, d.dtype, {d.hidden_size}));
  if (d.fused_add) {
    KVSERVE_TRY(check_rows("residual", a.residual, n0, n1));
  } else if (a.residual.defined()) {
    return invalid_arg(op, "residual", "none (descriptor field 'fused_add' is false)",
                       "a tensor " + a.residual.shape_string());
  }
  KVSERVE_TRY(check_rows("out", a.out, n0, n1));
  return Status::ok();
}

}  // namespace detail

template class Plan<RmsNorm>;

}  // namespace kvserve
