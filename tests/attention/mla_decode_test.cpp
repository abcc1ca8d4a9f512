// BatchPagedMlaDecode against the fp64 oracle on every test device: the
// absorbed MLA form is attention with one KV head whose keys are [ckv | kpe]
// and whose values are ckv, so the oracle is oracle::attention over those
// concatenations (nothing decompressed). Pages in random order.
#include <cmath>

#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"
#include "kvserve/mla.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"
#if KVSERVE_TEST_CUDA
#include "harness/cuda.hpp"
#endif

namespace kvserve::test {
namespace {

struct MlaCase {
  DType dtype;
  int heads, page_size, ckv_dim, kpe_dim;
  std::vector<std::int64_t> lens;
  int kv_split_tokens = 0;
};

void run_case(const MlaCase& c, Device device) {
  SCOPED_TRACE(std::string(name_of(c.dtype)) + " heads=" + std::to_string(c.heads) + " page=" +
               std::to_string(c.page_size) + " ckv=" + std::to_string(c.ckv_dim) + " kpe=" +
               std::to_string(c.kpe_dim) + " split=" + std::to_string(c.kv_split_tokens) + " on " + device.to_string());
  auto rng = make_rng();
  const std::int64_t batch = static_cast<std::int64_t>(c.lens.size());
  const int h = c.heads, ckv = c.ckv_dim, kpe = c.kpe_dim;
  MlaCache cache = make_mla_cache(rng, c.dtype, c.page_size, ckv, kpe, c.lens, device);
  const float sm_scale = 1.f / std::sqrt(192.f);  // DeepSeek-V3's, unrelated to the widths
  const BatchPagedMlaDecodeDesc desc{.max_batch = static_cast<int>(batch) + 1, .num_heads = h, .cache = cache.desc,
                                     .sm_scale = sm_scale, .kv_split_tokens = c.kv_split_tokens};
  KVS_CREATE_OR_SKIP(plan, BatchPagedMlaDecodePlan, desc, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  ASSERT_TRUE(plan->prepare(cache.table.lengths(), workspace_of(ws), {}));

  Buffer q_nope(c.dtype, batch * h * ckv, device), q_pe(c.dtype, batch * h * kpe, device),
      out(c.dtype, batch * h * ckv, device), lse(DType::f32, batch * h, device);
  q_nope.fill_uniform(rng, -2, 2);
  q_pe.fill_uniform(rng, -2, 2);
  expect_nonzero(q_nope.values(), "q_nope");
  expect_nonzero(q_pe.values(), "q_pe");
  expect_nonzero(cache.kpe_pages.values(), "kpe pool");
  out.poison();
  lse.poison();
  const Status s = plan->run({.q_nope = q_nope.view({batch, h, ckv}), .q_pe = q_pe.view({batch, h, kpe}),
                              .cache = cache.view(), .out = out.view({batch, h, ckv}), .lse = lse.view({batch, h})},
                             workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();

  const oracle::AttentionSpec spec{.num_qo_heads = h, .num_kv_heads = 1, .head_dim = ckv + kpe, .head_dim_v = ckv,
                                   .sm_scale = sm_scale, .causal = true};
  ReferenceAttention ref;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<double> q;  // [1, h, ckv + kpe]
    for (int head = 0; head < h; ++head) {
      const std::vector<double> nope = slice(q_nope, (b * h + head) * ckv, ckv), pe = slice(q_pe, (b * h + head) * kpe, kpe);
      q.insert(q.end(), nope.begin(), nope.end());
      q.insert(q.end(), pe.begin(), pe.end());
    }
    ref.add(spec, q, cache.keys(b), cache.table.keys(b), 1, c.lens[b]);
  }
  expect_attention(out, lse, ref);
}

class BatchPagedMlaDecodeTest : public DeviceTest {};

TEST_P(BatchPagedMlaDecodeTest, DtypesAndPageSizes) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int page : {1, 16, 64})
      // A one-token request, an empty one, a full last page, a longer one.
      run_case({t, 16, page, 512, 64, {1, 0, page, 3 * page + 5, 150}}, GetParam());
}

TEST_P(BatchPagedMlaDecodeTest, HeadCountsAndWidths) {
  run_case({DType::bf16, 128, 16, 512, 64, {300, 7}}, GetParam());  // DeepSeek-V3's decode shape
  run_case({DType::bf16, 64, 32, 512, 64, {1000}}, GetParam());
  run_case({DType::f16, 8, 8, 256, 32, {40, 1, 90}}, GetParam());
}

TEST_P(BatchPagedMlaDecodeTest, FixedSplitsGiveTheSameResult) {
  run_case({DType::bf16, 16, 16, 512, 64, {700, 33, 0, 256}, 64}, GetParam());
}

TEST_P(BatchPagedMlaDecodeTest, ValidationNamesEveryFieldAndArgument) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int h = 16, ckv = 512, kpe = 64;
  MlaCache cache = make_mla_cache(rng, DType::bf16, 4, ckv, kpe, {6, 2}, device);
  const BatchPagedMlaDecodeDesc good{.max_batch = 2, .num_heads = h, .cache = cache.desc, .sm_scale = 0.1f};
  auto create_fails = [&](const std::string& field, auto mutate) {
    BatchPagedMlaDecodeDesc bad = good;
    mutate(bad);
    expect_rejected(BatchPagedMlaDecodePlan::create(bad, device).status(), field);
  };
  create_fails("max_batch", [](auto& x) { x.max_batch = 0; });
  create_fails("num_heads", [](auto& x) { x.num_heads = -1; });
  create_fails("cache.page_size", [](auto& x) { x.cache.page_size = 0; });
  create_fails("cache.num_pages", [](auto& x) { x.cache.num_pages = -1; });
  create_fails("cache.ckv_dim", [](auto& x) { x.cache.ckv_dim = 0; });
  create_fails("cache.kpe_dim", [](auto& x) { x.cache.kpe_dim = -64; });
  create_fails("cache.dtype", [](auto& x) { x.cache.dtype = DType::fp8_e4m3; });
  create_fails("sm_scale", [](auto& x) { x.sm_scale = 0.f; });
  create_fails("sm_scale", [](auto& x) { x.sm_scale = NAN; });
  create_fails("kv_split_tokens", [](auto& x) { x.kv_split_tokens = -1; });

