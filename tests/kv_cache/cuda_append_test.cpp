// What only the GPU has, for PagedKvAppend: a step's append captured in a
// CUDA graph replays to the same cache bytes as an eager run, and its cost
// per launch inside a graph (issue 4's B 256 decode append) is printed for
// scripts/gpu_check.sh. Every wait has a watchdog.
#include "harness/harness.hpp"
#include "kvserve/kv_cache.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaAppend)
#else
#include <algorithm>

#include "harness/cuda.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

TEST(CudaAppend, GraphOfDecodeAppendsEqualsEagerAndIsTimed) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  const Device gpu = Device::cuda(0);
  constexpr std::int64_t kBatch = 256, kLen = 65;  // the page table already counts the new token
  constexpr int kHeads = 8, kDim = 128, kLaunches = 100;
  PagedKvDesc kvd{.page_size = 16, .num_kv_heads = kHeads, .head_dim = kDim, .dtype = DType::bf16};
  PagedCache cache = make_paged_cache(rng, kvd, std::vector<std::int64_t>(kBatch, kLen), gpu);
  auto plan = PagedKvAppendPlan::create({.kv = cache.desc, .dtype = DType::bf16, .mode = AppendMode::decode}, gpu);
  ASSERT_TRUE(plan) << plan.status().to_string();
  Buffer k(DType::bf16, kBatch * kHeads * kDim, gpu), v(DType::bf16, kBatch * kHeads * kDim, gpu);
  k.fill_uniform(rng, -1, 1);
  v.fill_uniform(rng, -1, 1);
  const PagedKvAppendArgs args{.k = k.view({kBatch, kHeads, kDim}), .v = v.view({kBatch, kHeads, kDim}),
                               .kv = cache.view()};
  TestStream stream;
  ASSERT_TRUE(plan->run(args, {}, stream.handle()));
  ASSERT_TRUE(finishes_within(stream.get(), 60));
  const auto eager_k = device_bytes(cache.k), eager_v = device_bytes(cache.v);
  // The row landed in the last slot of each request.
  cache.k.download();
  for (std::int64_t b : {std::int64_t{0}, kBatch - 1}) {
    const std::int64_t page = cache.indices[cache.indptr[b + 1] - 1];
    for (int x = 0; x < kDim; ++x)
      ASSERT_EQ(cache.k.get(cache.offset(page, (kLen - 1) % 16, 3) + x), k.get((b * kHeads + 3) * kDim + x));
  }

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  KVS_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < kLaunches; ++i) ASSERT_TRUE(plan->run(args, {}, stream.handle()));
  KVS_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  KVS_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));  // warm-up
  cudaEvent_t start, stop;
  KVS_CUDA_OK(cudaEventCreate(&start));
  KVS_CUDA_OK(cudaEventCreate(&stop));
  std::vector<float> per_launch_us;
  for (int rep = 0; rep < 20; ++rep) {
    KVS_CUDA_OK(cudaEventRecord(start, stream.get()));
    KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
    KVS_CUDA_OK(cudaEventRecord(stop, stream.get()));
    ASSERT_TRUE(finishes_within(stream.get(), 60));
    float ms = 0;
    KVS_CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
    per_launch_us.push_back(ms * 1e3f / kLaunches);
  }
  std::sort(per_launch_us.begin(), per_launch_us.end());
  std::printf("[ append   ] decode B=%lld Hkv=%d D=%d bf16 page=16: %.2f us per launch inside a CUDA graph\n",
              static_cast<long long>(kBatch), kHeads, kDim, per_launch_us[per_launch_us.size() / 2]);
  EXPECT_EQ(device_bytes(cache.k), eager_k);
  EXPECT_EQ(device_bytes(cache.v), eager_v);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

}  // namespace
}  // namespace kvserve::test
#endif  // KVSERVE_TEST_CUDA
