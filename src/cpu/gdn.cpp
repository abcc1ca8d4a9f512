// CPU kernel for GdnPrefill: the gated delta rule, token by token, fp32 state.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/backend_kernels.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/dot.hpp"
#include "cpu/parallel.hpp"
#include "kvserve/gdn.hpp"

namespace kvserve::detail {

namespace {

// x / sqrt(|x|^2 + eps), in place.
void l2_normalise(float* x, int n, float eps) {
  const float inv = 1.f / std::sqrt(cpu::dot(x, x, n) + eps);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

float f32_at(const TensorView& t, std::int64_t i0, std::int64_t i1) {
  return *reinterpret_cast<const float*>(cpu::element_ptr(t, {i0, i1}));
}

// One (sequence, head) recurrence. The state's rows evolve independently:
//   row_i <- alpha row_i - beta (alpha row_i . k - v_i) k
// so each row is updated with one dot product against k and one against q.
void run_head(const GdnPrefillDesc& d, const GdnPrefillArgs& a, std::int64_t b, int h) {
  const int dk = d.head_dim_k, dv = d.head_dim_v;
  const int heads = std::max(d.num_qk_heads, d.num_v_heads);
  const int qk_head = h / (heads / d.num_qk_heads), v_head = h / (heads / d.num_v_heads);
  const float scale = d.scale.value_or(1.f / std::sqrt(static_cast<float>(dk)));
  const auto* cu = a.cu_seqlens.ptr<const std::int32_t>();

  std::vector<float> state(static_cast<std::size_t>(dv) * dk, 0.f);
  if (a.initial_state.defined())
    for (int i = 0; i < dv; ++i)
      cpu::widen_row(DType::f32, cpu::element_ptr(a.initial_state, {b, h, i, 0}), dk, 1.f, &state[std::size_t(i) * dk]);

  std::vector<float> q(static_cast<std::size_t>(dk)), k(q.size()), v(static_cast<std::size_t>(dv)), o(v.size());
  for (std::int64_t t = cu[b]; t < cu[b + 1]; ++t) {
    cpu::widen_row(d.dtype, cpu::element_ptr(a.q, {t, qk_head, 0}), dk, 1.f, q.data());
    cpu::widen_row(d.dtype, cpu::element_ptr(a.k, {t, qk_head, 0}), dk, 1.f, k.data());
    cpu::widen_row(d.dtype, cpu::element_ptr(a.v, {t, v_head, 0}), dv, 1.f, v.data());
    if (d.use_qk_l2norm) {
      l2_normalise(q.data(), dk, d.l2norm_eps);
      l2_normalise(k.data(), dk, d.l2norm_eps);
    }
    const float alpha = f32_at(a.alpha, t, h), beta = f32_at(a.beta, t, h);
    for (int i = 0; i < dv; ++i) {
      float* row = &state[std::size_t(i) * dk];
      const float delta = beta * (v[i] - alpha * cpu::dot(row, k.data(), dk));
      for (int j = 0; j < dk; ++j) row[j] = alpha * row[j] + delta * k[j];
      o[i] = scale * cpu::dot(row, q.data(), dk);
    }
    cpu::narrow_row(d.dtype, o.data(), dv, cpu::element_ptr_mut(a.out, {t, h, 0}));
  }

  if (a.final_state.defined())
    for (int i = 0; i < dv; ++i)
      cpu::narrow_row(DType::f32, &state[std::size_t(i) * dk], dk, cpu::element_ptr_mut(a.final_state, {b, h, i, 0}));
}

Status run_gdn_prefill(const PlanState<GdnPrefill>& p, const GdnPrefillArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const int heads = std::max(d.num_qk_heads, d.num_v_heads);
  const std::int64_t batch = a.cu_seqlens.shape[0] - 1;
  // An empty sequence has work only when its final state is asked for (the
  // initial state, or zeros, copied out): the others are not scheduled, so an
  // empty batch costs nothing however many heads the plan has.
  const auto* cu = a.cu_seqlens.ptr<const std::int32_t>();
  std::vector<std::int64_t> sequences;
  for (std::int64_t b = 0; b < batch; ++b)
    if (cu[b + 1] > cu[b] || a.final_state.defined()) sequences.push_back(b);
  if (sequences.empty()) return Status::ok();
  // Work per (sequence, head) task, on average: 4 d_v d_k flops per token.
  const std::int64_t n = static_cast<std::int64_t>(sequences.size());
  const std::int64_t tokens_per_seq = std::max<std::int64_t>(1, a.q.shape[0] / n);
  cpu::parallel_for(n * heads, tokens_per_seq * 4 * d.head_dim_v * d.head_dim_k, [&](std::int64_t task) {
    run_head(d, a, sequences[static_cast<std::size_t>(task / heads)], static_cast<int>(task % heads));
  });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<GdnPrefill>> cpu_kernel<GdnPrefill>(const GdnPrefillDesc& d) {
  return cpu::make_kernel<GdnPrefill>(cpu::config("dtype", d.dtype, "h_qk", d.num_qk_heads, "h_v", d.num_v_heads, "dk",
                                                  d.head_dim_k, "dv", d.head_dim_v, "l2norm", d.use_qk_l2norm) +
                                          " recurrent",
                                      run_gdn_prefill);
}

}  // namespace kvserve::detail
