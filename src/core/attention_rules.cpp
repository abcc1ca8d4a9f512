// Validation and kernel selection for the attention ops, and the page-table
// validation call.
#include <span>

#include "core/paged_kv_rules.hpp"
#include "core/plan_impl.hpp"
#include "kvserve/attention.hpp"

namespace kvserve {
namespace detail {
namespace {

// Query and KV head counts: both > 0, and an integral group ratio.
Status check_heads(std::string_view op, int num_qo_heads, int num_kv_heads) {
  KVSERVE_TRY(check_size(op, "num_qo_heads", num_qo_heads, kMaxHeads));
  KVSERVE_TRY(check_size(op, "num_kv_heads", num_kv_heads, kMaxHeads));
  return check_divisible(op, "num_qo_heads", num_qo_heads, "num_kv_heads", num_kv_heads);
}

// The fields every attention op over a paged cache has: query heads, the
// cache, the query dtype against the cache's, and the attention variant.
Status check_paged_attention(std::string_view op, int num_qo_heads, const PagedKvDesc& kv, DType q_dtype,
                             const AttentionParams& attn) {
  KVSERVE_TRY(check_size(op, "num_qo_heads", num_qo_heads, kMaxHeads));
  KVSERVE_TRY(check_paged_kv_desc(op, "kv", kv));
  KVSERVE_TRY(check_divisible(op, "num_qo_heads", num_qo_heads, "kv.num_kv_heads", kv.num_kv_heads));
  KVSERVE_TRY(check_q_dtype(op, "q_dtype", q_dtype, kv.dtype));
  return check_attention_params(op, "attn", attn);
}

// head_dim, and head_dim_v where the op has one (0 means head_dim).
Status check_head_dims(std::string_view op, int head_dim, int head_dim_v) {
  KVSERVE_TRY(check_head_dim(op, "head_dim", head_dim));
  if (head_dim_v != 0) KVSERVE_TRY(check_head_dim(op, "head_dim_v", head_dim_v));
  return Status::ok();
}

Status check_layout(std::string_view op, std::string_view field, KvLayout layout) {
  if (layout == KvLayout::NHD || layout == KvLayout::HND) return Status::ok();
  return invalid_field(op, field, "NHD or HND", to_text(static_cast<std::int64_t>(layout)));
}

// An int32 [B + 1] offsets tensor; returns B.
Status check_offsets_arg(std::string_view op, std::string_view name, const TensorView& t, Device device,
                         std::int64_t* batch) {
  KVSERVE_TRY(check_tensor(op, name, t, device, DType::int32, {kAny}));
  if (t.shape[0] < 1) return invalid_arg(op, name, "at least 1 entry (batch + 1)", "0 entries");
  *batch = t.shape[0] - 1;
  return Status::ok();
}

std::span<const std::int32_t> host_span(const TensorView& int32_vector) {
  return {int32_vector.ptr<const std::int32_t>(), static_cast<std::size_t>(int32_vector.shape[0])};
}

// Host offsets: start at 0, never decrease, and end at `rows` (exact) or at
// most there, where `rows` counts the rows of the tensor `rows_of` they index.
Status check_offsets_host(std::string_view op, std::string_view name, std::span<const std::int32_t> offsets,
                          std::int64_t rows, std::string_view rows_of, bool exact) {
  KVSERVE_TRY(check_indptr(op, name, offsets));
  const std::int64_t last = offsets.back();
  if (exact ? last == rows : last <= rows) return Status::ok();
  return invalid_arg(op, name,
                     std::string(exact ? "a last entry equal to " : "a last entry at most ") + std::string(rows_of) +
                         " (" + to_text(rows) + ")",
                     to_text(last));
}

// Chunked prefill reads the last q_len positions of each request's KV.
Status check_q_within_kv(std::string_view op, std::string_view name, const std::int32_t* qo_indptr,
                         const std::int32_t* kv_indptr, const std::int32_t* last_page_len, std::int64_t batch,
                         int page_size) {
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t q_len = qo_indptr[b + 1] - qo_indptr[b];
    const std::int64_t kv_len = paged_kv_len(kv_indptr, last_page_len, b, page_size);
    if (q_len > kv_len)
      return invalid_arg(op, name, "q_len <= kv_len for every request",
                         "q_len " + to_text(q_len) + " > kv_len " + to_text(kv_len) + " (request " + to_text(b) + ")");
  }
  return Status::ok();
}

}  // namespace

// ------------------------------------------------------- BatchPagedDecode --

template <>
Status OpRules<BatchPagedDecode>::check_desc(const BatchPagedDecodeDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_paged_attention(op, d.num_qo_heads, d.kv, d.q_dtype, d.attn));
  return check_split_tokens(op, d.kv_split_tokens);
}

