// PagedKvAppend against the fp64 oracle on every test device: decode and
// ragged mode, every cache dtype and layout, fp8 quantisation; the decode
// contract with BatchPagedDecode and the BlockManager; validation.
#include <cmath>

#include "kv_cache/kv_cache_test_util.hpp"
#include "kvserve/block_manager.hpp"
#include "kvserve/kv_cache.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

struct AppendCase {
  DType kv_dtype, row_dtype;
  int head_dim, num_kv_heads, page_size;
  KvLayout layout;
  AppendMode mode;
  std::vector<std::int64_t> old_lens;  // tokens before the append
  // Rows per request: 1 in decode mode (0 for a request without pages, a
  // padding row), any count in ragged mode.
  std::vector<std::int64_t> new_tokens;
  std::vector<float> k_scale = {}, v_scale = {};
};

// The descriptor's scales, one per head, for the oracle.
std::vector<double> per_head(const std::vector<float>& scales, int heads) {
  if (scales.empty()) return {};
  std::vector<double> out;
  for (int h = 0; h < heads; ++h) out.push_back(scales.size() == 1 ? scales[0] : scales[h]);
  return out;
}

void run_case(const AppendCase& c, Device device) {
  SCOPED_TRACE("kv=" + std::string(name_of(c.kv_dtype)) + " rows=" + std::string(name_of(c.row_dtype)) +
               " d=" + std::to_string(c.head_dim) + " hkv=" + std::to_string(c.num_kv_heads) +
               " page=" + std::to_string(c.page_size) + " " + std::string(name_of(c.layout)) + " " +
               std::string(name_of(c.mode)) + " on " + device.to_string());
  auto rng = make_rng();
  const int hkv = c.num_kv_heads, d = c.head_dim;
  std::vector<std::int64_t> lens = c.old_lens;
  for (std::size_t b = 0; b < lens.size(); ++b) lens[b] += c.new_tokens[b];
  // The page table counts the new tokens already: their slots are reserved.
  PagedCache cache = make_paged_cache(rng,
                                      {.page_size = c.page_size, .num_kv_heads = hkv, .head_dim = d,
                                       .dtype = c.kv_dtype, .layout = c.layout, .k_scale = c.k_scale,
                                       .v_scale = c.v_scale},
                                      lens, device);
  const bool decode = c.mode == AppendMode::decode;
  const oracle::Targets targets = decode ? oracle::decode_targets(cache.indptr, cache.last_page_len, c.page_size)
                                         : ragged_targets(rng, c.old_lens, c.new_tokens);
  const std::int64_t n = static_cast<std::int64_t>(targets.batch.size());
  PagedKvAppendDesc desc{.kv = cache.desc, .dtype = c.row_dtype, .mode = c.mode};
  KVS_CREATE_OR_SKIP(plan, PagedKvAppendPlan, desc, device);

  NewRows rows = make_rows(rng, c.row_dtype, n, hkv, d, device);
  if (n > 0) expect_nonzero(rows.fused.values(), "new rows");
  const oracle::PoolShape shape{cache.desc.num_pages, c.page_size, hkv, d, c.layout == KvLayout::HND};
  std::vector<double> want_k = cache.k.values(), want_v = cache.v.values();
  oracle::paged_append(shape, cache.indptr, cache.indices, targets, rows.k_values(), per_head(c.k_scale, hkv),
                       c.kv_dtype, &want_k);
  oracle::paged_append(shape, cache.indptr, cache.indices, targets, rows.v_values(), per_head(c.v_scale, hkv),
                       c.kv_dtype, &want_v);
  // Poison the target slots: a row that is not written fails.
  for (std::int64_t i = 0; i < n; ++i) {
    if (targets.batch[i] < 0) continue;
    for (int h = 0; h < hkv; ++h) {
      const std::int64_t at = oracle::paged_offset(shape, cache.indptr, cache.indices, targets.batch[i],
                                                   targets.position[i], h);
      for (int x = 0; x < d; ++x) {
        cache.k.set(at + x, NAN);
        cache.v.set(at + x, NAN);
      }
    }
  }
  cache.k.upload();
  cache.v.upload();

  Buffer batch_indices, positions;
  PagedKvAppendArgs args{.k = rows.k(), .v = rows.v(), .kv = cache.view()};
  if (!decode) {
    batch_indices = int_buffer(targets.batch, device);
    positions = int_buffer(targets.position, device);
    args.batch_indices = batch_indices.view({n});
    args.positions = positions.view({n});
  }
  const Status s = plan->run(args, {}, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  cache.k.download();
  cache.v.download();
  // The whole pools: written slots hold the new rows, every other slot is as before.
  expect_close(cache.k.values(), want_k, c.kv_dtype, "k_pages");
  expect_close(cache.v.values(), want_v, c.kv_dtype, "v_pages");
}

class PagedKvAppendTest : public DeviceTest {};

TEST_P(PagedKvAppendTest, DecodeDtypesAndLayouts) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (KvLayout layout : {KvLayout::NHD, KvLayout::HND})
      // kv_len after the append: 1 (a first page), 17, page full (16), 100, and a padding row with no pages.
      run_case({t, t, 128, 2, 16, layout, AppendMode::decode, {0, 16, 15, 99, 0}, {1, 1, 1, 1, 0}}, GetParam());
}

