// Fuzz target: the KV-cache family on the CPU backend (PagedKvAppend in
// decode and ragged mode, PagedMlaAppend, KvCacheAppend) and the MLA decode
// over that cache (BatchPagedMlaDecode). The first byte picks
// the op. These ops write into caller memory at addresses taken from page
// tables and positions, so every out-of-range id must be refused (or skipped,
// as documented) rather than written.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/mla.hpp"

namespace kvserve::fuzz {

namespace {

PagedKvDesc paged_desc(FuzzInput& in) {
  PagedKvDesc kv;
  kv.page_size = in.isize(1 + in.u8() % 8, kMaxPageSize);
  kv.num_pages = in.size(1 + in.u8() % 6, kMaxPages);
  kv.num_kv_heads = in.isize(1 + in.u8() % 2, kMaxHeads);
  kv.head_dim = in.isize(16, kMaxHeadDim);
  kv.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  kv.layout = in.enumeration(2, KvLayout::NHD);
  if (in.pick(4) == 0) {
    int n = in.pick(4);
    for (int i = 0; i < n; ++i) kv.k_scale.push_back(in.param(0.5f));
    kv.v_scale = kv.k_scale;
  }
  return kv;
}

void paged_kv_append(FuzzInput& in, Arena& a) {
  PagedKvAppendDesc d;
  d.kv = paged_desc(in);
  d.dtype = in.dtype(d.kv.dtype);
  d.mode = in.enumeration(2, in.flag() ? AppendMode::ragged : AppendMode::decode);
  std::int64_t b = in.u8() % 5;
  PageTable t = page_table(in, b, d.kv.num_pages, d.kv.page_size);
  std::int64_t n = d.mode == AppendMode::ragged ? in.u8() % 7 : b;
  auto pool = [&]() -> std::vector<std::int64_t> {
    if (d.kv.layout == KvLayout::HND) return {d.kv.num_pages, d.kv.num_kv_heads, d.kv.page_size, d.kv.head_dim};
    return {d.kv.num_pages, d.kv.page_size, d.kv.num_kv_heads, d.kv.head_dim};
  };
  PagedKvAppendArgs args;
  args.k = a.tensor(d.dtype, {n, d.kv.num_kv_heads, d.kv.head_dim});
  args.v = a.tensor(d.dtype, {n, d.kv.num_kv_heads, d.kv.head_dim});
  if (d.mode == AppendMode::ragged || in.pick(8) == 0) {
    args.batch_indices = a.tensor(DType::int32, {n}, index_bound(b));
    args.positions = a.tensor(DType::int32, {n}, index_bound(2 * std::int64_t{d.kv.page_size}));
  }
  args.kv.k_pages = a.tensor(d.kv.dtype, pool());
  args.kv.v_pages = a.tensor(d.kv.dtype, pool());
  args.kv.indptr = a.ints(t.indptr);
  args.kv.indices = a.ints(t.indices);
  args.kv.last_page_len = a.ints(t.last_page_len);
  drive<PagedKvAppend>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

void paged_mla_append(FuzzInput& in, Arena& a) {
  PagedMlaDesc d;
  d.page_size = in.isize(1 + in.u8() % 8, kMaxPageSize);
  d.num_pages = in.size(1 + in.u8() % 6, kMaxPages);
  d.ckv_dim = in.isize(32, kMaxRowWidth);
  d.kpe_dim = in.isize(16, kMaxRowWidth);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::f16);
  std::int64_t b = in.u8() % 5;
  PageTable t = page_table(in, b, d.num_pages, d.page_size);
  std::int64_t n = in.u8() % 7;
  PagedMlaAppendArgs args;
  args.ckv = a.tensor(d.dtype, {n, d.ckv_dim});
  args.kpe = a.tensor(d.dtype, {n, d.kpe_dim});
  args.batch_indices = a.tensor(DType::int32, {n}, index_bound(b));
  args.positions = a.tensor(DType::int32, {n}, index_bound(2 * std::int64_t{d.page_size}));
  args.cache.ckv_pages = a.tensor(d.dtype, {d.num_pages, d.page_size, d.ckv_dim});
  args.cache.kpe_pages = a.tensor(d.dtype, {d.num_pages, d.page_size, d.kpe_dim});
  args.cache.indptr = a.ints(t.indptr);
  args.cache.indices = a.ints(t.indices);
  args.cache.last_page_len = a.ints(t.last_page_len);
  drive<PagedMlaAppend>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

// BatchPagedMlaDecode reads the same cache PagedMlaAppend writes, so it is
// fuzzed beside it: the pools' page ids and lengths come from the same tables.
void batch_paged_mla_decode(FuzzInput& in, Arena& a) {
  BatchPagedMlaDecodeDesc d;
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_heads = in.isize(1 + in.u8() % 4, kMaxHeads);
  d.cache.page_size = in.isize(1 + in.u8() % 8, kMaxPageSize);
  d.cache.num_pages = in.size(1 + in.u8() % 6, kMaxPages);
  d.cache.ckv_dim = in.isize(32, kMaxRowWidth);
  d.cache.kpe_dim = in.isize(16, kMaxRowWidth);
  d.cache.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  d.sm_scale = in.param(0.125f);
  d.kv_split_tokens = in.flag() ? in.isize(2, kMaxSequenceLength) : 0;
  std::int64_t b = in.u8() % 5;
  PageTable t = page_table(in, b, d.cache.num_pages, d.cache.page_size);
  BatchPagedMlaDecodeArgs args;
  args.q_nope = a.tensor(d.cache.dtype, {b, d.num_heads, d.cache.ckv_dim});
  args.q_pe = a.tensor(d.cache.dtype, {b, d.num_heads, d.cache.kpe_dim});
  args.cache.ckv_pages = a.tensor(d.cache.dtype, {d.cache.num_pages, d.cache.page_size, d.cache.ckv_dim});
  args.cache.kpe_pages = a.tensor(d.cache.dtype, {d.cache.num_pages, d.cache.page_size, d.cache.kpe_dim});
  args.cache.indptr = a.ints(t.indptr);
  args.cache.indices = a.ints(t.indices);
  args.cache.last_page_len = a.ints(t.last_page_len);
  args.out = a.tensor(d.cache.dtype, {b, d.num_heads, d.cache.ckv_dim});
  if (in.flag()) args.lse = a.tensor(DType::f32, {b, d.num_heads});
  drive<BatchPagedMlaDecode>(in, a, d, args, [&](auto& plan, Workspace ws) {
    return plan.prepare(PagedKvLengths{t.indptr, t.last_page_len}, ws, {});
  });
}

void kv_cache_append(FuzzInput& in, Arena& a) {
  KvCacheAppendDesc d;
  d.num_kv_heads = in.isize(1 + in.u8() % 2, kMaxHeads);
  d.head_dim = in.isize(16, kMaxHeadDim);
  d.dtype = in.dtype(in.flag() ? DType::f32 : DType::bf16);
  std::int64_t b = in.u8() % 5, l = in.u8() % 6, n = in.u8() % 7;
  KvCacheAppendArgs args;
  args.k = a.tensor(d.dtype, {n, d.num_kv_heads, d.head_dim});
  args.v = a.tensor(d.dtype, {n, d.num_kv_heads, d.head_dim});
  if (in.flag()) args.batch_indices = a.tensor(DType::int32, {n}, index_bound(b));
  args.positions = a.tensor(DType::int32, {n}, index_bound(l));
  args.k_cache = a.tensor(d.dtype, {b, d.num_kv_heads, l, d.head_dim});
  args.v_cache = a.tensor(d.dtype, {b, d.num_kv_heads, l, d.head_dim});
  drive<KvCacheAppend>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

}  // namespace

KVSERVE_FUZZ_CASES(paged_kv_append, paged_mla_append, batch_paged_mla_decode, kv_cache_append)

}  // namespace kvserve::fuzz
