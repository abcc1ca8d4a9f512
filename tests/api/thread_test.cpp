// What plan.hpp promises of threads, tested: run() is const, so one plan runs
// from several threads at once, each with its own workspace, outputs and
// stream; create() and supports() may run on any thread at once. Each thread's
// output must equal, bit for bit, the same run made alone. prepare() is not
// thread-safe (it records the batch in the plan): here the main thread
// prepares every workspace before the threads start, as a scheduler would.
// The ThreadSanitizer tier of scripts/test.sh runs this file alone
// (kvserve_thread_tests) to find races the comparison cannot see.
#include <functional>
#include <thread>
#include <vector>

#include "harness/harness.hpp"
#if KVSERVE_TEST_CUDA
#include "harness/cuda.hpp"
#endif
#include "kvserve/attention.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/sampling.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

constexpr int kThreads = 4;
constexpr int kRunsPerThread = 3;

// Runs job(t, stream) for t in [0, kThreads) at once, each thread on its own
// stream (a CUDA device) and each job `kRunsPerThread` times; then waits for
// the device. A job returns the status of its op's run.
void run_in_threads(Device device, const std::function<Status(int, Stream)>& job) {
  std::vector<Status> last(kThreads, Status::ok());
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
#if KVSERVE_TEST_CUDA
        std::optional<TestStream> own;
        if (device.is_cuda()) own.emplace();
        const Stream stream = own ? own->handle() : Stream{};
#else
        const Stream stream{};
#endif
        for (int i = 0; i < kRunsPerThread && last[t]; ++i) last[t] = job(t, stream);
#if KVSERVE_TEST_CUDA
        if (own) cudaStreamSynchronize(own->get());
#endif
      });
  }
  synchronize(device);
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(last[t]) << "thread " << t << ": " << last[t].to_string();
}

class Threads : public DeviceTest {};

// One split-KV decode plan, four threads, each over its own cache (lengths
// differ, so each workspace holds a different schedule).
TEST_P(Threads, OneDecodePlanRunsFromSeveralThreads) {
  const Device device = GetParam();
  auto rng = make_rng();
  constexpr int kBatch = 3, kHq = 8, kD = 128, kPageSize = 16;
  constexpr std::int64_t kPoolPages = 48;  // every thread's pool the same size, as the descriptor says
  const PagedKvDesc kvd{.page_size = kPageSize, .num_kv_heads = 2, .head_dim = kD, .dtype = DType::bf16};
  std::vector<PagedCache> caches;
  for (std::int64_t t = 0; t < kThreads; ++t) {
    const std::vector<std::int64_t> lens{40 + 100 * t, 1 + 7 * t, 300 - 50 * t};
    std::int64_t used = 0;
    for (std::int64_t len : lens) used += (len + kPageSize - 1) / kPageSize;
    caches.push_back(make_paged_cache(rng, kvd, lens, device, kPoolPages - used));
  }
  const BatchPagedDecodeDesc desc{.max_batch = kBatch, .num_qo_heads = kHq, .kv = caches[0].desc,
                                  .q_dtype = DType::bf16, .kv_split_tokens = 64};
  KVS_CREATE_OR_SKIP(plan, BatchPagedDecodePlan, desc, device);
  std::vector<Buffer> q, out, alone;
  std::vector<std::unique_ptr<DeviceMemory>> ws;
  for (int t = 0; t < kThreads; ++t) {
    q.emplace_back(DType::bf16, kBatch * kHq * kD, device);
    q.back().fill_uniform(rng, -2, 2);
    out.emplace_back(DType::bf16, kBatch * kHq * kD, device);
    alone.emplace_back(DType::bf16, kBatch * kHq * kD, device);
    ws.push_back(std::make_unique<DeviceMemory>(device, plan->workspace_bytes()));
  }
  const auto args = [&](int t, const Buffer& o) {
    return BatchPagedDecodeArgs{.q = q[t].view({kBatch, kHq, kD}), .kv = caches[t].view(),
                                .out = o.view({kBatch, kHq, kD})};
  };
  for (int t = 0; t < kThreads; ++t) {  // each alone, in turn
    ASSERT_TRUE(plan->prepare(caches[t].lengths(), workspace_of(*ws[t]), {}));
    alone[t].poison();
    ASSERT_TRUE(plan->run(args(t, alone[t]), workspace_of(*ws[t]), {}));
  }
  for (auto& o : out) o.poison();
  run_in_threads(device, [&](int t, Stream s) { return plan->run(args(t, out[t]), workspace_of(*ws[t]), s); });
  for (int t = 0; t < kThreads; ++t) {
    out[t].download();
    alone[t].download();
    expect_nonzero(alone[t].values(), "decode output");
    EXPECT_EQ(out[t].values(), alone[t].values()) << "thread " << t;
  }
}

