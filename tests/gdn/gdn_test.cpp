// GdnPrefill (gated delta rule) against the fp64 oracle on every test device;
// chained runs (state handed from one run to the next) against one long run;
// validation.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "gdn/gdn_test_util.hpp"
#include "harness/harness.hpp"
#include "kvserve/gdn.hpp"
#include "reference/oracle_gdn.hpp"

namespace kvserve::test {
namespace {

struct OracleCase {
  GdnShape shape;
  std::vector<std::int64_t> lens;
  bool initial_state = true;
  Gates gates = Gates::random;
  RunOptions options = {};
};

void run_oracle_case(const OracleCase& c, Device device) {
  SCOPED_TRACE(label(c.shape, device) + (c.initial_state ? " with initial state" : ""));
  auto rng = make_rng();
  const auto cu = offsets_of(c.lens);
  const std::int64_t batch = static_cast<std::int64_t>(c.lens.size()), tokens = cu.back();
  KVS_CREATE_OR_SKIP(plan, GdnPrefillPlan, desc_of(c.shape, batch, tokens), device);
  const GdnInputs in = random_inputs(rng, c.shape, tokens, c.gates);
  const std::vector<double> initial = c.initial_state ? random_state(rng, c.shape, batch) : std::vector<double>{};
  if (tokens > 0) {
    expect_nonzero(in.q, "q");
    expect_nonzero(in.k, "k");
    expect_nonzero(in.v, "v");
  }
  GdnResult got;
  run_gdn(*plan, c.shape, in, cu, initial, c.options, device, &got);
  if (::testing::Test::HasFatalFailure()) return;
  std::vector<double> ref_out, ref_final;
  oracle::gdn_prefill(spec_of(c.shape), in.q, in.k, in.v, in.alpha, in.beta, cu, initial, &ref_out, &ref_final);
  expect_close(got.out, ref_out, c.shape.dtype, "out");
  if (c.options.want_final) expect_close(got.final_state, ref_final, DType::f32, "final_state");
}

class GdnPrefillTest : public DeviceTest {};

TEST_P(GdnPrefillTest, DtypesAgainstOracle) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (bool initial : {false, true})
      run_oracle_case({.shape = {.dtype = t}, .lens = {0, 1, 17, 40}, .initial_state = initial}, GetParam());
}

TEST_P(GdnPrefillTest, HeadRatiosGvaAndGqa) {
  // (hqk, hv): equal, GVA 2 / 3 / 4 (more v heads), GQA 2 / 3 / 4 (more q/k heads).
  const std::pair<int, int> ratios[] = {{1, 1}, {3, 3}, {2, 4}, {2, 6}, {1, 4}, {4, 2}, {6, 2}, {4, 1}};
  for (auto [hqk, hv] : ratios)
    run_oracle_case({.shape = {.dtype = DType::bf16, .hqk = hqk, .hv = hv, .dk = 32, .dv = 48}, .lens = {3, 0, 25}},
                    GetParam());
}

TEST_P(GdnPrefillTest, HeadDims) {
  for (auto [dk, dv] : {std::pair{128, 128}, {16, 256}, {256, 16}, {96, 64}})
    run_oracle_case({.shape = {.dtype = DType::f32, .hqk = 1, .hv = 2, .dk = dk, .dv = dv}, .lens = {9, 1}},
                    GetParam());
}

TEST_P(GdnPrefillTest, GateEdgeCases) {
  // alpha = 1: the plain delta rule; beta = 0: nothing is written, the state
  // only decays (out is exactly 0 without an initial state).
  for (Gates g : {Gates::alpha_one, Gates::beta_zero})
    for (bool initial : {false, true})
      run_oracle_case({.shape = {.dtype = DType::bf16}, .lens = {30, 1, 0}, .initial_state = initial, .gates = g},
                      GetParam());
}

TEST_P(GdnPrefillTest, InKernelQkL2NormAndScale) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    run_oracle_case({.shape = {.dtype = t, .hqk = 2, .hv = 4, .l2norm = true}, .lens = {21, 2}}, GetParam());
  run_oracle_case({.shape = {.dtype = DType::bf16, .l2norm = true, .scale = 0.37f}, .lens = {12}}, GetParam());
  run_oracle_case({.shape = {.dtype = DType::f32, .scale = 1.5f}, .lens = {5, 8}}, GetParam());
}

