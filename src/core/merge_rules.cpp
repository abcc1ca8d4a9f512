// Validation and kernel selection for MergeState and MergeStates.
#include <algorithm>
#include <cstdint>

#include "core/plan_impl.hpp"
#include "kvserve/merge.hpp"

namespace kvserve {
namespace detail {
namespace {

template <class Desc>
Status check_merge_desc(std::string_view op, const Desc& d) {
  KVSERVE_TRY(check_size(op, "num_heads", d.num_heads, kMaxHeads));
  KVSERVE_TRY(check_size(op, "head_dim", d.head_dim, kMaxRowWidth));
  return check_activation_dtype(op, "dtype", d.dtype);
}

// The bytes [lo, hi) a view can touch; empty (lo == hi) without elements.
struct ByteRange {
  std::uintptr_t lo = 0, hi = 0;
};
ByteRange byte_range(const TensorView& t) {
  if (t.numel() == 0) return {};
  std::int64_t lo = 0, hi = 0;
  for (int d = 0; d < t.rank; ++d) {
    const std::int64_t span = (t.shape[d] - 1) * t.strides[d];
    (span < 0 ? lo : hi) += span;
  }
  const auto base = reinterpret_cast<std::uintptr_t>(t.data);
  const std::int64_t elem = static_cast<std::int64_t>(size_of(t.dtype));
  return {base + static_cast<std::uintptr_t>(lo * elem), base + static_cast<std::uintptr_t>((hi + 1) * elem)};
}

bool same_view(const TensorView& a, const TensorView& b) {
  return a.data == b.data && a.dtype == b.dtype && a.rank == b.rank && a.shape == b.shape && a.strides == b.strides &&
         a.device == b.device;
}

// An output must not overlap an input, except as the very same view when
// `may_alias` (in place).
Status check_no_overlap(std::string_view op, std::string_view out_name, const TensorView& out,
                        std::string_view in_name, const TensorView& in, bool may_alias) {
  if (!out.defined() || !in.defined() || out.device != in.device) return Status::ok();
  if (may_alias && same_view(out, in)) return Status::ok();
  const ByteRange o = byte_range(out), i = byte_range(in);
  if (o.lo >= i.hi || i.lo >= o.hi) return Status::ok();
  return invalid_arg(op, out_name,
                     std::string("memory disjoint from '") + std::string(in_name) + "'" +
                         (may_alias ? " or exactly that view (in place)" : ""),
                     "an overlap with '" + std::string(in_name) + "'");
}

}  // namespace

// ------------------------------------------------------------- MergeState --

template <>
Status OpRules<MergeState>::check_desc(const MergeStateDesc& d) {
  return check_merge_desc(MergeState::kName, d);
}

template <>
Status OpRules<MergeState>::check_args(const PlanState<MergeState>& p, const MergeStateArgs& a) {
  const auto& d = p.desc;
  KVSERVE_TRY(check_tensor(op, "v_a", a.v_a, p.device, d.dtype, {kAny, d.num_heads, d.head_dim}));
  const std::int64_t tokens = a.v_a.shape[0];
  KVSERVE_TRY(check_tensor(op, "lse_a", a.lse_a, p.device, DType::f32, {tokens, d.num_heads}));
  KVSERVE_TRY(check_tensor(op, "v_b", a.v_b, p.device, d.dtype, {tokens, d.num_heads, d.head_dim}));
  KVSERVE_TRY(check_tensor(op, "lse_b", a.lse_b, p.device, DType::f32, {tokens, d.num_heads}));
  KVSERVE_TRY(check_tensor(op, "v_out", a.v_out, p.device, d.dtype, {tokens, d.num_heads, d.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse_out", a.lse_out, p.device, DType::f32, {tokens, d.num_heads}));
  // Each output may be its own kind of input (in place), nothing else.
  const std::pair<const char*, const TensorView*> v_in[] = {{"v_a", &a.v_a}, {"v_b", &a.v_b}};
  const std::pair<const char*, const TensorView*> lse_in[] = {{"lse_a", &a.lse_a}, {"lse_b", &a.lse_b}};
  for (auto [name, in] : v_in) {
    KVSERVE_TRY(check_no_overlap(op, "v_out", a.v_out, name, *in, true));
    KVSERVE_TRY(check_no_overlap(op, "lse_out", a.lse_out, name, *in, false));
  }
  for (auto [name, in] : lse_in) {
    KVSERVE_TRY(check_no_overlap(op, "v_out", a.v_out, name, *in, false));
    KVSERVE_TRY(check_no_overlap(op, "lse_out", a.lse_out, name, *in, true));
  }
  return check_no_overlap(op, "lse_out", a.lse_out, "v_out", a.v_out, false);
}

// ------------------------------------------------------------ MergeStates --

template <>
Status OpRules<MergeStates>::check_desc(const MergeStatesDesc& d) {
  return check_merge_desc(MergeStates::kName, d);
}

template <>
Status OpRules<MergeStates>::check_args(const PlanState<MergeStates>& p, const MergeStatesArgs& a) {
  const auto& d = p.desc;
  KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {kAny, kAny, d.num_heads, d.head_dim}));
  const std::int64_t tokens = a.v.shape[0], n = a.v.shape[1];
  KVSERVE_TRY(check_tensor(op, "lse", a.lse, p.device, DType::f32, {tokens, n, d.num_heads}));
  KVSERVE_TRY(check_tensor(op, "v_out", a.v_out, p.device, d.dtype, {tokens, d.num_heads, d.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse_out", a.lse_out, p.device, DType::f32, {tokens, d.num_heads}));
  for (auto [out_name, out] : {std::pair{"v_out", &a.v_out}, std::pair{"lse_out", &a.lse_out}}) {
    KVSERVE_TRY(check_no_overlap(op, out_name, *out, "v", a.v, false));
    KVSERVE_TRY(check_no_overlap(op, out_name, *out, "lse", a.lse, false));
  }
  return check_no_overlap(op, "lse_out", a.lse_out, "v_out", a.v_out, false);
}

}  // namespace detail

template class Plan<MergeState>;
template class Plan<MergeStates>;

}  // namespace kvserve