template <>
Status OpRules<BatchPagedDecode>::check_prepare(const BatchPagedDecodeDesc& d, const PagedKvLengths& host,
                                                std::int64_t* batch) {
  return check_paged_lengths(BatchPagedDecode::kName, "host", d.kv, host, d.max_batch, batch);
}

template <>
Status OpRules<BatchPagedDecode>::check_args(const PlanState<BatchPagedDecode>& p, const BatchPagedDecodeArgs& a) {
  const auto& d = p.desc;
  const std::int64_t b = a.q.rank > 0 ? a.q.shape[0] : 0;
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.q_dtype, {kAny, d.num_qo_heads, d.kv.head_dim}));
  KVSERVE_TRY(check_prepared_batch(op, b, p.prepared_batch, d.max_batch));
  KVSERVE_TRY(check_paged_kv_args(op, "kv", d.kv, a.kv, b, p.device));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.q_dtype, {b, d.num_qo_heads, d.kv.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {b, d.num_qo_heads}));
  return Status::ok();
}

// ----------------------------------------------------------- SingleDecode --

template <>
Status OpRules<SingleDecode>::check_desc(const SingleDecodeDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_heads(op, d.num_qo_heads, d.num_kv_heads));
  KVSERVE_TRY(check_head_dim(op, "head_dim", d.head_dim));
  KVSERVE_TRY(check_activation_dtype(op, "dtype", d.dtype));
  KVSERVE_TRY(check_attention_params(op, "attn", d.attn));
  return check_split_tokens(op, d.kv_split_tokens);
}

template <>
Status OpRules<SingleDecode>::check_args(const PlanState<SingleDecode>& p, const SingleDecodeArgs& a) {
  const auto& d = p.desc;
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.dtype, {kAny, d.num_qo_heads, d.head_dim}));
  const std::int64_t b = a.q.shape[0];
  if (b > d.max_batch)
    return invalid_arg(op, "q", "a batch of at most max_batch (" + to_text(std::int64_t{d.max_batch}) + ")",
                       to_text(b));
  KVSERVE_TRY(check_tensor(op, "k", a.k, p.device, d.dtype, {b, d.num_kv_heads, kAny, d.head_dim}));
  const std::int64_t max_len = a.k.shape[2];
  KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {b, d.num_kv_heads, max_len, d.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "kv_len", a.kv_len, p.device, DType::int32, {b}));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.dtype, {b, d.num_qo_heads, d.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {b, d.num_qo_heads}));
  if (a.kv_len.defined() && p.device.is_cpu()) {
    const std::span<const std::int32_t> lens = host_span(a.kv_len);
    for (std::size_t r = 0; r < lens.size(); ++r)
      if (lens[r] < 0 || lens[r] > max_len)
        return invalid_arg(op, "kv_len", "values in [0, L=" + to_text(max_len) + "]",
                           to_text(std::int64_t{lens[r]}) + " (row " + std::to_string(r) + ")");
  }
  return Status::ok();
}

// ---------------------------------------------------------- SinglePrefill --

