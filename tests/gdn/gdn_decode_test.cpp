// GdnDecode against GdnPrefill token by token (and both against the fp64
// oracle): B sequences, each decoded one token a step with its state in a
// slot of a pool, must give the prefill's outputs and final states; padded
// rows write zeros and touch no state; validation names the field.
#include <algorithm>
#include <numeric>

#include "gdn/gdn_test_util.hpp"
#include "harness/harness.hpp"
#include "kvserve/gdn.hpp"
#include "reference/oracle_gdn.hpp"

namespace kvserve::test {
namespace {

GdnDecodeDesc decode_desc_of(const GdnShape& s, std::int64_t max_batch, int slots) {
  return {.max_batch = static_cast<int>(max_batch), .num_state_slots = slots, .num_qk_heads = s.hqk,
          .num_v_heads = s.hv, .head_dim_k = s.dk, .head_dim_v = s.dv, .dtype = s.dtype, .scale = s.scale,
          .use_qk_l2norm = s.l2norm};
}

// On the CPU decode and prefill run the same step: equal bit for bit to the
// prefill's result. Elsewhere within the dtype's bound of the fp64 oracle.
void expect_same(const std::vector<double>& got, const std::vector<double>& prefill,
                 const std::vector<double>& oracle, DType dtype, Device device, const std::string& what) {
  if (device.is_cpu())
    EXPECT_EQ(got, prefill) << what;
  else
    expect_close(got, oracle, dtype, what);
}

// One step's inputs for `batch` rows: row b < sequences takes token
// b * steps + step of `in`; the rows after them (padding) take `pad`'s token.
struct StepBuffers {
  Buffer q, k, v, alpha, beta, slots, out;
};

StepBuffers step_buffers(const GdnShape& s, const GdnInputs& in, const GdnInputs& pad, std::int64_t sequences,
                         std::int64_t batch, int steps, int step, const std::vector<std::int32_t>& slots,
                         Device device) {
  const std::int64_t h = s.heads();
  StepBuffers b{Buffer(s.dtype, batch * s.hqk * s.dk, device), Buffer(s.dtype, batch * s.hqk * s.dk, device),
                Buffer(s.dtype, batch * s.hv * s.dv, device),  Buffer(DType::f32, batch * h, device),
                Buffer(DType::f32, batch * h, device),          int_buffer(slots, device),
                Buffer(s.dtype, batch * h * s.dv, device)};
  for (std::int64_t r = 0; r < batch; ++r) {
    const GdnInputs& src = r < sequences ? in : pad;
    const std::int64_t token = r < sequences ? r * steps + step : 0;
    const auto copy_row = [&](Buffer& dst, const std::vector<double>& from, std::int64_t width) {
      for (std::int64_t c = 0; c < width; ++c) dst.set(r * width + c, from[token * width + c]);
    };
    copy_row(b.q, src.q, s.hqk * s.dk);
    copy_row(b.k, src.k, s.hqk * s.dk);
    copy_row(b.v, src.v, s.hv * s.dv);
    copy_row(b.alpha, src.alpha, h);
    copy_row(b.beta, src.beta, h);
  }
  for (Buffer* x : {&b.q, &b.k, &b.v, &b.alpha, &b.beta}) x->upload();
  b.out.poison();
  return b;
}

struct DecodeCase {
  GdnShape shape;
  std::int64_t sequences = 3;
  int steps = 4;
  int padded_rows = 1;
};

void run_decode_case(const DecodeCase& c, Device device) {
  const GdnShape& s = c.shape;
  SCOPED_TRACE(label(s, device) + " B=" + std::to_string(c.sequences) + " steps=" + std::to_string(c.steps));
  auto rng = make_rng();
  const std::int64_t h = s.heads(), state_size = h * s.dv * s.dk, batch = c.sequences + c.padded_rows;
  const int pool_slots = static_cast<int>(c.sequences) + 3;  // spare slots that must stay untouched
  KVS_CREATE_OR_SKIP(plan, GdnDecodePlan, decode_desc_of(s, batch, pool_slots), device);

  // The reference: one GdnPrefill run over the sequences, steps tokens each.
  const std::vector<std::int64_t> lens(static_cast<std::size_t>(c.sequences), c.steps);
  const auto cu = offsets_of(lens);
  const GdnInputs in = random_inputs(rng, s, cu.back(), Gates::random), pad = random_inputs(rng, s, 1, Gates::random);
  const std::vector<double> initial = random_state(rng, s, c.sequences);
  auto prefill = GdnPrefillPlan::create(desc_of(s, c.sequences, cu.back()), Device::cpu());
  ASSERT_TRUE(prefill) << prefill.status().to_string();
  GdnResult ref;
  run_gdn(*prefill, s, in, cu, initial, {}, Device::cpu(), &ref);
  std::vector<double> oracle_out, oracle_final;
  oracle::gdn_prefill(spec_of(s), in.q, in.k, in.v, in.alpha, in.beta, cu, initial, &oracle_out, &oracle_final);
  expect_close(ref.out, oracle_out, s.dtype, "prefill out vs oracle");

  // Sequence b in a random slot of the pool; padded rows -1; the pool random.
  std::vector<std::int32_t> perm(static_cast<std::size_t>(pool_slots));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<std::int32_t> slots(perm.begin(), perm.begin() + c.sequences);
  slots.resize(static_cast<std::size_t>(batch), -1);
  Buffer pool(DType::f32, pool_slots * state_size, device);
  pool.fill_uniform(rng, -1, 1);
  for (std::int64_t b = 0; b < c.sequences; ++b)
    for (std::int64_t e = 0; e < state_size; ++e) pool.set(slots[b] * state_size + e, initial[b * state_size + e]);
  pool.upload();
  const std::vector<double> pool_before = pool.values();

  for (int step = 0; step < c.steps; ++step) {
    StepBuffers x = step_buffers(s, in, pad, c.sequences, batch, c.steps, step, slots, device);
    const Status st = plan->run({.q = x.q.view({batch, s.hqk, s.dk}), .k = x.k.view({batch, s.hqk, s.dk}),
                                 .v = x.v.view({batch, s.hv, s.dv}), .alpha = x.alpha.view({batch, h}),
                                 .beta = x.beta.view({batch, h}), .state_indices = x.slots.view({batch}),
                                 .state = pool.view({pool_slots, h, s.dv, s.dk}),
                                 .out = x.out.view({batch, h, s.dv})},
                                {}, {});
    ASSERT_TRUE(st) << st.to_string();
    synchronize(device);
    x.out.download();
    const std::vector<double> out = x.out.values();
    const std::int64_t row = h * s.dv;
    std::vector<double> got, want, want_oracle;
    for (std::int64_t b = 0; b < c.sequences; ++b) {
      got.insert(got.end(), out.begin() + b * row, out.begin() + (b + 1) * row);
      const std::int64_t token = b * c.steps + step;
      want.insert(want.end(), ref.out.begin() + token * row, ref.out.begin() + (token + 1) * row);
      want_oracle.insert(want_oracle.end(), oracle_out.begin() + token * row, oracle_out.begin() + (token + 1) * row);
    }
    expect_same(got, want, want_oracle, s.dtype, device, "out, step " + std::to_string(step));
    for (std::int64_t i = c.sequences * row; i < batch * row; ++i)
      ASSERT_EQ(out[static_cast<std::size_t>(i)], 0.0) << "padded row's out, element " << i;
  }

  pool.download();
  const std::vector<double> after = pool.values();
  std::vector<double> got_final;
  for (std::int64_t b = 0; b < c.sequences; ++b)
    got_final.insert(got_final.end(), after.begin() + slots[b] * state_size,
                     after.begin() + (slots[b] + 1) * state_size);
  expect_same(got_final, ref.final_state, oracle_final, DType::f32, device, "states after the steps");
  for (int slot = 0; slot < pool_slots; ++slot)
    if (std::find(slots.begin(), slots.end(), slot) == slots.end())
      for (std::int64_t e = 0; e < state_size; ++e)
        ASSERT_EQ(after[slot * state_size + e], pool_before[slot * state_size + e]) << "spare slot " << slot;
}

class GdnDecodeTest : public DeviceTest {};

TEST_P(GdnDecodeTest, EqualsPrefillTokenByToken) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    run_decode_case({.shape = {.dtype = t}}, GetParam());
}

TEST_P(GdnDecodeTest, HeadRatiosHeadDimsAndL2Norm) {
  // Qwen3-Next's ratio (GVA 2), GQA 2, equal; d_k != d_v; the in-kernel norm.
  run_decode_case({.shape = {.dtype = DType::bf16, .hqk = 2, .hv = 4, .dk = 128, .dv = 128, .l2norm = true}},
                  GetParam());
  run_decode_case({.shape = {.dtype = DType::bf16, .hqk = 4, .hv = 2, .dk = 32, .dv = 64}}, GetParam());
  run_decode_case({.shape = {.dtype = DType::f16, .hqk = 3, .hv = 3, .dk = 256, .dv = 16, .scale = 0.3f}},
                  GetParam());
}

TEST_P(GdnDecodeTest, OneSequenceManyStepsAndAllRowsPadded) {
  run_decode_case({.shape = {.dtype = DType::bf16}, .sequences = 1, .steps = 20, .padded_rows = 0}, GetParam());
  run_decode_case({.shape = {.dtype = DType::bf16}, .sequences = 0, .steps = 1, .padded_rows = 3}, GetParam());
}

TEST_P(GdnDecodeTest, RejectsBadDescriptorFields) {
  const GdnShape s;
  const GdnDecodeDesc good = decode_desc_of(s, 4, 8);
  ASSERT_TRUE(GdnDecodePlan::supports(good, GetParam()) || GetParam().is_cuda());
  const auto rejected = [&](auto change, const std::string& field) {
    GdnDecodeDesc d = good;
    change(d);
    expect_rejected(GdnDecodePlan::create(d, GetParam()).status(), field);
  };
  rejected([](GdnDecodeDesc& d) { d.max_batch = 0; }, "max_batch");
  rejected([](GdnDecodeDesc& d) { d.num_state_slots = 0; }, "num_state_slots");
  rejected([](GdnDecodeDesc& d) { d.num_v_heads = 3; }, "num_v_heads");
  rejected([](GdnDecodeDesc& d) { d.head_dim_k = 40; }, "head_dim_k");
  rejected([](GdnDecodeDesc& d) { d.dtype = DType::fp8_e4m3; }, "dtype");
  rejected([](GdnDecodeDesc& d) { d.l2norm_eps = 0; }, "l2norm_eps");
}

TEST_P(GdnDecodeTest, RejectsBadArgumentsAndWritesNothing) {
  const Device device = GetParam();
  const GdnShape s;
  constexpr std::int64_t kBatch = 3;
  constexpr int kSlots = 5;
  const std::int64_t h = s.heads();
  KVS_CREATE_OR_SKIP(plan, GdnDecodePlan, decode_desc_of(s, kBatch, kSlots), device);
  auto rng = make_rng();
  const GdnInputs in = random_inputs(rng, s, kBatch, Gates::random);
  StepBuffers x = step_buffers(s, in, in, kBatch, kBatch, 1, 0, {0, 2, 4}, device);
  Buffer pool(DType::f32, kSlots * h * s.dv * s.dk, device), wide_pool(DType::f32, (kSlots + 1) * h * s.dv * s.dk, device);
  pool.fill_uniform(rng, -1, 1);
  const GdnDecodeArgs good{.q = x.q.view({kBatch, s.hqk, s.dk}), .k = x.k.view({kBatch, s.hqk, s.dk}),
                           .v = x.v.view({kBatch, s.hv, s.dv}), .alpha = x.alpha.view({kBatch, h}),
                           .beta = x.beta.view({kBatch, h}), .state_indices = x.slots.view({kBatch}),
                           .state = pool.view({kSlots, h, s.dv, s.dk}), .out = x.out.view({kBatch, h, s.dv})};
  ASSERT_TRUE(plan->can_implement(good));
  const auto rejected = [&](auto change, const std::string& name) {
    GdnDecodeArgs a = good;
    change(a);
    x.out.poison();
    expect_rejected(plan->run(a, {}, {}), name);
    EXPECT_TRUE(still_poisoned(x.out)) << name;
  };
  rejected([&](GdnDecodeArgs& a) { a.state = wide_pool.view({kSlots + 1, h, s.dv, s.dk}); }, "state");
  rejected([&](GdnDecodeArgs& a) { a.state_indices = {}; }, "state_indices");
  rejected([&](GdnDecodeArgs& a) { a.beta = x.beta.view({kBatch - 1, h}); }, "beta");
  rejected([&](GdnDecodeArgs& a) { a.out = x.q.view({kBatch, s.hqk, s.dk}); }, "out");
  if (device.is_cpu()) {  // the indices themselves: checked where they are host memory
    for (const std::vector<std::int32_t>& bad : {std::vector<std::int32_t>{0, 5, 1}, {0, -2, 1}, {3, 1, 3}}) {
      Buffer slots = int_buffer(bad, device);
      rejected([&](GdnDecodeArgs& a) { a.state_indices = slots.view({kBatch}); }, "state_indices");
    }
  }
  for (const ViewFault& f : view_faults({ViewFaultKind::absent, ViewFaultKind::wrong_dtype,
                                         ViewFaultKind::extra_dimension, ViewFaultKind::strided_last_dimension},
                                        device)) {
    SCOPED_TRACE(f.what);
    rejected([&](GdnDecodeArgs& a) { f.apply(a.q); }, "q");
    rejected([&](GdnDecodeArgs& a) { f.apply(a.state); }, "state");
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, GdnDecodeTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
