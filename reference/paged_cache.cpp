#include "reference/paged_cache.hpp"

#include <algorithm>
#include <numeric>

namespace kvserve::test {

PagedKv PagedCache::view() const {
  const std::int64_t b = static_cast<std::int64_t>(lens.size());
  const bool nhd = desc.layout == KvLayout::NHD;
  const std::int64_t d1 = nhd ? desc.page_size : desc.num_kv_heads, d2 = nhd ? desc.num_kv_heads : desc.page_size;
  return PagedKv{.k_pages = k.view({desc.num_pages, d1, d2, desc.head_dim}),
                 .v_pages = v.view({desc.num_pages, d1, d2, desc.head_dim}),
                 .indptr = indptr_dev.view({b + 1}),
                 .indices = indices_dev.view({static_cast<std::int64_t>(indices.size())}),
                 .last_page_len = last_dev.view({b})};
}

std::int64_t PagedCache::offset(std::int64_t page, std::int64_t slot, int head) const {
  const std::int64_t d = desc.head_dim;
  if (desc.layout == KvLayout::NHD) return ((page * desc.page_size + slot) * desc.num_kv_heads + head) * d;
  return ((page * desc.num_kv_heads + head) * desc.page_size + slot) * d;
}

namespace {
std::vector<double> gather(const PagedCache& c, const Buffer& pool, const std::vector<float>& scales, std::int64_t b) {
  const int hkv = c.desc.num_kv_heads, d = c.desc.head_dim;
  std::vector<double> out(static_cast<std::size_t>(c.lens[b] * hkv * d));
  for (std::int64_t j = 0; j < c.lens[b]; ++j) {
    const std::int64_t page = c.indices[c.indptr[b] + j / c.desc.page_size];
    for (int h = 0; h < hkv; ++h) {
      const double s = scales.empty() ? 1.0 : scales[scales.size() == 1 ? 0 : h];
      for (int x = 0; x < d; ++x)
        out[(j * hkv + h) * d + x] = pool.get(c.offset(page, j % c.desc.page_size, h) + x) * s;
    }
  }
  return out;
}
}  // namespace

std::vector<double> PagedCache::keys(std::int64_t b) const { return gather(*this, k, desc.k_scale, b); }
std::vector<double> PagedCache::values(std::int64_t b) const { return gather(*this, v, desc.v_scale, b); }

PagedCache make_paged_cache(std::mt19937_64& rng, PagedKvDesc desc, const std::vector<std::int64_t>& lens,
                            Device device, std::int64_t spare_pages) {
  PagedCache c;
  c.lens = lens;
  std::int64_t used = 0;
  for (std::int64_t l : lens) used += (l + desc.page_size - 1) / desc.page_size;
  desc.num_pages = used + spare_pages;
  c.desc = desc;
  std::vector<std::int32_t> perm(static_cast<std::size_t>(desc.num_pages));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  c.indptr.push_back(0);
  std::size_t next = 0;
  for (std::int64_t l : lens) {
    const std::int64_t pages = (l + desc.page_size - 1) / desc.page_size;
    for (std::int64_t p = 0; p < pages; ++p) c.indices.push_back(perm[next++]);
    c.indptr.push_back(static_cast<std::int32_t>(c.indices.size()));
    c.last_page_len.push_back(pages == 0 ? 0 : static_cast<std::int32_t>(l - (pages - 1) * desc.page_size));
  }
  const std::int64_t pool = desc.num_pages * desc.page_size * desc.num_kv_heads * desc.head_dim;
  c.k = Buffer(desc.dtype, pool, device);
  c.v = Buffer(desc.dtype, pool, device);
  c.k.fill_uniform(rng, -1, 1);
  c.v.fill_uniform(rng, -1, 1);
  std::vector<std::int32_t> idx = c.indices;
  if (idx.empty()) idx.push_back(0);  // a zero-length view still needs memory
  c.indptr_dev = int_buffer(c.indptr, device);
  c.indices_dev = int_buffer(idx, device);
  c.last_dev = int_buffer(c.last_page_len, device);
  return c;
}

PagedMlaCache MlaCache::view() const {
  const PagedKv t = table.view();
  return {.ckv_pages = table.k.view({desc.num_pages, desc.page_size, desc.ckv_dim}),
          .kpe_pages = kpe_pages.view({desc.num_pages, desc.page_size, desc.kpe_dim}),
          .indptr = t.indptr,
          .indices = t.indices,
          .last_page_len = t.last_page_len};
}

std::vector<double> MlaCache::keys(std::int64_t b) const {
  const std::vector<double> ckv = table.keys(b);
  std::vector<double> out;
  for (std::int64_t j = 0; j < table.lens[b]; ++j) {
    out.insert(out.end(), ckv.begin() + j * desc.ckv_dim, ckv.begin() + (j + 1) * desc.ckv_dim);
    const std::int64_t page = table.indices[table.indptr[b] + j / desc.page_size], slot = j % desc.page_size;
    for (int x = 0; x < desc.kpe_dim; ++x) out.push_back(kpe_pages.get((page * desc.page_size + slot) * desc.kpe_dim + x));
  }
  return out;
}

MlaCache make_mla_cache(std::mt19937_64& rng, DType dtype, int page_size, int ckv_dim, int kpe_dim,
                        const std::vector<std::int64_t>& lens, Device device) {
  MlaCache c;
  c.table = make_paged_cache(rng, {.page_size = page_size, .num_kv_heads = 1, .head_dim = ckv_dim, .dtype = dtype},
                             lens, device);
  c.desc = {.page_size = page_size, .num_pages = c.table.desc.num_pages, .ckv_dim = ckv_dim, .kpe_dim = kpe_dim,
            .dtype = dtype};
  c.kpe_pages = Buffer(dtype, c.desc.num_pages * page_size * kpe_dim, device);
  c.kpe_pages.fill_uniform(rng, -1, 1);
  return c;
}

}  // namespace kvserve::test
