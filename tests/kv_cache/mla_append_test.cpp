// PagedMlaAppend against the fp64 oracle on every test device, and its
// validation.
#include <cmath>

#include "kv_cache/kv_cache_test_util.hpp"
#include "kvserve/kv_cache.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

struct MlaCase {
  DType dtype;
  int page_size, ckv_dim, kpe_dim;
  std::vector<std::int64_t> old_lens, new_tokens;
};

// The oracle's view of the two pools of an MLA cache.
oracle::PoolShape ckv_shape(const MlaCache& c) { return {c.desc.num_pages, c.desc.page_size, 1, c.desc.ckv_dim}; }
oracle::PoolShape kpe_shape(const MlaCache& c) { return {c.desc.num_pages, c.desc.page_size, 1, c.desc.kpe_dim}; }

// New rows as one projection output [n, ckv_dim + kpe_dim]: ckv and kpe are
// strided views of it.
struct MlaRows {
  Buffer fused;
  std::int64_t n;
  int ckv_dim, kpe_dim;
  TensorView ckv() const { return fused.view_strided({n, ckv_dim}, {ckv_dim + kpe_dim, 1}); }
  TensorView kpe() const {
    TensorView t = fused.view_strided({n, kpe_dim}, {ckv_dim + kpe_dim, 1});
    t.data = static_cast<char*>(t.data) + ckv_dim * size_of(fused.dtype());
    return t;
  }
  std::vector<double> part(int first, int width) const {
    std::vector<double> out;
    for (std::int64_t i = 0; i < n; ++i)
      for (int x = 0; x < width; ++x) out.push_back(fused.get(i * (ckv_dim + kpe_dim) + first + x));
    return out;
  }
};

void poison_targets(const oracle::PoolShape& shape, const PagedCache& t, const oracle::Targets& targets, Buffer* pool) {
  for (std::size_t i = 0; i < targets.batch.size(); ++i) {
    const std::int64_t at = oracle::paged_offset(shape, t.indptr, t.indices, targets.batch[i], targets.position[i], 0);
    for (int x = 0; x < shape.dim; ++x) pool->set(at + x, NAN);
  }
  pool->upload();
}

void run_case(const MlaCase& c, Device device) {
  SCOPED_TRACE(std::string(name_of(c.dtype)) + " page=" + std::to_string(c.page_size) + " ckv=" +
               std::to_string(c.ckv_dim) + " kpe=" + std::to_string(c.kpe_dim) + " on " + device.to_string());
  auto rng = make_rng();
  std::vector<std::int64_t> lens = c.old_lens;
  for (std::size_t b = 0; b < lens.size(); ++b) lens[b] += c.new_tokens[b];
  MlaCache cache = make_mla_cache(rng, c.dtype, c.page_size, c.ckv_dim, c.kpe_dim, lens, device);
  KVS_CREATE_OR_SKIP(plan, PagedMlaAppendPlan, cache.desc, device);
  const oracle::Targets targets = ragged_targets(rng, c.old_lens, c.new_tokens);
  const std::int64_t n = static_cast<std::int64_t>(targets.batch.size());
  MlaRows rows{Buffer(c.dtype, n * (c.ckv_dim + c.kpe_dim), device), n, c.ckv_dim, c.kpe_dim};
  rows.fused.fill_uniform(rng, -2, 2);
  if (n > 0) expect_nonzero(rows.fused.values(), "new rows");

  std::vector<double> want_ckv = cache.table.k.values(), want_kpe = cache.kpe_pages.values();
  oracle::paged_append(ckv_shape(cache), cache.table.indptr, cache.table.indices, targets, rows.part(0, c.ckv_dim),
                       {}, c.dtype, &want_ckv);
  oracle::paged_append(kpe_shape(cache), cache.table.indptr, cache.table.indices, targets,
                       rows.part(c.ckv_dim, c.kpe_dim), {}, c.dtype, &want_kpe);
  poison_targets(ckv_shape(cache), cache.table, targets, &cache.table.k);
  poison_targets(kpe_shape(cache), cache.table, targets, &cache.kpe_pages);

  Buffer bi = int_buffer(targets.batch, device), pos = int_buffer(targets.position, device);
  const Status s = plan->run(
      {.ckv = rows.ckv(), .kpe = rows.kpe(), .batch_indices = bi.view({n}), .positions = pos.view({n}),
       .cache = cache.view()},
      {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  cache.table.k.download();
  cache.kpe_pages.download();
  expect_close(cache.table.k.values(), want_ckv, c.dtype, "ckv_pages");
  expect_close(cache.kpe_pages.values(), want_kpe, c.dtype, "kpe_pages");
}

class PagedMlaAppendTest : public DeviceTest {};

TEST_P(PagedMlaAppendTest, DtypesAndPageSizes) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int page : {1, 16, 64})
      // A prompt, a decode token into a full last page, an empty request, a chunk.
      run_case({t, page, 512, 64, {0, page, 9, 20}, {3 * page + 2, 1, 0, 17}}, GetParam());
}

TEST_P(PagedMlaAppendTest, DecodeStepAndOtherWidths) {
  run_case({DType::bf16, 16, 512, 64, {0, 15, 16, 200}, {1, 1, 1, 1}}, GetParam());
  run_case({DType::f16, 8, 256, 32, {5, 0}, {12, 9}}, GetParam());
  run_case({DType::bf16, 16, 512, 64, {4}, {0}}, GetParam());  // no rows
}