template <>
Status OpRules<SinglePrefill>::check_desc(const SinglePrefillDesc& d) {
  KVSERVE_TRY(check_heads(op, d.num_qo_heads, d.num_kv_heads));
  KVSERVE_TRY(check_head_dims(op, d.head_dim, d.head_dim_v));
  KVSERVE_TRY(check_activation_dtype(op, "dtype", d.dtype));
  KVSERVE_TRY(check_layout(op, "layout", d.layout));
  return check_attention_params(op, "attn", d.attn);
}

template <>
Status OpRules<SinglePrefill>::check_args(const PlanState<SinglePrefill>& p, const SinglePrefillArgs& a) {
  const auto& d = p.desc;
  const int hq = d.num_qo_heads, hkv = d.num_kv_heads, dv = value_head_dim(d.head_dim, d.head_dim_v);
  const bool nhd = d.layout == KvLayout::NHD;
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.dtype, {kAny, hq, d.head_dim}));
  const std::int64_t q_len = a.q.shape[0];
  if (nhd) KVSERVE_TRY(check_tensor(op, "k", a.k, p.device, d.dtype, {kAny, hkv, d.head_dim}));
  else KVSERVE_TRY(check_tensor(op, "k", a.k, p.device, d.dtype, {hkv, kAny, d.head_dim}));
  const std::int64_t kv_len = nhd ? a.k.shape[0] : a.k.shape[1];
  if (nhd) KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {kv_len, hkv, dv}));
  else KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {hkv, kv_len, dv}));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.dtype, {q_len, hq, dv}));
  return check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {q_len, hq});
}

// ----------------------------------------------------- BatchRaggedPrefill --

template <>
Status OpRules<BatchRaggedPrefill>::check_desc(const BatchRaggedPrefillDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_heads(op, d.num_qo_heads, d.num_kv_heads));
  KVSERVE_TRY(check_head_dims(op, d.head_dim, d.head_dim_v));
  KVSERVE_TRY(check_activation_dtype(op, "dtype", d.dtype));
  return check_attention_params(op, "attn", d.attn);
}

template <>
Status OpRules<BatchRaggedPrefill>::check_prepare(const BatchRaggedPrefillDesc& d, const RaggedLengths& host,
                                                  std::int64_t* batch) {
  KVSERVE_TRY(check_indptr(op, "host.qo_indptr", host.qo_indptr));
  KVSERVE_TRY(check_indptr(op, "host.kv_indptr", host.kv_indptr));
  const std::int64_t b = static_cast<std::int64_t>(host.qo_indptr.size()) - 1;
  if (b > d.max_batch)
    return invalid_arg(op, "host.qo_indptr", "at most max_batch + 1 (" + to_text(std::int64_t{d.max_batch} + 1) +
                       ") entries", to_text(b + 1));
  if (host.kv_indptr.size() != host.qo_indptr.size())
    return invalid_arg(op, "host.kv_indptr", to_text(b + 1) + " entries (as host.qo_indptr)",
                       to_text(static_cast<std::int64_t>(host.kv_indptr.size())));
  *batch = b;
  return Status::ok();
}

template <>
Status OpRules<BatchRaggedPrefill>::check_args(const PlanState<BatchRaggedPrefill>& p,
                                               const BatchRaggedPrefillArgs& a) {
  const auto& d = p.desc;
  const int hq = d.num_qo_heads, hkv = d.num_kv_heads, dv = value_head_dim(d.head_dim, d.head_dim_v);
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.dtype, {kAny, hq, d.head_dim}));
  const std::int64_t total_q = a.q.shape[0];
  std::int64_t b = 0;
  KVSERVE_TRY(check_offsets_arg(op, "qo_indptr", a.qo_indptr, p.device, &b));
  KVSERVE_TRY(check_prepared_batch(op, "qo_indptr", b, p.prepared_batch, d.max_batch));
  KVSERVE_TRY(check_tensor(op, "kv_indptr", a.kv_indptr, p.device, DType::int32, {b + 1}));
  KVSERVE_TRY(check_tensor(op, "k", a.k, p.device, d.dtype, {kAny, hkv, d.head_dim}));
  const std::int64_t total_kv = a.k.shape[0];
  KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {total_kv, hkv, dv}));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.dtype, {total_q, hq, dv}));
  KVSERVE_TRY(check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {total_q, hq}));
  if (p.device.is_cpu()) {
    KVSERVE_TRY(check_offsets_host(op, "qo_indptr", host_span(a.qo_indptr), total_q, "the rows of q", false));
    KVSERVE_TRY(check_offsets_host(op, "kv_indptr", host_span(a.kv_indptr), total_kv, "the rows of k", false));
  }
  return Status::ok();
}

