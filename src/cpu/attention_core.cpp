#include "cpu/attention_core.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/dot.hpp"

namespace kvserve::detail::cpu {

MaskParams mask_params(const AttentionParams& attn, int head_dim, bool causal) {
  MaskParams mp;
  mp.sm_scale = attn.sm_scale.value_or(1.f / std::sqrt(static_cast<float>(head_dim)));
  mp.soft_cap = attn.logits_soft_cap;
  mp.window_left = attn.window_left;
  mp.causal = causal;
  return mp;
}

void KvRows::resize(std::int64_t n, int d, int dv) {
  len = n;
  head_dim = d;
  head_dim_v = dv;
  k.resize(static_cast<std::size_t>(n) * d);
  v.resize(static_cast<std::size_t>(n) * dv);
}

void attend(const MaskParams& mp, const KvRows& kv, std::span<const float> q, std::span<const std::int64_t> pos,
            std::span<float> out, std::span<float> lse) {
  const int d = kv.head_dim, dv = kv.head_dim_v;
  std::vector<float> s(static_cast<std::size_t>(kv.len));
  for (std::size_t r = 0; r < pos.size(); ++r) {
    const float* qr = q.data() + r * d;
    float* o = out.data() + r * dv;
    // Visible keys are one interval [lo, hi).
    std::int64_t hi = mp.causal ? std::min(kv.len, pos[r] + 1) : kv.len;
    std::int64_t lo = mp.window_left >= 0 ? std::max<std::int64_t>(0, pos[r] - mp.window_left) : 0;
    std::fill(o, o + dv, 0.f);
    if (lo >= hi) {
      lse[r] = -std::numeric_limits<float>::infinity();
      continue;
    }
    float m = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = lo; j < hi; ++j) {
      float x = dot(qr, kv.k.data() + j * d, d) * mp.sm_scale;
      if (mp.soft_cap > 0.f) x = mp.soft_cap * std::tanh(x / mp.soft_cap);
      s[j] = x;
      m = std::max(m, x);
    }
    float sum = 0.f;
    for (std::int64_t j = lo; j < hi; ++j) {
      const float p = std::exp(s[j] - m);
      sum += p;
      const float* vr = kv.v.data() + j * dv;
      for (int c = 0; c < dv; ++c) o[c] += p * vr[c];
    }
    const float inv = 1.f / sum;
    for (int c = 0; c < dv; ++c) o[c] *= inv;
    lse[r] = m + std::log(sum);
  }
}

void widen_row(DType t, const void* src, int n, float scale, float* dst) {
  switch (t) {
    case DType::f32: {
      const float* p = static_cast<const float*>(src);
      for (int i = 0; i < n; ++i) dst[i] = p[i] * scale;
      return;
    }
    case DType::f16: {
      const std::uint16_t* p = static_cast<const std::uint16_t*>(src);
      for (int i = 0; i < n; ++i) dst[i] = f16_to_float(p[i]) * scale;
      return;
    }
    case DType::bf16: {
      // bf16 is the top half of an f32: widening is a shift, inlined here
      // because a call per element would cost more than the attention math.
      const std::uint16_t* p = static_cast<const std::uint16_t*>(src);
      for (int i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(p[i]) << 16) * scale;
      return;
    }
    default:
      for (int i = 0; i < n; ++i) dst[i] = load_as_float(t, src, i) * scale;
  }
}

void narrow_row(DType t, const float* src, int n, void* dst) {
  if (t == DType::f32) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  // The common 16-bit types without a dtype switch per element.
  auto* half = static_cast<std::uint16_t*>(dst);
  if (t == DType::bf16) {
    for (int i = 0; i < n; ++i) half[i] = float_to_bf16(src[i]);
  } else if (t == DType::f16) {
    for (int i = 0; i < n; ++i) half[i] = float_to_f16(src[i]);
  } else {
    for (int i = 0; i < n; ++i) store_from_float(t, dst, i, src[i]);
  }
}

