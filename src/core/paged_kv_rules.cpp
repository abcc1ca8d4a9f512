#include "core/paged_kv_rules.hpp"

#include <cmath>

#include "core/check.hpp"

namespace kvserve::detail {
namespace {
std::string f(std::string_view prefix, std::string_view field) {
  return prefix.empty() ? std::string(field) : std::string(prefix) + "." + std::string(field);
}

Status check_scales(std::string_view op, const std::string& field, const std::vector<float>& scales, const PagedKvDesc& kv) {
  if (!is_fp8(kv.dtype)) {
    if (scales.empty()) return Status::ok();
    return invalid_field(op, field, "no scales for a " + to_text(kv.dtype) + " cache", to_text(static_cast<std::int64_t>(scales.size())) + " scales");
  }
  if (!scales.empty() && scales.size() != 1 && scales.size() != static_cast<std::size_t>(kv.num_kv_heads))
    return invalid_field(op, field, "0, 1 or num_kv_heads (" + to_text(std::int64_t{kv.num_kv_heads}) + ") scales",
                         to_text(static_cast<std::int64_t>(scales.size())));
  for (std::size_t i = 0; i < scales.size(); ++i)
    if (!(std::isfinite(scales[i]) && scales[i] > 0))
      return invalid_field(op, field + "[" + std::to_string(i) + "]", "a finite value > 0", to_text(double{scales[i]}));
  return Status::ok();
}
}  // namespace

Status check_paged_kv_desc(std::string_view op, std::string_view field, const PagedKvDesc& kv) {
  KVSERVE_TRY(check_size(op, f(field, "page_size"), kv.page_size, kMaxPageSize));
  KVSERVE_TRY(check_size(op, f(field, "num_pages"), kv.num_pages, kMaxPages));
  KVSERVE_TRY(check_size(op, f(field, "num_kv_heads"), kv.num_kv_heads, kMaxHeads));
  KVSERVE_TRY(check_head_dim(op, f(field, "head_dim"), kv.head_dim));
  if (!(is_activation(kv.dtype) || is_fp8(kv.dtype)))
    return invalid_field(op, f(field, "dtype"), "f16, bf16, f32, fp8_e4m3 or fp8_e5m2", to_text(kv.dtype));
  if (kv.layout != KvLayout::NHD && kv.layout != KvLayout::HND)
    return invalid_field(op, f(field, "layout"), "NHD or HND", to_text(static_cast<std::int64_t>(kv.layout)));
  KVSERVE_TRY(check_scales(op, f(field, "k_scale"), kv.k_scale, kv));
  KVSERVE_TRY(check_scales(op, f(field, "v_scale"), kv.v_scale, kv));
  return Status::ok();
}

Status check_q_dtype(std::string_view op, std::string_view field, DType q_dtype, DType kv_dtype) {
  if (is_fp8(kv_dtype)) {
    if (q_dtype == DType::f16 || q_dtype == DType::bf16) return Status::ok();
    return invalid_field(op, field, "f16 or bf16 over an fp8 cache", to_text(q_dtype));
  }
  if (q_dtype == kv_dtype) return Status::ok();
  return invalid_field(op, field, "the cache's dtype (" + to_text(kv_dtype) + ")", to_text(q_dtype));
}

Status check_attention_params(std::string_view op, std::string_view field, const AttentionParams& attn) {
  if (attn.sm_scale) KVSERVE_TRY(check_finite_positive(op, f(field, "sm_scale"), *attn.sm_scale));
  if (!(std::isfinite(attn.logits_soft_cap) && attn.logits_soft_cap >= 0))
    return invalid_field(op, f(field, "logits_soft_cap"), "0 (off) or a finite value > 0", to_text(double{attn.logits_soft_cap}));
  if (attn.window_left < -1 || attn.window_left > kMaxSequenceLength)
    return invalid_field(op, f(field, "window_left"),
                         "-1 (off) or in [0, " + to_text(std::int64_t{kMaxSequenceLength}) + "]",
                         to_text(std::int64_t{attn.window_left}));
  return Status::ok();
}

Status check_split_tokens(std::string_view op, int kv_split_tokens) {
  if (kv_split_tokens >= 0 && kv_split_tokens <= kMaxSequenceLength) return Status::ok();
  return invalid_field(op, "kv_split_tokens",
                       "0 (auto) or in [1, " + to_text(std::int64_t{kMaxSequenceLength}) + "]",
                       to_text(std::int64_t{kv_split_tokens}));
}

PagedKvDesc page_geometry(const PagedMlaDesc& d) {
  PagedKvDesc geometry;
  geometry.page_size = d.page_size;
  geometry.num_pages = d.num_pages;
  return geometry;
}

Status check_paged_mla_desc(std::string_view op, std::string_view field, const PagedMlaDesc& d) {
  KVSERVE_TRY(check_size(op, f(field, "page_size"), d.page_size, kMaxPageSize));
  KVSERVE_TRY(check_size(op, f(field, "num_pages"), d.num_pages, kMaxPages));
  KVSERVE_TRY(check_size(op, f(field, "ckv_dim"), d.ckv_dim, kMaxRowWidth));
  KVSERVE_TRY(check_size(op, f(field, "kpe_dim"), d.kpe_dim, kMaxRowWidth));
  return check_activation_dtype(op, f(field, "dtype"), d.dtype);
}

Status check_paged_mla_cache(std::string_view op, std::string_view name, const PagedMlaDesc& d,
                             const PagedMlaCache& c, std::int64_t batch, Device device) {
  KVSERVE_TRY(check_tensor(op, f(name, "ckv_pages"), c.ckv_pages, device, d.dtype, {d.num_pages, d.page_size, d.ckv_dim}));
  KVSERVE_TRY(check_tensor(op, f(name, "kpe_pages"), c.kpe_pages, device, d.dtype, {d.num_pages, d.page_size, d.kpe_dim}));
  KVSERVE_TRY(check_tensor(op, f(name, "indptr"), c.indptr, device, DType::int32, {batch + 1}));
  KVSERVE_TRY(check_tensor(op, f(name, "indices"), c.indices, device, DType::int32, {kAny}));
  KVSERVE_TRY(check_tensor(op, f(name, "last_page_len"), c.last_page_len, device, DType::int32, {batch}));
  if (!device.is_cpu()) return Status::ok();
  return check_page_table_host(op, name, page_geometry(d), c.indptr.ptr<const std::int32_t>(), batch,
                               c.indices.ptr<const std::int32_t>(), c.indices.shape[0],
                               c.last_page_len.ptr<const std::int32_t>());
}

std::string paged_config(DType q_dtype, const PagedKvDesc& kv) {
  return "q=" + to_text(q_dtype) + " kv=" + to_text(kv.dtype) + " d=" + std::to_string(kv.head_dim) +
         " layout=" + std::string(name_of(kv.layout));
}

Status check_paged_kv_args(std::string_view op, std::string_view name, const PagedKvDesc& desc, const PagedKv& kv,
                           std::int64_t batch, Device device) {
  const bool nhd = desc.layout == KvLayout::NHD;
  for (auto [pool, pname] : {std::pair{&kv.k_pages, "k_pages"}, std::pair{&kv.v_pages, "v_pages"}}) {
    if (nhd)
      KVSERVE_TRY(check_tensor(op, f(name, pname), *pool, device, desc.dtype,
                           {desc.num_pages, desc.page_size, desc.num_kv_heads, desc.head_dim}));
    else
      KVSERVE_TRY(check_tensor(op, f(name, pname), *pool, device, desc.dtype,
                           {desc.num_pages, desc.num_kv_heads, desc.page_size, desc.head_dim}));
  }
  KVSERVE_TRY(check_tensor(op, f(name, "indptr"), kv.indptr, device, DType::int32, {batch + 1}));
  KVSERVE_TRY(check_tensor(op, f(name, "indices"), kv.indices, device, DType::int32, {kAny}));
  KVSERVE_TRY(check_tensor(op, f(name, "last_page_len"), kv.last_page_len, device, DType::int32, {batch}));
  if (device.is_cpu())
    return check_page_table_host(op, name, desc, kv.indptr.ptr<const std::int32_t>(), batch,
                                 kv.indices.ptr<const std::int32_t>(), kv.indices.shape[0],
                                 kv.last_page_len.ptr<const std::int32_t>());
  return Status::ok();
}

Status check_paged_lengths(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                           const PagedKvLengths& host, std::int64_t max_rows, std::int64_t* batch,
                           std::string_view max_name) {
  KVSERVE_TRY(check_indptr(op, f(name, "indptr"), host.indptr));
  const std::int64_t b = static_cast<std::int64_t>(host.indptr.size()) - 1;
  if (b > max_rows)
    return invalid_arg(op, f(name, "indptr"),
                       "at most " + std::string(max_name) + " + 1 (" + to_text(max_rows + 1) + ") entries",
                       to_text(b + 1));
  if (static_cast<std::int64_t>(host.last_page_len.size()) != b)
    return invalid_arg(op, f(name, "last_page_len"), to_text(b) + " entries (batch)",
                       to_text(static_cast<std::int64_t>(host.last_page_len.size())));
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int32_t l = host.last_page_len[r];
    if (host.indptr[r + 1] > host.indptr[r] && (l < 1 || l > desc.page_size))
      return invalid_arg(op, f(name, "last_page_len") + "[" + std::to_string(r) + "]",
                         "in [1, page_size=" + std::to_string(desc.page_size) + "]", to_text(std::int64_t{l}));
  }
  *batch = b;
  return Status::ok();
}

