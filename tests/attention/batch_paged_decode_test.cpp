// BatchPagedDecode against the fp64 oracle on every test device.
#include <cmath>

#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"
#if KVSERVE_TEST_CUDA
#include "cuda/registry/kernel_rows.hpp"
#endif
#include "kvserve/attention.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

struct DecodeCase {
  DType kv_dtype, q_dtype;
  int head_dim, num_kv_heads, group, page_size;
  KvLayout layout;
  std::vector<std::int64_t> lens;
  float soft_cap = 0;
  int window_left = -1;
  int kv_split_tokens = 0;
  std::vector<float> k_scale = {}, v_scale = {};
};

void run_case(const DecodeCase& c, Device device) {
  SCOPED_TRACE("kv=" + std::string(name_of(c.kv_dtype)) + " q=" + std::string(name_of(c.q_dtype)) +
               " d=" + std::to_string(c.head_dim) + " hkv=" + std::to_string(c.num_kv_heads) +
               " group=" + std::to_string(c.group) + " page=" + std::to_string(c.page_size) + " " +
               std::string(name_of(c.layout)) + " on " + device.to_string());
  auto rng = make_rng();
  const std::int64_t batch = static_cast<std::int64_t>(c.lens.size());
  const int hq = c.num_kv_heads * c.group, d = c.head_dim;
  PagedKvDesc kvd{.page_size = c.page_size, .num_kv_heads = c.num_kv_heads, .head_dim = d, .dtype = c.kv_dtype,
                  .layout = c.layout, .k_scale = c.k_scale, .v_scale = c.v_scale};
  PagedCache cache = make_paged_cache(rng, kvd, c.lens, device);
  BatchPagedDecodeDesc desc{.max_batch = static_cast<int>(batch) + 2, .num_qo_heads = hq, .kv = cache.desc,
                            .q_dtype = c.q_dtype,
                            .attn = {.logits_soft_cap = c.soft_cap, .window_left = c.window_left},
                            .kv_split_tokens = c.kv_split_tokens};
  KVS_CREATE_OR_SKIP(plan, BatchPagedDecodePlan, desc, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  ASSERT_TRUE(plan->prepare(cache.lengths(), workspace_of(ws), {}));

  Buffer q(c.q_dtype, batch * hq * d, device), out(c.q_dtype, batch * hq * d, device),
      lse(DType::f32, batch * hq, device);
  q.fill_uniform(rng, -2, 2);
  expect_nonzero(q.values(), "q");
  expect_nonzero(cache.k.values(), "k pool");
  out.poison();
  lse.poison();
  Status s = plan->run({.q = q.view({batch, hq, d}), .kv = cache.view(), .out = out.view({batch, hq, d}),
                        .lse = lse.view({batch, hq})},
                       workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();

  oracle::AttentionSpec spec{.num_qo_heads = hq, .num_kv_heads = c.num_kv_heads, .head_dim = d, .head_dim_v = d,
                             .sm_scale = 1.0 / std::sqrt(double(d)), .soft_cap = c.soft_cap,
                             .window_left = c.window_left, .causal = true};
  ReferenceAttention ref;
  for (std::int64_t b = 0; b < batch; ++b)
    ref.add(spec, slice(q, b * hq * d, hq * d), cache.keys(b), cache.values(b), 1, c.lens[b]);
  expect_attention(out, lse, ref);
}

class BatchPagedDecodeTest : public DeviceTest {};

TEST_P(BatchPagedDecodeTest, DtypesAndHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {64, 128, 256})
      run_case({t, t, d, 2, 4, 16, KvLayout::NHD, {1, 17, 100, 0, 16}}, GetParam());
}

#if KVSERVE_TEST_CUDA
// Every paged-decode row the CUDA backend compiles (kernel_rows.hpp), on
// every device: a row added there is tested without another edit.
TEST_P(BatchPagedDecodeTest, EveryCompiledRow) {
  namespace cuda = ::kvserve::detail::cuda;
  for (const cuda::KernelRow& r : cuda::kKernelRows)
    if (r.family == cuda::Family::paged_decode)
      run_case({r.kv, r.q, r.head_dim, 2, 4, 16, KvLayout::NHD, {1, 17, 100, 0, 16}}, GetParam());
}
#endif

TEST_P(BatchPagedDecodeTest, Fp8CacheWithScales) {
  run_case({DType::fp8_e4m3, DType::bf16, 128, 2, 4, 16, KvLayout::NHD, {33, 70, 5}, 0, -1, 0, {0.5f}, {2.0f}},
           GetParam());
  run_case({DType::fp8_e5m2, DType::f16, 64, 4, 2, 8, KvLayout::HND, {9, 64}, 0, -1, 0, {0.25f, 0.5f, 1.f, 2.f},
            {1.5f, 0.75f, 1.f, 3.f}},
           GetParam());
  run_case({DType::fp8_e4m3, DType::f16, 256, 1, 8, 32, KvLayout::NHD, {200}}, GetParam());
}

TEST_P(BatchPagedDecodeTest, GqaRatiosAndLayouts) {
  for (int group : {1, 4, 5, 8, 16})
    for (KvLayout layout : {KvLayout::NHD, KvLayout::HND})
      run_case({DType::bf16, DType::bf16, 128, 2, group, 16, layout, {37, 1, 64}}, GetParam());
}

TEST_P(BatchPagedDecodeTest, PageSizes) {
  for (int page : {1, 7, 16, 64})
    run_case({DType::f16, DType::f16, 128, 2, 4, page, KvLayout::NHD, {0, 1, page, 3 * page + 1, 129}}, GetParam());
}

TEST_P(BatchPagedDecodeTest, SoftCapAndSlidingWindow) {
  run_case({DType::bf16, DType::bf16, 128, 2, 4, 16, KvLayout::NHD, {50, 300}, 30.f, -1}, GetParam());
  run_case({DType::bf16, DType::bf16, 128, 2, 4, 16, KvLayout::HND, {50, 300, 3}, 0.f, 20}, GetParam());
  run_case({DType::f32, DType::f32, 64, 1, 4, 16, KvLayout::NHD, {40, 1}, 5.f, 0}, GetParam());
}

TEST_P(BatchPagedDecodeTest, FixedSplitSize) {
  run_case({DType::bf16, DType::bf16, 128, 2, 4, 16, KvLayout::NHD, {1000, 3, 257}, 0, -1, 64}, GetParam());
}

TEST_P(BatchPagedDecodeTest, EmptyRequestWritesZeroAndMinusInf) {
  run_case({DType::f32, DType::f32, 64, 1, 2, 16, KvLayout::NHD, {0, 0}}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Devices, BatchPagedDecodeTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
