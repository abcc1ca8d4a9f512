// GPU-only sampling tests: a captured CUDA graph draws fresh numbers on every
// replay (per-row offsets on the device) and matches eager runs for the same
// offsets; CPU and GPU agree on large rows of every filter, renorm kind and
// speculative verification, for every cluster size a row can take (1 to 8
// blocks by vocabulary; batches of up to 16 rows take 16) and for rows too
// long to stay in shared memory. The shared
// device-parametrised tests (sampling_*_test.cpp) cover the rest on cuda:0.
#include "harness/harness.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaSampling)
#else

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "harness/cuda.hpp"

namespace kvserve::test {
namespace {

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

// `batch` rows of softmax probabilities (or, with `logits`, their logits):
// peaked, typical and flat rows in turn. A `quantum` rounds the logits to its
// multiples first, so that many tokens share each value.
std::vector<float> random_rows(std::mt19937_64& rng, std::int64_t batch, int vocab, bool logits,
                               double quantum = 0) {
  std::vector<float> rows(static_cast<std::size_t>(batch * vocab));
  std::normal_distribution<double> normal(0, 1);
  for (std::int64_t b = 0; b < batch; ++b) {
    const double spread = b % 3 == 0 ? 6.0 : (b % 3 == 1 ? 3.0 : 0.3);
    float* row = rows.data() + b * vocab;
    double sum = 0;
    for (int j = 0; j < vocab; ++j) {
      const double x = spread * normal(rng);
      row[j] = static_cast<float>(quantum > 0 ? quantum * std::round(x / quantum) : x);
    }
    if (logits) continue;
    for (int j = 0; j < vocab; ++j) sum += row[j] = static_cast<float>(std::exp(row[j]));
    for (int j = 0; j < vocab; ++j) row[j] = static_cast<float>(row[j] / sum);
  }
  return rows;
}

// The same values on the CPU and on the GPU.
struct Twin {
  Buffer cpu, gpu;
  Twin(const std::vector<float>& values, DType dtype = DType::f32)
      : cpu(dtype, static_cast<std::int64_t>(values.size())),
        gpu(dtype, static_cast<std::int64_t>(values.size()), kGpu) {
    for (std::size_t i = 0; i < values.size(); ++i) cpu.set(static_cast<std::int64_t>(i), values[i]);
    for (std::size_t i = 0; i < values.size(); ++i) gpu.set(static_cast<std::int64_t>(i), values[i]);
    cpu.upload();
    gpu.upload();
  }
  Twin(DType dtype, std::int64_t n) : cpu(dtype, n), gpu(dtype, n, kGpu) {
    cpu.poison();
    gpu.poison();
  }
  Buffer& on(Device d) { return d.is_cpu() ? cpu : gpu; }
  // Downloads the GPU copy and expects it equal to the CPU's.
  void expect_equal(const std::string& what) {
    synchronize(kGpu);
    cpu.download();
    gpu.download();
    EXPECT_EQ(gpu.values(), cpu.values()) << what;
  }
};

void expect_same_tokens(int vocab, std::int64_t batch, SamplingInput input, std::mt19937_64& rng,
                        double quantum = 0) {
  Twin in(random_rows(rng, batch, vocab, input == SamplingInput::logits, quantum));
  using F = SamplingFilter;
  for (F filter : {F::none, F::top_k, F::top_p, F::min_p, F::top_k_top_p, F::greedy})
    for (TopKTopPOrder order : {TopKTopPOrder::k_then_p, TopKTopPOrder::joint}) {
      if (order == TopKTopPOrder::joint && filter != F::top_k_top_p) continue;
      const std::string what = "vocab=" + std::to_string(vocab) + " quantum=" + std::to_string(quantum) +
                               " input=" + std::string(name_of(input)) +
                               " filter=" + std::string(name_of(filter)) + " order=" + std::string(name_of(order));
      const SamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .input = input, .filter = filter,
                              .order = order, .top_k = 50, .top_p = 0.9f, .min_p = 0.1f};
      Twin out(DType::int32, batch);
      for (Device d : {Device::cpu(), kGpu}) {
        auto plan = SamplingPlan::create(desc, d);
        ASSERT_TRUE(plan) << plan.status().to_string();
        ASSERT_TRUE(plan->run({.input = in.on(d).view({batch, vocab}), .out = out.on(d).view({batch}), .seed = 7,
                               .offset = 11}, {}, {}));
      }
      out.expect_equal(what);
    }
}

// Vocabularies whose rows take clusters of 2, 4 and 8 blocks (100003: odd
// slices), resident in shared memory.
TEST(CudaSampling, LargeRowsMatchTheCpuForEveryFilter) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  for (int vocab : {32000, 50000, 128256, 151936, 100003}) expect_same_tokens(vocab, 48, SamplingInput::probs, rng);
  expect_same_tokens(128256, 24, SamplingInput::logits, rng);
}

