// GPU-only sampling tests: a captured CUDA graph draws fresh numbers on every
// replay (per-row offsets on the device) and matches eager runs for the same
// offsets; CPU and GPU agree on large rows of every filter. The shared
// device-parametrised tests (sampling_*_test.cpp) cover the rest on cuda:0.
#include "kvserve/sampling.hpp"
#include "test_util.hpp"

#if !KVSERVE_TEST_CUDA
TEST(CudaSampling, NeedsTheCudaBackend) { GTEST_SKIP() << "this build has no CUDA backend: GPU tests skipped"; }
#else

#include <cmath>
#include <random>

#include "cuda_test_util.hpp"

namespace kvserve::test {
namespace {

const Device kGpu = Device::cuda(0);

struct GraphSetup {
  std::int64_t batch = 64;
  int vocab = 128256;
  Buffer input, out, seeds, offsets;
};

void fill(GraphSetup& s, std::mt19937_64& rng) {
  s.input = Buffer(DType::f32, s.batch * s.vocab, kGpu);
  s.out = Buffer(DType::int32, s.batch, kGpu);
  s.seeds = Buffer(DType::int32, s.batch, kGpu);
  s.offsets = Buffer(DType::int32, s.batch, kGpu);
  s.input.fill_uniform(rng, -4, 4);  // logits
  for (std::int64_t b = 0; b < s.batch; ++b) s.seeds.set(b, static_cast<double>(rng() % 100000)), s.offsets.set(b, 0);
  s.seeds.upload();
  s.offsets.upload();
}

std::vector<double> tokens(Buffer& out) {
  out.download();
  return out.values();
}

TEST(CudaSampling, GraphReplaysDrawFreshNumbersAndMatchEagerRuns) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  GraphSetup s;
  fill(s, rng);
  const SamplingDesc desc{.vocab = s.vocab, .max_batch = static_cast<int>(s.batch), .input = SamplingInput::logits,
                          .filter = SamplingFilter::top_p, .temperature = 1.f, .top_p = 0.9f,
                          .random = RandomSource::per_row};
  auto plan = SamplingPlan::create(desc, kGpu);
  ASSERT_TRUE(plan) << plan.status().to_string();
  const SamplingArgs args{.input = s.input.view({s.batch, s.vocab}), .out = s.out.view({s.batch}),
                          .seeds = s.seeds.view({s.batch}), .offsets = s.offsets.view({s.batch})};
  TestStream stream;
  cudaGraph_t graph;
  KVS_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  const Status captured = plan->run(args, {}, stream.handle());
  KVS_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  ASSERT_TRUE(captured) << captured.to_string();
  cudaGraphExec_t exec;
  KVS_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  std::vector<std::vector<double>> replayed;
  for (int step = 0; step < 2; ++step) {
    for (std::int64_t b = 0; b < s.batch; ++b) s.offsets.set(b, step);
    s.offsets.upload();
    s.out.poison();
    KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
    ASSERT_TRUE(finishes_within(stream.get(), 30));
    replayed.push_back(tokens(s.out));
    s.out.poison();
    ASSERT_TRUE(plan->run(args, {}, stream.handle()));  // eager, same offsets
    ASSERT_TRUE(finishes_within(stream.get(), 30));
    EXPECT_EQ(tokens(s.out), replayed.back()) << "replay " << step << " differs from the eager run";
  }
  std::int64_t changed = 0;
  for (std::int64_t b = 0; b < s.batch; ++b) changed += replayed[0][b] != replayed[1][b];
  EXPECT_GT(changed, s.batch / 2) << "bumping the offsets should redraw most rows";
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

TEST(CudaSampling, LargeRowsMatchTheCpuForEveryFilter) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  for (int vocab : {32000, 128256, 151936, 100003}) {
    const std::int64_t batch = 48;
    std::vector<float> probs(static_cast<std::size_t>(batch * vocab));
    std::normal_distribution<double> normal(0, 1);
    for (std::int64_t b = 0; b < batch; ++b) {
      const double spread = b % 3 == 0 ? 6.0 : (b % 3 == 1 ? 3.0 : 0.3);  // peaked, typical, flat rows
      double sum = 0;
      for (int j = 0; j < vocab; ++j) sum += probs[b * vocab + j] = static_cast<float>(std::exp(spread * normal(rng)));
      for (int j = 0; j < vocab; ++j) probs[b * vocab + j] = static_cast<float>(probs[b * vocab + j] / sum);
    }
    Buffer cpu_in(DType::f32, batch * vocab), gpu_in(DType::f32, batch * vocab, kGpu);
    for (std::int64_t i = 0; i < batch * vocab; ++i) cpu_in.set(i, probs[i]), gpu_in.set(i, probs[i]);
    cpu_in.upload();
    gpu_in.upload();
    using F = SamplingFilter;
    for (F filter : {F::none, F::top_k, F::top_p, F::min_p, F::top_k_top_p, F::greedy})
      for (TopKTopPOrder order : {TopKTopPOrder::k_then_p, TopKTopPOrder::joint}) {
        if (order == TopKTopPOrder::joint && filter != F::top_k_top_p) continue;
        SCOPED_TRACE("vocab=" + std::to_string(vocab) + " filter=" + std::string(name_of(filter)) +
                     " order=" + std::string(name_of(order)));
        const SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .filter = filter,
                                .order = order, .top_k = 50, .top_p = 0.9f, .min_p = 0.1f};
        Buffer cpu_out(DType::int32, batch), gpu_out(DType::int32, batch, kGpu);
        gpu_out.poison();
        for (Device d : {Device::cpu(), kGpu}) {
          auto plan = SamplingPlan::create(desc, d);
          ASSERT_TRUE(plan) << plan.status().to_string();
          const Buffer& in = d.is_cpu() ? cpu_in : gpu_in;
          Buffer& out = d.is_cpu() ? cpu_out : gpu_out;
          ASSERT_TRUE(plan->run({.input = in.view({batch, vocab}), .out = out.view({batch}), .seed = 7,
                                 .offset = 11}, {}, {}));
        }
        synchronize(kGpu);
        cpu_out.download();
        EXPECT_EQ(tokens(gpu_out), cpu_out.values());
      }
  }
}

}  // namespace
}  // namespace kvserve::test

#endif  // KVSERVE_TEST_CUDA