TEST_P(PagedKvAppendTest, DecodeHeadDimsAndPageSizes) {
  for (int d : {64, 96, 256})
    run_case({DType::bf16, DType::bf16, d, 4, 16, KvLayout::NHD, AppendMode::decode, {5, 31}, {1, 1}}, GetParam());
  for (int page : {1, 7, 64})
    run_case({DType::f16, DType::f16, 128, 1, page, KvLayout::HND, AppendMode::decode, {0, page - 1, page, 3 * page},
              {1, 1, 1, 1}},
             GetParam());
}

TEST_P(PagedKvAppendTest, RaggedPrefillChunks) {
  for (KvLayout layout : {KvLayout::NHD, KvLayout::HND})
    // A fresh prompt over several pages, a chunk continuing a partly filled
    // page, a request with no new rows, and one token.
    run_case({DType::bf16, DType::bf16, 128, 2, 16, layout, AppendMode::ragged, {0, 21, 40, 7}, {50, 30, 0, 1}},
             GetParam());
  run_case({DType::f32, DType::f32, 64, 3, 1, KvLayout::NHD, AppendMode::ragged, {2, 0}, {5, 9}}, GetParam());
  // No rows at all: a valid, empty launch.
  run_case({DType::f16, DType::f16, 64, 2, 8, KvLayout::NHD, AppendMode::ragged, {3, 9}, {0, 0}}, GetParam());
}

TEST_P(PagedKvAppendTest, Fp8QuantisesWithScales) {
  run_case({DType::fp8_e4m3, DType::bf16, 128, 2, 16, KvLayout::NHD, AppendMode::decode, {3, 16, 40}, {1, 1, 1},
            {0.5f}, {2.0f}},
           GetParam());
  run_case({DType::fp8_e5m2, DType::f16, 64, 4, 8, KvLayout::HND, AppendMode::ragged, {0, 5}, {20, 12},
            {0.25f, 0.5f, 1.f, 2.f}, {1.5f, 0.75f, 1.f, 3.f}},
           GetParam());
  run_case({DType::fp8_e4m3, DType::f32, 128, 2, 16, KvLayout::HND, AppendMode::ragged, {7}, {33}}, GetParam());
}

TEST_P(PagedKvAppendTest, Fp8SaturatesInsteadOfOverflowing) {
  // 2 / 2^-8 = 512 is beyond e4m3's 448: stored as 448, not NaN.
  run_case({DType::fp8_e4m3, DType::f32, 64, 1, 4, KvLayout::NHD, AppendMode::ragged, {0}, {6},
            {std::ldexp(1.f, -8)}, {std::ldexp(1.f, -8)}},
           GetParam());
}

