// MergeState and MergeStates against the fp64 oracle on every test device:
// random states with empty (-inf) ones mixed in, in place and out of place,
// exact identity for empty states, and merged partial attention equal to
// attention over all keys. Plus their validation.
#include <cmath>
#include <limits>

#include "attention/attention_test_util.hpp"
#include "harness/harness.hpp"
#include "harness/validation.hpp"
#include "kvserve/merge.hpp"
#include "reference/oracle_merge.hpp"

namespace kvserve::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Random states: lse in [-8, 8], of which about one in four is -inf with a
// NaN v (an empty state's v may hold anything), and so are the first
// `empty_first` states, so that some rows have nothing to merge.
void fill_states(std::mt19937_64& rng, Buffer& v, Buffer& lse, int dim, std::int64_t empty_first) {
  v.fill_uniform(rng, -1, 1);
  lse.fill_uniform(rng, -8, 8);
  std::bernoulli_distribution empty(0.25);
  for (std::int64_t i = 0; i < lse.size(); ++i) {
    if (i >= empty_first && !empty(rng)) continue;
    lse.set(i, -kInf);
    for (int c = 0; c < dim; ++c) v.set(i * dim + c, std::nan(""));
  }
  v.upload();
  lse.upload();
}

struct MergeCase {
  DType dtype;
  std::int64_t tokens;
  int heads, dim;
};

std::string label(const MergeCase& c, Device device) {
  return std::string(name_of(c.dtype)) + " tokens=" + std::to_string(c.tokens) + " heads=" + std::to_string(c.heads) +
         " d=" + std::to_string(c.dim) + " on " + device.to_string();
}

void expect_states_merged(const MergeCase& c, std::int64_t n, Device device) {
  SCOPED_TRACE(label(c, device) + " N=" + std::to_string(n));
  auto rng = make_rng();
  const std::int64_t t = c.tokens;
  const int h = c.heads, d = c.dim;
  Buffer v(c.dtype, t * n * h * d, device), lse(DType::f32, t * n * h, device);
  fill_states(rng, v, lse, d, /*empty_first=*/n * h);  // all of token 0
  Buffer out(c.dtype, t * h * d, device), out_lse(DType::f32, t * h, device);
  out.poison();
  out_lse.poison();
  KVS_CREATE_OR_SKIP(plan, MergeStatesPlan, (MergeStatesDesc{.num_heads = h, .head_dim = d, .dtype = c.dtype}), device);
  const Status s = plan->run({.v = v.view({t, n, h, d}), .lse = lse.view({t, n, h}), .v_out = out.view({t, h, d}),
                              .lse_out = out_lse.view({t, h})},
                             {}, {});
  ASSERT_TRUE(s) << s.to_string();

  // The oracle wants [rows, n, dim]: row (token, head) gathers its n states.
  std::vector<double> sv, sl, ref, ref_lse;
  for (std::int64_t tok = 0; tok < t; ++tok)
    for (int head = 0; head < h; ++head)
      for (std::int64_t i = 0; i < n; ++i) {
        append(&sv, slice(v, ((tok * n + i) * h + head) * d, d));
        sl.push_back(lse.get((tok * n + i) * h + head));
      }
  oracle::merge_states(sv, sl, t * h, n, d, &ref, &ref_lse);
  expect_attention(out, out_lse, ref, ref_lse);
}