TEST_P(GdnPrefillTest, StridedViewsStateInPlaceAndNoFinalState) {
  run_oracle_case({.shape = {.dtype = DType::bf16, .hqk = 2, .hv = 4}, .lens = {19, 0, 7},
                   .options = {.fused_layout = true}},
                  GetParam());
  run_oracle_case({.shape = {.dtype = DType::f16, .hqk = 4, .hv = 2}, .lens = {11, 4},
                   .options = {.state_in_place = true}},
                  GetParam());
  run_oracle_case({.shape = {.dtype = DType::f32}, .lens = {6, 3}, .options = {.want_final = false}}, GetParam());
}

TEST_P(GdnPrefillTest, EmptyBatchAndEmptySequences) {
  // No sequences at all; sequences of length 0 copy their state through.
  run_oracle_case({.shape = {}, .lens = {}}, GetParam());
  run_oracle_case({.shape = {}, .lens = {0, 0}, .initial_state = true}, GetParam());
  run_oracle_case({.shape = {}, .lens = {0, 0}, .initial_state = false}, GetParam());
}

// ---------------------------------------------------- chained runs identity

// Runs `pieces.size()` chained calls: call j processes pieces[j][b] tokens of
// sequence b (continuing where call j - 1 stopped), starting from `initial`
// and handing each call's final state to the next. Returns out in the token
// order of one run over the whole batch, and the last final state.
void run_chained(const GdnPrefillPlan& plan, const GdnShape& s, const GdnInputs& in,
                 const std::vector<std::int64_t>& lens, const std::vector<std::vector<std::int64_t>>& pieces,
                 const std::vector<double>& initial, Device device, GdnResult* result) {
  const auto cu = offsets_of(lens);
  std::vector<std::int64_t> done(lens.size(), 0);
  std::vector<double> state = initial;
  result->out.assign(static_cast<std::size_t>(in.tokens * s.heads() * s.dv), 0.0);
  const std::int64_t out_row = s.heads() * s.dv;
  for (const auto& piece : pieces) {
    std::vector<std::int64_t> rows;
    for (std::size_t b = 0; b < lens.size(); ++b)
      for (std::int64_t i = 0; i < piece[b]; ++i) rows.push_back(cu[b] + done[b] + i);
    GdnResult part;
    run_gdn(plan, s, select_tokens(s, in, rows), offsets_of(piece), state, {}, device, &part);
    if (::testing::Test::HasFatalFailure()) return;
    for (std::size_t r = 0; r < rows.size(); ++r)
      std::copy_n(part.out.begin() + r * out_row, out_row, result->out.begin() + rows[r] * out_row);
    state = part.final_state;
    for (std::size_t b = 0; b < lens.size(); ++b) done[b] += piece[b];
  }
  result->final_state = state;
}

// Splits each length into `calls` pieces at random cut points (empty pieces
// included): pieces[j][b].
std::vector<std::vector<std::int64_t>> random_pieces(std::mt19937_64& rng, const std::vector<std::int64_t>& lens,
                                                     int calls) {
  std::vector<std::vector<std::int64_t>> pieces(calls, std::vector<std::int64_t>(lens.size()));
  for (std::size_t b = 0; b < lens.size(); ++b) {
    std::uniform_int_distribution<std::int64_t> cut(0, lens[b]);
    std::vector<std::int64_t> cuts{0, lens[b]};
    for (int j = 1; j < calls; ++j) cuts.push_back(cut(rng));
    std::sort(cuts.begin(), cuts.end());
    for (int j = 0; j < calls; ++j) pieces[j][b] = cuts[j + 1] - cuts[j];
  }
  return pieces;
}

void check_chained_equals_whole(const GdnShape& s, const std::vector<std::int64_t>& lens, int calls, Device device) {
  SCOPED_TRACE(label(s, device) + " in " + std::to_string(calls) + " calls");
  auto rng = make_rng();
  const auto cu = offsets_of(lens);
  const std::int64_t batch = static_cast<std::int64_t>(lens.size());
  KVS_CREATE_OR_SKIP(plan, GdnPrefillPlan, desc_of(s, batch, cu.back()), device);
  const GdnInputs in = random_inputs(rng, s, cu.back(), Gates::random);
  const std::vector<double> initial = random_state(rng, s, batch);
  GdnResult whole, chained;
  run_gdn(*plan, s, in, cu, initial, {}, device, &whole);
  run_chained(*plan, s, in, lens, random_pieces(rng, lens, calls), initial, device, &chained);
  if (::testing::Test::HasFatalFailure()) return;
  expect_nonzero(whole.out, "whole-run out");
  expect_close(chained.out, whole.out, s.dtype, "out");
  expect_close(chained.final_state, whole.final_state, DType::f32, "final_state");
}