// The decode contract: the BlockManager reserves each request's slot, the
// append writes the new token there, and BatchPagedDecode with the same page
// table attends over the whole sequence including it. Some requests share a
// prompt's pages, which must come through untouched.
void run_decode_contract(DType dtype, KvLayout layout, int page_size, Device device) {
  SCOPED_TRACE(std::string(name_of(dtype)) + " " + std::string(name_of(layout)) + " page=" +
               std::to_string(page_size) + " on " + device.to_string());
  auto rng = make_rng();
  const int hkv = 2, group = 4, hq = hkv * group, d = 128;
  auto bm = BlockManager::create(64, page_size);
  ASSERT_TRUE(bm);
  const SeqId prompt = *bm->add_sequence(2 * page_size + 3);
  const SeqId forked = *bm->fork(prompt), forked_longer = *bm->fork(prompt);
  ASSERT_TRUE(bm->append_tokens(forked_longer, 5));
  const std::vector<SeqId> seqs{prompt, forked, forked_longer, *bm->add_sequence(1), *bm->add_sequence(page_size),
                                *bm->add_sequence(0)};
  const std::int64_t batch = static_cast<std::int64_t>(seqs.size());

  // A cache view over the manager's tables; keys()/values() read the host
  // copy, so a copy of it is a snapshot.
  const PagedKvDesc kvd{.page_size = page_size, .num_pages = bm->num_pages(), .num_kv_heads = hkv, .head_dim = d,
                        .dtype = dtype, .layout = layout};
  const std::int64_t pool = kvd.num_pages * page_size * hkv * d;
  auto cache_of = [&](const PageTable& t, const Buffer& k, const Buffer& v) {
    PagedCache c{.desc = kvd, .k = k, .v = v, .indptr = t.indptr, .indices = t.indices,
                 .last_page_len = t.last_page_len};
    for (std::int64_t b = 0; b < t.batch(); ++b) {
      const std::int64_t pages = t.indptr[b + 1] - t.indptr[b];
      c.lens.push_back(pages == 0 ? 0 : (pages - 1) * page_size + t.last_page_len[b]);
    }
    c.indptr_dev = int_buffer(c.indptr, device);
    c.indices_dev = int_buffer(c.indices.empty() ? std::vector<std::int32_t>{0} : c.indices, device);
    c.last_dev = int_buffer(c.last_page_len, device);
    return c;
  };
  Buffer k_pool(dtype, pool, device), v_pool(dtype, pool, device);
  k_pool.fill_uniform(rng, -1, 1);
  v_pool.fill_uniform(rng, -1, 1);
  const PagedCache before = cache_of(*bm->page_table(seqs), k_pool, v_pool);

  ASSERT_TRUE(bm->append_tokens(seqs, 1));  // reserve this step's slots
  PagedCache after = cache_of(*bm->page_table(seqs), k_pool, v_pool);
  NewRows rows = make_rows(rng, dtype, batch, hkv, d, device);
  Buffer q(dtype, batch * hq * d, device), out(dtype, batch * hq * d, device), lse(DType::f32, batch * hq, device);
  q.fill_uniform(rng, -2, 2);
  out.poison();
  lse.poison();

  KVS_CREATE_OR_SKIP(append, PagedKvAppendPlan, (PagedKvAppendDesc{.kv = kvd, .dtype = dtype}), device);
  KVS_CREATE_OR_SKIP(decode, BatchPagedDecodePlan,
                     (BatchPagedDecodeDesc{.max_batch = static_cast<int>(batch), .num_qo_heads = hq, .kv = kvd,
                                           .q_dtype = dtype}),
                     device);
  DeviceMemory ws(device, decode->workspace_bytes());
  ASSERT_TRUE(decode->prepare(after.lengths(), workspace_of(ws), {}));
  Status s = append->run({.k = rows.k(), .v = rows.v(), .kv = after.view()}, {});
  ASSERT_TRUE(s) << s.to_string();
  s = decode->run({.q = q.view({batch, hq, d}), .kv = after.view(), .out = out.view({batch, hq, d}),
                   .lse = lse.view({batch, hq})},
                  workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  out.download();
  lse.download();
  after.k.download();
  after.v.download();

  const oracle::AttentionSpec spec{.num_qo_heads = hq, .num_kv_heads = hkv, .head_dim = d, .head_dim_v = d,
                                   .sm_scale = 1.0 / std::sqrt(double(d)), .causal = true};
  const std::vector<double> new_k = rows.k_values(), new_v = rows.v_values();
  std::vector<double> want_out, want_lse;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<double> keys = before.keys(b), values = before.values(b);
    // Every token that was there is still there (shared prompt pages included).
    const std::vector<double> keys_now = after.keys(b);
    EXPECT_TRUE(std::equal(keys.begin(), keys.end(), keys_now.begin())) << "request " << b << "'s old keys changed";
    keys.insert(keys.end(), new_k.begin() + b * hkv * d, new_k.begin() + (b + 1) * hkv * d);
    values.insert(values.end(), new_v.begin() + b * hkv * d, new_v.begin() + (b + 1) * hkv * d);
    std::vector<double> qb(static_cast<std::size_t>(hq * d)), o, l;
    for (std::int64_t i = 0; i < hq * d; ++i) qb[i] = q.get(b * hq * d + i);
    oracle::attention(spec, qb, keys, values, 1, after.lens[b], &o, &l);
    want_out.insert(want_out.end(), o.begin(), o.end());
    want_lse.insert(want_lse.end(), l.begin(), l.end());
  }
  expect_close(out.values(), want_out, dtype, "out");
  expect_close(lse.values(), want_lse, DType::f32, "lse");
}