// MergeState out of place, or in place (v_out = v_a, lse_out = lse_a).
void expect_pair_merged(const MergeCase& c, bool in_place, Device device) {
  SCOPED_TRACE(label(c, device) + (in_place ? " in place" : " out of place"));
  auto rng = make_rng();
  const std::int64_t t = c.tokens;
  const int h = c.heads, d = c.dim;
  Buffer va(c.dtype, t * h * d, device), vb(va.dtype(), va.size(), device), la(DType::f32, t * h, device),
      lb(DType::f32, t * h, device);
  fill_states(rng, va, la, d, /*empty_first=*/h);  // token 0 has two empty states
  fill_states(rng, vb, lb, d, h);
  std::vector<double> sv, sl, ref, ref_lse;
  for (std::int64_t row = 0; row < t * h; ++row) {
    append(&sv, slice(va, row * d, d));
    append(&sv, slice(vb, row * d, d));
    sl.push_back(la.get(row));
    sl.push_back(lb.get(row));
  }
  oracle::merge_states(sv, sl, t * h, 2, d, &ref, &ref_lse);

  KVS_CREATE_OR_SKIP(plan, MergeStatePlan, (MergeStateDesc{.num_heads = h, .head_dim = d, .dtype = c.dtype}), device);
  Buffer out = in_place ? va : Buffer(c.dtype, t * h * d, device);
  Buffer out_lse = in_place ? la : Buffer(DType::f32, t * h, device);
  if (!in_place) {
    out.poison();
    out_lse.poison();
  }
  const Status s = plan->run({.v_a = va.view({t, h, d}), .lse_a = la.view({t, h}), .v_b = vb.view({t, h, d}),
                              .lse_b = lb.view({t, h}), .v_out = out.view({t, h, d}), .lse_out = out_lse.view({t, h})},
                             {}, {});
  ASSERT_TRUE(s) << s.to_string();
  expect_attention(out, out_lse, ref, ref_lse);
}

class MergeTest : public DeviceTest {};

TEST_P(MergeTest, MergeStatesDtypesAndCounts) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (std::int64_t n : {1, 3, 7}) expect_states_merged({t, 9, 3, 128}, n, GetParam());
  // More states than a CUDA thread loads at once, and more heads than one CUDA block holds.
  expect_states_merged({DType::f32, 3, 40, 256}, 19, GetParam());
  expect_states_merged({DType::bf16, 2, 70, 64}, 9, GetParam());
  expect_states_merged({DType::f32, 5, 2, 64}, 0, GetParam());  // nothing to merge: zeros and -inf
  expect_states_merged({DType::bf16, 0, 2, 64}, 4, GetParam());  // no tokens
}

TEST_P(MergeTest, MergeStateInPlaceAndOutOfPlace) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (bool in_place : {false, true}) expect_pair_merged({t, 17, 4, 64}, in_place, GetParam());
  expect_pair_merged({DType::f32, 3, 2, 80}, false, GetParam());
}

TEST_P(MergeTest, EmptyStateIsTheIdentity) {
  const Device device = GetParam();
  auto rng = make_rng();
  const std::int64_t t = 4;
  const int h = 2, d = 64;
  Buffer va(DType::bf16, t * h * d, device), vb(va.dtype(), va.size(), device), la(DType::f32, t * h, device),
      lb(DType::f32, t * h, device);
  vb.fill_uniform(rng, -1, 1);
  lb.fill_uniform(rng, -30, 30);
  // a is empty everywhere, with garbage in v; in the last token b is empty too.
  for (std::int64_t i = 0; i < va.size(); ++i) va.set(i, std::nan(""));
  for (std::int64_t i = 0; i < la.size(); ++i) la.set(i, -kInf);
  for (std::int64_t i = (t - 1) * h; i < t * h; ++i) lb.set(i, -kInf);
  va.upload();
  la.upload();
  lb.upload();
  KVS_CREATE_OR_SKIP(plan, MergeStatePlan, (MergeStateDesc{.num_heads = h, .head_dim = d, .dtype = DType::bf16}),
                     device);
  Buffer out(DType::bf16, va.size(), device), out_lse(DType::f32, t * h, device);
  for (bool a_first : {true, false}) {
    SCOPED_TRACE(a_first ? "merge(empty, b)" : "merge(b, empty)");
    out.poison();
    out_lse.poison();
    const Buffer& first = a_first ? va : vb;
    const Buffer& first_lse = a_first ? la : lb;
    const Buffer& second = a_first ? vb : va;
    const Buffer& second_lse = a_first ? lb : la;
    ASSERT_TRUE(plan->run({.v_a = first.view({t, h, d}), .lse_a = first_lse.view({t, h}),
                           .v_b = second.view({t, h, d}), .lse_b = second_lse.view({t, h}),
                           .v_out = out.view({t, h, d}), .lse_out = out_lse.view({t, h})},
                          {}, {}));
    synchronize(device);
    out.download();
    out_lse.download();
    for (std::int64_t row = 0; row < t * h; ++row) {
      const bool both_empty = row >= (t - 1) * h;
      EXPECT_EQ(out_lse.get(row), both_empty ? -kInf : lb.get(row)) << "row " << row;
      for (int c = 0; c < d; ++c)
        ASSERT_EQ(out.get(row * d + c), both_empty ? 0.0 : vb.get(row * d + c)) << "row " << row << " col " << c;
    }
  }
}

