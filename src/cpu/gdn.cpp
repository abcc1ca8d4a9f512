// CPU kernels for GdnPrefill and GdnDecode: the gated delta rule, token by
// token, fp32 state; both run the same step, so decode equals prefill bit for bit.
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

// A head's mapping onto the q/k and v heads (gdn.hpp), and its scale.
struct HeadMap {
  int qk_head, v_head;
  float scale;
};

template <class Desc>
HeadMap head_map(const Desc& d, int h) {
  const int heads = std::max(d.num_qk_heads, d.num_v_heads);
  return {h / (heads / d.num_qk_heads), h / (heads / d.num_v_heads),
          d.scale.value_or(1.f / std::sqrt(static_cast<float>(d.head_dim_k)))};
}

// The rows one token of one head reads, widened to f32 (and L2-normalised
// where the plan asks), and the step the token makes on a state [d_v, d_k].
// The state's rows evolve independently:
//   row_i <- alpha row_i - beta (alpha row_i . k - v_i) k
// so each row is updated with one dot product against k and one against q.
class TokenStep {
 public:
  template <class Desc>
  explicit TokenStep(const Desc& d)
      : dtype_(d.dtype), dk_(d.head_dim_k), dv_(d.head_dim_v), l2norm_(d.use_qk_l2norm), eps_(d.l2norm_eps),
        q_(static_cast<std::size_t>(dk_)), k_(q_.size()), v_(static_cast<std::size_t>(dv_)), o_(v_.size()) {}

  void run(const char* q, const char* k, const char* v, float alpha, float beta, float scale,
           float* state, char* out) {
    cpu::widen_row(dtype_, q, dk_, 1.f, q_.data());
    cpu::widen_row(dtype_, k, dk_, 1.f, k_.data());
    cpu::widen_row(dtype_, v, dv_, 1.f, v_.data());
    if (l2norm_) {
      l2_normalise(q_.data(), dk_, eps_);
      l2_normalise(k_.data(), dk_, eps_);
    }
    for (int i = 0; i < dv_; ++i) {
      float* row = state + std::size_t(i) * dk_;
      const float delta = beta * (v_[i] - alpha * cpu::dot(row, k_.data(), dk_));
      for (int j = 0; j < dk_; ++j) row[j] = alpha * row[j] + delta * k_[j];
      o_[i] = scale * cpu::dot(row, q_.data(), dk_);
    }
    cpu::narrow_row(dtype_, o_.data(), dv_, out);
  }

 private:
  DType dtype_;
  int dk_, dv_;
  bool l2norm_;
  float eps_;
  std::vector<float> q_, k_, v_, o_;
};

// Copies a state [d_v, d_k] between a tensor's (b, h) block and `rows`.
void load_state(const TensorView& t, std::int64_t b, int h, int dv, int dk, float* rows) {
  for (int i = 0; i < dv; ++i)
    cpu::widen_row(DType::f32, cpu::element_ptr(t, {b, h, i, 0}), dk, 1.f, rows + std::size_t(i) * dk);
}
void store_state(const float* rows, int dv, int dk, const TensorView& t, std::int64_t b, int h) {
  for (int i = 0; i < dv; ++i)
    cpu::narrow_row(DType::f32, rows + std::size_t(i) * dk, dk, cpu::element_ptr_mut(t, {b, h, i, 0}));
}

// One (sequence, head) recurrence of GdnPrefill.
void run_head(const GdnPrefillDesc& d, const GdnPrefillArgs& a, std::int64_t b, int h) {
  const int dk = d.head_dim_k, dv = d.head_dim_v;
  const HeadMap m = head_map(d, h);
  const auto* cu = a.cu_seqlens.ptr<const std::int32_t>();
  std::vector<float> state(static_cast<std::size_t>(dv) * dk, 0.f);
  if (a.initial_state.defined()) load_state(a.initial_state, b, h, dv, dk, state.data());
  TokenStep step(d);
  for (std::int64_t t = cu[b]; t < cu[b + 1]; ++t)
    step.run(cpu::element_ptr(a.q, {t, m.qk_head, 0}), cpu::element_ptr(a.k, {t, m.qk_head, 0}),
             cpu::element_ptr(a.v, {t, m.v_head, 0}), f32_at(a.alpha, t, h), f32_at(a.beta, t, h), m.scale,
             state.data(), cpu::element_ptr_mut(a.out, {t, h, 0}));
  if (a.final_state.defined()) store_state(state.data(), dv, dk, a.final_state, b, h);
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

// One (sequence, head) of GdnDecode: its token against its slot's state, in
// place; a padded row (slot -1) writes zeros.
void run_decode_head(const GdnDecodeDesc& d, const GdnDecodeArgs& a, std::int64_t b, int h) {
  const int dk = d.head_dim_k, dv = d.head_dim_v;
  const std::int32_t slot = a.state_indices.ptr<const std::int32_t>()[b];
  char* out = cpu::element_ptr_mut(a.out, {b, h, 0});
  if (slot < 0) {
    const std::vector<float> zeros(static_cast<std::size_t>(dv), 0.f);
    cpu::narrow_row(d.dtype, zeros.data(), dv, out);
    return;
  }
  const HeadMap m = head_map(d, h);
  std::vector<float> state(static_cast<std::size_t>(dv) * dk);
  load_state(a.state, slot, h, dv, dk, state.data());
  TokenStep(d).run(cpu::element_ptr(a.q, {b, m.qk_head, 0}), cpu::element_ptr(a.k, {b, m.qk_head, 0}),
                   cpu::element_ptr(a.v, {b, m.v_head, 0}), f32_at(a.alpha, b, h), f32_at(a.beta, b, h), m.scale,
                   state.data(), out);
  store_state(state.data(), dv, dk, a.state, slot, h);
}

Status run_gdn_decode(const PlanState<GdnDecode>& p, const GdnDecodeArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const int heads = std::max(d.num_qk_heads, d.num_v_heads);
  // 4 d_v d_k flops per (sequence, head) task.
  cpu::parallel_for(a.q.shape[0] * heads, 4 * d.head_dim_v * d.head_dim_k, [&](std::int64_t task) {
    run_decode_head(d, a, task / heads, static_cast<int>(task % heads));
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

template <>
Result<Kernel<GdnDecode>> cpu_kernel<GdnDecode>(const GdnDecodeDesc& d) {
  return cpu::make_kernel<GdnDecode>(cpu::config("dtype", d.dtype, "h_qk", d.num_qk_heads, "h_v", d.num_v_heads, "dk",
                                                 d.head_dim_k, "dv", d.head_dim_v, "l2norm", d.use_qk_l2norm),
                                     run_gdn_decode);
}

}  // namespace kvserve::detail