TEST_P(PagedKvAppendTest, DecodeContractWithBlockManagerAndBatchPagedDecode) {
  run_decode_contract(DType::bf16, KvLayout::NHD, 16, GetParam());
  run_decode_contract(DType::f16, KvLayout::HND, 4, GetParam());
  run_decode_contract(DType::f32, KvLayout::NHD, 1, GetParam());
}

// ------------------------------------------------------------- validation --

TEST_P(PagedKvAppendTest, ValidationNamesEveryFieldAndArgument) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int hkv = 2, d = 64, ps = 8;
  PagedCache cache = make_paged_cache(rng, {.page_size = ps, .num_kv_heads = hkv, .head_dim = d}, {10, 3}, device);
  const PagedKvAppendDesc good{.kv = cache.desc, .dtype = DType::bf16, .mode = AppendMode::ragged};

  auto create_fails = [&](const std::string& field, auto mutate) {
    PagedKvAppendDesc bad = good;
    mutate(bad);
    expect_rejected(PagedKvAppendPlan::create(bad, device).status(), field);
    expect_rejected(PagedKvAppendPlan::supports(bad, device), field);
  };
  create_fails("kv.page_size", [](auto& x) { x.kv.page_size = 0; });
  create_fails("kv.num_pages", [](auto& x) { x.kv.num_pages = 0; });
  create_fails("kv.num_kv_heads", [](auto& x) { x.kv.num_kv_heads = -1; });
  create_fails("kv.head_dim", [](auto& x) { x.kv.head_dim = 100; });
  create_fails("kv.dtype", [](auto& x) { x.kv.dtype = DType::int32; });
  create_fails("kv.layout", [](auto& x) { x.kv.layout = static_cast<KvLayout>(7); });
  create_fails("kv.k_scale", [](auto& x) { x.kv.k_scale = {0.5f}; });  // scales on a bf16 cache
  create_fails("kv.v_scale[0]", [](auto& x) {
    x.kv.dtype = DType::fp8_e4m3;
    x.kv.v_scale = {-1.f};
  });
  create_fails("dtype", [](auto& x) { x.dtype = DType::f16; });  // a bf16 cache takes bf16 rows
  create_fails("dtype", [](auto& x) {
    x.kv.dtype = DType::fp8_e5m2;
    x.dtype = DType::int32;
  });
  create_fails("mode", [](auto& x) { x.mode = static_cast<AppendMode>(9); });

  KVS_CREATE_OR_SKIP(plan, PagedKvAppendPlan, good, device);
  // Two rows of request 0 at positions 4 and 9 (kv_len 10).
  NewRows rows = make_rows(rng, DType::bf16, 2, hkv, d, device);
  Buffer bi = int_buffer({0, 0}, device), pos = int_buffer({4, 9}, device);
  const PagedKvAppendArgs args{.k = rows.k(), .v = rows.v(), .batch_indices = bi.view({2}), .positions = pos.view({2}),
                               .kv = cache.view()};
  ASSERT_TRUE(plan->run(args, {}));
  auto pools = [&] { return downloaded_kv(device, cache.k, cache.v); };
  auto rejected = [&](const std::string& name, auto mutate) {
    PagedKvAppendArgs bad = args;
    mutate(bad);
    expect_rejected([&] { return plan->run(bad, {}); }, name, pools);
  };
  Buffer f32_rows(DType::f32, 2 * hkv * d, device), int3(DType::int32, 3, device);
  rejected("k", [&](auto& a) { a.k = f32_rows.view({2, hkv, d}); });
  rejected("k", [&](auto& a) { a.k.data = nullptr; });
  rejected("k", [&](auto& a) { a.k.device = device.is_cpu() ? Device::cuda(0) : Device::cpu(); });
  rejected("v", [&](auto& a) { a.v.shape[1] = hkv + 1; });
  rejected("v", [&](auto& a) { a.v.strides[2] = 2; });
  rejected("batch_indices", [&](auto& a) { a.batch_indices = TensorView{}; });
  rejected("batch_indices", [&](auto& a) { a.batch_indices = int3.view({3}); });
  rejected("positions", [&](auto& a) { a.positions.dtype = DType::f32; });
  rejected("kv.k_pages", [&](auto& a) { a.kv.k_pages.shape[1] = ps + 1; });
  rejected("kv.v_pages", [&](auto& a) { a.kv.v_pages.dtype = DType::f16; });
  rejected("kv.indptr", [&](auto& a) { a.kv.indptr.dtype = DType::f32; });
  rejected("kv.indices", [&](auto& a) { a.kv.indices = TensorView{}; });
  rejected("kv.last_page_len", [&](auto& a) { a.kv.last_page_len = int3.view({3}); });

  if (device.is_cpu()) {  // host memory: contents are checked too
    Buffer b_high = int_buffer({0, 2}, device), b_neg = int_buffer({-1, 0}, device);
    Buffer p_past = int_buffer({4, 10}, device), p_neg = int_buffer({-1, 9}, device);
    Buffer p_short = int_buffer({4, 3}, device);  // request 1 has kv_len 3
    Buffer b_one = int_buffer({0, 1}, device);
    rejected("batch_indices", [&](auto& a) { a.batch_indices = b_high.view({2}); });
    rejected("batch_indices", [&](auto& a) { a.batch_indices = b_neg.view({2}); });
    rejected("positions", [&](auto& a) { a.positions = p_past.view({2}); });
    rejected("positions", [&](auto& a) { a.positions = p_neg.view({2}); });
    rejected("positions", [&](auto& a) {
      a.batch_indices = b_one.view({2});
      a.positions = p_short.view({2});
    });
    std::vector<std::int32_t> bad_pages = cache.indices, bad_last = cache.last_page_len, bad_indptr = cache.indptr;
    bad_pages.back() = static_cast<std::int32_t>(cache.desc.num_pages);
    bad_last[1] = ps + 1;
    bad_indptr[1] = bad_indptr[2] + 1;
    Buffer pages_buf = int_buffer(bad_pages, device), last_buf = int_buffer(bad_last, device),
           indptr_buf = int_buffer(bad_indptr, device);
    rejected("kv.indices", [&](auto& a) { a.kv.indices = pages_buf.view({static_cast<std::int64_t>(bad_pages.size())}); });
    rejected("kv.last_page_len", [&](auto& a) { a.kv.last_page_len = last_buf.view({2}); });
    rejected("kv.indptr", [&](auto& a) { a.kv.indptr = indptr_buf.view({3}); });
  }

  // Decode mode: one row per request, no row indices.
  KVS_CREATE_OR_SKIP(decode, PagedKvAppendPlan, (PagedKvAppendDesc{.kv = cache.desc, .dtype = DType::bf16}), device);
  const PagedKvAppendArgs decode_args{.k = rows.k(), .v = rows.v(), .kv = cache.view()};
  ASSERT_TRUE(decode->run(decode_args, {}));
  auto decode_rejected = [&](const std::string& name, auto mutate) {
    PagedKvAppendArgs bad = decode_args;
    mutate(bad);
    expect_rejected([&] { return decode->run(bad, {}); }, name, pools);
  };
  decode_rejected("batch_indices", [&](auto& a) { a.batch_indices = bi.view({2}); });
  decode_rejected("positions", [&](auto& a) { a.positions = pos.view({2}); });
  NewRows three = make_rows(rng, DType::bf16, 3, hkv, d, device);  // 3 rows for 2 requests
  decode_rejected("kv.indptr", [&](auto& a) {
    a.k = three.k();
    a.v = three.v();
  });
}

INSTANTIATE_TEST_SUITE_P(Devices, PagedKvAppendTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