  KVS_CREATE_OR_SKIP(plan, BatchPagedMlaDecodePlan, good, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  const std::vector<std::int32_t> three_indptr = {0, 1, 1, 1}, three_last = {1, 1, 1};
  EXPECT_FALSE(plan->prepare({three_indptr, three_last}, workspace_of(ws), {})) << "3 requests over max_batch 2";
  ASSERT_TRUE(plan->prepare(cache.table.lengths(), workspace_of(ws), {}));
  Buffer q_nope(DType::bf16, 2 * h * ckv, device), q_pe(DType::bf16, 2 * h * kpe, device),
      out(DType::bf16, 2 * h * ckv, device), lse(DType::f32, 2 * h, device);
  q_nope.fill_uniform(rng, -1, 1);
  q_pe.fill_uniform(rng, -1, 1);
  const BatchPagedMlaDecodeArgs args{.q_nope = q_nope.view({2, h, ckv}), .q_pe = q_pe.view({2, h, kpe}),
                                     .cache = cache.view(), .out = out.view({2, h, ckv}), .lse = lse.view({2, h})};
  ASSERT_TRUE(plan->run(args, workspace_of(ws), {}));
  auto rejected = [&](const std::string& name, auto mutate) {
    BatchPagedMlaDecodeArgs bad = args;
    mutate(bad);
    out.poison();
    lse.poison();
    expect_rejected(plan->run(bad, workspace_of(ws), {}), name);
    EXPECT_TRUE(still_poisoned(out)) << "a refused run wrote out";
    EXPECT_TRUE(still_poisoned(lse)) << "a refused run wrote lse";
  };
  Buffer int3(DType::int32, 3, device);
  rejected("q_nope", [&](auto& a) { a.q_nope.shape[2] = ckv + kpe; });
  rejected("q_nope", [&](auto& a) { a.q_nope.dtype = DType::f16; });
  rejected("q_nope", [&](auto& a) { a.q_nope.shape[0] = 1; a.q_pe.shape[0] = 1; a.out.shape[0] = 1; a.lse.shape[0] = 1; });
  rejected("q_pe", [&](auto& a) { a.q_pe.shape[1] = h / 2; });
  rejected("q_pe", [&](auto& a) { a.q_pe = TensorView{}; });
  rejected("cache.ckv_pages", [&](auto& a) { a.cache.ckv_pages.shape[2] = ckv / 2; });
  rejected("cache.kpe_pages", [&](auto& a) { a.cache.kpe_pages.dtype = DType::f32; });
  rejected("cache.indptr", [&](auto& a) { a.cache.indptr = int3.view({2}); });
  rejected("cache.last_page_len", [&](auto& a) { a.cache.last_page_len = int3.view({3}); });
  rejected("out", [&](auto& a) { a.out.shape[2] = kpe; });
  rejected("lse", [&](auto& a) { a.lse.dtype = DType::bf16; });
  if (device.is_cpu()) {  // host memory: the page table's contents are checked too
    std::vector<std::int32_t> bad_pages = cache.table.indices;
    bad_pages[0] = static_cast<std::int32_t>(cache.desc.num_pages);
    Buffer pages_buf = int_buffer(bad_pages, device);
    rejected("cache.indices", [&](auto& a) { a.cache.indices = pages_buf.view({static_cast<std::int64_t>(bad_pages.size())}); });
  }
}

#if KVSERVE_TEST_CUDA
// A split request, a one-slice one and an empty one, captured in a graph:
// the replays write what the eager run wrote, bit for bit.
TEST(CudaMlaDecode, GraphReplayEqualsEagerBitForBit) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  const int h = 128, ckv = 512, kpe = 64;
  const std::vector<std::int64_t> lens = {3000, 40, 0, 513};
  const std::int64_t batch = static_cast<std::int64_t>(lens.size());
  MlaCache cache = make_mla_cache(rng, DType::bf16, 64, ckv, kpe, lens, kGpu);
  const BatchPagedMlaDecodeDesc desc{.max_batch = static_cast<int>(batch), .num_heads = h, .cache = cache.desc,
                                     .sm_scale = 1.f / std::sqrt(192.f)};
  auto plan = BatchPagedMlaDecodePlan::create(desc, kGpu);
  ASSERT_TRUE(plan) << plan.status().to_string();
  DeviceMemory ws(kGpu, plan->workspace_bytes());
  Buffer q_nope(DType::bf16, batch * h * ckv, kGpu), q_pe(DType::bf16, batch * h * kpe, kGpu),
      out(DType::bf16, batch * h * ckv, kGpu), lse(DType::f32, batch * h, kGpu);
  q_nope.fill_uniform(rng, -2, 2);
  q_pe.fill_uniform(rng, -2, 2);
  out.poison();
  lse.poison();
  const BatchPagedMlaDecodeArgs args{.q_nope = q_nope.view({batch, h, ckv}), .q_pe = q_pe.view({batch, h, kpe}),
                                     .cache = cache.view(), .out = out.view({batch, h, ckv}),
                                     .lse = lse.view({batch, h})};
  TestStream stream;
  ASSERT_TRUE(plan->prepare(cache.table.lengths(), workspace_of(ws), stream.handle()));
  ASSERT_TRUE(plan->run(args, workspace_of(ws), stream.handle()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  const auto eager_out = device_bytes(out), eager_lse = device_bytes(lse);

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  KVS_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  const Status captured = plan->run(args, workspace_of(ws), stream.handle());
  KVS_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  ASSERT_TRUE(captured) << captured.to_string();
  KVS_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  out.poison();
  lse.poison();
  for (int i = 0; i < 3; ++i) KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  EXPECT_EQ(device_bytes(out), eager_out);
  EXPECT_EQ(device_bytes(lse), eager_lse);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}
#endif

INSTANTIATE_TEST_SUITE_P(Devices, BatchPagedMlaDecodeTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