// Attention over keys [0, split) merged with attention over [split, L) is
// attention over [0, L).
TEST_P(MergeTest, MergedPartialAttentionEqualsWholeAttention) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int hq = 8, hkv = 2, d = 64;
  const std::int64_t q_len = 6, kv_len = 50, split = 19;
  std::uniform_real_distribution<double> u(-1, 1);
  const auto random = [&](std::int64_t n) {
    std::vector<double> x(static_cast<std::size_t>(n));
    for (double& e : x) e = u(rng);
    return x;
  };
  const std::vector<double> q = random(q_len * hq * d), k = random(kv_len * hkv * d), v = random(kv_len * hkv * d);
  const oracle::AttentionSpec spec = attention_spec(hq, hkv, d, d, {}, /*causal=*/false);
  std::vector<double> whole, whole_lse, part[2], part_lse[2];
  oracle::attention(spec, q, k, v, q_len, kv_len, &whole, &whole_lse);
  const std::int64_t cut = split * hkv * d;
  oracle::attention(spec, q, {k.begin(), k.begin() + cut}, {v.begin(), v.begin() + cut}, q_len, split, &part[0],
                    &part_lse[0]);
  oracle::attention(spec, q, {k.begin() + cut, k.end()}, {v.begin() + cut, v.end()}, q_len, kv_len - split, &part[1],
                    &part_lse[1]);
  Buffer v_part[2], lse_part[2];
  for (int i = 0; i < 2; ++i) {
    v_part[i] = Buffer(DType::f32, q_len * hq * d, device);
    lse_part[i] = Buffer(DType::f32, q_len * hq, device);
    for (std::size_t e = 0; e < part[i].size(); ++e) v_part[i].set(static_cast<std::int64_t>(e), part[i][e]);
    for (std::size_t e = 0; e < part_lse[i].size(); ++e) lse_part[i].set(static_cast<std::int64_t>(e), part_lse[i][e]);
    v_part[i].upload();
    lse_part[i].upload();
  }
  KVS_CREATE_OR_SKIP(plan, MergeStatePlan, (MergeStateDesc{.num_heads = hq, .head_dim = d, .dtype = DType::f32}),
                     device);
  Buffer out(DType::f32, q_len * hq * d, device), out_lse(DType::f32, q_len * hq, device);
  out.poison();
  out_lse.poison();
  ASSERT_TRUE(plan->run({.v_a = v_part[0].view({q_len, hq, d}), .lse_a = lse_part[0].view({q_len, hq}),
                         .v_b = v_part[1].view({q_len, hq, d}), .lse_b = lse_part[1].view({q_len, hq}),
                         .v_out = out.view({q_len, hq, d}), .lse_out = out_lse.view({q_len, hq})},
                        {}, {}));
  expect_attention(out, out_lse, whole, whole_lse);
}

