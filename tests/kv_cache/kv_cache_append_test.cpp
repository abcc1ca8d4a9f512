// KvCacheAppend (contiguous cache) against the fp64 oracle on every test
// device, head-major and sequence-major cache layouts, and its validation.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kv_cache/kv_cache_test_util.hpp"
#include "kvserve/kv_cache.hpp"

namespace kvserve::test {
namespace {

// A contiguous cache [B, H, L, D] as a view of memory laid out either
// head-major [B, H, L, D] or sequence-major [B, L, H, D].
struct ContiguousCache {
  std::int64_t batch, max_len;
  int heads, dim;
  bool seq_major;
  Buffer k, v;
  TensorView view(const Buffer& b) const {
    if (!seq_major) return b.view({batch, heads, max_len, dim});
    return b.view_strided({batch, heads, max_len, dim}, {max_len * heads * dim, dim, heads * dim, 1});
  }
  std::int64_t offset(std::int64_t b, int h, std::int64_t l) const {
    return seq_major ? ((b * max_len + l) * heads + h) * dim : ((b * heads + h) * max_len + l) * dim;
  }
  // The buffer's host copy in logical [B, H, L, D] order.
  std::vector<double> logical(const Buffer& buf) const {
    std::vector<double> out;
    for (std::int64_t b = 0; b < batch; ++b)
      for (int h = 0; h < heads; ++h)
        for (std::int64_t l = 0; l < max_len; ++l)
          for (int x = 0; x < dim; ++x) out.push_back(buf.get(offset(b, h, l) + x));
    return out;
  }
};

ContiguousCache make_cache(std::mt19937_64& rng, DType dtype, std::int64_t batch, int heads, std::int64_t max_len,
                           int dim, bool seq_major, Device device) {
  ContiguousCache c{batch, max_len, heads, dim, seq_major, Buffer(dtype, batch * heads * max_len * dim, device),
                    Buffer(dtype, batch * heads * max_len * dim, device)};
  c.k.fill_uniform(rng, -1, 1);
  c.v.fill_uniform(rng, -1, 1);
  return c;
}

struct CacheCase {
  DType dtype;
  int heads, dim;
  std::int64_t batch, max_len;
  bool seq_major;
  // With batch_indices: rows_per_request new rows for every request at random
  // distinct positions, shuffled. Without: one row for each of the first
  // rows_per_request requests, at a random position.
  bool with_batch_indices;
  std::int64_t rows_per_request;
};

oracle::Targets make_targets(std::mt19937_64& rng, const CacheCase& c) {
  oracle::Targets t;
  if (!c.with_batch_indices) {
    for (std::int64_t i = 0; i < c.rows_per_request; ++i) {
      t.batch.push_back(static_cast<std::int32_t>(i));
      t.position.push_back(static_cast<std::int32_t>(std::uniform_int_distribution<std::int64_t>(0, c.max_len - 1)(rng)));
    }
    return t;
  }
  std::vector<std::int32_t> slots(static_cast<std::size_t>(c.max_len));
  std::vector<std::pair<std::int32_t, std::int32_t>> rows;
  for (std::int64_t b = 0; b < c.batch; ++b) {
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
    for (std::int64_t j = 0; j < c.rows_per_request; ++j) rows.emplace_back(static_cast<std::int32_t>(b), slots[j]);
  }
  std::shuffle(rows.begin(), rows.end(), rng);
  for (auto [b, p] : rows) {
    t.batch.push_back(b);
    t.position.push_back(p);
  }
  return t;
}

void run_case(const CacheCase& c, Device device) {
  SCOPED_TRACE(std::string(name_of(c.dtype)) + " H=" + std::to_string(c.heads) + " D=" + std::to_string(c.dim) +
               " B=" + std::to_string(c.batch) + " L=" + std::to_string(c.max_len) +
               (c.seq_major ? " seq-major" : " head-major") + (c.with_batch_indices ? " indexed" : " row=batch") +
               " on " + device.to_string());
  auto rng = make_rng();
  KVS_CREATE_OR_SKIP(plan, KvCacheAppendPlan, (KvCacheAppendDesc{c.heads, c.dim, c.dtype}), device);
  ContiguousCache cache = make_cache(rng, c.dtype, c.batch, c.heads, c.max_len, c.dim, c.seq_major, device);
  const oracle::Targets targets = make_targets(rng, c);
  const std::int64_t n = static_cast<std::int64_t>(targets.batch.size());
  NewRows rows = make_rows(rng, c.dtype, n, c.heads, c.dim, device);
  if (n > 0) expect_nonzero(rows.fused.values(), "new rows");

  std::vector<double> want_k = cache.logical(cache.k), want_v = cache.logical(cache.v);
  oracle::contiguous_append(c.heads, c.max_len, c.dim, targets, rows.k_values(), &want_k);
  oracle::contiguous_append(c.heads, c.max_len, c.dim, targets, rows.v_values(), &want_v);
  for (std::int64_t i = 0; i < n; ++i)
    for (int h = 0; h < c.heads; ++h)
      for (int x = 0; x < c.dim; ++x) {
        cache.k.set(cache.offset(targets.batch[i], h, targets.position[i]) + x, NAN);
        cache.v.set(cache.offset(targets.batch[i], h, targets.position[i]) + x, NAN);
      }
  cache.k.upload();
  cache.v.upload();

  Buffer bi = int_buffer(targets.batch, device), pos = int_buffer(targets.position, device);
  KvCacheAppendArgs args{.k = rows.k(), .v = rows.v(), .positions = pos.view({n}), .k_cache = cache.view(cache.k),
                         .v_cache = cache.view(cache.v)};
  if (c.with_batch_indices) args.batch_indices = bi.view({n});
  const Status s = plan->run(args, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  cache.k.download();
  cache.v.download();
  expect_close(cache.logical(cache.k), want_k, c.dtype, "k_cache");
  expect_close(cache.logical(cache.v), want_v, c.dtype, "v_cache");
}

class KvCacheAppendTest : public DeviceTest {};

TEST_P(KvCacheAppendTest, DtypesAndLayouts) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (bool seq_major : {false, true})
      run_case({t, 4, 128, 5, 37, seq_major, true, 3}, GetParam());
}

TEST_P(KvCacheAppendTest, DecodeStepWithoutBatchIndices) {
  run_case({DType::bf16, 8, 64, 6, 100, true, false, 6}, GetParam());
  run_case({DType::f16, 2, 256, 4, 9, false, false, 3}, GetParam());  // fewer rows than batch rows
}

TEST_P(KvCacheAppendTest, EdgeShapes) {
  run_case({DType::f32, 1, 16, 1, 1, false, true, 1}, GetParam());    // L_max 1
  run_case({DType::bf16, 3, 96, 4, 16, true, true, 16}, GetParam());  // every slot rewritten
  run_case({DType::f16, 2, 64, 3, 8, false, true, 0}, GetParam());    // no rows
}

TEST_P(KvCacheAppendTest, ValidationNamesEveryFieldAndArgument) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int h = 2, d = 64;
  const std::int64_t batch = 3, max_len = 10;
  const KvCacheAppendDesc good{h, d, DType::f16};
  auto create_fails = [&](const std::string& field, auto mutate) {
    KvCacheAppendDesc bad = good;
    mutate(bad);
    expect_rejected(KvCacheAppendPlan::create(bad, device).status(), field);
  };
  create_fails("num_kv_heads", [](auto& x) { x.num_kv_heads = 0; });
  create_fails("head_dim", [](auto& x) { x.head_dim = 60; });
  create_fails("dtype", [](auto& x) { x.dtype = DType::fp8_e5m2; });