// ------------------------------------------------------ BatchPagedPrefill --

template <>
Status OpRules<BatchPagedPrefill>::check_desc(const BatchPagedPrefillDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  return check_paged_attention(op, d.num_qo_heads, d.kv, d.q_dtype, d.attn);
}

template <>
Status OpRules<BatchPagedPrefill>::check_prepare(const BatchPagedPrefillDesc& d, const PagedPrefillLengths& host,
                                                 std::int64_t* batch) {
  std::int64_t b = 0;
  KVSERVE_TRY(check_paged_lengths(op, "host.kv", d.kv, host.kv, d.max_batch, &b));
  KVSERVE_TRY(check_indptr(op, "host.qo_indptr", host.qo_indptr));
  if (static_cast<std::int64_t>(host.qo_indptr.size()) != b + 1)
    return invalid_arg(op, "host.qo_indptr", to_text(b + 1) + " entries (as host.kv.indptr)",
                       to_text(static_cast<std::int64_t>(host.qo_indptr.size())));
  KVSERVE_TRY(check_q_within_kv(op, "host.qo_indptr", host.qo_indptr.data(), host.kv.indptr.data(),
                                host.kv.last_page_len.data(), b, d.kv.page_size));
  *batch = b;
  return Status::ok();
}

template <>
Status OpRules<BatchPagedPrefill>::check_args(const PlanState<BatchPagedPrefill>& p, const BatchPagedPrefillArgs& a) {
  const auto& d = p.desc;
  const int hq = d.num_qo_heads, dim = d.kv.head_dim;
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.q_dtype, {kAny, hq, dim}));
  const std::int64_t total_q = a.q.shape[0];
  std::int64_t b = 0;
  KVSERVE_TRY(check_offsets_arg(op, "qo_indptr", a.qo_indptr, p.device, &b));
  KVSERVE_TRY(check_prepared_batch(op, "qo_indptr", b, p.prepared_batch, d.max_batch));
  KVSERVE_TRY(check_paged_kv_args(op, "kv", d.kv, a.kv, b, p.device));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.q_dtype, {total_q, hq, dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {total_q, hq}));
  if (p.device.is_cpu()) {
    KVSERVE_TRY(check_offsets_host(op, "qo_indptr", host_span(a.qo_indptr), total_q, "the rows of q", false));
    KVSERVE_TRY(check_q_within_kv(op, "qo_indptr", a.qo_indptr.ptr<const std::int32_t>(),
                                  a.kv.indptr.ptr<const std::int32_t>(), a.kv.last_page_len.ptr<const std::int32_t>(),
                                  b, d.kv.page_size));
  }
  return Status::ok();
}

// ------------------------------------------------------- CascadeAttention --

template <>
Status OpRules<CascadeAttention>::check_desc(const CascadeAttentionDesc& d) {
  KVSERVE_TRY(check_size(op, "max_batch", d.max_batch, kMaxBatch));
  KVSERVE_TRY(check_size(op, "max_groups", d.max_groups, kMaxBatch));
  return check_paged_attention(op, d.num_qo_heads, d.kv, d.q_dtype, d.attn);
}

