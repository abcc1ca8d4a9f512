// Chain speculative sampling: verifying a draft model's n proposed tokens
// against the target model's distributions in one step (Leviathan et al.,
// "Fast Inference from Transformers via Speculative Decoding", 2023).
//
// Row b, draft position t = 0 .. n-1, draft token d_t with draft probability
// q_t(d_t) and target probability p_t(d_t):
// - position t passes its test when u_t * q_t(d_t) < p_t(d_t), u_t uniform in
//   [0, 1) (so with probability min(1, p/q)); a draft id outside [0, vocab)
//   never passes;
// - the emitted drafts are the passing prefix d_0 .. d_{a-1} (a = first
//   failing position, or n); the token after them is drawn from
//   max(0, p_a - q_a) renormalised when a < n (from p_a when that residual
//   has no mass), or from the target's extra distribution p_n when a = n.
// The emitted tokens then follow the target distributions exactly, whatever
// the draft. Weights and draws use the fixed-point arithmetic and random stream
// of Sampling (docs/sampling.md): position t of a row uses draw t of its
// stream, the bonus draw n.
//
// Guarantees of run(): deterministic; a row's result does not depend on the
// other rows; no workspace; outputs must not overlap the inputs.
#pragma once

#include "kvserve/sampling.hpp"

namespace kvserve {

struct ChainSpeculativeSamplingDesc {
  int vocab = 0;             // in [1, 4194304]
  int max_batch = 0;         // > 0
  int num_draft_tokens = 0;  // n > 0
  RandomSource random = RandomSource::host;
};

struct ChainSpeculativeSamplingArgs {
  TensorView draft_token_ids;  // int32 [B, n]. Read.
  TensorView draft_probs;      // f32 [B, n, vocab]; last dim contiguous. Read.
  TensorView target_probs;     // f32 [B, n + 1, vocab]; last dim contiguous. Read.
  // int32 [B, n + 1]: the a emitted drafts, the drawn token, then -1 (the drawn
  // token is -1 too when its distribution has no positive weight). Written.
  TensorView out;
  // Optional int32 [B], written when given:
  TensorView accepted;  // draft positions passing their test, each judged on its own (all n),
                        // so accepted / n estimates the acceptance rate
  TensorView emitted;   // a: the drafts emitted (the passing prefix)
  // Random stream, as SamplingArgs.
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;
  TensorView seeds;    // int32 [B], random == per_row
  TensorView offsets;  // int32 [B], random == per_row
};

struct ChainSpeculativeSampling : OpTypes<ChainSpeculativeSamplingDesc, ChainSpeculativeSamplingArgs> {
  static constexpr const char* kName = "ChainSpeculativeSampling";
};
using ChainSpeculativeSamplingPlan = Plan<ChainSpeculativeSampling>;

}  // namespace kvserve
