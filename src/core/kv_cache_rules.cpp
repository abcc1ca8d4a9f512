// Validation and kernel selection for the KV-cache append ops.
#include <string>

#include "core/paged_kv_rules.hpp"
#include "core/plan_impl.hpp"
#include "kvserve/kv_cache.hpp"

namespace kvserve {
namespace detail {
namespace {

// The new rows' dtype against the cache's: equal, or any activation type
// quantised into an fp8 cache.
Status check_row_dtype(std::string_view op, std::string_view field, DType rows, DType cache) {
  if (is_fp8(cache)) {
    if (is_activation(rows)) return Status::ok();
    return invalid_field(op, field, "f16, bf16 or f32 rows for an fp8 cache", to_text(rows));
  }
  if (rows == cache) return Status::ok();
  return invalid_field(op, field, "the cache's dtype (" + to_text(cache) + ")", to_text(rows));
}

std::int32_t entry(const TensorView& t, std::int64_t i) { return t.ptr<const std::int32_t>()[i]; }

// Host memory only: row i's target batch_indices[i] (i itself when there is no
// batch_indices) is in [0, batch) and positions[i] in [0, length_of(target)).
// `length_name` says what bounds the position ("kv_len", "L_max").
template <class LengthOf>
Status check_row_targets(std::string_view op, const TensorView& batch_indices, const TensorView& positions,
                         std::int64_t batch, std::string_view length_name, LengthOf length_of) {
  for (std::int64_t i = 0; i < positions.shape[0]; ++i) {
    const std::int64_t b = batch_indices.defined() ? entry(batch_indices, i) : i;
    if (b < 0 || b >= batch)
      return invalid_arg(op, "batch_indices", "values in [0, B = " + to_text(batch) + ")",
                         "batch_indices[" + to_text(i) + "] = " + to_text(b));
    const std::int64_t pos = entry(positions, i), len = length_of(b);
    if (pos < 0 || pos >= len)
      return invalid_arg(op, "positions",
                         "values in [0, " + std::string(length_name) + ") of their request (slots reserved first)",
                         "positions[" + to_text(i) + "] = " + to_text(pos) + " for request " + to_text(b) + " with " +
                             std::string(length_name) + " " + to_text(len));
  }
  return Status::ok();
}

// The batch a page table describes, read from the shape of its indptr (the
// tensor checks that follow report a malformed indptr).
std::int64_t table_batch(const TensorView& indptr) {
  return indptr.rank == 1 && indptr.shape[0] >= 1 ? indptr.shape[0] - 1 : 0;
}

// Rows of an input tensor, read from its first extent (checked right after).
std::int64_t rows_of(const TensorView& t) { return t.rank > 0 ? t.shape[0] : 0; }

Status check_row_indices(std::string_view op, const TensorView& batch_indices, const TensorView& positions,
                         std::int64_t rows, Device device) {
  KVSERVE_TRY(check_tensor(op, "batch_indices", batch_indices, device, DType::int32, {rows}));
  return check_tensor(op, "positions", positions, device, DType::int32, {rows});
}

}  // namespace

// ---------------------------------------------------------- PagedKvAppend --

template <>
Status OpRules<PagedKvAppend>::check_desc(const PagedKvAppendDesc& d) {
  KVSERVE_TRY(check_paged_kv_desc(op, "kv", d.kv));
  KVSERVE_TRY(check_row_dtype(op, "dtype", d.dtype, d.kv.dtype));
  if (d.mode != AppendMode::decode && d.mode != AppendMode::ragged)
    return invalid_field(op, "mode", "decode or ragged", to_text(static_cast<std::int64_t>(d.mode)));
  return Status::ok();
}

template <>
Status OpRules<PagedKvAppend>::check_args(const PlanState<PagedKvAppend>& p, const PagedKvAppendArgs& a) {
  const auto& d = p.desc;
  const bool decode = d.mode == AppendMode::decode;
  const std::int64_t n = rows_of(a.k);
  KVSERVE_TRY(check_tensor(op, "k", a.k, p.device, d.dtype, {kAny, d.kv.num_kv_heads, d.kv.head_dim}));
  KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {n, d.kv.num_kv_heads, d.kv.head_dim}));
  if (decode) {
    if (a.batch_indices.defined())
      return invalid_arg(op, "batch_indices", "none in decode mode (row b is request b)", a.batch_indices.shape_string());
    if (a.positions.defined())
      return invalid_arg(op, "positions", "none in decode mode (the last slot of each request)", a.positions.shape_string());
  } else {
    KVSERVE_TRY(check_row_indices(op, a.batch_indices, a.positions, n, p.device));
  }
  // Decode: one row per request.
  const std::int64_t batch = decode ? n : table_batch(a.kv.indptr);
  KVSERVE_TRY(check_paged_kv_args(op, "kv", d.kv, a.kv, batch, p.device));
  if (decode || !p.device.is_cpu()) return Status::ok();
  const auto* indptr = a.kv.indptr.ptr<const std::int32_t>();
  const auto* last = a.kv.last_page_len.ptr<const std::int32_t>();
  return check_row_targets(op, a.batch_indices, a.positions, batch, "kv_len",
                           [&](std::int64_t b) { return paged_kv_len(indptr, last, b, d.kv.page_size); });
}

