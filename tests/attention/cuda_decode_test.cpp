// What only the GPU has, for BatchPagedDecode: graph capture and replay,
// batch invariance of the fixed split, back-to-back launches, several streams,
// extreme length disparity, long requests, the device a plan is made for, and
// the arguments the vectorised kernel refuses. Every wait has a watchdog.
#include "harness/harness.hpp"
#include "kvserve/attention.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaDecode)
#else
#include <cmath>

#include "cuda/registry/registry.hpp"
#include "harness/cuda.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

// A decode problem on the GPU: cache, queries, outputs, plan and workspace.
struct DecodeSetup {
  PagedCache cache;
  BatchPagedDecodeDesc desc;
  Buffer q, out, lse;
  std::unique_ptr<BatchPagedDecodePlan> plan;
  std::unique_ptr<DeviceMemory> ws;
  std::int64_t batch = 0;
  int hq = 0, d = 0;

  BatchPagedDecodeArgs args() const {
    return {.q = q.view({batch, hq, d}), .kv = cache.view(), .out = out.view({batch, hq, d}),
            .lse = lse.view({batch, hq})};
  }
  Workspace workspace() const { return workspace_of(*ws); }
};

std::unique_ptr<DecodeSetup> make_setup(std::mt19937_64& rng, const std::vector<std::int64_t>& lens, int hkv,
                                        int group, int kv_split_tokens = 0, DType dtype = DType::bf16,
                                        int head_dim = 128, int page_size = 16) {
  auto s = std::make_unique<DecodeSetup>();
  s->batch = static_cast<std::int64_t>(lens.size());
  s->hq = hkv * group;
  s->d = head_dim;
  PagedKvDesc kvd{.page_size = page_size, .num_kv_heads = hkv, .head_dim = head_dim, .dtype = dtype};
  s->cache = make_paged_cache(rng, kvd, lens, kGpu);
  s->desc = {.max_batch = static_cast<int>(s->batch), .num_qo_heads = s->hq, .kv = s->cache.desc, .q_dtype = dtype,
             .kv_split_tokens = kv_split_tokens};
  auto plan = BatchPagedDecodePlan::create(s->desc, kGpu);
  EXPECT_TRUE(plan) << plan.status().to_string();
  if (!plan) return nullptr;
  s->plan = std::make_unique<BatchPagedDecodePlan>(std::move(*plan));
  s->ws = std::make_unique<DeviceMemory>(kGpu, s->plan->workspace_bytes());
  s->q = Buffer(dtype, s->batch * s->hq * head_dim, kGpu);
  s->out = Buffer(dtype, s->batch * s->hq * head_dim, kGpu);
  s->lse = Buffer(DType::f32, s->batch * s->hq, kGpu);
  s->q.fill_uniform(rng, -2, 2);
  s->out.poison();
  s->lse.poison();
  return s;
}

// Output and lse of request b against the fp64 oracle.
void expect_matches_oracle(DecodeSetup& s, std::int64_t b) {
  s.out.download();
  s.lse.download();
  oracle::AttentionSpec spec{.num_qo_heads = s.hq, .num_kv_heads = s.cache.desc.num_kv_heads, .head_dim = s.d,
                             .head_dim_v = s.d, .sm_scale = 1.0 / std::sqrt(double(s.d)), .causal = true};
  const std::int64_t row = s.hq * s.d;
  std::vector<double> qb(static_cast<std::size_t>(row)), got(static_cast<std::size_t>(row)), got_lse(s.hq), ref, ref_lse;
  for (std::int64_t i = 0; i < row; ++i) qb[i] = s.q.get(b * row + i), got[i] = s.out.get(b * row + i);
  for (int h = 0; h < s.hq; ++h) got_lse[h] = s.lse.get(b * s.hq + h);
  oracle::attention(spec, qb, s.cache.keys(b), s.cache.values(b), 1, s.cache.lens[b], &ref, &ref_lse);
  expect_close(got, ref, s.q.dtype(), "out of request " + std::to_string(b));
  expect_close(got_lse, ref_lse, DType::f32, "lse of request " + std::to_string(b));
}

