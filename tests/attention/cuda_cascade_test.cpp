// What only the GPU has, for CascadeAttention: a prefix shared by many
// requests (several row tiles, split into key slices) against the fp64
// oracle, graph replay equal to the eager run bit for bit, and the
// arguments the vectorised kernel refuses. Every wait has a watchdog.
#include "harness/harness.hpp"
#include "kvserve/attention.hpp"

#if !KVSERVE_TEST_CUDA
KVS_NEEDS_CUDA_BACKEND(CudaCascade)
#else
#include "attention/attention_test_util.hpp"
#include "harness/cuda.hpp"
#include "reference/oracle.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

// Groups of requests on the GPU: cache rows 0..G are the prefixes, the rest
// the suffixes; queries random, outputs poisoned.
struct SharedPrefixBatch {
  std::vector<std::int32_t> group_indptr;
  std::vector<std::int64_t> prefix_lens, suffix_lens;
  int hkv = 0, group = 0, d = 0;
  AttentionParams attn;
  PagedCache cache;
  PageTable prefix, suffix;
  Buffer group_dev, q, out, lse;
  std::unique_ptr<CascadeAttentionPlan> plan;
  std::unique_ptr<DeviceMemory> ws;

  std::int64_t batch() const { return static_cast<std::int64_t>(suffix_lens.size()); }
  std::int64_t groups() const { return static_cast<std::int64_t>(prefix_lens.size()); }
  int hq() const { return hkv * group; }
  CascadeAttentionArgs args() const {
    return {.q = q.view({batch(), hq(), d}), .group_indptr = group_dev.view({groups() + 1}),
            .prefix = prefix.view(cache), .suffix = suffix.view(cache), .out = out.view({batch(), hq(), d}),
            .lse = lse.view({batch(), hq()})};
  }
  Workspace workspace() const { return workspace_of(*ws); }
  CascadeLengths lengths() const { return {group_indptr, prefix.lengths(), suffix.lengths()}; }
};

void build(std::mt19937_64& rng, DType dtype, int page_size, SharedPrefixBatch* s) {
  std::vector<std::int64_t> lens = s->prefix_lens;
  lens.insert(lens.end(), s->suffix_lens.begin(), s->suffix_lens.end());
  s->cache = make_paged_cache(
      rng, {.page_size = page_size, .num_kv_heads = s->hkv, .head_dim = s->d, .dtype = dtype}, lens, kGpu);
  for (std::int64_t row = 0; row < static_cast<std::int64_t>(lens.size()); ++row)
    (row < s->groups() ? s->prefix : s->suffix).add_row(pages_of(s->cache, row), s->cache.last_page_len[row]);
  s->prefix.upload(kGpu);
  s->suffix.upload(kGpu);
  s->group_dev = int_buffer(s->group_indptr, kGpu);
  const std::int64_t n = s->batch() * s->hq() * s->d;
  s->q = Buffer(dtype, n, kGpu);
  s->out = Buffer(dtype, n, kGpu);
  s->lse = Buffer(DType::f32, s->batch() * s->hq(), kGpu);
  s->q.fill_uniform(rng, -2, 2);
  s->out.poison();
  s->lse.poison();
  auto plan = CascadeAttentionPlan::create({.max_batch = static_cast<int>(s->batch()),
                                            .max_groups = static_cast<int>(s->groups()),
                                            .num_qo_heads = s->hq(), .kv = s->cache.desc, .q_dtype = dtype,
                                            .attn = s->attn},
                                           kGpu);
  ASSERT_TRUE(plan) << plan.status().to_string();
  s->plan = std::make_unique<CascadeAttentionPlan>(std::move(*plan));
  s->ws = std::make_unique<DeviceMemory>(kGpu, s->plan->workspace_bytes());
}

void expect_matches_oracle(SharedPrefixBatch& s) {
  const oracle::AttentionSpec spec = attention_spec(s.hq(), s.hkv, s.d, s.d, s.attn, /*causal=*/true);
  ReferenceAttention ref;
  for (std::int64_t g = 0; g < s.groups(); ++g)
    for (std::int64_t b = s.group_indptr[g]; b < s.group_indptr[g + 1]; ++b) {
      std::vector<double> keys = s.cache.keys(g), values = s.cache.values(g);
      append(&keys, s.cache.keys(s.groups() + b));
      append(&values, s.cache.values(s.groups() + b));
      ref.add(spec, slice(s.q, b * s.hq() * s.d, s.hq() * s.d), keys, values, 1, s.prefix_lens[g] + s.suffix_lens[b]);
    }
  expect_attention(s.out, s.lse, ref);
}