TEST_P(GdnPrefillTest, TwoChainedCallsEqualOneCall) {
  check_chained_equals_whole({.dtype = DType::bf16, .hqk = 2, .hv = 4}, {37, 0, 1, 64, 20}, 2, GetParam());
  check_chained_equals_whole({.dtype = DType::f16, .hqk = 4, .hv = 2, .l2norm = true}, {50, 3}, 2, GetParam());
}

TEST_P(GdnPrefillTest, TwentyChainedCallsEqualOneLongCall) {
  check_chained_equals_whole({.dtype = DType::bf16, .hqk = 1, .hv = 2, .dk = 128, .dv = 128}, {400, 150}, 20,
                             GetParam());
}

// The oracle over a long chain too: 20 calls against the fp64 recurrence.
TEST_P(GdnPrefillTest, TwentyChainedCallsAgainstOracle) {
  const Device device = GetParam();
  const GdnShape s{.dtype = DType::f32, .hqk = 2, .hv = 2, .dk = 32, .dv = 32};
  const std::vector<std::int64_t> lens = {260, 41};
  auto rng = make_rng();
  const auto cu = offsets_of(lens);
  KVS_CREATE_OR_SKIP(plan, GdnPrefillPlan, desc_of(s, 2, cu.back()), device);
  const GdnInputs in = random_inputs(rng, s, cu.back(), Gates::random);
  GdnResult chained;
  run_chained(*plan, s, in, lens, random_pieces(rng, lens, 20), {}, device, &chained);
  if (HasFatalFailure()) return;
  std::vector<double> ref_out, ref_final;
  oracle::gdn_prefill(spec_of(s), in.q, in.k, in.v, in.alpha, in.beta, cu, {}, &ref_out, &ref_final);
  expect_close(chained.out, ref_out, s.dtype, "out");
  expect_close(chained.final_state, ref_final, DType::f32, "final_state");
}

// ---------------------------------------------------------------- validation

TEST_P(GdnPrefillTest, RejectsBadDescriptorFields) {
  const Device device = GetParam();
  const GdnPrefillDesc good = desc_of({}, 4, 256);
  if (device.is_cpu()) ASSERT_TRUE(GdnPrefillPlan::supports(good, device));
  const auto check = [&](auto mutate, const std::string& field) {
    SCOPED_TRACE(field);
    GdnPrefillDesc d = good;
    mutate(d);
    auto plan = GdnPrefillPlan::create(d, device);
    ASSERT_FALSE(plan);
    expect_rejected(plan.status(), field);
    expect_rejected(GdnPrefillPlan::supports(d, device), field);
  };
  check([](auto& d) { d.max_batch = 0; }, "max_batch");
  check([](auto& d) { d.max_tokens = -1; }, "max_tokens");
  check([](auto& d) { d.num_qk_heads = 0; }, "num_qk_heads");
  check([](auto& d) { d.num_v_heads = -2; }, "num_v_heads");
  check([](auto& d) { d.num_v_heads = 3; }, "num_v_heads");    // 3 v heads over 2 q/k heads
  check([](auto& d) { d.num_qk_heads = 6; }, "num_qk_heads");  // 6 q/k heads over 4 v heads
  check([](auto& d) { d.head_dim_k = 100; }, "head_dim_k");
  check([](auto& d) { d.head_dim_v = 0; }, "head_dim_v");
  check([](auto& d) { d.head_dim_v = 512; }, "head_dim_v");
  check([](auto& d) { d.dtype = DType::int32; }, "dtype");
  check([](auto& d) { d.dtype = DType::fp8_e5m2; }, "dtype");
  check([](auto& d) { d.scale = -1.f; }, "scale");
  check([](auto& d) { d.scale = NAN; }, "scale");
  check([](auto& d) { d.l2norm_eps = 0.f; }, "l2norm_eps");
}