// The plan selects once: create() looks its kernel row up, supports() does
// too, and prepare() and run() never do (they use what create kept).
TEST(CudaDecode, LooksItsRowUpOncePerPlan) {
  namespace cuda = ::kvserve::detail::cuda;
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  const std::uint64_t before_create = cuda::row_lookups();
  auto s = make_setup(rng, {300, 17, 1024}, /*hkv=*/4, /*group=*/4);
  ASSERT_TRUE(s);
  EXPECT_EQ(cuda::row_lookups() - before_create, 1u);
  const std::uint64_t before_steps = cuda::row_lookups();
  for (int step = 0; step < 3; ++step) {
    ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), {}));
    ASSERT_TRUE(s->plan->run(s->args(), s->workspace(), {}));
  }
  KVS_CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(cuda::row_lookups(), before_steps) << "prepare() or run() looked the kernel row up again";
  EXPECT_TRUE(BatchPagedDecodePlan::supports(s->desc, kGpu));
  EXPECT_EQ(cuda::row_lookups() - before_steps, 1u);
}

TEST(CudaDecode, GraphReplayEqualsEagerBitForBit) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  auto s = make_setup(rng, {5000, 1, 17, 300, 2048, 0, 64, 900}, 2, 4);
  ASSERT_TRUE(s);
  TestStream stream;
  ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), stream.handle()));
  ASSERT_TRUE(s->plan->run(s->args(), s->workspace(), stream.handle()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  const auto eager_out = device_bytes(s->out), eager_lse = device_bytes(s->lse);

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  KVS_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  const Status captured = s->plan->run(s->args(), s->workspace(), stream.handle());
  KVS_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  ASSERT_TRUE(captured) << captured.to_string();
  KVS_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  s->out.poison();
  s->lse.poison();
  for (int i = 0; i < 3; ++i) KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  EXPECT_EQ(device_bytes(s->out), eager_out);
  EXPECT_EQ(device_bytes(s->lse), eager_lse);

  // A new step: a fresh prepare() rewrites the schedule the graph reads.
  // Request lengths shrink (pages stay where they are) and the replay must
  // follow them.
  std::vector<std::int32_t> last = s->cache.last_page_len;
  for (auto& l : last) l = l > 1 ? l - 1 : l;
  Buffer last_dev = int_buffer(last, kGpu);
  PagedKv kv = s->cache.view();
  kv.last_page_len = last_dev.view({s->batch});
  BatchPagedDecodeArgs args = s->args();
  args.kv = kv;
  ASSERT_TRUE(s->plan->prepare({s->cache.indptr, last}, s->workspace(), stream.handle()));
  ASSERT_TRUE(s->plan->run(args, s->workspace(), stream.handle()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  const auto eager2 = device_bytes(s->out);
  EXPECT_NE(eager2, eager_out);
  s->out.poison();
  KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));  // captured with the same tensors
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  // The graph still points at the old last_page_len tensor, whose lengths
  // disagree with the schedule only in the last page; the schedule decides.
  EXPECT_EQ(device_bytes(s->out), eager2);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

TEST(CudaDecode, FixedSplitRowsDoNotDependOnTheBatch) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  const std::vector<std::int64_t> lens = {3000, 7, 12000, 512, 1};
  auto full = make_setup(rng, lens, 2, 4, /*kv_split_tokens=*/256);
  ASSERT_TRUE(full);
  ASSERT_TRUE(full->plan->prepare(full->cache.lengths(), full->workspace(), {}));
  ASSERT_TRUE(full->plan->run(full->args(), full->workspace(), {}));
  ASSERT_TRUE(finishes_within(nullptr, kWatchdogSeconds));
  const auto full_out = device_bytes(full->out);
  expect_matches_oracle(*full, 0);
  expect_matches_oracle(*full, 2);

  // Each request alone, as a batch of one over the same pool.
  const std::size_t row_bytes = static_cast<std::size_t>(full->hq * full->d) * size_of(DType::bf16);
  for (std::int64_t b = 0; b < static_cast<std::int64_t>(lens.size()); ++b) {
    const auto& c = full->cache;
    std::vector<std::int32_t> indptr = {0, c.indptr[b + 1] - c.indptr[b]};
    std::vector<std::int32_t> indices(c.indices.begin() + c.indptr[b], c.indices.begin() + c.indptr[b + 1]);
    std::vector<std::int32_t> last = {c.last_page_len[b]};
    if (indices.empty()) indices.push_back(0);
    Buffer indptr_dev = int_buffer(indptr, kGpu), indices_dev = int_buffer(indices, kGpu),
           last_dev = int_buffer(last, kGpu);
    Buffer q1(DType::bf16, full->hq * full->d, kGpu), out1(DType::bf16, full->hq * full->d, kGpu);
    for (std::int64_t i = 0; i < full->hq * full->d; ++i) q1.set(i, full->q.get(b * full->hq * full->d + i));
    q1.upload();
    out1.poison();
    PagedKv kv = c.view();
    kv.indptr = indptr_dev.view({2});
    kv.indices = indices_dev.view({static_cast<std::int64_t>(indices.size())});
    kv.last_page_len = last_dev.view({1});
    ASSERT_TRUE(full->plan->prepare({indptr, last}, full->workspace(), {}));
    ASSERT_TRUE(full->plan->run({.q = q1.view({1, full->hq, full->d}), .kv = kv,
                                 .out = out1.view({1, full->hq, full->d})},
                                full->workspace(), {}));
    ASSERT_TRUE(finishes_within(nullptr, kWatchdogSeconds));
    const auto alone = device_bytes(out1);
    EXPECT_TRUE(std::equal(alone.begin(), alone.end(), full_out.begin() + b * row_bytes)) << "request " << b;
  }
}

TEST(CudaDecode, BackToBackLaunchesWithoutSync) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  auto s = make_setup(rng, {4096, 100, 33, 2000}, 2, 4);
  ASSERT_TRUE(s);
  TestStream stream;
  ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), stream.handle()));
  ASSERT_TRUE(s->plan->run(s->args(), s->workspace(), stream.handle()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  const auto once = device_bytes(s->out);
  for (int i = 0; i < 500; ++i) {
    if (i % 50 == 0) ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), stream.handle()));
    ASSERT_TRUE(s->plan->run(s->args(), s->workspace(), stream.handle()));
  }
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  EXPECT_EQ(device_bytes(s->out), once);
  expect_matches_oracle(*s, 0);
}