Status check_page_table_host(std::string_view op, std::string_view name, const PagedKvDesc& desc,
                             const std::int32_t* indptr, std::int64_t batch, const std::int32_t* indices,
                             std::int64_t num_indices, const std::int32_t* last_page_len) {
  KVSERVE_TRY(check_indptr(op, f(name, "indptr"), {indptr, static_cast<std::size_t>(batch + 1)}));
  if (indptr[batch] > num_indices)
    return invalid_arg(op, f(name, "indices"), "at least indptr[B] = " + to_text(std::int64_t{indptr[batch]}) + " entries",
                       to_text(num_indices));
  for (std::int64_t r = 0; r < batch; ++r) {
    for (std::int32_t i = indptr[r]; i < indptr[r + 1]; ++i) {
      if (indices[i] < 0 || indices[i] >= desc.num_pages)
        return invalid_arg(op, f(name, "indices"),
                           "page ids in [0, " + to_text(desc.num_pages) + ")",
                           to_text(std::int64_t{indices[i]}) + " (request " + std::to_string(r) + ", position " +
                               std::to_string(i - indptr[r]) + ")");
    }
    const std::int32_t l = last_page_len[r];
    if (indptr[r + 1] > indptr[r] && (l < 1 || l > desc.page_size))
      return invalid_arg(op, f(name, "last_page_len"), "values in [1, page_size=" + std::to_string(desc.page_size) + "]",
                         to_text(std::int64_t{l}) + " (request " + std::to_string(r) + ")");
  }
  return Status::ok();
}

Status check_prepared_batch(std::string_view op, std::int64_t batch, std::int64_t prepared, std::int64_t max_batch) {
  return check_prepared_batch(op, "q", batch, prepared, max_batch);
}

Status check_prepared_batch(std::string_view op, std::string_view arg, std::int64_t batch, std::int64_t prepared,
                            std::int64_t max_batch) {
  if (prepared < 0)
    return Status::invalid_argument(std::string(op) + ": run() before prepare(): call prepare() once per step first");
  if (batch > max_batch)
    return invalid_arg(op, arg, "a batch of at most max_batch (" + to_text(max_batch) + ")", to_text(batch));
  if (batch != prepared)
    return invalid_arg(op, arg, "the batch of the last prepare() (" + to_text(prepared) + ")", to_text(batch));
  return Status::ok();
}

std::int64_t paged_kv_len(const std::int32_t* indptr, const std::int32_t* last_page_len, std::int64_t b,
                          int page_size) {
  const std::int64_t pages = indptr[b + 1] - indptr[b];
  return pages == 0 ? 0 : (pages - 1) * page_size + last_page_len[b];
}

}  // namespace kvserve::detail
