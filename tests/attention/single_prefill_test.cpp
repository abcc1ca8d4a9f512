// SinglePrefill against the fp64 oracle on every test device: NHD and HND,
// causal or not, a V head dim different from the QK one, masked rows.
#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"

namespace kvserve::test {
namespace {

struct SinglePrefillCase {
  DType dtype;
  int head_dim, head_dim_v, num_kv_heads, group;
  std::int64_t q_len, kv_len;
  KvLayout layout;
  bool causal;
  AttentionParams attn = {};
};

void run_case(const SinglePrefillCase& c, Device device) {
  const int hq = c.num_kv_heads * c.group, hkv = c.num_kv_heads, d = c.head_dim, dv = c.head_dim_v;
  SCOPED_TRACE(attention_label(c.dtype, d, dv, hkv, c.group, c.attn, device) + " " + std::string(name_of(c.layout)) +
               " q_len=" + std::to_string(c.q_len) + " kv_len=" + std::to_string(c.kv_len) +
               (c.causal ? " causal" : ""));
  auto rng = make_rng();
  const bool nhd = c.layout == KvLayout::NHD;
  const std::int64_t lq = c.q_len, lkv = c.kv_len;
  Buffer q(c.dtype, lq * hq * d, device), k(c.dtype, lkv * hkv * d, device), v(c.dtype, lkv * hkv * dv, device);
  Buffer out(c.dtype, lq * hq * dv, device), lse(DType::f32, lq * hq, device);
  q.fill_uniform(rng, -2, 2);
  k.fill_uniform(rng, -1, 1);
  v.fill_uniform(rng, -1, 1);
  expect_nonzero(q.values(), "q");
  out.poison();
  lse.poison();

  SinglePrefillDesc desc{.num_qo_heads = hq, .num_kv_heads = hkv, .head_dim = d, .head_dim_v = dv == d ? 0 : dv,
                         .dtype = c.dtype, .layout = c.layout, .causal = c.causal, .attn = c.attn};
  KVS_CREATE_OR_SKIP(plan, SinglePrefillPlan, desc, device);
  DeviceMemory ws(device, plan->workspace_bytes());
  const auto kv_view = [&](const Buffer& b, int dim) {
    return nhd ? b.view({lkv, hkv, dim}) : b.view({hkv, lkv, dim});
  };
  const Status s = plan->run({.q = q.view({lq, hq, d}), .k = kv_view(k, d), .v = kv_view(v, dv),
                              .out = out.view({lq, hq, dv}), .lse = lse.view({lq, hq})},
                             workspace_of(ws), {});
  ASSERT_TRUE(s) << s.to_string();

  // The oracle takes token-major (NHD) keys.
  const auto token_major = [&](const Buffer& b, int dim) {
    if (nhd) return b.values();
    std::vector<double> t;
    for (std::int64_t j = 0; j < lkv; ++j)
      for (int h = 0; h < hkv; ++h) append(&t, slice(b, (h * lkv + j) * dim, dim));
    return t;
  };
  std::vector<double> ref_out, ref_lse;
  oracle::attention(attention_spec(hq, hkv, d, dv, c.attn, c.causal), q.values(), token_major(k, d),
                    token_major(v, dv), lq, lkv, &ref_out, &ref_lse);
  expect_attention(out, lse, ref_out, ref_lse);
}

class SinglePrefillTest : public DeviceTest {};

TEST_P(SinglePrefillTest, DtypesAndHeadDims) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int d : {64, 128, 256, 96}) run_case({t, d, d, 2, 2, 20, 45, KvLayout::NHD, true}, GetParam());
}

TEST_P(SinglePrefillTest, LayoutsAndCausality) {
  for (KvLayout layout : {KvLayout::NHD, KvLayout::HND})
    for (bool causal : {false, true}) run_case({DType::bf16, 128, 128, 2, 4, 70, 70, layout, causal}, GetParam());
}

TEST_P(SinglePrefillTest, GqaRatios) {
  for (int group : {1, 4, 5, 8}) run_case({DType::bf16, 64, 64, 2, group, 9, 30, KvLayout::HND, true}, GetParam());
}

TEST_P(SinglePrefillTest, ValueHeadDimDiffers) {
  run_case({DType::bf16, 192, 128, 2, 2, 33, 40, KvLayout::NHD, true}, GetParam());
  run_case({DType::f16, 64, 128, 1, 4, 8, 25, KvLayout::HND, false}, GetParam());
}

TEST_P(SinglePrefillTest, MoreQueriesThanKeysMasksTheFirstRows) {
  run_case({DType::f32, 64, 64, 1, 2, 12, 5, KvLayout::NHD, true}, GetParam());
  run_case({DType::f32, 64, 64, 1, 2, 4, 0, KvLayout::NHD, false}, GetParam());
}

TEST_P(SinglePrefillTest, SoftCapAndSlidingWindow) {
  run_case({DType::bf16, 128, 128, 2, 4, 40, 100, KvLayout::NHD, true, {.logits_soft_cap = 30.f, .window_left = 16}},
           GetParam());
  run_case({DType::f16, 64, 64, 2, 2, 30, 30, KvLayout::HND, false, {.window_left = 3}}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Devices, SinglePrefillTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
