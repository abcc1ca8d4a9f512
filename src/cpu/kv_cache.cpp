// CPU kernels for the KV-cache append ops: each resolves a new row's target
// slot and stores the row there; they differ only in how a slot is addressed.
#include <cstring>
#include <vector>

#include "core/backend_kernels.hpp"
#include "core/check.hpp"
#include "core/paged_kv_rules.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/parallel.hpp"
#include "kvserve/kv_cache.hpp"

namespace kvserve::detail {
namespace {

void copy_row(DType type, const char* src, char* dst, int n) {
  std::memcpy(dst, src, static_cast<std::size_t>(n) * size_of(type));
}

// Stores one row of n elements into a cache slot: a plain copy when the types
// agree, otherwise widened to fp32, divided by the scale (stored = real / scale)
// and rounded to the cache type (to nearest even; fp8 saturates).
// `scratch` holds at least n floats.
void store_row(DType src_type, const char* src, DType dst_type, char* dst, int n, float scale, float* scratch) {
  if (src_type == dst_type && scale == 1.f) {
    copy_row(dst_type, src, dst, n);
    return;
  }
  cpu::widen_row(src_type, src, n, 1.f, scratch);
  if (scale != 1.f)
    for (int i = 0; i < n; ++i) scratch[i] /= scale;
  cpu::narrow_row(dst_type, scratch, n, dst);
}

std::int32_t entry(const TensorView& t, std::int64_t i) { return t.ptr<const std::int32_t>()[i]; }

// Where a row goes: a request (batch row) and a position in it.
struct Target {
  std::int64_t batch = 0, position = 0;
};
Target row_target(const TensorView& batch_indices, const TensorView& positions, std::int64_t i) {
  return {batch_indices.defined() ? entry(batch_indices, i) : i, entry(positions, i)};
}

// An append costs a load and a store per element: the rough "flop" count
// parallel_for weighs against the cost of starting threads.
constexpr std::int64_t kCostPerElement = 2;

std::string rows_config(DType rows, DType cache) { return cpu::config("rows", rows, "cache", cache); }

// ---------------------------------------------------------- PagedKvAppend --

Status run_paged_kv_append(const PlanState<PagedKvAppend>& p, const PagedKvAppendArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const int hkv = d.kv.num_kv_heads, dim = d.kv.head_dim, ps = d.kv.page_size;
  const bool nhd = d.kv.layout == KvLayout::NHD, decode = d.mode == AppendMode::decode;
  cpu::parallel_for(a.k.shape[0], kCostPerElement * hkv * dim, [&](std::int64_t i) {
    const Target t = decode ? Target{i, 0} : row_target(a.batch_indices, a.positions, i);
    const cpu::PagedRow row = cpu::paged_row(a.kv, t.batch, ps);
    if (decode && row.len == 0) return;  // no slot reserved: a padding row
    const std::int64_t pos = decode ? row.len - 1 : t.position;
    const std::int64_t page = row.pages[static_cast<std::size_t>(pos / ps)], slot = pos % ps;
    // Only a conversion (fp8 quantisation) needs fp32 scratch.
    std::vector<float> scratch(d.dtype == d.kv.dtype ? 0 : static_cast<std::size_t>(dim));
    for (int h = 0; h < hkv; ++h) {
      const auto dst = [&](const TensorView& pool) {
        return nhd ? cpu::element_ptr_mut(pool, {page, slot, h, 0}) : cpu::element_ptr_mut(pool, {page, h, slot, 0});
      };
      store_row(d.dtype, cpu::element_ptr(a.k, {i, h, 0}), d.kv.dtype, dst(a.kv.k_pages), dim,
                d.kv.k_scale_of(h), scratch.data());
      store_row(d.dtype, cpu::element_ptr(a.v, {i, h, 0}), d.kv.dtype, dst(a.kv.v_pages), dim,
                d.kv.v_scale_of(h), scratch.data());
    }
  });
  return Status::ok();
}

// --------------------------------------------------------- PagedMlaAppend --

Status run_paged_mla_append(const PlanState<PagedMlaAppend>& p, const PagedMlaAppendArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  // The page table alone, in the form paged_row() reads.
  PagedKv table;
  table.indptr = a.cache.indptr;
  table.indices = a.cache.indices;
  table.last_page_len = a.cache.last_page_len;
  cpu::parallel_for(a.ckv.shape[0], kCostPerElement * (d.ckv_dim + d.kpe_dim), [&](std::int64_t i) {
    const Target t = row_target(a.batch_indices, a.positions, i);
    const cpu::PagedRow row = cpu::paged_row(table, t.batch, d.page_size);
    const std::int64_t page = row.pages[static_cast<std::size_t>(t.position / d.page_size)];
    const std::int64_t slot = t.position % d.page_size;
    copy_row(d.dtype, cpu::element_ptr(a.ckv, {i, 0}), cpu::element_ptr_mut(a.cache.ckv_pages, {page, slot, 0}), d.ckv_dim);
    copy_row(d.dtype, cpu::element_ptr(a.kpe, {i, 0}), cpu::element_ptr_mut(a.cache.kpe_pages, {page, slot, 0}), d.kpe_dim);
  });
  return Status::ok();
}

// ---------------------------------------------------------- KvCacheAppend --

Status run_kv_cache_append(const PlanState<KvCacheAppend>& p, const KvCacheAppendArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  cpu::parallel_for(a.k.shape[0], kCostPerElement * d.num_kv_heads * d.head_dim, [&](std::int64_t i) {
    const Target t = row_target(a.batch_indices, a.positions, i);
    for (int h = 0; h < d.num_kv_heads; ++h) {
      copy_row(d.dtype, cpu::element_ptr(a.k, {i, h, 0}), cpu::element_ptr_mut(a.k_cache, {t.batch, h, t.position, 0}),
               d.head_dim);
      copy_row(d.dtype, cpu::element_ptr(a.v, {i, h, 0}), cpu::element_ptr_mut(a.v_cache, {t.batch, h, t.position, 0}),
               d.head_dim);
    }
  });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<PagedKvAppend>> cpu_kernel<PagedKvAppend>(const PagedKvAppendDesc& d) {
  return cpu::make_kernel<PagedKvAppend>(
      rows_config(d.dtype, d.kv.dtype) + " " + cpu::config("d", d.kv.head_dim, "layout", d.kv.layout, "mode", d.mode),
      run_paged_kv_append);
}

template <>
Result<Kernel<PagedMlaAppend>> cpu_kernel<PagedMlaAppend>(const PagedMlaDesc& d) {
  return cpu::make_kernel<PagedMlaAppend>(
      rows_config(d.dtype, d.dtype) + " " + cpu::config("ckv", d.ckv_dim, "kpe", d.kpe_dim), run_paged_mla_append);
}

template <>
Result<Kernel<KvCacheAppend>> cpu_kernel<KvCacheAppend>(const KvCacheAppendDesc& d) {
  return cpu::make_kernel<KvCacheAppend>(rows_config(d.dtype, d.dtype) + " " + cpu::config("d", d.head_dim),
                                         run_kv_cache_append);
}

}  // namespace kvserve::detail
