// Fuzz target: the attention family on the CPU backend (BatchPagedDecode,
// SingleDecode, SinglePrefill, BatchRaggedPrefill, BatchPagedPrefill,
// CascadeAttention), plus validate_page_table. The first byte picks the op.
#include <cstddef>
#include <cstdint>
#include <vector>
#include <limits>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/attention.hpp"

namespace kvserve::fuzz {

namespace {

AttentionParams attention_params(FuzzInput& in) {
  AttentionParams a;
  if (in.flag()) a.sm_scale = in.param(0.125f);
  a.logits_soft_cap = in.flag() ? in.param(30.f) : 0.f;
  a.window_left = in.flag() ? in.isize(3, kMaxSequenceLength) : -1;
  return a;
}

PagedKvDesc paged_desc(FuzzInput& in) {
  PagedKvDesc kv;
  kv.page_size = in.isize(1 + in.u8() % 8, kMaxPageSize);
  kv.num_pages = in.size(1 + in.u8() % 6, kMaxPages);
  kv.num_kv_heads = in.isize(1 + in.u8() % 2, kMaxHeads);
  kv.head_dim = in.isize(16 * (1 + in.u8() % 2), kMaxHeadDim);
  kv.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  kv.layout = in.enumeration(2, KvLayout::NHD);
  if (in.pick(8) == 0) {
    int n = in.pick(4);
    for (int i = 0; i < n; ++i) kv.k_scale.push_back(in.param(0.5f));
    n = in.pick(4);
    for (int i = 0; i < n; ++i) kv.v_scale.push_back(in.param(2.f));
  }
  return kv;
}

std::vector<std::int64_t> pool_shape(const PagedKvDesc& kv) {
  if (kv.layout == KvLayout::HND) return {kv.num_pages, kv.num_kv_heads, kv.page_size, kv.head_dim};
  return {kv.num_pages, kv.page_size, kv.num_kv_heads, kv.head_dim};
}

// The device view of a page table over pools shaped from the descriptor.
PagedKv paged_args(Arena& a, const PagedKvDesc& kv, const PageTable& t) {
  PagedKv p;
  p.k_pages = a.tensor(kv.dtype, pool_shape(kv));
  p.v_pages = a.tensor(kv.dtype, pool_shape(kv));
  p.indptr = a.ints(t.indptr);
  p.indices = a.ints(t.indices);
  p.last_page_len = a.ints(t.last_page_len);
  return p;
}

PagedKvLengths lengths(const PageTable& t) { return {t.indptr, t.last_page_len}; }

void batch_paged_decode(FuzzInput& in, Arena& a) {
  BatchPagedDecodeDesc d;
  d.kv = paged_desc(in);
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_qo_heads = in.isize(std::int64_t{d.kv.num_kv_heads} * (1 + in.u8() % 3), kMaxHeads);
  d.q_dtype = in.dtype(is_fp8(d.kv.dtype) ? DType::bf16 : d.kv.dtype);
  d.attn = attention_params(in);
  d.kv_split_tokens = in.flag() ? in.isize(2, kMaxSequenceLength) : 0;
  std::int64_t b = in.u8() % 5;
  PageTable t = page_table(in, b, d.kv.num_pages, d.kv.page_size);
  BatchPagedDecodeArgs args;
  args.q = a.tensor(d.q_dtype, {b, d.num_qo_heads, d.kv.head_dim});
  args.kv = paged_args(a, d.kv, t);
  args.out = a.tensor(d.q_dtype, {b, d.num_qo_heads, d.kv.head_dim});
  if (in.flag()) args.lse = a.tensor(DType::f32, {b, d.num_qo_heads});
  (void)validate_page_table(d.kv, args.kv);
  drive<BatchPagedDecode>(in, a, d, args, [&](auto& plan, Workspace ws) {
    return plan.prepare(lengths(t), ws, Stream{});
  });
}

void single_decode(FuzzInput& in, Arena& a) {
  SingleDecodeDesc d;
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_kv_heads = in.isize(1 + in.u8() % 2, kMaxHeads);
  d.num_qo_heads = in.isize(std::int64_t{d.num_kv_heads} * (1 + in.u8() % 3), kMaxHeads);
  d.head_dim = in.isize(16, kMaxHeadDim);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::f16);
  d.attn = attention_params(in);
  d.kv_split_tokens = in.flag() ? in.isize(3, kMaxSequenceLength) : 0;
  std::int64_t b = in.u8() % 5, l = in.u8() % 9;
  SingleDecodeArgs args;
  args.q = a.tensor(d.dtype, {b, d.num_qo_heads, d.head_dim});
  args.k = a.tensor(d.dtype, {b, d.num_kv_heads, l, d.head_dim});
  args.v = a.tensor(d.dtype, {b, d.num_kv_heads, l, d.head_dim});
  if (in.flag()) args.kv_len = a.tensor(DType::int32, {b}, index_bound(l + 1));
  args.out = a.tensor(d.dtype, {b, d.num_qo_heads, d.head_dim});
  if (in.flag()) args.lse = a.tensor(DType::f32, {b, d.num_qo_heads});
  drive<SingleDecode>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

void single_prefill(FuzzInput& in, Arena& a) {
  SinglePrefillDesc d;
  d.num_kv_heads = in.isize(1 + in.u8() % 2, kMaxHeads);
  d.num_qo_heads = in.isize(std::int64_t{d.num_kv_heads} * (1 + in.u8() % 3), kMaxHeads);
  d.head_dim = in.isize(16, kMaxHeadDim);
  d.head_dim_v = in.flag() ? in.isize(32, kMaxHeadDim) : 0;
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  d.layout = in.enumeration(2, KvLayout::NHD);
  d.causal = in.flag();
  d.attn = attention_params(in);
  int dv = d.head_dim_v > 0 ? d.head_dim_v : d.head_dim;
  std::int64_t lq = in.u8() % 6, lkv = in.u8() % 6;
  auto kv_shape = [&](int dim) -> std::vector<std::int64_t> {
    if (d.layout == KvLayout::HND) return {d.num_kv_heads, lkv, dim};
    return {lkv, d.num_kv_heads, dim};
  };
  SinglePrefillArgs args;
  args.q = a.tensor(d.dtype, {lq, d.num_qo_heads, d.head_dim});
  args.k = a.tensor(d.dtype, kv_shape(d.head_dim));
  args.v = a.tensor(d.dtype, kv_shape(dv));
  args.out = a.tensor(d.dtype, {lq, d.num_qo_heads, dv});
  if (in.flag()) args.lse = a.tensor(DType::f32, {lq, d.num_qo_heads});
  drive<SinglePrefill>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

// A CSR offsets array over `b` rows, usually monotone from 0.
std::vector<std::int32_t> offsets(FuzzInput& in, std::int64_t b) {
  std::vector<std::int32_t> v{0};
  for (std::int64_t i = 0; i < b; ++i) v.push_back(v.back() + in.u8() % 4);
  switch (in.u8() % 12) {
    case 0: if (v.size() > 1) v[in.u8() % v.size()] -= 2; break;
    case 1: v[0] = 1; break;
    case 2: v.back() = std::numeric_limits<std::int32_t>::max(); break;
    case 3: v.pop_back(); break;
    default: break;
  }
  return v;
}

void batch_ragged_prefill(FuzzInput& in, Arena& a) {
  BatchRaggedPrefillDesc d;
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_kv_heads = in.isize(1 + in.u8() % 2, kMaxHeads);
  d.num_qo_heads = in.isize(std::int64_t{d.num_kv_heads} * (1 + in.u8() % 3), kMaxHeads);
  d.head_dim = in.isize(16, kMaxHeadDim);
  d.head_dim_v = in.flag() ? in.isize(32, kMaxHeadDim) : 0;
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::f16);
  d.causal = in.flag();
  d.attn = attention_params(in);
  int dv = d.head_dim_v > 0 ? d.head_dim_v : d.head_dim;
  std::int64_t b = in.u8() % 5;
  auto qo = offsets(in, b), kvo = offsets(in, b);
  std::int64_t tq = qo.empty() ? 0 : std::min<std::int64_t>(qo.back(), 64);
  std::int64_t tkv = kvo.empty() ? 0 : std::min<std::int64_t>(kvo.back(), 64);
  BatchRaggedPrefillArgs args;
  args.q = a.tensor(d.dtype, {tq, d.num_qo_heads, d.head_dim});
  args.k = a.tensor(d.dtype, {tkv, d.num_kv_heads, d.head_dim});
  args.v = a.tensor(d.dtype, {tkv, d.num_kv_heads, dv});
  args.qo_indptr = a.ints(qo);
  args.kv_indptr = a.ints(kvo);
  args.out = a.tensor(d.dtype, {tq, d.num_qo_heads, dv});
  if (in.flag()) args.lse = a.tensor(DType::f32, {tq, d.num_qo_heads});
  drive<BatchRaggedPrefill>(in, a, d, args, [&](auto& plan, Workspace ws) {
    return plan.prepare(RaggedLengths{qo, kvo}, ws, Stream{});
  });
}

void batch_paged_prefill(FuzzInput& in, Arena& a) {
  BatchPagedPrefillDesc d;
  d.kv = paged_desc(in);
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_qo_heads = in.isize(std::int64_t{d.kv.num_kv_heads} * (1 + in.u8() % 3), kMaxHeads);
  d.q_dtype = in.dtype(is_fp8(d.kv.dtype) ? DType::bf16 : d.kv.dtype);
  d.causal = in.flag();
  d.attn = attention_params(in);
  std::int64_t b = in.u8() % 5;
  PageTable t = page_table(in, b, d.kv.num_pages, d.kv.page_size);
  auto qo = offsets(in, b);
  std::int64_t tq = qo.empty() ? 0 : std::min<std::int64_t>(qo.back(), 64);
  BatchPagedPrefillArgs args;
  args.q = a.tensor(d.q_dtype, {tq, d.num_qo_heads, d.kv.head_dim});
  args.qo_indptr = a.ints(qo);
  args.kv = paged_args(a, d.kv, t);
  args.out = a.tensor(d.q_dtype, {tq, d.num_qo_heads, d.kv.head_dim});
  if (in.flag()) args.lse = a.tensor(DType::f32, {tq, d.num_qo_heads});
  drive<BatchPagedPrefill>(in, a, d, args, [&](auto& plan, Workspace ws) {
    return plan.prepare(PagedPrefillLengths{qo, lengths(t)}, ws, Stream{});
  });
}

void cascade(FuzzInput& in, Arena& a) {
  CascadeAttentionDesc d;
  d.kv = paged_desc(in);
  d.max_batch = in.isize(4, kMaxBatch);
  d.max_groups = in.isize(2, kMaxBatch);
  d.num_qo_heads = in.isize(std::int64_t{d.kv.num_kv_heads} * (1 + in.u8() % 3), kMaxHeads);
  d.q_dtype = in.dtype(is_fp8(d.kv.dtype) ? DType::bf16 : d.kv.dtype);
  d.attn = attention_params(in);
  std::int64_t g = in.u8() % 3;
  auto groups = offsets(in, g);
  std::int64_t b = groups.empty() ? 0 : std::clamp<std::int64_t>(groups.back(), 0, 6);
  PageTable prefix = page_table(in, g, d.kv.num_pages, d.kv.page_size);
  PageTable suffix = page_table(in, b, d.kv.num_pages, d.kv.page_size);
  CascadeAttentionArgs args;
  args.q = a.tensor(d.q_dtype, {b, d.num_qo_heads, d.kv.head_dim});
  args.group_indptr = a.ints(groups);
  args.prefix = paged_args(a, d.kv, prefix);
  args.suffix = paged_args(a, d.kv, suffix);
  args.out = a.tensor(d.q_dtype, {b, d.num_qo_heads, d.kv.head_dim});
  if (in.flag()) args.lse = a.tensor(DType::f32, {b, d.num_qo_heads});
  drive<CascadeAttention>(in, a, d, args, [&](auto& plan, Workspace ws) {
    return plan.prepare(CascadeLengths{groups, lengths(prefix), lengths(suffix)}, ws, Stream{});
  });
}

}  // namespace

KVSERVE_FUZZ_CASES(batch_paged_decode, single_decode, single_prefill, batch_ragged_prefill, batch_paged_prefill, cascade)

}  // namespace kvserve::fuzz
