// Shared by the GDN tests (GdnPrefill, GdnDecode): shapes, random inputs
// rounded to what a kernel reads, and a GdnPrefill runner over strided or
// fused layouts.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "harness/harness.hpp"
#include "kvserve/gdn.hpp"
#include "reference/oracle_gdn.hpp"

namespace kvserve::test {

struct GdnShape {
  DType dtype = DType::bf16;
  int hqk = 2, hv = 4, dk = 64, dv = 64;
  bool l2norm = false;
  std::optional<float> scale = std::nullopt;
  int heads() const { return std::max(hqk, hv); }
};

inline GdnPrefillDesc desc_of(const GdnShape& s, std::int64_t max_batch, std::int64_t max_tokens) {
  return {.max_batch = static_cast<int>(std::max<std::int64_t>(max_batch, 1)),
          .max_tokens = std::max<std::int64_t>(max_tokens, 1),
          .num_qk_heads = s.hqk, .num_v_heads = s.hv, .head_dim_k = s.dk, .head_dim_v = s.dv, .dtype = s.dtype,
          .scale = s.scale, .use_qk_l2norm = s.l2norm};
}

inline double round_to(DType t, double x) {
  unsigned char stored[4];  // one element of t
  store_from_float(t, stored, 0, static_cast<float>(x));
  return load_as_float(t, stored, 0);
}

enum class Gates { random, alpha_one, beta_zero };

// Logical inputs, contiguous, already rounded to what the kernel reads:
// q, k [T, hqk, dk], v [T, hv, dv], alpha, beta [T, H].
struct GdnInputs {
  std::int64_t tokens = 0;
  std::vector<double> q, k, v, alpha, beta;
};

inline GdnInputs random_inputs(std::mt19937_64& rng, const GdnShape& s, std::int64_t tokens, Gates gates) {
  std::uniform_real_distribution<double> sym(-1, 1), decay(0.5, 1), strength(0, 1);
  GdnInputs in;
  in.tokens = tokens;
  const auto fill = [&](std::vector<double>& x, std::int64_t n, auto& dist) {
    x.resize(static_cast<std::size_t>(n));
    for (double& e : x) e = dist(rng);
  };
  fill(in.q, tokens * s.hqk * s.dk, sym);
  fill(in.k, tokens * s.hqk * s.dk, sym);
  fill(in.v, tokens * s.hv * s.dv, sym);
  fill(in.alpha, tokens * s.heads(), decay);
  fill(in.beta, tokens * s.heads(), strength);
  if (!s.l2norm) {
    // Unit keys keep the recurrence contractive (beta |k|^2 <= 1), as models do.
    for (std::size_t row = 0; row * s.dk < in.k.size(); ++row) {
      double sq = 0;
      for (int j = 0; j < s.dk; ++j) sq += in.k[row * s.dk + j] * in.k[row * s.dk + j];
      for (int j = 0; j < s.dk; ++j) in.k[row * s.dk + j] /= std::sqrt(sq);
    }
  }
  for (auto* x : {&in.q, &in.k, &in.v})
    for (double& e : *x) e = round_to(s.dtype, e);
  for (auto* x : {&in.alpha, &in.beta})
    for (double& e : *x) e = round_to(DType::f32, e);
  if (gates == Gates::alpha_one) std::fill(in.alpha.begin(), in.alpha.end(), 1.0);
  if (gates == Gates::beta_zero) std::fill(in.beta.begin(), in.beta.end(), 0.0);
  return in;
}

// The token rows `rows` of `in`, in that order.
inline GdnInputs select_tokens(const GdnShape& s, const GdnInputs& in, const std::vector<std::int64_t>& rows) {
  GdnInputs out;
  out.tokens = static_cast<std::int64_t>(rows.size());
  const auto take = [&](const std::vector<double>& src, std::vector<double>& dst, std::int64_t width) {
    for (std::int64_t r : rows) dst.insert(dst.end(), src.begin() + r * width, src.begin() + (r + 1) * width);
  };
  take(in.q, out.q, s.hqk * s.dk);
  take(in.k, out.k, s.hqk * s.dk);
  take(in.v, out.v, s.hv * s.dv);
  take(in.alpha, out.alpha, s.heads());
  take(in.beta, out.beta, s.heads());
  return out;
}

inline std::vector<std::int32_t> offsets_of(const std::vector<std::int64_t>& lens) {
  std::vector<std::int32_t> cu{0};
  for (std::int64_t l : lens) cu.push_back(cu.back() + static_cast<std::int32_t>(l));
  return cu;
}

struct RunOptions {
  bool fused_layout = false;    // q|k|v rows of one projection, alpha|beta of one gate tensor
  bool want_final = true;
  bool state_in_place = false;  // final_state is initial_state
};

struct GdnResult {
  std::vector<double> out, final_state;
};

inline TensorView strided_view(const Buffer& b, std::int64_t offset, std::initializer_list<std::int64_t> shape,
                        std::initializer_list<std::int64_t> strides) {
  TensorView v = b.view_strided(shape, strides);
  v.data = static_cast<char*>(v.data) + offset * static_cast<std::int64_t>(size_of(b.dtype()));
  return v;
}

// Uploads `in` (B = cu.size() - 1 sequences), runs, downloads. initial_state:
// [B, H, dv, dk] values, or empty for none.
inline void run_gdn(const GdnPrefillPlan& plan, const GdnShape& s, const GdnInputs& in, const std::vector<std::int32_t>& cu,
             const std::vector<double>& initial_state, const RunOptions& opt, Device device, GdnResult* result) {
  const std::int64_t t = in.tokens, batch = static_cast<std::int64_t>(cu.size()) - 1, h = s.heads();
  const std::int64_t qk_width = s.hqk * s.dk, v_width = s.hv * s.dv;
  // Unfused, each tensor is its own contiguous buffer (row widths as below);
  // fused, one row per token holds q|k|v and one holds alpha|beta.
  const std::int64_t qkv_row = opt.fused_layout ? 2 * qk_width + v_width : 0;
  const std::int64_t gate_row = opt.fused_layout ? 2 * h : 0;
  Buffer qkv(s.dtype, opt.fused_layout ? t * qkv_row : 0, device), q(s.dtype, t * qk_width, device),
      k(s.dtype, t * qk_width, device), v(s.dtype, t * v_width, device), gates(DType::f32, t * gate_row, device),
      alpha(DType::f32, t * h, device), beta(DType::f32, t * h, device);
  // (buffer, offset of the first element, row stride) of every input.
  struct Placement {
    Buffer* buffer;
    std::int64_t offset, row;
  };
  const Placement pq = opt.fused_layout ? Placement{&qkv, 0, qkv_row} : Placement{&q, 0, qk_width};
  const Placement pk = opt.fused_layout ? Placement{&qkv, qk_width, qkv_row} : Placement{&k, 0, qk_width};
  const Placement pv = opt.fused_layout ? Placement{&qkv, 2 * qk_width, qkv_row} : Placement{&v, 0, v_width};
  const Placement pa = opt.fused_layout ? Placement{&gates, 0, gate_row} : Placement{&alpha, 0, h};
  const Placement pb = opt.fused_layout ? Placement{&gates, h, gate_row} : Placement{&beta, 0, h};
  const auto place = [&](const Placement& p, const std::vector<double>& values, std::int64_t width) {
    for (std::int64_t r = 0; r < t; ++r)
      for (std::int64_t c = 0; c < width; ++c) p.buffer->set(p.offset + r * p.row + c, values[r * width + c]);
  };
  place(pq, in.q, qk_width);
  place(pk, in.k, qk_width);
  place(pv, in.v, v_width);
  place(pa, in.alpha, h);
  place(pb, in.beta, h);
  for (Buffer* b : {&qkv, &q, &k, &v, &gates, &alpha, &beta}) b->upload();

  Buffer cu_buffer = int_buffer(cu, device);
  const std::int64_t state_size = batch * h * s.dv * s.dk;
  Buffer initial(DType::f32, state_size, device), final_state(DType::f32, state_size, device),
      out(s.dtype, t * h * s.dv, device);
  for (std::size_t i = 0; i < initial_state.size(); ++i) initial.set(static_cast<std::int64_t>(i), initial_state[i]);
  initial.upload();
  final_state.poison();
  out.poison();

  GdnPrefillArgs args{
      .q = strided_view(*pq.buffer, pq.offset, {t, s.hqk, s.dk}, {pq.row, s.dk, 1}),
      .k = strided_view(*pk.buffer, pk.offset, {t, s.hqk, s.dk}, {pk.row, s.dk, 1}),
      .v = strided_view(*pv.buffer, pv.offset, {t, s.hv, s.dv}, {pv.row, s.dv, 1}),
      .alpha = strided_view(*pa.buffer, pa.offset, {t, h}, {pa.row, 1}),
      .beta = strided_view(*pb.buffer, pb.offset, {t, h}, {pb.row, 1}),
      .cu_seqlens = cu_buffer.view({batch + 1}),
      .out = out.view({t, h, s.dv}),
  };
  const std::initializer_list<std::int64_t> state_shape = {batch, h, s.dv, s.dk};
  if (!initial_state.empty()) args.initial_state = initial.view(state_shape);
  Buffer& final_buffer = opt.state_in_place ? initial : final_state;
  if (opt.want_final) args.final_state = final_buffer.view(state_shape);
  const Status st = plan.run(args, {}, {});
  ASSERT_TRUE(st) << st.to_string();
  synchronize(device);
  out.download();
  final_buffer.download();
  result->out = out.values();
  result->final_state = opt.want_final ? final_buffer.values() : std::vector<double>{};
}

inline std::vector<double> random_state(std::mt19937_64& rng, const GdnShape& s, std::int64_t batch) {
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> state(static_cast<std::size_t>(batch * s.heads() * s.dv * s.dk));
  for (double& e : state) e = round_to(DType::f32, dist(rng));
  return state;
}

inline oracle::GdnSpec spec_of(const GdnShape& s) {
  return {.num_qk_heads = s.hqk, .num_v_heads = s.hv, .head_dim_k = s.dk, .head_dim_v = s.dv,
          .scale = s.scale.value_or(1.0 / std::sqrt(double(s.dk))), .l2norm = s.l2norm,
          .l2norm_eps = GdnPrefillDesc{}.l2norm_eps};
}

inline std::string label(const GdnShape& s, Device device) {
  return std::string(name_of(s.dtype)) + " hqk=" + std::to_string(s.hqk) + " hv=" + std::to_string(s.hv) +
         " dk=" + std::to_string(s.dk) + " dv=" + std::to_string(s.dv) + (s.l2norm ? " l2norm" : "") + " on " +
         device.to_string();
}

}  // namespace kvserve::test