TEST(CudaDecode, SeveralStreamsAtOnce) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  constexpr int kStreams = 4;
  std::vector<std::unique_ptr<DecodeSetup>> setups;
  std::vector<std::unique_ptr<TestStream>> streams;
  std::vector<std::vector<unsigned char>> expected;
  for (int i = 0; i < kStreams; ++i) {
    setups.push_back(make_setup(rng, {1000 + 700 * i, 5, 3000}, 2, 4 + i));
    ASSERT_TRUE(setups.back());
    streams.push_back(std::make_unique<TestStream>());
    auto& s = *setups.back();
    ASSERT_TRUE(s.plan->prepare(s.cache.lengths(), s.workspace(), {}));
    ASSERT_TRUE(s.plan->run(s.args(), s.workspace(), {}));
    ASSERT_TRUE(finishes_within(nullptr, kWatchdogSeconds));
    expected.push_back(device_bytes(s.out));
    s.out.poison();
  }
  for (int round = 0; round < 20; ++round)
    for (int i = 0; i < kStreams; ++i)
      ASSERT_TRUE(setups[i]->plan->run(setups[i]->args(), setups[i]->workspace(), streams[i]->handle()));
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(finishes_within(streams[i]->get(), kWatchdogSeconds));
    EXPECT_EQ(device_bytes(setups[i]->out), expected[i]) << "stream " << i;
  }
}