PagedRow paged_row(const PagedKv& kv, std::int64_t row, int page_size) {
  const auto* indptr = kv.indptr.ptr<const std::int32_t>();
  const auto* indices = kv.indices.ptr<const std::int32_t>();
  const auto* last = kv.last_page_len.ptr<const std::int32_t>();
  PagedRow r;
  const std::int64_t n = indptr[row + 1] - indptr[row];
  r.pages = {indices + indptr[row], static_cast<std::size_t>(n)};
  r.len = n == 0 ? 0 : (n - 1) * page_size + last[row];
  return r;
}

void gather_paged(const PagedKvDesc& desc, const PagedKv& kv, const PagedRow& row, int h, KvRows* out) {
  const int d = desc.head_dim;
  out->resize(row.len, d, d);
  const float ks = desc.k_scale_of(h), vs = desc.v_scale_of(h);
  for (std::int64_t j = 0; j < row.len; ++j) {
    const std::int64_t page = row.pages[static_cast<std::size_t>(j / desc.page_size)];
    const std::int64_t slot = j % desc.page_size;
    const bool nhd = desc.layout == KvLayout::NHD;
    const char* kp = nhd ? element_ptr(kv.k_pages, {page, slot, h, 0}) : element_ptr(kv.k_pages, {page, h, slot, 0});
    const char* vp = nhd ? element_ptr(kv.v_pages, {page, slot, h, 0}) : element_ptr(kv.v_pages, {page, h, slot, 0});
    widen_row(desc.dtype, kp, d, ks, out->k.data() + j * d);
    widen_row(desc.dtype, vp, d, vs, out->v.data() + j * d);
  }
}

void gather_strided(const StridedKv& src, std::int64_t len, int head_dim, int head_dim_v, KvRows* out) {
  out->resize(len, head_dim, head_dim_v);
  const std::int64_t elem = static_cast<std::int64_t>(size_of(src.dtype));
  for (std::int64_t j = 0; j < len; ++j) {
    widen_row(src.dtype, src.k + j * src.k_row_stride * elem, head_dim, 1.f, out->k.data() + j * head_dim);
    widen_row(src.dtype, src.v + j * src.v_row_stride * elem, head_dim_v, 1.f, out->v.data() + j * head_dim_v);
  }
}

void load_query_heads(const TensorView& q, std::int64_t row, int h, int group, float* dst) {
  const int d = static_cast<int>(q.shape[2]);
  for (int g = 0; g < group; ++g) widen_row(q.dtype, element_ptr(q, {row, h * group + g, 0}), d, 1.f, dst + g * d);
}

void store_query_heads(const float* o, const float* lse_rows, std::int64_t row, int h, int group,
                       const TensorView& out, const TensorView& lse) {
  const int dv = static_cast<int>(out.shape[2]);
  for (int g = 0; g < group; ++g) {
    narrow_row(out.dtype, o + g * dv, dv, element_ptr_mut(out, {row, h * group + g, 0}));
    if (lse.defined()) *reinterpret_cast<float*>(element_ptr_mut(lse, {row, h * group + g})) = lse_rows[g];
  }
}

void attend_group(const MaskParams& mp, const KvRows& kv, const TensorView& q, std::int64_t q_row0,
                  std::int64_t num_q, std::int64_t first_pos, int h, int group, const TensorView& out,
                  const TensorView& lse) {
  const int d = kv.head_dim, dv = kv.head_dim_v;
  const std::int64_t rows = num_q * group;
  std::vector<float> qf(static_cast<std::size_t>(rows) * d), of(static_cast<std::size_t>(rows) * dv), lf(rows);
  std::vector<std::int64_t> pos(rows);
  for (std::int64_t i = 0; i < num_q; ++i) {
    load_query_heads(q, q_row0 + i, h, group, qf.data() + i * group * d);
    std::fill_n(pos.begin() + i * group, group, first_pos + i);
  }
  attend(mp, kv, qf, pos, of, lf);
  for (std::int64_t i = 0; i < num_q; ++i)
    store_query_heads(of.data() + i * group * dv, lf.data() + i * group, q_row0 + i, h, group, out, lse);
}

}  // namespace kvserve::detail::cpu
