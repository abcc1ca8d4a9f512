// Fuzz target: the sampling family on the CPU backend (Sampling with every
// input kind, filter and parameter source, SamplingRenorm,
// ChainSpeculativeSampling, TokenPenalty). Parameters take NaN, +-inf, 0,
// negative values and k > vocab, scalar or per row; rows hold NaN, +-inf and
// all-zero mass. The first byte picks the op.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "kvserve/penalty.hpp"
#include "kvserve/sampling.hpp"
#include "kvserve/speculative.hpp"

namespace kvserve::fuzz {

namespace {

void sampling(FuzzInput& in, Arena& a) {
  SamplingDesc d;
  d.vocab = in.isize(1 + in.u8() % 40, kMaxVocab);
  d.max_batch = in.isize(4, kMaxBatch);
  d.input = in.enumeration(2, in.flag() ? SamplingInput::logits : SamplingInput::probs);
  d.filter = in.enumeration(6, static_cast<SamplingFilter>(in.u8() % 6));
  d.order = in.enumeration(2, TopKTopPOrder::k_then_p);
  d.temperature = in.param(d.input == SamplingInput::logits ? 0.7f : 1.f);
  d.top_k = in.isize(1 + in.u8() % 50, kMaxVocab);  // > vocab now and then
  d.top_p = in.param(0.9f);
  d.min_p = in.param(0.1f);
  d.params = in.enumeration(2, in.flag() ? ParamSource::per_row : ParamSource::scalar);
  d.random = in.enumeration(2, in.flag() ? RandomSource::per_row : RandomSource::host);
  std::int64_t b = in.u8() % 5;
  SamplingArgs args;
  args.input = a.tensor(DType::f32, {b, d.vocab});
  args.out = a.tensor(DType::int32, {b});
  if (d.params == ParamSource::per_row || in.pick(8) == 0) {
    args.temperature = a.tensor(DType::f32, {b});
    args.top_k = a.tensor(DType::int32, {b}, index_bound(2 * std::int64_t{d.vocab}));
    args.top_p = a.tensor(DType::f32, {b});
    args.min_p = a.tensor(DType::f32, {b});
  }
  args.seed = in.u64();
  args.offset = in.u64();
  if (d.random == RandomSource::per_row || in.pick(8) == 0) {
    args.seeds = a.tensor(DType::int32, {b}, 1000);
    args.offsets = a.tensor(DType::int32, {b}, 1000);
  }
  drive<Sampling>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

void renorm(FuzzInput& in, Arena& a) {
  SamplingRenormDesc d;
  d.vocab = in.isize(1 + in.u8() % 40, kMaxVocab);
  d.max_batch = in.isize(4, kMaxBatch);
  d.kind = in.enumeration(3, static_cast<RenormKind>(in.u8() % 3));
  d.top_k = in.isize(1 + in.u8() % 50, kMaxVocab);
  d.top_p = in.param(0.8f);
  d.params = in.enumeration(2, in.flag() ? ParamSource::per_row : ParamSource::scalar);
  std::int64_t b = in.u8() % 5;
  SamplingRenormArgs args;
  args.input = a.tensor(DType::f32, {b, d.vocab});
  args.out = in.pick(4) == 0 ? args.input : a.tensor(DType::f32, {b, d.vocab});
  if (d.params == ParamSource::per_row || in.pick(8) == 0) {
    args.top_k = a.tensor(DType::int32, {b}, index_bound(2 * std::int64_t{d.vocab}));
    args.top_p = a.tensor(DType::f32, {b});
  }
  drive<SamplingRenorm>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

void speculative(FuzzInput& in, Arena& a) {
  ChainSpeculativeSamplingDesc d;
  d.vocab = in.isize(1 + in.u8() % 20, kMaxVocab);
  d.max_batch = in.isize(4, kMaxBatch);
  d.num_draft_tokens = in.isize(1 + in.u8() % 4, kMaxDraftTokens);
  d.random = in.enumeration(2, in.flag() ? RandomSource::per_row : RandomSource::host);
  std::int64_t b = in.u8() % 4, n = d.num_draft_tokens;
  ChainSpeculativeSamplingArgs args;
  args.draft_token_ids = a.tensor(DType::int32, {b, n}, d.vocab);
  args.draft_probs = a.tensor(DType::f32, {b, n, d.vocab});
  args.target_probs = a.tensor(DType::f32, {b, n + 1, d.vocab});
  args.out = a.tensor(DType::int32, {b, n + 1});
  args.accepted = a.tensor(DType::int32, {b});
  args.emitted = a.tensor(DType::int32, {b});
  args.seed = in.u64();
  args.offset = in.u64();
  if (d.random == RandomSource::per_row || in.pick(8) == 0) {
    args.seeds = a.tensor(DType::int32, {b}, 1000);
    args.offsets = a.tensor(DType::int32, {b}, 1000);
  }
  drive<ChainSpeculativeSampling>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

void penalty(FuzzInput& in, Arena& a) {
  TokenPenaltyDesc d;
  d.vocab = in.isize(1 + in.u8() % 40, kMaxVocab);
  d.max_batch = in.isize(4, kMaxBatch);
  d.history = in.enumeration(2, in.flag() ? PenaltyHistory::token_ids : PenaltyHistory::token_counts);
  d.repetition = in.param(1.2f);
  d.frequency = in.param(0.5f);
  d.presence = in.param(0.3f);
  d.params = in.enumeration(2, in.flag() ? ParamSource::per_row : ParamSource::scalar);
  std::int64_t b = in.u8() % 5, l = in.u8() % 6;
  TokenPenaltyArgs args;
  args.logits = a.tensor(DType::f32, {b, d.vocab});
  if (d.history == PenaltyHistory::token_counts || in.pick(8) == 0)
    args.counts = a.tensor(DType::int32, {b, d.vocab}, 3);
  if (d.history == PenaltyHistory::token_ids || in.pick(8) == 0)
    args.token_ids = a.tensor(DType::int32, {b, l}, d.vocab);  // ids outside [0, vocab) now and then
  if (d.params == ParamSource::per_row || in.pick(8) == 0) {
    args.repetition = a.tensor(DType::f32, {b});
    args.frequency = a.tensor(DType::f32, {b});
    args.presence = a.tensor(DType::f32, {b});
  }
  drive<TokenPenalty>(in, a, d, args, [](auto&, Workspace) { return Status::ok(); });
}

}  // namespace

KVSERVE_FUZZ_CASES(sampling, renorm, speculative, penalty)

}  // namespace kvserve::fuzz