// Logits in steps of 1/4: up to thousands of tokens share a value, so cuts
// fall inside runs of ties (kept in index order), and the radix bucket of a
// top-p cut still holds hundreds of tokens after level 1 (levels 2 and 3 run
// over the listed tokens instead of the few-candidates finish).
TEST(CudaSampling, RowsWithManyTiesMatchTheCpu) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  expect_same_tokens(128256, 24, SamplingInput::probs, rng, 0.25);
  expect_same_tokens(50000, 24, SamplingInput::probs, rng, 0.25);
  expect_same_tokens(128256, 12, SamplingInput::logits, rng, 0.25);
}

// Slices streamed from device memory on every pass: 2^20 tokens (512 KB
// slices, too long to list), and 400000 (50000-token slices: past shared
// memory, but listed, so levels 2-3 and the draw read listed tokens from
// device memory).
TEST(CudaSampling, RowsTooLongForSharedMemoryMatchTheCpu) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  expect_same_tokens(1 << 20, 3, SamplingInput::probs, rng);
  expect_same_tokens(400000, 3, SamplingInput::probs, rng);
}

TEST(CudaSampling, LargeRowsRenormLikeTheCpu) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  const std::int64_t batch = 12;
  for (int vocab : {50000, 100003, 128256})
    for (RenormKind kind : {RenormKind::top_k_renorm_probs, RenormKind::top_p_renorm_probs,
                            RenormKind::top_k_mask_logits}) {
      // 128256-token rows in steps of 1/4: cuts inside runs of ties.
      const double quantum = vocab == 128256 ? 0.25 : 0;
      Twin in(random_rows(rng, batch, vocab, kind == RenormKind::top_k_mask_logits, quantum));
      Twin out(DType::f32, batch * vocab);
      const SamplingRenormDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .kind = kind, .top_k = 50,
                                    .top_p = 0.9f};
      for (Device d : {Device::cpu(), kGpu}) {
        auto plan = SamplingRenormPlan::create(desc, d);
        ASSERT_TRUE(plan) << plan.status().to_string();
        ASSERT_TRUE(plan->run({.input = in.on(d).view({batch, vocab}), .out = out.on(d).view({batch, vocab})}, {}, {}));
      }
      out.expect_equal("vocab=" + std::to_string(vocab) + " kind=" + std::string(name_of(kind)));
    }
}

TEST(CudaSampling, LargeRowsVerifyDraftsLikeTheCpu) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  const std::int64_t batch = 16;
  const int vocab = 128256, n = 3;
  // Drafts: the target's rows (n + 1 per request) with every other row taken
  // from another request, so that some drafts pass and some fail.
  const std::vector<float> target = random_rows(rng, batch * (n + 1), vocab, false);
  std::vector<float> draft;
  std::vector<float> ids;
  for (std::int64_t b = 0; b < batch; ++b)
    for (int t = 0; t < n; ++t) {
      const std::int64_t source = (b * (n + 1) + t + (t % 2) * (n + 1)) % (batch * (n + 1));
      const auto row = target.begin() + source * vocab;
      draft.insert(draft.end(), row, row + vocab);
      ids.push_back(static_cast<float>(std::max_element(row, row + vocab) - row));
    }
  Twin target_in(target), draft_in(draft), ids_in(ids, DType::int32);
  Twin out(DType::int32, batch * (n + 1)), accepted(DType::int32, batch), emitted(DType::int32, batch);
  const ChainSpeculativeSamplingDesc desc{.vocab = vocab, .max_batch = static_cast<int>(batch), .num_draft_tokens = n};
  for (Device d : {Device::cpu(), kGpu}) {
    auto plan = ChainSpeculativeSamplingPlan::create(desc, d);
    ASSERT_TRUE(plan) << plan.status().to_string();
    ASSERT_TRUE(plan->run({.draft_token_ids = ids_in.on(d).view({batch, n}),
                           .draft_probs = draft_in.on(d).view({batch, n, vocab}),
                           .target_probs = target_in.on(d).view({batch, n + 1, vocab}),
                           .out = out.on(d).view({batch, n + 1}), .accepted = accepted.on(d).view({batch}),
                           .emitted = emitted.on(d).view({batch}), .seed = 5, .offset = 3}, {}, {}));
  }
  out.expect_equal("tokens");
  accepted.expect_equal("accepted");
  emitted.expect_equal("emitted");
}

}  // namespace
}  // namespace kvserve::test

#endif  // KVSERVE_TEST_CUDA