template <>
Status OpRules<CascadeAttention>::check_prepare(const CascadeAttentionDesc& d, const CascadeLengths& host,
                                                std::int64_t* batch) {
  std::int64_t groups = 0, b = 0;
  KVSERVE_TRY(check_paged_lengths(op, "host.prefix", d.kv, host.prefix, d.max_groups, &groups, "max_groups"));
  KVSERVE_TRY(check_paged_lengths(op, "host.suffix", d.kv, host.suffix, d.max_batch, &b));
  if (static_cast<std::int64_t>(host.group_indptr.size()) != groups + 1)
    return invalid_arg(op, "host.group_indptr", to_text(groups + 1) + " entries (as host.prefix.indptr)",
                       to_text(static_cast<std::int64_t>(host.group_indptr.size())));
  KVSERVE_TRY(check_offsets_host(op, "host.group_indptr", host.group_indptr, b, "the batch", true));
  *batch = b;
  return Status::ok();
}

template <>
Status OpRules<CascadeAttention>::check_args(const PlanState<CascadeAttention>& p, const CascadeAttentionArgs& a) {
  const auto& d = p.desc;
  const int hq = d.num_qo_heads, dim = d.kv.head_dim;
  KVSERVE_TRY(check_tensor(op, "q", a.q, p.device, d.q_dtype, {kAny, hq, dim}));
  const std::int64_t b = a.q.shape[0];
  KVSERVE_TRY(check_prepared_batch(op, "q", b, p.prepared_batch, d.max_batch));
  std::int64_t groups = 0;
  KVSERVE_TRY(check_offsets_arg(op, "group_indptr", a.group_indptr, p.device, &groups));
  if (groups > d.max_groups)
    return invalid_arg(op, "group_indptr", "at most max_groups + 1 (" + to_text(std::int64_t{d.max_groups} + 1) +
                       ") entries", to_text(groups + 1));
  KVSERVE_TRY(check_paged_kv_args(op, "prefix", d.kv, a.prefix, groups, p.device));
  KVSERVE_TRY(check_paged_kv_args(op, "suffix", d.kv, a.suffix, b, p.device));
  KVSERVE_TRY(check_tensor(op, "out", a.out, p.device, d.q_dtype, {b, hq, dim}));
  KVSERVE_TRY(check_optional_tensor(op, "lse", a.lse, p.device, DType::f32, {b, hq}));
  if (p.device.is_cpu())
    KVSERVE_TRY(check_offsets_host(op, "group_indptr", host_span(a.group_indptr), b, "the batch", true));
  return Status::ok();
}

}  // namespace detail

template class Plan<BatchPagedDecode>;
template class Plan<SingleDecode>;
template class Plan<SinglePrefill>;
template class Plan<BatchRaggedPrefill>;
template class Plan<BatchPagedPrefill>;
template class Plan<CascadeAttention>;

std::string_view name_of(KvLayout l) { return l == KvLayout::NHD ? "NHD" : "HND"; }

Status validate_page_table(const PagedKvDesc& desc, const PagedKv& kv, [[maybe_unused]] Stream stream) {
  using namespace detail;
  constexpr const char* op = "validate_page_table";
  KVSERVE_TRY(check_paged_kv_desc(op, "desc", desc));
  const Device device = kv.indptr.device;
  KVSERVE_TRY(check_device(op, device));
  std::int64_t b = 0;
  KVSERVE_TRY(check_offsets_arg(op, "kv.indptr", kv.indptr, device, &b));
  KVSERVE_TRY(check_tensor(op, "kv.indices", kv.indices, device, DType::int32, {kAny}));
  KVSERVE_TRY(check_tensor(op, "kv.last_page_len", kv.last_page_len, device, DType::int32, {b}));
  if (device.is_cuda()) {
#if KVSERVE_WITH_CUDA
    return cuda_validate_page_table(op, "kv", desc, kv, b, stream);
#else
    return Status::unsupported(std::string(op) + ": no CUDA kernel for a page table on " + device.to_string() +
                               " in this build (validate a host copy instead)");
#endif
  }
  return check_page_table_host(op, "kv", desc, kv.indptr.ptr<const std::int32_t>(), b,
                               kv.indices.ptr<const std::int32_t>(), kv.indices.shape[0],
                               kv.last_page_len.ptr<const std::int32_t>());
}

}  // namespace kvserve