// --------------------------------------------------------- PagedMlaAppend --

template <>
Status OpRules<PagedMlaAppend>::check_desc(const PagedMlaDesc& d) {
  return check_paged_mla_desc(PagedMlaAppend::kName, "", d);
}

template <>
Status OpRules<PagedMlaAppend>::check_args(const PlanState<PagedMlaAppend>& p, const PagedMlaAppendArgs& a) {
  const auto& d = p.desc;
  const auto& c = a.cache;
  const std::int64_t n = rows_of(a.ckv), batch = table_batch(c.indptr);
  KVSERVE_TRY(check_tensor(op, "ckv", a.ckv, p.device, d.dtype, {kAny, d.ckv_dim}));
  KVSERVE_TRY(check_tensor(op, "kpe", a.kpe, p.device, d.dtype, {n, d.kpe_dim}));
  KVSERVE_TRY(check_row_indices(op, a.batch_indices, a.positions, n, p.device));
  KVSERVE_TRY(check_paged_mla_cache(op, "cache", d, c, batch, p.device));
  if (!p.device.is_cpu()) return Status::ok();
  const auto* indptr = c.indptr.ptr<const std::int32_t>();
  const auto* last = c.last_page_len.ptr<const std::int32_t>();
  return check_row_targets(op, a.batch_indices, a.positions, batch, "kv_len",
                           [&](std::int64_t b) { return paged_kv_len(indptr, last, b, d.page_size); });
}

// ---------------------------------------------------------- KvCacheAppend --

template <>
Status OpRules<KvCacheAppend>::check_desc(const KvCacheAppendDesc& d) {
  KVSERVE_TRY(check_size(op, "num_kv_heads", d.num_kv_heads, kMaxHeads));
  KVSERVE_TRY(check_head_dim(op, "head_dim", d.head_dim));
  return check_activation_dtype(op, "dtype", d.dtype);
}

template <>
Status OpRules<KvCacheAppend>::check_args(const PlanState<KvCacheAppend>& p, const KvCacheAppendArgs& a) {
  const auto& d = p.desc;
  const std::int64_t n = rows_of(a.k);
  const std::int64_t batch = rows_of(a.k_cache), max_len = a.k_cache.rank == 4 ? a.k_cache.shape[2] : 0;
  KVSERVE_TRY(check_tensor(op, "k", a.k, p.device, d.dtype, {kAny, d.num_kv_heads, d.head_dim}));
  KVSERVE_TRY(check_tensor(op, "v", a.v, p.device, d.dtype, {n, d.num_kv_heads, d.head_dim}));
  KVSERVE_TRY(check_optional_tensor(op, "batch_indices", a.batch_indices, p.device, DType::int32, {n}));
  KVSERVE_TRY(check_tensor(op, "positions", a.positions, p.device, DType::int32, {n}));
  KVSERVE_TRY(check_tensor(op, "k_cache", a.k_cache, p.device, d.dtype, {kAny, d.num_kv_heads, kAny, d.head_dim}));
  KVSERVE_TRY(check_tensor(op, "v_cache", a.v_cache, p.device, d.dtype, {batch, d.num_kv_heads, max_len, d.head_dim}));
  for (auto [cache, name] : {std::pair{&a.k_cache, "k_cache"}, std::pair{&a.v_cache, "v_cache"}})
    for (int dim = 0; dim < 3; ++dim)
      if (cache->shape[dim] > 1 && cache->strides[dim] == 0)
        return invalid_arg(op, name, "non-zero strides (every slot its own memory)", "strides " + cache->strides_string());
  if (!a.batch_indices.defined() && n > batch)
    return invalid_arg(op, "k", "at most B = " + to_text(batch) + " rows when batch_indices is not given",
                       to_text(n) + " rows");
  if (!p.device.is_cpu()) return Status::ok();
  return check_row_targets(op, a.batch_indices, a.positions, batch, "L_max", [&](std::int64_t) { return max_len; });
}

}  // namespace detail

template class Plan<PagedKvAppend>;
template class Plan<PagedMlaAppend>;
template class Plan<KvCacheAppend>;

std::string_view name_of(AppendMode m) { return m == AppendMode::decode ? "decode" : "ragged"; }

}  // namespace kvserve
