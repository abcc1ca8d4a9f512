// Validation of the sampling family (Sampling, SamplingRenorm,
// ChainSpeculativeSampling, TokenPenalty): every descriptor field and every
// tensor argument, when bad, gives InvalidArgument naming it, and a rejected
// run writes nothing.
#include <functional>
#include <limits>

#include "kvserve/penalty.hpp"
#include "kvserve/speculative.hpp"
#include "sampling/sampling_fixtures.hpp"

namespace kvserve::test {
namespace {

template <class Desc>
struct BadField {
  std::string field;
  std::function<void(Desc&)> spoil;
};

// Each spoiled copy of `good` fails create() and supports() naming the field.
template <class PlanT, class Desc>
void expect_fields_checked(const Desc& good, const std::vector<BadField<Desc>>& bad, Device device) {
  const Status ok = PlanT::supports(good, device);
  ASSERT_TRUE(ok || ok.code() == StatusCode::unsupported) << ok.to_string();
  for (const auto& b : bad) {
    Desc d = good;
    b.spoil(d);
    SCOPED_TRACE("field " + b.field);
    expect_rejected(PlanT::create(d, device).status(), b.field);
    expect_rejected(PlanT::supports(d, device), b.field);
  }
}

template <class Args>
struct BadArg {
  std::string arg;
  std::function<void(Args&)> spoil;
};

// Each spoiled copy of `good` fails run() naming the argument and leaves
// `outputs` (poisoned before) unwritten.
template <class PlanT, class Args>
void expect_args_checked(const PlanT& plan, const Args& good, const std::vector<BadArg<Args>>& bad,
                         std::vector<Buffer*> outputs) {
  for (Buffer* o : outputs) o->poison();
  for (const auto& b : bad) {
    Args a = good;
    b.spoil(a);
    SCOPED_TRACE("argument " + b.arg);
    expect_rejected(plan.run(a, {}, {}), b.arg);
  }
  for (Buffer* o : outputs) ASSERT_TRUE(still_poisoned(*o)) << "a rejected run wrote an output";
}

TensorView with_dtype(TensorView t, DType dtype) {
  t.dtype = dtype;
  return t;
}
TensorView with_shape0(TensorView t, std::int64_t n) {
  t.shape[0] = n;
  return t;
}

// The spoilers every tensor argument gets (harness.hpp's view faults): absent,
// wrong dtype, wrong rank, on the wrong device.
template <class Args>
void add_tensor_spoilers(std::vector<BadArg<Args>>* bad, const std::string& name, TensorView Args::*member,
                         DType wrong_dtype, Device device) {
  using K = ViewFaultKind;
  for (ViewFault& f : view_faults({K::absent, K::wrong_dtype, K::extra_dimension, K::other_device}, device, wrong_dtype))
    bad->push_back({name, [member, change = f.apply](Args& a) { change(a.*member); }});
}

class SamplingValidationTest : public DeviceTest {};

// ---------------------------------------------------------------- Sampling --

TEST_P(SamplingValidationTest, SamplingDescriptorFields) {
  using D = SamplingDesc;
  const D good{.vocab = 10, .max_batch = 4, .filter = SamplingFilter::top_k_top_p, .top_k = 3, .top_p = 0.5f};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_fields_checked<SamplingPlan, D>(
      good,
      {{"vocab", [](D& d) { d.vocab = 0; }},
       {"vocab", [](D& d) { d.vocab = (1 << 22) + 1; }},
       {"max_batch", [](D& d) { d.max_batch = 0; }},
       {"input", [](D& d) { d.input = static_cast<SamplingInput>(7); }},
       {"filter", [](D& d) { d.filter = static_cast<SamplingFilter>(9); }},
       {"order", [](D& d) { d.order = static_cast<TopKTopPOrder>(2); }},
       {"params", [](D& d) { d.params = static_cast<ParamSource>(2); }},
       {"random", [](D& d) { d.random = static_cast<RandomSource>(2); }},
       {"temperature", [](D& d) { d.temperature = 0.5f; }},  // probs input
       {"temperature", [](D& d) { d.input = SamplingInput::logits, d.temperature = -1.f; }},
       {"temperature", [=](D& d) { d.input = SamplingInput::logits, d.temperature = nan; }},
       {"temperature", [](D& d) { d.input = SamplingInput::logits, d.temperature = INFINITY; }},
       {"top_k", [](D& d) { d.top_k = 0; }},
       {"top_k", [](D& d) { d.filter = SamplingFilter::top_k, d.top_k = -5; }},
       {"top_p", [](D& d) { d.top_p = 0.f; }},
       {"top_p", [](D& d) { d.top_p = 1.5f; }},
       {"top_p", [=](D& d) { d.filter = SamplingFilter::top_p, d.top_p = nan; }},
       {"min_p", [](D& d) { d.filter = SamplingFilter::min_p, d.min_p = -0.1f; }},
       {"min_p", [](D& d) { d.filter = SamplingFilter::min_p, d.min_p = 1.5f; }}},
      GetParam());
}

TEST_P(SamplingValidationTest, SamplingArguments) {
  const Device dev = GetParam();
  const std::int64_t b = 3, v = 10;
  for (bool per_row : {false, true}) {
    SCOPED_TRACE(per_row ? "per-row parameters and seeds" : "scalar parameters, host seeds");
    const SamplingDesc desc{.vocab = 10, .max_batch = 4, .input = SamplingInput::logits,
                            .filter = SamplingFilter::top_k_top_p, .top_k = 3, .top_p = 0.5f,
                            .params = per_row ? ParamSource::per_row : ParamSource::scalar,
                            .random = per_row ? RandomSource::per_row : RandomSource::host};
    KVS_CREATE_OR_SKIP(plan, SamplingPlan, desc, dev);
    Buffer in = float_buffer(std::vector<float>(b * v, 0.5f), dev), out(DType::int32, b, dev),
        big = float_buffer(std::vector<float>(5 * v, 0.5f), dev), f32s = float_buffer({1.f, 0.5f, 0.7f}, dev),
        i32s = int_buffer({3, 4, 5}, dev);
    SamplingArgs good{.input = in.view({b, v}), .out = out.view({b})};
    if (per_row) {
      good.temperature = good.top_p = f32s.view({b});
      good.top_k = good.seeds = good.offsets = i32s.view({b});
    }
    std::vector<BadArg<SamplingArgs>> bad;
    add_tensor_spoilers(&bad, "input", &SamplingArgs::input, DType::f16, dev);
    bad.push_back({"input", [&](SamplingArgs& a) { a.input = in.view({b, v - 1}); }});
    bad.push_back({"input", [&](SamplingArgs& a) { a.input = big.view({5, v}); }});  // > max_batch
    add_tensor_spoilers(&bad, "out", &SamplingArgs::out, DType::f32, dev);
    if (per_row) {
      add_tensor_spoilers(&bad, "temperature", &SamplingArgs::temperature, DType::int32, dev);
      add_tensor_spoilers(&bad, "top_k", &SamplingArgs::top_k, DType::f32, dev);
      add_tensor_spoilers(&bad, "top_p", &SamplingArgs::top_p, DType::int32, dev);
      add_tensor_spoilers(&bad, "seeds", &SamplingArgs::seeds, DType::f32, dev);
      add_tensor_spoilers(&bad, "offsets", &SamplingArgs::offsets, DType::f32, dev);
      bad.push_back({"min_p", [&](SamplingArgs& a) { a.min_p = f32s.view({b}); }});  // the filter has no min_p
    } else {
      bad.push_back({"temperature", [&](SamplingArgs& a) { a.temperature = f32s.view({b}); }});
      bad.push_back({"top_p", [&](SamplingArgs& a) { a.top_p = f32s.view({b}); }});
      bad.push_back({"min_p", [&](SamplingArgs& a) { a.min_p = f32s.view({b}); }});
      bad.push_back({"top_k", [&](SamplingArgs& a) { a.top_k = i32s.view({b}); }});
      bad.push_back({"seeds", [&](SamplingArgs& a) { a.seeds = i32s.view({b}); }});
      bad.push_back({"offsets", [&](SamplingArgs& a) { a.offsets = i32s.view({b}); }});
    }
    KVS_RUN(expect_args_checked(*plan, good, bad, {&out}));
    ASSERT_TRUE(plan->run(good, {}, {}));  // and the good arguments pass
  }
}

// ---------------------------------------------------------- SamplingRenorm --

TEST_P(SamplingValidationTest, SamplingRenormDescriptorFields) {
  using D = SamplingRenormDesc;
  const D good{.vocab = 10, .max_batch = 4, .kind = RenormKind::top_k_renorm_probs, .top_k = 3};
  expect_fields_checked<SamplingRenormPlan, D>(
      good,
      {{"vocab", [](D& d) { d.vocab = -1; }},
       {"max_batch", [](D& d) { d.max_batch = -2; }},
       {"kind", [](D& d) { d.kind = static_cast<RenormKind>(3); }},
       {"params", [](D& d) { d.params = static_cast<ParamSource>(4); }},
       {"top_k", [](D& d) { d.top_k = 0; }},
       {"top_k", [](D& d) { d.kind = RenormKind::top_k_mask_logits, d.top_k = -1; }},
       {"top_p", [](D& d) { d.kind = RenormKind::top_p_renorm_probs, d.top_p = 0.f; }},
       {"top_p", [](D& d) { d.kind = RenormKind::top_p_renorm_probs, d.top_p = 2.f; }}},
      GetParam());
}

TEST_P(SamplingValidationTest, SamplingRenormArguments) {
  const Device dev = GetParam();
  const std::int64_t b = 2, v = 10;
  const SamplingRenormDesc desc{.vocab = 10, .max_batch = 2, .kind = RenormKind::top_k_renorm_probs,
                                .params = ParamSource::per_row};
  KVS_CREATE_OR_SKIP(plan, SamplingRenormPlan, desc, dev);
  Buffer in = float_buffer(std::vector<float>(b * v, 0.1f), dev), out(DType::f32, b * v, dev),
      ks = int_buffer({2, 3}, dev), ps = float_buffer({0.5f, 0.5f}, dev);
  const SamplingRenormArgs good{.input = in.view({b, v}), .out = out.view({b, v}), .top_k = ks.view({b})};
  std::vector<BadArg<SamplingRenormArgs>> bad;
  add_tensor_spoilers(&bad, "input", &SamplingRenormArgs::input, DType::int32, dev);
  add_tensor_spoilers(&bad, "out", &SamplingRenormArgs::out, DType::bf16, dev);
  add_tensor_spoilers(&bad, "top_k", &SamplingRenormArgs::top_k, DType::f32, dev);
  bad.push_back({"out", [&](SamplingRenormArgs& a) { a.out = out.view({b, v - 1}); }});
  bad.push_back({"top_p", [&](SamplingRenormArgs& a) { a.top_p = ps.view({b}); }});  // the kind has no top_p
  KVS_RUN(expect_args_checked(*plan, good, bad, {&out}));
  ASSERT_TRUE(plan->run(good, {}, {}));
}

// ------------------------------------------------ ChainSpeculativeSampling --

TEST_P(SamplingValidationTest, SpeculativeDescriptorFields) {
  using D = ChainSpeculativeSamplingDesc;
  const D good{.vocab = 10, .max_batch = 4, .num_draft_tokens = 2};
  expect_fields_checked<ChainSpeculativeSamplingPlan, D>(
      good,
      {{"vocab", [](D& d) { d.vocab = 0; }},
       {"max_batch", [](D& d) { d.max_batch = 0; }},
       {"num_draft_tokens", [](D& d) { d.num_draft_tokens = 0; }},
       {"random", [](D& d) { d.random = static_cast<RandomSource>(5); }}},
      GetParam());
}

TEST_P(SamplingValidationTest, SpeculativeArguments) {
  const Device dev = GetParam();
  const std::int64_t b = 2, n = 2, v = 10;
  const ChainSpeculativeSamplingDesc desc{.vocab = 10, .max_batch = 2, .num_draft_tokens = 2,
                                          .random = RandomSource::per_row};
  KVS_CREATE_OR_SKIP(plan, ChainSpeculativeSamplingPlan, desc, dev);
  Buffer ids = int_buffer({1, 2, 3, 4}, dev), draft = float_buffer(std::vector<float>(b * n * v, 0.1f), dev),
         target = float_buffer(std::vector<float>(b * (n + 1) * v, 0.1f), dev), out(DType::int32, b * (n + 1), dev),
         accepted(DType::int32, b, dev), emitted(DType::int32, b, dev), seeds = int_buffer({1, 2}, dev);
  using A = ChainSpeculativeSamplingArgs;
  const A good{.draft_token_ids = ids.view({b, n}), .draft_probs = draft.view({b, n, v}),
               .target_probs = target.view({b, n + 1, v}), .out = out.view({b, n + 1}),
               .accepted = accepted.view({b}), .emitted = emitted.view({b}), .seeds = seeds.view({b}),
               .offsets = seeds.view({b})};
  std::vector<BadArg<A>> bad;
  add_tensor_spoilers(&bad, "draft_token_ids", &A::draft_token_ids, DType::f32, dev);
  add_tensor_spoilers(&bad, "draft_probs", &A::draft_probs, DType::bf16, dev);
  add_tensor_spoilers(&bad, "target_probs", &A::target_probs, DType::f16, dev);
  add_tensor_spoilers(&bad, "out", &A::out, DType::f32, dev);
  add_tensor_spoilers(&bad, "seeds", &A::seeds, DType::f32, dev);
  add_tensor_spoilers(&bad, "offsets", &A::offsets, DType::f32, dev);
  bad.push_back({"draft_token_ids", [&](A& a) { a.draft_token_ids = ids.view({1, 4}); }});  // n
  bad.push_back({"target_probs", [&](A& a) { a.target_probs = target.view({b, n, v + 5}); }});
  bad.push_back({"draft_probs", [&](A& a) { a.draft_probs = draft.view({b, n + 1, v}); }});
  bad.push_back({"accepted", [&](A& a) { a.accepted = with_dtype(a.accepted, DType::f32); }});
  bad.push_back({"emitted", [&](A& a) { a.emitted = with_shape0(a.emitted, b + 1); }});
  KVS_RUN(expect_args_checked(*plan, good, bad, {&out, &accepted, &emitted}));
  ASSERT_TRUE(plan->run(good, {}, {}));
}

// ------------------------------------------------------------ TokenPenalty --

TEST_P(SamplingValidationTest, PenaltyDescriptorFields) {
  using D = TokenPenaltyDesc;
  const D good{.vocab = 10, .max_batch = 4, .repetition = 1.2f, .frequency = 0.1f, .presence = 0.1f};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_fields_checked<TokenPenaltyPlan, D>(
      good,
      {{"vocab", [](D& d) { d.vocab = 0; }},
       {"max_batch", [](D& d) { d.max_batch = 0; }},
       {"history", [](D& d) { d.history = static_cast<PenaltyHistory>(2); }},
       {"params", [](D& d) { d.params = static_cast<ParamSource>(2); }},
       {"repetition", [](D& d) { d.repetition = 0.f; }},
       {"repetition", [=](D& d) { d.repetition = nan; }},
       {"frequency", [](D& d) { d.frequency = INFINITY; }},
       {"presence", [=](D& d) { d.presence = nan; }}},
      GetParam());
}

TEST_P(SamplingValidationTest, PenaltyArguments) {
  const Device dev = GetParam();
  const std::int64_t b = 2, v = 10;
  for (PenaltyHistory history : {PenaltyHistory::token_counts, PenaltyHistory::token_ids}) {
    SCOPED_TRACE(std::string(name_of(history)));
    const TokenPenaltyDesc desc{.vocab = 10, .max_batch = 2, .history = history, .params = ParamSource::per_row};
    KVS_CREATE_OR_SKIP(plan, TokenPenaltyPlan, desc, dev);
    Buffer logits = float_buffer(std::vector<float>(b * v, 1.f), dev),
           counts = int_buffer(std::vector<std::int32_t>(b * v, 1), dev), ids = int_buffer({1, 2, 3, 4, 5, 6}, dev),
           params = float_buffer({1.5f, 1.5f}, dev);
    using A = TokenPenaltyArgs;
    A good{.logits = logits.view({b, v}), .repetition = params.view({b}), .frequency = params.view({b}),
           .presence = params.view({b})};
    std::vector<BadArg<A>> bad;
    add_tensor_spoilers(&bad, "logits", &A::logits, DType::bf16, dev);
    add_tensor_spoilers(&bad, "repetition", &A::repetition, DType::int32, dev);
    add_tensor_spoilers(&bad, "frequency", &A::frequency, DType::int32, dev);
    add_tensor_spoilers(&bad, "presence", &A::presence, DType::int32, dev);
    if (history == PenaltyHistory::token_counts) {
      good.counts = counts.view({b, v});
      add_tensor_spoilers(&bad, "counts", &A::counts, DType::f32, dev);
      bad.push_back({"counts", [&](A& a) { a.counts = counts.view({b, v - 1}); }});
      bad.push_back({"token_ids", [&](A& a) { a.token_ids = ids.view({b, 3}); }});
    } else {
      good.token_ids = ids.view({b, 3});
      add_tensor_spoilers(&bad, "token_ids", &A::token_ids, DType::f32, dev);
      bad.push_back({"counts", [&](A& a) { a.counts = counts.view({b, v}); }});
    }
    KVS_RUN(expect_args_checked(*plan, good, bad, {&logits}));
    ASSERT_TRUE(plan->run(good, {}, {}));
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, SamplingValidationTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
