// BatchRaggedPrefill against the fp64 oracle on every test device: packed
// requests with empty, short and long query / key runs.
#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"

namespace kvserve::test {
namespace {

struct RaggedCase {
  DType dtype;
  int head_dim, head_dim_v, num_kv_heads, group;
  std::vector<std::int32_t> q_lens, kv_lens;
  bool causal;
  AttentionParams attn = {};
};

std::vector<std::int32_t> offsets(const std::vector<std::int32_t>& lens) {
  std::vector<std::int32_t> o{0};
  for (std::int32_t l : lens) o.push_back(o.back() + l);
  return o;
}

void run_case(const RaggedCase& c, Device device) {
  const int hq = c.num_kv_heads * c.group, hkv = c.num_kv_heads, d = c.head_dim, dv = c.head_dim_v;
  SCOPED_TRACE(attention_label(c.dtype, d, dv, hkv, c.group, c.attn, device) + (c.causal ? " causal" : ""));
  auto rng = make_rng();
  const std::vector<std::int32_t> qo_indptr = offsets(c.q_lens), kv_indptr = offsets(c.kv_lens);
  const std::int64_t batch = static_cast<std::int64_t>(c.q_lens.size());
  const std::int64_t total_q = qo_indptr.back(), total_kv = kv_indptr.back();
  Buffer q(c.dtype, total_q * hq * d, device), k(c.dtype, total_kv * hkv * d, device),
      v(c.dtype, total_kv * hkv * dv, device);
  Buffer out(c.dtype, total_q * hq * dv, device), lse(DType::f32, total_q * hq, device);
  q.fill_uniform(rng, -2, 2);
  k.fill_uniform(rng, -1, 1);
  v.fill_uniform(rng, -1, 1);
  expect_nonzero(q.values(), "q");
  expect_nonzero(k.values(), "k");
  out.poison();
  lse.poison();
  Buffer qo_dev = int_buffer(qo_indptr, device), kv_dev = int_buffer(kv_indptr, device);

  BatchRaggedPrefillDesc desc{.max_batch = static_cast<int>(batch) + 1, .num_qo_heads = hq, .num_kv_heads = hkv,
                              .head_dim = d, .head_dim_v = dv == d ? 0 : dv, .dtype = c.dtype, .causal = c.causal,
                              .attn = c.attn};
  KVS_CREATE_OR_SKIP(plan, BatchRaggedPrefillPlan, desc, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  ASSERT_TRUE(plan->prepare({qo_indptr, kv_indptr}, workspace_of(ws), {}));
  const Status s = plan->run({.q = q.view({total_q, hq, d}), .k = k.view({total_kv, hkv, d}),
                              .v = v.view({total_kv, hkv, dv}), .qo_indptr = qo_dev.view({batch + 1}),
                              .kv_indptr = kv_dev.view({batch + 1}), .out = out.view({total_q, hq, dv}),
                              .lse = lse.view({total_q, hq})},
                             workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();

  const oracle::AttentionSpec spec = attention_spec(hq, hkv, d, dv, c.attn, c.causal);
  ReferenceAttention ref;
  for (std::int64_t b = 0; b < batch; ++b) {
    ref.add(spec, slice(q, qo_indptr[b] * hq * d, c.q_lens[b] * hq * d),
            slice(k, kv_indptr[b] * hkv * d, c.kv_lens[b] * hkv * d),
            slice(v, kv_indptr[b] * hkv * dv, c.kv_lens[b] * hkv * dv), c.q_lens[b], c.kv_lens[b]);
  }
  expect_attention(out, lse, ref);
}

class BatchRaggedPrefillTest : public DeviceTest {};

TEST_P(BatchRaggedPrefillTest, DtypesAndHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {64, 128, 256, 80})
      run_case({t, d, d, 2, 2, {7, 1, 20}, {30, 1, 20}, true}, GetParam());
}

TEST_P(BatchRaggedPrefillTest, EmptyAndUnevenRequests) {
  // Request 1 has no queries, request 2 no keys (its rows see nothing), request
  // 3 more queries than keys (its first rows are masked), request 4 spans
  // several query blocks.
  run_case({DType::bf16, 128, 128, 2, 4, {5, 0, 3, 9, 150}, {17, 8, 0, 4, 160}, true}, GetParam());
  run_case({DType::bf16, 128, 128, 2, 4, {5, 0, 3, 9}, {17, 8, 0, 4}, false}, GetParam());
}

TEST_P(BatchRaggedPrefillTest, GqaRatiosAndValueHeadDim) {
  for (int group : {1, 4, 5, 8}) run_case({DType::bf16, 64, 64, 1, group, {6, 13}, {6, 40}, true}, GetParam());
  run_case({DType::bf16, 192, 128, 2, 2, {10, 4}, {30, 4}, true}, GetParam());
}

TEST_P(BatchRaggedPrefillTest, SoftCapAndSlidingWindow) {
  run_case({DType::f32, 64, 64, 2, 2, {12, 30}, {40, 30}, true, {.logits_soft_cap = 10.f, .window_left = 5}},
           GetParam());
  run_case({DType::f16, 64, 64, 2, 2, {12}, {12}, false, {.window_left = 0}}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Devices, BatchRaggedPrefillTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
