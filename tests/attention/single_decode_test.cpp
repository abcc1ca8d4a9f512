// SingleDecode against the fp64 oracle on every test device: strided caches,
// a broadcast KV head (head stride 0), per-row kv_len.
#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"

namespace kvserve::test {
namespace {

struct SingleDecodeCase {
  DType dtype;
  int head_dim, num_kv_heads, group;
  std::int64_t max_len;               // L
  std::vector<std::int64_t> kv_lens;  // per row; empty: every row uses all L
  AttentionParams attn = {};
  bool broadcast_head = false;  // one stored KV head viewed with head stride 0
  std::int64_t padded_len = 0;  // > L: rows of the stored cache are longer than L (a strided view)
};

void run_case(const SingleDecodeCase& c, Device device) {
  const int hq = c.num_kv_heads * c.group, d = c.head_dim, hkv = c.num_kv_heads;
  SCOPED_TRACE(attention_label(c.dtype, d, d, hkv, c.group, c.attn, device) +
               (c.broadcast_head ? " broadcast" : "") + " L=" + std::to_string(c.max_len));
  auto rng = make_rng();
  const std::int64_t batch = c.kv_lens.empty() ? 3 : static_cast<std::int64_t>(c.kv_lens.size());
  const std::int64_t L = c.max_len, stored_len = std::max(c.padded_len, L);
  const std::int64_t stored_heads = c.broadcast_head ? 1 : hkv;
  // Stored cache [B, stored_heads, stored_len, D], viewed as [B, hkv, L, D].
  const std::int64_t head_stride = c.broadcast_head ? 0 : stored_len * d;
  Buffer k(c.dtype, batch * stored_heads * stored_len * d, device), v(k.dtype(), k.size(), device);
  k.fill_uniform(rng, -1, 1);
  v.fill_uniform(rng, -1, 1);
  const auto cache_view = [&](const Buffer& b) {
    return b.view_strided({batch, hkv, L, d}, {stored_heads * stored_len * d, head_stride, d, 1});
  };
  Buffer kv_len;
  if (!c.kv_lens.empty()) kv_len = int_buffer(std::vector<std::int32_t>(c.kv_lens.begin(), c.kv_lens.end()), device);

  SingleDecodeDesc desc{.max_batch = static_cast<int>(batch), .num_qo_heads = hq, .num_kv_heads = hkv,
                        .head_dim = d, .dtype = c.dtype, .attn = c.attn};
  KVS_CREATE_OR_SKIP(plan, SingleDecodePlan, desc, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  Buffer q(c.dtype, batch * hq * d, device), out(c.dtype, batch * hq * d, device), lse(DType::f32, batch * hq, device);
  q.fill_uniform(rng, -2, 2);
  expect_nonzero(q.values(), "q");
  expect_nonzero(k.values(), "k");
  out.poison();
  lse.poison();
  const Status s = plan->run({.q = q.view({batch, hq, d}), .k = cache_view(k), .v = cache_view(v),
                              .kv_len = c.kv_lens.empty() ? TensorView{} : kv_len.view({batch}),
                              .out = out.view({batch, hq, d}), .lse = lse.view({batch, hq})},
                             workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();

  const oracle::AttentionSpec spec = attention_spec(hq, hkv, d, d, c.attn, /*causal=*/true);
  ReferenceAttention ref;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t len = c.kv_lens.empty() ? L : c.kv_lens[b];
    std::vector<double> keys, values;  // [len, hkv, d]
    for (std::int64_t j = 0; j < len; ++j)
      for (int h = 0; h < hkv; ++h) {
        const std::int64_t at = b * stored_heads * stored_len * d + h * head_stride + j * d;
        append(&keys, slice(k, at, d));
        append(&values, slice(v, at, d));
      }
    ref.add(spec, slice(q, b * hq * d, hq * d), keys, values, 1, len);
  }
  expect_attention(out, lse, ref);
}

class SingleDecodeTest : public DeviceTest {};

TEST_P(SingleDecodeTest, DtypesAndHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {64, 128, 256}) run_case({t, d, 2, 4, 70, {}}, GetParam());
}

// Head dims beyond 64/128/256 (the CPU serves them; a GPU build without their
// kernels skips visibly).
TEST_P(SingleDecodeTest, OtherHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {80, 96}) run_case({t, d, 2, 4, 70, {}}, GetParam());
}

TEST_P(SingleDecodeTest, GqaRatios) {
  for (int group : {1, 4, 5, 8}) run_case({DType::bf16, 128, 2, group, 50, {}}, GetParam());
}

TEST_P(SingleDecodeTest, PerRowLengthsIncludingZeroAndOne) {
  run_case({DType::f16, 128, 2, 4, 40, {0, 1, 40, 17}}, GetParam());
}

TEST_P(SingleDecodeTest, StridedAndBroadcastCache) {
  run_case({DType::bf16, 64, 4, 2, 33, {33, 5, 12}, {}, /*broadcast_head=*/false, /*padded_len=*/48}, GetParam());
  run_case({DType::f32, 128, 4, 2, 33, {}, {}, /*broadcast_head=*/true}, GetParam());
}

TEST_P(SingleDecodeTest, SoftCapAndSlidingWindow) {
  run_case({DType::bf16, 128, 2, 4, 90, {90, 3}, {.logits_soft_cap = 20.f}}, GetParam());
  run_case({DType::f32, 64, 1, 8, 90, {90, 10, 0}, {.window_left = 7}}, GetParam());
  run_case({DType::f16, 64, 2, 2, 30, {}, {.sm_scale = 0.3f, .logits_soft_cap = 5.f, .window_left = 0}}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Devices, SingleDecodeTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
