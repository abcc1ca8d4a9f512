// Every size field of every descriptor has a documented upper bound
// (kvserve/core.hpp): at the bound the plan is made; at the bound + 1 and at
// INT32_MAX (INT64_MAX for 64-bit fields) supports() and create() refuse it
// with the same InvalidArgument naming the field, on the CPU and for a CUDA
// device alike (the descriptor is checked before the device). Then each op that
// once overflowed or hung near INT32_MAX runs an empty batch at its bounds.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "harness/harness.hpp"
#include "kvserve/attention.hpp"
#include "kvserve/block_manager.hpp"
#include "kvserve/gdn.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/merge.hpp"
#include "kvserve/norm.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve {
namespace {

constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

template <class Desc>
struct SizeField {
  std::string name;
  std::int64_t bound;
  std::function<void(Desc&, std::int64_t)> set;
  // What else must change for the field to be valid at its bound (a head
  // count the other must divide).
  std::function<void(Desc&, std::int64_t)> at_bound;
  bool is_64_bit = false;
};

template <class Op>
void expect_refused(const typename Op::Desc& d, const std::string& field) {
  for (Device device : {Device::cpu(), Device::cuda(0)}) {
    SCOPED_TRACE(device.to_string());
    const Status s = Plan<Op>::supports(d, device);
    test::expect_rejected(s, field);
    EXPECT_EQ(Plan<Op>::create(d, device).status().message(), s.message());
  }
}

template <class Op>
void expect_bounds(const typename Op::Desc& good, const std::vector<SizeField<typename Op::Desc>>& fields) {
  ASSERT_TRUE(Plan<Op>::supports(good, Device::cpu())) << Plan<Op>::supports(good, Device::cpu()).to_string();
  for (const auto& f : fields) {
    SCOPED_TRACE(std::string(Op::kName) + "." + f.name);
    typename Op::Desc d = good;
    f.set(d, f.bound);
    if (f.at_bound) f.at_bound(d, f.bound);
    const auto plan = Plan<Op>::create(d, Device::cpu());
    EXPECT_TRUE(plan) << "at its bound " << f.bound << ": " << plan.status().to_string();
    std::vector<std::int64_t> bad{f.bound + 1};
    if (kInt32Max > f.bound + 1) bad.push_back(kInt32Max);  // INT32_MAX is the bound of num_pages
    if (f.is_64_bit) bad.push_back(std::numeric_limits<std::int64_t>::max());
    for (std::int64_t v : bad) {
      SCOPED_TRACE("value " + std::to_string(v));
      d = good;
      f.set(d, v);
      expect_refused<Op>(d, f.name);
    }
  }
}

// Setters for an int and an int64 field, and the paged-cache fields at `kv`.
#define KVS_INT(field, bound) \
  {#field, bound, [](auto& d, std::int64_t v) { d.field = static_cast<int>(v); }}
#define KVS_INT64(field, bound) \
  {#field, bound, [](auto& d, std::int64_t v) { d.field = v; }, {}, true}
// num_kv_heads at its bound needs as many query heads (the ratio must be whole).
#define KVS_PAGED_FIELDS(qo)                                                                        \
  KVS_INT(kv.page_size, kMaxPageSize), KVS_INT64(kv.num_pages, kMaxPages),                          \
      {"kv.num_kv_heads", kMaxHeads, [](auto& d, std::int64_t v) { d.kv.num_kv_heads = static_cast<int>(v); }, \
       [](auto& d, std::int64_t v) { d.qo = static_cast<int>(v); }},                                \
      KVS_INT(kv.head_dim, kMaxHeadDim)

const PagedKvDesc kKv{.page_size = 16, .num_pages = 64, .num_kv_heads = 2, .head_dim = 128, .dtype = DType::bf16};

TEST(DescriptorBounds, Attention) {
  expect_bounds<BatchPagedDecode>({.max_batch = 8, .num_qo_heads = 8, .kv = kKv, .q_dtype = DType::bf16},
                                  {KVS_INT(max_batch, kMaxBatch), KVS_INT(num_qo_heads, kMaxHeads),
                                   KVS_PAGED_FIELDS(num_qo_heads), KVS_INT(kv_split_tokens, kMaxSequenceLength),
                                   KVS_INT(attn.window_left, kMaxSequenceLength)});
  const auto kv_heads_at_bound = [](auto& d, std::int64_t v) { d.num_qo_heads = static_cast<int>(v); };
  expect_bounds<SingleDecode>(
      {.max_batch = 8, .num_qo_heads = 8, .num_kv_heads = 2, .head_dim = 128},
      {KVS_INT(max_batch, kMaxBatch), KVS_INT(num_qo_heads, kMaxHeads),
       {"num_kv_heads", kMaxHeads, [](auto& d, std::int64_t v) { d.num_kv_heads = static_cast<int>(v); },
        kv_heads_at_bound},
       KVS_INT(head_dim, kMaxHeadDim), KVS_INT(kv_split_tokens, kMaxSequenceLength),
       KVS_INT(attn.window_left, kMaxSequenceLength)});
  expect_bounds<SinglePrefill>(
      {.num_qo_heads = 8, .num_kv_heads = 2, .head_dim = 128},
      {KVS_INT(num_qo_heads, kMaxHeads),
       {"num_kv_heads", kMaxHeads, [](auto& d, std::int64_t v) { d.num_kv_heads = static_cast<int>(v); },
        kv_heads_at_bound},
       KVS_INT(head_dim, kMaxHeadDim), KVS_INT(head_dim_v, kMaxHeadDim), KVS_INT(attn.window_left, kMaxSequenceLength)});
  expect_bounds<BatchRaggedPrefill>(
      {.max_batch = 8, .num_qo_heads = 8, .num_kv_heads = 2, .head_dim = 128},
      {KVS_INT(max_batch, kMaxBatch), KVS_INT(num_qo_heads, kMaxHeads),
       {"num_kv_heads", kMaxHeads, [](auto& d, std::int64_t v) { d.num_kv_heads = static_cast<int>(v); },
        kv_heads_at_bound},
       KVS_INT(head_dim, kMaxHeadDim), KVS_INT(head_dim_v, kMaxHeadDim)});
  expect_bounds<BatchPagedPrefill>({.max_batch = 8, .num_qo_heads = 8, .kv = kKv, .q_dtype = DType::bf16},
                                   {KVS_INT(max_batch, kMaxBatch), KVS_INT(num_qo_heads, kMaxHeads),
                                    KVS_PAGED_FIELDS(num_qo_heads)});
  expect_bounds<CascadeAttention>(
      {.max_batch = 8, .max_groups = 2, .num_qo_heads = 8, .kv = kKv, .q_dtype = DType::bf16},
      {KVS_INT(max_batch, kMaxBatch), KVS_INT(max_groups, kMaxBatch), KVS_INT(num_qo_heads, kMaxHeads),
       KVS_PAGED_FIELDS(num_qo_heads)});
}

TEST(DescriptorBounds, MergeAndKvCache) {
  expect_bounds<MergeState>({.num_heads = 8, .head_dim = 128},
                            {KVS_INT(num_heads, kMaxHeads), KVS_INT(head_dim, kMaxRowWidth)});
  expect_bounds<MergeStates>({.num_heads = 8, .head_dim = 128},
                             {KVS_INT(num_heads, kMaxHeads), KVS_INT(head_dim, kMaxRowWidth)});
  expect_bounds<PagedKvAppend>({.kv = kKv, .dtype = DType::bf16},
                               {KVS_INT(kv.page_size, kMaxPageSize), KVS_INT64(kv.num_pages, kMaxPages),
                                KVS_INT(kv.num_kv_heads, kMaxHeads), KVS_INT(kv.head_dim, kMaxHeadDim)});
  expect_bounds<PagedMlaAppend>({.page_size = 16, .num_pages = 64},
                                {KVS_INT(page_size, kMaxPageSize), KVS_INT64(num_pages, kMaxPages),
                                 KVS_INT(ckv_dim, kMaxRowWidth), KVS_INT(kpe_dim, kMaxRowWidth)});
  expect_bounds<KvCacheAppend>({.num_kv_heads = 2, .head_dim = 128},
                               {KVS_INT(num_kv_heads, kMaxHeads), KVS_INT(head_dim, kMaxHeadDim)});
}

TEST(DescriptorBounds, SamplingFamily) {
  expect_bounds<Sampling>({.vocab = 1000, .max_batch = 8},
                          {KVS_INT(vocab, kMaxVocab), KVS_INT(max_batch, kMaxBatch)});
  expect_bounds<SamplingRenorm>({.vocab = 1000, .max_batch = 8},
                                {KVS_INT(vocab, kMaxVocab), KVS_INT(max_batch, kMaxBatch)});
  expect_bounds<ChainSpeculativeSampling>(
      {.vocab = 1000, .max_batch = 8, .num_draft_tokens = 4},
      {KVS_INT(vocab, kMaxVocab), KVS_INT(max_batch, kMaxBatch), KVS_INT(num_draft_tokens, kMaxDraftTokens)});
  expect_bounds<TokenPenalty>({.vocab = 1000, .max_batch = 8},
                              {KVS_INT(vocab, kMaxVocab), KVS_INT(max_batch, kMaxBatch)});
}

TEST(DescriptorBounds, NormAndGdn) {
  expect_bounds<RmsNorm>({.hidden_size = 4096}, {KVS_INT(hidden_size, kMaxRowWidth)});
  // A head count at its bound needs the other to divide it (GQA / GVA).
  expect_bounds<GdnPrefill>(
      {.max_batch = 8, .max_tokens = 1024, .num_qk_heads = 2, .num_v_heads = 4, .head_dim_k = 128,
       .head_dim_v = 128},
      {KVS_INT(max_batch, kMaxBatch), KVS_INT64(max_tokens, kMaxTokens), KVS_INT(num_qk_heads, kMaxHeads),
       KVS_INT(num_v_heads, kMaxHeads), KVS_INT(head_dim_k, kMaxHeadDim), KVS_INT(head_dim_v, kMaxHeadDim)});
}

TEST(DescriptorBounds, BlockManager) {
  for (std::int64_t pages : {kMaxPages + 1, std::numeric_limits<std::int64_t>::max()}) {
    const Status s = BlockManager::create(pages, 16).status();
    EXPECT_EQ(s.code(), StatusCode::invalid_argument);
    EXPECT_NE(s.message().find("'num_pages'"), std::string::npos) << s.message();
  }
  for (std::int64_t page_size : {std::int64_t{kMaxPageSize} + 1, kInt32Max}) {
    const Status s = BlockManager::create(16, static_cast<int>(page_size)).status();
    EXPECT_EQ(s.code(), StatusCode::invalid_argument);
    EXPECT_NE(s.message().find("'page_size'"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(BlockManager::create(16, kMaxPageSize));
}

// ---------------------------------------------- empty batches at the bounds --

// Stands in for the data of a tensor with no elements (a view needs a pointer
// to count as given).
unsigned char g_no_elements[16];

TensorView empty_view(DType dtype, std::initializer_list<std::int64_t> shape) {
  return TensorView::contiguous(g_no_elements, dtype, shape);
}

// A hang guard, not a speed test: the defects these replace took minutes
// (2^31 scheduled tasks) or overflowed; an empty batch must return at once.
template <class F>
void expect_returns_at_once(F&& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(DescriptorBounds, MergeStateOfNoTokensAtTheBounds) {
  auto plan = MergeStatePlan::create({.num_heads = kMaxHeads, .head_dim = kMaxRowWidth, .dtype = DType::f32},
                                     Device::cpu());
  ASSERT_TRUE(plan) << plan.status().to_string();
  const TensorView v = empty_view(DType::f32, {0, kMaxHeads, kMaxRowWidth});
  const TensorView lse = empty_view(DType::f32, {0, kMaxHeads});
  expect_returns_at_once([&] {
    const Status s = plan->run({.v_a = v, .lse_a = lse, .v_b = v, .lse_b = lse, .v_out = v, .lse_out = lse}, {});
    EXPECT_TRUE(s) << s.to_string();
  });
}

TEST(DescriptorBounds, SpeculativeSamplingOfNoRowsAtTheBounds) {
  auto plan = ChainSpeculativeSamplingPlan::create(
      {.vocab = kMaxVocab, .max_batch = kMaxBatch, .num_draft_tokens = kMaxDraftTokens}, Device::cpu());
  ASSERT_TRUE(plan) << plan.status().to_string();
  expect_returns_at_once([&] {
    const Status s = plan->run({.draft_token_ids = empty_view(DType::int32, {0, kMaxDraftTokens}),
                                .draft_probs = empty_view(DType::f32, {0, kMaxDraftTokens, kMaxVocab}),
                                .target_probs = empty_view(DType::f32, {0, kMaxDraftTokens + 1, kMaxVocab}),
                                .out = empty_view(DType::int32, {0, kMaxDraftTokens + 1})},
                               {});
    EXPECT_TRUE(s) << s.to_string();
  });
}

TEST(DescriptorBounds, GdnPrefillOfEmptySequencesAtTheBounds) {
  auto plan = GdnPrefillPlan::create({.max_batch = kMaxBatch, .max_tokens = kMaxTokens, .num_qk_heads = kMaxHeads,
                                      .num_v_heads = 1, .head_dim_k = kMaxHeadDim, .head_dim_v = kMaxHeadDim,
                                      .dtype = DType::f32},
                                     Device::cpu());
  ASSERT_TRUE(plan) << plan.status().to_string();
  const std::int32_t cu_seqlens[] = {0, 0, 0};
  const auto qk = empty_view(DType::f32, {0, kMaxHeads, kMaxHeadDim});
  expect_returns_at_once([&] {
    const Status s = plan->run({.q = qk, .k = qk, .v = empty_view(DType::f32, {0, 1, kMaxHeadDim}),
                                .alpha = empty_view(DType::f32, {0, kMaxHeads}),
                                .beta = empty_view(DType::f32, {0, kMaxHeads}),
                                .cu_seqlens = TensorView::contiguous(cu_seqlens, DType::int32, {3}),
                                .out = empty_view(DType::f32, {0, kMaxHeads, kMaxHeadDim})},
                               {});
    EXPECT_TRUE(s) << s.to_string();
  });
}

}  // namespace
}  // namespace kvserve
