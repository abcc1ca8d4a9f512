// BatchPagedPrefill against the fp64 oracle on every test device: chunked
// prefill over a paged cache (queries are the last q_len positions).
#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"
#include "reference/paged_cache.hpp"

namespace kvserve::test {
namespace {

struct PagedPrefillCase {
  DType q_dtype, kv_dtype;
  int head_dim, num_kv_heads, group, page_size;
  KvLayout layout;
  std::vector<std::int64_t> q_lens, kv_lens;
  bool causal = true;
  AttentionParams attn = {};
  std::vector<float> k_scale = {}, v_scale = {};
};

void run_case(const PagedPrefillCase& c, Device device) {
  const int hq = c.num_kv_heads * c.group, hkv = c.num_kv_heads, d = c.head_dim;
  SCOPED_TRACE(attention_label(c.q_dtype, d, d, hkv, c.group, c.attn, device) + " kv=" +
               std::string(name_of(c.kv_dtype)) + " page=" + std::to_string(c.page_size) + " " +
               std::string(name_of(c.layout)) + (c.causal ? " causal" : ""));
  auto rng = make_rng();
  PagedKvDesc kvd{.page_size = c.page_size, .num_kv_heads = hkv, .head_dim = d, .dtype = c.kv_dtype,
                  .layout = c.layout, .k_scale = c.k_scale, .v_scale = c.v_scale};
  const PagedCache cache = make_paged_cache(rng, kvd, c.kv_lens, device);
  std::vector<std::int32_t> qo_indptr{0};
  for (std::int64_t l : c.q_lens) qo_indptr.push_back(qo_indptr.back() + static_cast<std::int32_t>(l));
  const std::int64_t batch = static_cast<std::int64_t>(c.q_lens.size()), total_q = qo_indptr.back();
  Buffer q(c.q_dtype, total_q * hq * d, device), out(c.q_dtype, total_q * hq * d, device),
      lse(DType::f32, total_q * hq, device);
  q.fill_uniform(rng, -2, 2);
  expect_nonzero(q.values(), "q");
  expect_nonzero(cache.k.values(), "k pool");
  out.poison();
  lse.poison();
  Buffer qo_dev = int_buffer(qo_indptr, device);

  BatchPagedPrefillDesc desc{.max_batch = static_cast<int>(batch), .num_qo_heads = hq, .kv = cache.desc,
                             .q_dtype = c.q_dtype, .causal = c.causal, .attn = c.attn};
  KVS_CREATE_OR_SKIP(plan, BatchPagedPrefillPlan, desc, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  ASSERT_TRUE(plan->prepare({qo_indptr, cache.lengths()}, workspace_of(ws), {}));
  const Status s = plan->run({.q = q.view({total_q, hq, d}), .qo_indptr = qo_dev.view({batch + 1}), .kv = cache.view(),
                              .out = out.view({total_q, hq, d}), .lse = lse.view({total_q, hq})},
                             workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();

  const oracle::AttentionSpec spec = attention_spec(hq, hkv, d, d, c.attn, c.causal);
  ReferenceAttention ref;
  for (std::int64_t b = 0; b < batch; ++b) {
    ref.add(spec, slice(q, qo_indptr[b] * hq * d, c.q_lens[b] * hq * d), cache.keys(b), cache.values(b), c.q_lens[b],
            c.kv_lens[b]);
  }
  expect_attention(out, lse, ref);
}

class BatchPagedPrefillTest : public DeviceTest {};

TEST_P(BatchPagedPrefillTest, DtypesAndHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {64, 128, 256, 96})
      run_case({t, t, d, 2, 2, 16, KvLayout::NHD, {1, 8, 20}, {1, 40, 20}}, GetParam());
}

TEST_P(BatchPagedPrefillTest, ChunksPagesAndLayouts) {
  // An empty request, a one-page request, a full last page, a chunk in the
  // middle of a long request, one spanning several query blocks.
  for (KvLayout layout : {KvLayout::NHD, KvLayout::HND}) {
    run_case({DType::bf16, DType::bf16, 128, 2, 4, 16, layout, {0, 5, 16, 7, 130}, {0, 9, 32, 100, 140}}, GetParam());
    run_case({DType::bf16, DType::bf16, 64, 2, 4, 1, layout, {3, 6}, {3, 11}, false}, GetParam());
  }
}

TEST_P(BatchPagedPrefillTest, GqaRatios) {
  for (int group : {1, 4, 5, 8})
    run_case({DType::bf16, DType::bf16, 64, 2, group, 8, KvLayout::NHD, {6, 2}, {20, 17}}, GetParam());
}

TEST_P(BatchPagedPrefillTest, SoftCapSlidingWindowAndFp8Cache) {
  run_case({DType::bf16, DType::bf16, 128, 2, 4, 16, KvLayout::NHD, {20, 9}, {70, 9}, true,
            {.logits_soft_cap = 30.f, .window_left = 10}},
           GetParam());
  run_case({DType::f16, DType::fp8_e4m3, 128, 2, 2, 16, KvLayout::HND, {12, 4}, {50, 4}, true, {}, {0.5f}, {2.f}},
           GetParam());
}

INSTANTIATE_TEST_SUITE_P(Devices, BatchPagedPrefillTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