// One sampling plan, four threads, each drawing its own rows with its own seed.
TEST_P(Threads, OneSamplingPlanRunsFromSeveralThreads) {
  const Device device = GetParam();
  auto rng = make_rng();
  constexpr int kBatch = 16, kVocab = 4096;
  KVS_CREATE_OR_SKIP(plan, SamplingPlan,
                     (SamplingDesc{.vocab = kVocab, .max_batch = kBatch, .filter = SamplingFilter::top_k_top_p,
                                   .top_k = 100, .top_p = 0.9f}),
                     device);
  std::vector<Buffer> probs, out, alone;
  for (int t = 0; t < kThreads; ++t) {
    probs.emplace_back(DType::f32, kBatch * kVocab, device);
    probs.back().fill_uniform(rng, 0, 1);
    out.emplace_back(DType::int32, kBatch, device);
    alone.emplace_back(DType::int32, kBatch, device);
  }
  const auto args = [&](int t, const Buffer& o) {
    return SamplingArgs{.input = probs[t].view({kBatch, kVocab}), .out = o.view({kBatch}),
                        .seed = 1000 + static_cast<std::uint64_t>(t), .offset = 7};
  };
  for (int t = 0; t < kThreads; ++t) {
    alone[t].poison();
    ASSERT_TRUE(plan->run(args(t, alone[t]), {}, {}));
  }
  for (auto& o : out) o.poison();
  run_in_threads(device, [&](int t, Stream s) { return plan->run(args(t, out[t]), {}, s); });
  for (int t = 0; t < kThreads; ++t) {
    out[t].download();
    alone[t].download();
    EXPECT_EQ(out[t].values(), alone[t].values()) << "thread " << t;
  }
}

// Every thread creates its own plans (create() and supports() concurrently)
// and runs them; the results equal one plan's run alone.
TEST_P(Threads, PlansCreatedOnSeveralThreads) {
  const Device device = GetParam();
  auto rng = make_rng();
  constexpr int kRows = 64, kHidden = 2048;
  const RmsNormDesc desc{.hidden_size = kHidden, .dtype = DType::bf16, .eps = 1e-6f};
  KVS_CREATE_OR_SKIP(reference_plan, RmsNormPlan, desc, device);
  Buffer x(DType::bf16, kRows * kHidden, device), w(DType::bf16, kHidden, device),
      alone(DType::bf16, kRows * kHidden, device);
  x.fill_uniform(rng, -2, 2);
  w.fill_uniform(rng, -1, 1);
  std::vector<Buffer> out;
  for (int t = 0; t < kThreads; ++t) out.emplace_back(DType::bf16, kRows * kHidden, device);
  const auto args = [&](const Buffer& o) {
    return RmsNormArgs{.x = x.view({kRows, kHidden}), .weight = w.view({kHidden}), .out = o.view({kRows, kHidden})};
  };
  alone.poison();
  ASSERT_TRUE(reference_plan->run(args(alone), {}, {}));
  for (auto& o : out) o.poison();
  run_in_threads(device, [&](int t, Stream s) -> Status {
    if (Status st = RmsNormPlan::supports(desc, device); !st) return st;
    auto plan = RmsNormPlan::create(desc, device);
    if (!plan) return plan.status();
    return plan->run(args(out[t]), {}, s);
  });
  alone.download();
  expect_nonzero(alone.values(), "norm output");
  for (int t = 0; t < kThreads; ++t) {
    out[t].download();
    EXPECT_EQ(out[t].values(), alone.values()) << "thread " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, Threads, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