TEST_P(MergeTest, MergeStateValidation) {
  using Op = MergeState;
  const Device device = GetParam();
  const MergeStateDesc desc{.num_heads = 2, .head_dim = 64, .dtype = DType::bf16};
  expect_desc_faults_refused<Op>(desc, {{"num_heads", [](auto& d) { d.num_heads = 0; }},
                                        {"head_dim", [](auto& d) { d.head_dim = -64; }},
                                        {"dtype", [](auto& d) { d.dtype = DType::fp8_e4m3; }}});
  KVS_CREATE_OR_SKIP(plan, MergeStatePlan, desc, device);
  auto rng = make_rng();
  const std::int64_t t = 3;
  Buffer va(DType::bf16, t * 2 * 64, device), vb(va.dtype(), va.size(), device), la(DType::f32, t * 2, device),
      lb(DType::f32, t * 2, device), out(va.dtype(), va.size(), device), out_lse(DType::f32, t * 2, device);
  // One buffer holding two [t, 2, 64] tensors side by side, to make overlaps.
  Buffer wide(DType::bf16, 2 * va.size(), device);
  for (Buffer* b : {&va, &vb, &la, &lb, &wide}) b->fill_uniform(rng, -1, 1);
  const MergeStateArgs good{.v_a = va.view({t, 2, 64}), .lse_a = la.view({t, 2}), .v_b = vb.view({t, 2, 64}),
                            .lse_b = lb.view({t, 2}), .v_out = out.view({t, 2, 64}), .lse_out = out_lse.view({t, 2})};
  auto faults = tensor_faults<Op>({{"v_a", [](auto& a) -> TensorView& { return a.v_a; }},
                                   {"lse_a", [](auto& a) -> TensorView& { return a.lse_a; }},
                                   {"v_b", [](auto& a) -> TensorView& { return a.v_b; }},
                                   {"lse_b", [](auto& a) -> TensorView& { return a.lse_b; }},
                                   {"v_out", [](auto& a) -> TensorView& { return a.v_out; }},
                                   {"lse_out", [](auto& a) -> TensorView& { return a.lse_out; }, true}},
                                  device);
  // v_a and v_out interleaved in `wide` (token stride 256): a partial overlap.
  const TensorView a_in_wide = wide.view_strided({t, 2, 64}, {256, 64, 1});
  TensorView out_in_wide = a_in_wide;
  out_in_wide.data = static_cast<char*>(out_in_wide.data) + 64 * size_of(DType::bf16);
  faults.push_back({"v_out overlapping v_a", "v_out", "'v_a'", [=](auto& a, auto&) {
                      a.v_a = a_in_wide;
                      a.v_out = out_in_wide;
                    }});
  faults.push_back({"lse_out inside v_out", "lse_out", "'v_out'", [](auto& a, auto&) {
                      a.lse_out = TensorView::contiguous(a.v_out.data, DType::f32, {3, 2}, a.v_out.device);
                    }});
  expect_arg_faults_refused(*plan, good, faults, {out, out_lse}, {});
}

TEST_P(MergeTest, MergeStatesValidation) {
  using Op = MergeStates;
  const Device device = GetParam();
  const MergeStatesDesc desc{.num_heads = 2, .head_dim = 32, .dtype = DType::f16};
  expect_desc_faults_refused<Op>(desc, {{"num_heads", [](auto& d) { d.num_heads = -1; }},
                                        {"head_dim", [](auto& d) { d.head_dim = 0; }},
                                        {"dtype", [](auto& d) { d.dtype = DType::int32; }}});
  KVS_CREATE_OR_SKIP(plan, MergeStatesPlan, desc, device);
  auto rng = make_rng();
  const std::int64_t t = 3, n = 4;
  Buffer v(DType::f16, t * n * 2 * 32, device), lse(DType::f32, t * n * 2, device), out(DType::f16, t * 2 * 32, device),
      out_lse(DType::f32, t * 2, device);
  v.fill_uniform(rng, -1, 1);
  lse.fill_uniform(rng, -1, 1);
  const MergeStatesArgs good{.v = v.view({t, n, 2, 32}), .lse = lse.view({t, n, 2}), .v_out = out.view({t, 2, 32}),
                             .lse_out = out_lse.view({t, 2})};
  auto faults = tensor_faults<Op>({{"v", [](auto& a) -> TensorView& { return a.v; }},
                                   {"lse", [](auto& a) -> TensorView& { return a.lse; }},
                                   {"v_out", [](auto& a) -> TensorView& { return a.v_out; }},
                                   {"lse_out", [](auto& a) -> TensorView& { return a.lse_out; }, true}},
                                  device);
  faults.push_back({"v_out inside v", "v_out", "'v'", [](auto& a, auto&) { a.v_out.data = a.v.data; }});
  expect_arg_faults_refused(*plan, good, faults, {out, out_lse}, {});
}

INSTANTIATE_TEST_SUITE_P(Devices, MergeTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
