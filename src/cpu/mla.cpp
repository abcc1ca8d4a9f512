// The CPU kernel of BatchPagedMlaDecode (mla.hpp): attention with one KV head
// whose keys are [ckv | kpe] rows and whose values are the ckv rows, all query
// heads of a request reading it, through the backend's one attend().
#include <algorithm>
#include <vector>

#include "core/backend_kernels.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/parallel.hpp"
#include "kvserve/mla.hpp"

namespace kvserve::detail {
namespace {

Status run_batch_paged_mla_decode(const PlanState<BatchPagedMlaDecode>& p, const BatchPagedMlaDecodeArgs& a,
                                  Workspace, Stream) {
  const auto& d = p.desc;
  const int ckv = d.cache.ckv_dim, kpe = d.cache.kpe_dim, width = ckv + kpe, heads = d.num_heads;
  const cpu::MaskParams mp{.sm_scale = d.sm_scale, .soft_cap = 0.f, .window_left = -1, .causal = true};
  PagedKv table;  // the page table alone, in the form paged_row() reads
  table.indptr = a.cache.indptr;
  table.indices = a.cache.indices;
  table.last_page_len = a.cache.last_page_len;
  const std::int64_t batch = a.q_nope.shape[0];
  std::int64_t tokens = 0;
  for (std::int64_t b = 0; b < batch; ++b) tokens += cpu::paged_row(table, b, d.cache.page_size).len;
  const std::int64_t cost = batch ? 2 * tokens / batch * heads * (width + ckv) : 0;
  cpu::parallel_for(batch, cost, [&](std::int64_t b) {
    const cpu::PagedRow row = cpu::paged_row(table, b, d.cache.page_size);
    cpu::KvRows kv;
    kv.resize(row.len, width, ckv);
    for (std::int64_t j = 0; j < row.len; ++j) {
      const std::int64_t page = row.pages[static_cast<std::size_t>(j / d.cache.page_size)];
      const std::int64_t slot = j % d.cache.page_size;
      float* key = kv.k.data() + j * width;
      cpu::widen_row(d.cache.dtype, cpu::element_ptr(a.cache.ckv_pages, {page, slot, 0}), ckv, 1.f, key);
      cpu::widen_row(d.cache.dtype, cpu::element_ptr(a.cache.kpe_pages, {page, slot, 0}), kpe, 1.f, key + ckv);
      std::copy(key, key + ckv, kv.v.data() + j * ckv);  // the value is the key's ckv part
    }
    std::vector<float> q(static_cast<std::size_t>(heads) * width), o(static_cast<std::size_t>(heads) * ckv),
        lse(static_cast<std::size_t>(heads));
    for (int h = 0; h < heads; ++h) {
      cpu::widen_row(d.cache.dtype, cpu::element_ptr(a.q_nope, {b, h, 0}), ckv, 1.f, q.data() + h * width);
      cpu::widen_row(d.cache.dtype, cpu::element_ptr(a.q_pe, {b, h, 0}), kpe, 1.f, q.data() + h * width + ckv);
    }
    // Every head's query sits at the request's last position: it sees every key.
    const std::vector<std::int64_t> pos(static_cast<std::size_t>(heads), row.len - 1);
    cpu::attend(mp, kv, q, pos, o, lse);
    cpu::store_query_heads(o.data(), lse.data(), b, 0, heads, a.out, a.lse);
  });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<BatchPagedMlaDecode>> cpu_kernel<BatchPagedMlaDecode>(const BatchPagedMlaDecodeDesc& d) {
  return cpu::make_kernel<BatchPagedMlaDecode>(cpu::config("dtype", d.cache.dtype, "heads", d.num_heads, "ckv",
                                                           d.cache.ckv_dim, "kpe", d.cache.kpe_dim),
                                               run_batch_paged_mla_decode);
}

}  // namespace kvserve::detail