TEST_P(GdnPrefillTest, RejectsBadArgumentsAndWritesNothing) {
  const Device device = GetParam();
  const GdnShape s{.dtype = DType::bf16, .hqk = 2, .hv = 4, .dk = 32, .dv = 16};
  const std::int64_t t = 10, b = 2, h = s.heads();
  KVS_CREATE_OR_SKIP(plan, GdnPrefillPlan, desc_of(s, 3, 12), device);
  auto rng = make_rng();
  Buffer q(s.dtype, t * s.hqk * s.dk, device), k(s.dtype, t * s.hqk * s.dk, device),
      v(s.dtype, t * s.hv * s.dv, device),
      alpha(DType::f32, t * h, device), beta(DType::f32, t * h, device), out(s.dtype, t * h * s.dv, device),
      initial(DType::f32, b * h * s.dv * s.dk, device), final_state(DType::f32, b * h * s.dv * s.dk, device),
      big(s.dtype, 20 * h * s.dv, device);
  for (Buffer* x : {&q, &k, &v, &alpha, &beta, &initial, &big}) x->fill_uniform(rng, 0.1, 0.9);
  Buffer cu = int_buffer({0, 4, 10}, device), cu_decreasing = int_buffer({0, 6, 5}, device),
         cu_short = int_buffer({0, 4, 9}, device), cu_nonzero_start = int_buffer({1, 4, 10}, device),
         cu_long = int_buffer({0, 1, 2, 3, 10}, device), cu_f32(DType::f32, 3, device);
  const GdnPrefillArgs good{.q = q.view({t, s.hqk, s.dk}), .k = k.view({t, s.hqk, s.dk}), .v = v.view({t, s.hv, s.dv}),
                            .alpha = alpha.view({t, h}), .beta = beta.view({t, h}), .cu_seqlens = cu.view({b + 1}),
                            .initial_state = initial.view({b, h, s.dv, s.dk}), .out = out.view({t, h, s.dv}),
                            .final_state = final_state.view({b, h, s.dv, s.dk})};
  const auto check = [&](auto mutate, const std::string& name) {
    SCOPED_TRACE(name);
    GdnPrefillArgs a = good;
    mutate(a);
    out.poison();
    final_state.poison();
    expect_rejected(plan->run(a, {}, {}), name);
    ASSERT_TRUE(still_poisoned(out)) << "out was written";
    ASSERT_TRUE(still_poisoned(final_state)) << "final_state was written";
  };
  check([&](auto& a) { a.q = {}; }, "q");
  check([&](auto& a) { a.q = k.view({t, s.hqk * s.dk}); }, "q");
  check([&](auto& a) { a.q = alpha.view({t, s.hqk, s.dk / 8}); }, "q");
  check([&](auto& a) { a.q = big.view({20, s.hqk, s.dk}); }, "q");  // more than max_tokens
  check([&](auto& a) { a.q.device = other_device(device); }, "q");
  check([&](auto& a) { a.k = k.view({t - 1, s.hqk, s.dk}); }, "k");
  check([&](auto& a) { a.k = q.view_strided({t, s.hqk, s.dk}, {s.hqk * s.dk, 1, s.hqk}); }, "k");
  check([&](auto& a) { a.v = v.view({t, s.hv / 2, 2 * s.dv}); }, "v");
  check([&](auto& a) { a.alpha = q.view({t, h}); }, "alpha");
  check([&](auto& a) { a.beta = beta.view({t, h / 2}); }, "beta");
  check([&](auto& a) { a.cu_seqlens = {}; }, "cu_seqlens");
  check([&](auto& a) { a.cu_seqlens = cu_f32.view({3}); }, "cu_seqlens");
  check([&](auto& a) { a.cu_seqlens = cu_long.view({5}); }, "cu_seqlens");  // 4 sequences > max_batch
  check([&](auto& a) { a.cu_seqlens = cu.view({0}); }, "cu_seqlens");
  if (device.is_cpu()) {
    // Host offsets are checked entry by entry.
    check([&](auto& a) { a.cu_seqlens = cu_decreasing.view({3}); }, "cu_seqlens");
    check([&](auto& a) { a.cu_seqlens = cu_short.view({3}); }, "cu_seqlens");
    check([&](auto& a) { a.cu_seqlens = cu_nonzero_start.view({3}); }, "cu_seqlens");
  }
  check([&](auto& a) { a.initial_state = initial.view({b, h, s.dk, s.dv}); }, "initial_state");
  check([&](auto& a) { a.initial_state = big.view({b, h, s.dv, s.dk}); }, "initial_state");
  check([&](auto& a) { a.out = out.view({t, s.hqk, s.dv}); }, "out");
  check([&](auto& a) { a.out = {}; }, "out");
  check([&](auto& a) { a.final_state = final_state.view({b + 1, h, s.dv, s.dk / 2}); }, "final_state");
  check([&](auto& a) { a.final_state = out.view({b, h, s.dv, s.dk}); }, "final_state");
}

INSTANTIATE_TEST_SUITE_P(Devices, GdnPrefillTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