TEST(CudaDecode, ExtremeLengthDisparity) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  std::vector<std::int64_t> lens(64, 1);
  lens.push_back(65536);
  auto s = make_setup(rng, lens, 1, 4);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), {}));
  ASSERT_TRUE(s->plan->run(s->args(), s->workspace(), {}));
  ASSERT_TRUE(finishes_within(nullptr, kWatchdogSeconds));
  for (std::int64_t b : {0, 31, 63, 64}) expect_matches_oracle(*s, b);
}

TEST(CudaDecode, LongRequests) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  for (int split : {0, 1024}) {
    auto s = make_setup(rng, {32768, 32000}, 2, 4, split);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), {}));
    ASSERT_TRUE(s->plan->run(s->args(), s->workspace(), {}));
    ASSERT_TRUE(finishes_within(nullptr, kWatchdogSeconds));
    expect_matches_oracle(*s, 0);
    expect_matches_oracle(*s, 1);
  }
}

TEST(CudaDecode, RunLeavesTheCallersDeviceCurrent) {
  KVS_REQUIRE_GPU();
  const int n = cuda_device_count();
  auto rng = make_rng();
  // With two GPUs the plan lives on cuda:1 while cuda:0 is current.
  const Device target = Device::cuda(n > 1 ? 1 : 0);
  KVS_CUDA_OK(cudaSetDevice(0));
  PagedKvDesc kvd{.page_size = 16, .num_kv_heads = 1, .head_dim = 64, .dtype = DType::f16};
  PagedCache cache = make_paged_cache(rng, kvd, {40, 3}, target);
  KVS_CUDA_OK(cudaSetDevice(0));
  BatchPagedDecodeDesc desc{.max_batch = 2, .num_qo_heads = 2, .kv = cache.desc, .q_dtype = DType::f16};
  auto plan = BatchPagedDecodePlan::create(desc, target);
  ASSERT_TRUE(plan) << plan.status().to_string();
  DeviceMemory ws(target, plan->workspace_bytes());
  Buffer q(DType::f16, 2 * 2 * 64, target), out(DType::f16, 2 * 2 * 64, target);
  q.fill_uniform(rng, -1, 1);
  KVS_CUDA_OK(cudaSetDevice(0));
  ASSERT_TRUE(plan->prepare(cache.lengths(), workspace_of(ws), {}));
  ASSERT_TRUE(plan->run({.q = q.view({2, 2, 64}), .kv = cache.view(), .out = out.view({2, 2, 64})}, workspace_of(ws),
                        {}));
  int current = -1;
  KVS_CUDA_OK(cudaGetDevice(&current));
  EXPECT_EQ(current, 0);
  synchronize(target);
  if (n < 2) std::printf("[ note     ] one GPU visible: the cuda:1 half of this test ran on cuda:0\n");
}

TEST(CudaDecode, RefusesWhatTheVectorisedKernelCannotServe) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  auto s = make_setup(rng, {40, 3}, 2, 4);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->plan->prepare(s->cache.lengths(), s->workspace(), {}));
  // A q view one element past 16-byte alignment.
  BatchPagedDecodeArgs args = s->args();
  args.q.data = static_cast<char*>(args.q.data) + 2;
  args.q.shape[0] = 2;
  Status st = s->plan->run(args, s->workspace(), {});
  EXPECT_EQ(st.code(), StatusCode::invalid_argument) << st.to_string();
  EXPECT_NE(st.message().find("'q'"), std::string::npos) << st.to_string();

  // A head_dim the table does not hold: Unsupported, naming it and what is built.
  BatchPagedDecodeDesc d96 = s->desc;
  d96.kv.head_dim = 96;
  const Status unsupported = BatchPagedDecodePlan::supports(d96, kGpu);
  EXPECT_EQ(unsupported.code(), StatusCode::unsupported) << unsupported.to_string();
  EXPECT_NE(unsupported.message().find("d=96"), std::string::npos) << unsupported.to_string();
  EXPECT_NE(unsupported.message().find("built"), std::string::npos) << unsupported.to_string();
}

}  // namespace
}  // namespace kvserve::test
#endif  // KVSERVE_TEST_CUDA
