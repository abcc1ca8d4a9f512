// The CPU backend's one attention routine. Every attention op (decode, prefill,
// paged or not, cascade) gathers one KV head of one sequence into fp32 rows and
// calls attend(); only the gathering differs between ops.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kvserve/attention.hpp"

namespace kvserve::detail::cpu {

// The parts of a descriptor that decide which keys a query sees and how its
// logits are transformed.
struct MaskParams {
  float sm_scale = 1.f;
  float soft_cap = 0.f;  // > 0: cap * tanh(s / cap)
  int window_left = -1;  // >= 0: keys j >= p - window_left
  bool causal = true;    // keys j <= p
};
MaskParams mask_params(const AttentionParams& attn, int head_dim, bool causal);

// One KV head of one sequence, widened to fp32 (fp8 scales applied).
struct KvRows {
  std::int64_t len = 0;
  int head_dim = 0, head_dim_v = 0;
  std::vector<float> k;  // [len, head_dim]
  std::vector<float> v;  // [len, head_dim_v]
  void resize(std::int64_t n, int d, int dv);
};

// Query rows that share one KV head: row r sits at KV position pos[r].
// out[r] (head_dim_v floats) and lse[r] receive the result; a row that sees no
// key gets zeros and -inf.
void attend(const MaskParams& mp, const KvRows& kv, std::span<const float> q, std::span<const std::int64_t> pos,
            std::span<float> out, std::span<float> lse);

// Widens `n` elements of type t (stride 1) times `scale` into dst.
void widen_row(DType t, const void* src, int n, float scale, float* dst);
// Narrows n floats to type t (stride 1).
void narrow_row(DType t, const float* src, int n, void* dst);

// Address of element (i0, i1, ...) of a view, in bytes.
inline const char* element_ptr(const TensorView& t, std::initializer_list<std::int64_t> idx) {
  std::int64_t off = 0;
  int d = 0;
  for (std::int64_t i : idx) off += i * t.strides[d++];
  return static_cast<const char*>(t.data) + off * static_cast<std::int64_t>(size_of(t.dtype));
}
inline char* element_ptr_mut(const TensorView& t, std::initializer_list<std::int64_t> idx) {
  return const_cast<char*>(element_ptr(t, idx));
}

// The host-side page table of one CSR row (a request or a prefix group).
struct PagedRow {
  std::span<const std::int32_t> pages;
  std::int64_t len = 0;  // tokens
};
PagedRow paged_row(const PagedKv& kv, std::int64_t row, int page_size);
// Gathers KV head `h` of a paged row (its first row.len tokens).
void gather_paged(const PagedKvDesc& desc, const PagedKv& kv, const PagedRow& row, int h, KvRows* out);

// One head of a contiguous cache: key j at k + j * k_row_stride elements, value
// j at v + j * v_row_stride (strides in elements of `dtype`).
struct StridedKv {
  DType dtype = DType::f32;
  const char* k = nullptr;
  std::int64_t k_row_stride = 0;
  const char* v = nullptr;
  std::int64_t v_row_stride = 0;
};
// Gathers the first `len` keys and values of a contiguous head.
void gather_strided(const StridedKv& src, std::int64_t len, int head_dim, int head_dim_v, KvRows* out);

// Widens the `group` query heads that read KV head h, q[row, h * group + g, :],
// into dst [group, head_dim].
void load_query_heads(const TensorView& q, std::int64_t row, int h, int group, float* dst);
// Narrows o [group, head_dim_v] into out[row, h * group + g, :], and lse_rows
// [group] into lse[row, h * group + g] when lse is given.
void store_query_heads(const float* o, const float* lse_rows, std::int64_t row, int h, int group,
                       const TensorView& out, const TensorView& lse);

// Writes attention for `num_q` query tokens of one request against `kv` rows
// for the query heads of KV head h: q rows are q[q_row0 + i, h * group + g, :].
// Query i sits at KV position first_pos + i.
void attend_group(const MaskParams& mp, const KvRows& kv, const TensorView& q, std::int64_t q_row0,
                  std::int64_t num_q, std::int64_t first_pos, int h, int group, const TensorView& out,
                  const TensorView& lse);

}  // namespace kvserve::detail::cpu