  KVS_CREATE_OR_SKIP(plan, KvCacheAppendPlan, good, device);
  ContiguousCache cache = make_cache(rng, DType::f16, batch, h, max_len, d, false, device);
  NewRows rows = make_rows(rng, DType::f16, 2, h, d, device);
  Buffer bi = int_buffer({2, 0}, device), pos = int_buffer({9, 0}, device);
  const KvCacheAppendArgs args{.k = rows.k(), .v = rows.v(), .batch_indices = bi.view({2}), .positions = pos.view({2}),
                               .k_cache = cache.view(cache.k), .v_cache = cache.view(cache.v)};
  ASSERT_TRUE(plan->run(args, {}));
  auto caches = [&] { return downloaded_kv(device, cache.k, cache.v); };
  auto rejected = [&](const std::string& name, auto mutate) {
    KvCacheAppendArgs bad = args;
    mutate(bad);
    expect_rejected([&] { return plan->run(bad, {}); }, name, caches);
  };
  Buffer int3(DType::int32, 3, device);
  NewRows four = make_rows(rng, DType::f16, 4, h, d, device);
  Buffer pos4 = int_buffer({0, 1, 2, 3}, device);
  rejected("k", [&](auto& a) { a.k.dtype = DType::bf16; });
  rejected("k", [&](auto& a) {  // 4 rows for 3 batch rows and no batch_indices
    a.k = four.k();
    a.v = four.v();
    a.positions = pos4.view({4});
    a.batch_indices = TensorView{};
  });
  rejected("v", [&](auto& a) { a.v.shape[2] = d / 2; });
  rejected("batch_indices", [&](auto& a) { a.batch_indices = int3.view({3}); });
  rejected("positions", [&](auto& a) { a.positions = TensorView{}; });
  rejected("positions", [&](auto& a) { a.positions.dtype = DType::f32; });
  rejected("k_cache", [&](auto& a) { a.k_cache.shape[1] = h + 1; });
  rejected("k_cache", [&](auto& a) { a.k_cache.strides[1] = 0; });  // two heads in one place
  rejected("v_cache", [&](auto& a) { a.v_cache.shape[2] = max_len - 1; });
  rejected("v_cache", [&](auto& a) { a.v_cache.device = device.is_cpu() ? Device::cuda(0) : Device::cpu(); });
  if (device.is_cpu()) {  // host memory: contents are checked too
    Buffer b_high = int_buffer({3, 0}, device), b_neg = int_buffer({0, -2}, device);
    Buffer p_past = int_buffer({10, 0}, device), p_neg = int_buffer({0, -1}, device);
    rejected("batch_indices", [&](auto& a) { a.batch_indices = b_high.view({2}); });
    rejected("batch_indices", [&](auto& a) { a.batch_indices = b_neg.view({2}); });
    rejected("positions", [&](auto& a) { a.positions = p_past.view({2}); });
    rejected("positions", [&](auto& a) { a.positions = p_neg.view({2}); });
  } else {  // device memory: a row out of range is skipped, nothing written (kv_cache.hpp)
    Buffer b_bad = int_buffer({3, -2}, device), p_bad = int_buffer({10, -1}, device);
    const std::vector<double> before = caches();
    KvCacheAppendArgs bad = args;
    bad.batch_indices = b_bad.view({2});
    ASSERT_TRUE(plan->run(bad, {}));
    bad = args;
    bad.positions = p_bad.view({2});
    ASSERT_TRUE(plan->run(bad, {}));
    EXPECT_EQ(caches(), before);
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, KvCacheAppendTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