std::vector<std::int64_t> random_lens(std::mt19937_64& rng, std::int64_t n, std::int64_t max_len) {
  std::uniform_int_distribution<std::int64_t> len(0, max_len);
  std::vector<std::int64_t> lens(static_cast<std::size_t>(n));
  for (auto& l : lens) l = len(rng);
  return lens;
}

TEST(CudaCascade, LargeGroupsMatchTheOracle) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  // 48 requests x 8 heads: 6 row tiles of the prefix, cut into key slices;
  // then a window that starts inside the prefix for some requests only.
  for (int window : {-1, 600}) {
    SharedPrefixBatch s;
    s.group_indptr = {0, 48, 48, 53};
    s.prefix_lens = {2500, 40, 0};
    s.suffix_lens = random_lens(rng, 53, 700);
    s.hkv = 2, s.group = 8, s.d = 128;
    s.attn.window_left = window;
    SCOPED_TRACE("window " + std::to_string(window));
    build(rng, DType::bf16, 16, &s);
    if (HasFatalFailure()) return;
    ASSERT_TRUE(s.plan->prepare(s.lengths(), s.workspace(), {}));
    ASSERT_TRUE(s.plan->run(s.args(), s.workspace(), {}));
    expect_matches_oracle(s);
  }
}

TEST(CudaCascade, HeadDimsAndGroupsWiderThanATile) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  // A group of 80 query heads per KV head needs two row tiles per suffix.
  for (const auto [dtype, d, group] : {std::tuple{DType::f16, 256, 3}, std::tuple{DType::bf16, 64, 80}}) {
    SharedPrefixBatch s;
    s.group_indptr = {0, 3, 7};
    s.prefix_lens = {900, 333};
    s.suffix_lens = random_lens(rng, 7, 90);
    s.hkv = 2, s.group = group, s.d = d;
    s.attn.logits_soft_cap = 20.f;
    build(rng, dtype, 32, &s);
    if (HasFatalFailure()) return;
    ASSERT_TRUE(s.plan->prepare(s.lengths(), s.workspace(), {}));
    ASSERT_TRUE(s.plan->run(s.args(), s.workspace(), {}));
    expect_matches_oracle(s);
  }
}

TEST(CudaCascade, GraphReplayEqualsEagerBitForBit) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  SharedPrefixBatch s;
  s.group_indptr = {0, 20, 20, 31};
  s.prefix_lens = {3000, 10, 700};
  s.suffix_lens = random_lens(rng, 31, 300);
  s.hkv = 4, s.group = 4, s.d = 128;
  build(rng, DType::bf16, 16, &s);
  if (HasFatalFailure()) return;
  TestStream stream;
  ASSERT_TRUE(s.plan->prepare(s.lengths(), s.workspace(), stream.handle()));
  ASSERT_TRUE(s.plan->run(s.args(), s.workspace(), stream.handle()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  const auto eager_out = device_bytes(s.out), eager_lse = device_bytes(s.lse);

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  KVS_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  const Status captured = s.plan->run(s.args(), s.workspace(), stream.handle());
  KVS_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  ASSERT_TRUE(captured) << captured.to_string();
  KVS_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  s.out.poison();
  s.lse.poison();
  for (int i = 0; i < 3; ++i) KVS_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
  ASSERT_TRUE(finishes_within(stream.get(), kWatchdogSeconds));
  EXPECT_EQ(device_bytes(s.out), eager_out);
  EXPECT_EQ(device_bytes(s.lse), eager_lse);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  expect_matches_oracle(s);
}

TEST(CudaCascade, RefusesMisalignedRowsAndForeignPools) {
  KVS_REQUIRE_GPU();
  auto rng = make_rng();
  SharedPrefixBatch s;
  s.group_indptr = {0, 2};
  s.prefix_lens = {40};
  s.suffix_lens = {3, 5};
  s.hkv = 1, s.group = 2, s.d = 64;
  build(rng, DType::f16, 16, &s);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(s.plan->prepare(s.lengths(), s.workspace(), {}));
  CascadeAttentionArgs a = s.args();
  a.q = s.q.view_strided({2, 2, 64}, {2 * 64 + 4, 64, 1});  // rows 8 bytes apart from 16-byte alignment
  Status st = s.plan->run(a, s.workspace(), {});
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
  EXPECT_NE(st.message().find("'q'"), std::string::npos) << st.to_string();

  // A second cache of the same shape: valid for the rules, but the kernel
  // reads one pool pair.
  const PagedCache other = make_paged_cache(rng, s.cache.desc, {40, 3, 5}, kGpu);
  a = s.args();
  a.suffix.k_pages = other.view().k_pages;
  a.suffix.v_pages = other.view().v_pages;
  st = s.plan->run(a, s.workspace(), {});
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
  EXPECT_NE(st.message().find("suffix.k_pages"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace kvserve::test
#endif  // KVSERVE_TEST_CUDA
