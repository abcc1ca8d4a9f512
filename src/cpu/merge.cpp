// CPU kernels for MergeState and MergeStates: each (token, head) row widens its
// partial states to fp32, merges them through SoftmaxState and rounds once.
#include <vector>

#include "core/backend_kernels.hpp"
#include "core/check.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/parallel.hpp"
#include "cpu/softmax_state.hpp"
#include "kvserve/merge.hpp"

namespace kvserve::detail {
namespace {

float lse_at(const TensorView& lse, std::initializer_list<std::int64_t> idx) {
  return *reinterpret_cast<const float*>(cpu::element_ptr(lse, idx));
}

// Calls merge_row(token, head, state, scratch) for every row (in parallel over
// tokens; state arrives empty, scratch holds head_dim floats), then
// writes the finished state to v_out[token, head] and lse_out (when given).
// Every input of a row is read before its outputs are written, which is what
// makes MergeState's in-place form safe.
template <class MergeRow>
void merge_rows(std::int64_t tokens, int heads, int dim, std::int64_t states_per_row, const TensorView& v_out,
                const TensorView& lse_out, MergeRow&& merge_row) {
  // heads * dim <= 2^26 (the descriptor bounds); states_per_row comes from a shape.
  const std::int64_t cost = cpu::saturating_product(std::int64_t{4} * heads * dim, states_per_row);
  cpu::parallel_for(tokens, cost, [&](std::int64_t t) {
    cpu::SoftmaxState state(dim);
    std::vector<float> scratch(static_cast<std::size_t>(dim)), merged(static_cast<std::size_t>(dim));
    for (int h = 0; h < heads; ++h) {
      float merged_lse;
      state.clear();
      merge_row(t, h, state, scratch.data());
      state.finish(merged.data(), &merged_lse);
      cpu::narrow_row(v_out.dtype, merged.data(), dim, cpu::element_ptr_mut(v_out, {t, h, 0}));
      if (lse_out.defined()) *reinterpret_cast<float*>(cpu::element_ptr_mut(lse_out, {t, h})) = merged_lse;
    }
  });
}

Status run_merge_state(const PlanState<MergeState>& p, const MergeStateArgs& a, Workspace, Stream) {
  const int dim = p.desc.head_dim;
  merge_rows(a.v_a.shape[0], p.desc.num_heads, dim, 2, a.v_out, a.lse_out,
             [&](std::int64_t t, int h, cpu::SoftmaxState& state, float* scratch) {
               for (auto [v, lse] : {std::pair{&a.v_a, &a.lse_a}, std::pair{&a.v_b, &a.lse_b}}) {
                 cpu::widen_row(v->dtype, cpu::element_ptr(*v, {t, h, 0}), dim, 1.f, scratch);
                 state.merge(scratch, lse_at(*lse, {t, h}));
               }
             });
  return Status::ok();
}

Status run_merge_states(const PlanState<MergeStates>& p, const MergeStatesArgs& a, Workspace, Stream) {
  const int dim = p.desc.head_dim;
  const std::int64_t n = a.v.shape[1];
  merge_rows(a.v.shape[0], p.desc.num_heads, dim, n, a.v_out, a.lse_out,
             [&](std::int64_t t, int h, cpu::SoftmaxState& state, float* scratch) {
               for (std::int64_t i = 0; i < n; ++i) {
                 cpu::widen_row(a.v.dtype, cpu::element_ptr(a.v, {t, i, h, 0}), dim, 1.f, scratch);
                 state.merge(scratch, lse_at(a.lse, {t, i, h}));
               }
             });
  return Status::ok();
}

std::string merge_config(DType dtype, int num_heads, int head_dim) {
  return cpu::config("dtype", dtype, "heads", num_heads, "d", head_dim);
}

}  // namespace

template <>
Result<Kernel<MergeState>> cpu_kernel<MergeState>(const MergeStateDesc& d) {
  return cpu::make_kernel<MergeState>(merge_config(d.dtype, d.num_heads, d.head_dim), run_merge_state);
}

template <>
Result<Kernel<MergeStates>> cpu_kernel<MergeStates>(const MergeStatesDesc& d) {
  return cpu::make_kernel<MergeStates>(merge_config(d.dtype, d.num_heads, d.head_dim), run_merge_states);
}

}  // namespace kvserve::detail