TEST_P(PagedMlaAppendTest, ValidationNamesEveryFieldAndArgument) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int ps = 4;
  MlaCache cache = make_mla_cache(rng, DType::bf16, ps, 512, 64, {6, 2}, device);
  auto create_fails = [&](const std::string& field, auto mutate) {
    PagedMlaDesc bad = cache.desc;
    mutate(bad);
    expect_rejected(PagedMlaAppendPlan::create(bad, device).status(), field);
  };
  create_fails("page_size", [](auto& x) { x.page_size = 0; });
  create_fails("num_pages", [](auto& x) { x.num_pages = -3; });
  create_fails("ckv_dim", [](auto& x) { x.ckv_dim = 0; });
  create_fails("kpe_dim", [](auto& x) { x.kpe_dim = -64; });
  create_fails("dtype", [](auto& x) { x.dtype = DType::fp8_e4m3; });

  KVS_CREATE_OR_SKIP(plan, PagedMlaAppendPlan, cache.desc, device);
  MlaRows rows{Buffer(DType::bf16, 2 * (512 + 64), device), 2, 512, 64};
  rows.fused.fill_uniform(rng, -1, 1);
  Buffer bi = int_buffer({0, 1}, device), pos = int_buffer({5, 1}, device);
  const PagedMlaAppendArgs args{.ckv = rows.ckv(), .kpe = rows.kpe(), .batch_indices = bi.view({2}),
                                .positions = pos.view({2}), .cache = cache.view()};
  ASSERT_TRUE(plan->run(args, {}));
  auto pools = [&] {
    synchronize(device);
    cache.table.k.download();
    cache.kpe_pages.download();
    std::vector<double> all = cache.table.k.values(), kpe = cache.kpe_pages.values();
    all.insert(all.end(), kpe.begin(), kpe.end());
    return all;
  };
  auto rejected = [&](const std::string& name, auto mutate) {
    PagedMlaAppendArgs bad = args;
    mutate(bad);
    expect_rejected([&] { return plan->run(bad, {}); }, name, pools);
  };
  Buffer int3(DType::int32, 3, device);
  rejected("ckv", [&](auto& a) { a.ckv.shape[1] = 576; });
  rejected("ckv", [&](auto& a) { a.ckv.dtype = DType::f16; });
  rejected("kpe", [&](auto& a) { a.kpe.shape[0] = 3; });
  rejected("kpe", [&](auto& a) { a.kpe.data = nullptr; });
  rejected("batch_indices", [&](auto& a) { a.batch_indices = TensorView{}; });
  rejected("positions", [&](auto& a) { a.positions = int3.view({3}); });
  rejected("cache.ckv_pages", [&](auto& a) { a.cache.ckv_pages.shape[1] = ps + 1; });
  rejected("cache.kpe_pages", [&](auto& a) { a.cache.kpe_pages.strides[2] = 0; });
  rejected("cache.indptr", [&](auto& a) { a.cache.indptr = TensorView{}; });
  rejected("cache.indices", [&](auto& a) { a.cache.indices.dtype = DType::f32; });
  rejected("cache.last_page_len", [&](auto& a) { a.cache.last_page_len = int3.view({3}); });
  if (device.is_cpu()) {  // host memory: contents are checked too
    Buffer b_high = int_buffer({0, 2}, device), p_past = int_buffer({6, 1}, device), p_neg = int_buffer({5, -1}, device);
    rejected("batch_indices", [&](auto& a) { a.batch_indices = b_high.view({2}); });
    rejected("positions", [&](auto& a) { a.positions = p_past.view({2}); });
    rejected("positions", [&](auto& a) { a.positions = p_neg.view({2}); });
    std::vector<std::int32_t> bad_pages = cache.table.indices, bad_last = cache.table.last_page_len;
    bad_pages[0] = -1;
    bad_last[0] = 0;
    Buffer pages_buf = int_buffer(bad_pages, device), last_buf = int_buffer(bad_last, device);
    rejected("cache.indices",
             [&](auto& a) { a.cache.indices = pages_buf.view({static_cast<std::int64_t>(bad_pages.size())}); });
    rejected("cache.last_page_len", [&](auto& a) { a.cache.last_page_len = last_buf.view({2}); });
  } else {  // device memory: a row out of range is skipped, nothing written (kv_cache.hpp)
    Buffer b_bad = int_buffer({2, -1}, device), p_bad = int_buffer({6, -1}, device);
    std::vector<std::int32_t> bad_pages = cache.table.indices;
    for (auto& page : bad_pages) page = page % 2 ? -1 : static_cast<std::int32_t>(cache.desc.num_pages);
    Buffer pages_buf = int_buffer(bad_pages, device);
    const std::vector<double> before = pools();
    PagedMlaAppendArgs bad = args;
    bad.batch_indices = b_bad.view({2});
    ASSERT_TRUE(plan->run(bad, {}));
    bad = args;
    bad.positions = p_bad.view({2});
    ASSERT_TRUE(plan->run(bad, {}));
    bad = args;
    bad.cache.indices = pages_buf.view({static_cast<std::int64_t>(bad_pages.size())});
    ASSERT_TRUE(plan->run(bad, {}));
    EXPECT_EQ(pools(), before);
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, PagedMlaAppendTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
