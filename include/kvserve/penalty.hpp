// Token penalties on logits, in place, per row, from each row's token history
// (the prompt and the tokens generated so far, as the caller chooses).
//
// For every token whose count c in the row's history is > 0, with x its logit:
//   x = x > 0 ? x / repetition : x * repetition    (repetition penalty)
//   x = fma(-frequency, c, x)                      (frequency penalty, c as float)
//   x = x - presence                               (presence penalty)
// in this order, each step rounded to f32 (the CUDA backend does the same
// operations, so both give the same bits). Tokens not seen are untouched.
// repetition 1, frequency 0 and presence 0 leave a row unchanged.
//
// Guarantees of run(): deterministic; rows are independent; no workspace on
// the CPU backend (ask workspace_bytes()); the history must not overlap the logits.
#pragma once

#include "kvserve/sampling.hpp"

namespace kvserve {

enum class PenaltyHistory : std::uint8_t {
  token_counts,  // counts int32 [B, vocab]: occurrences of each token (<= 0: not seen)
  token_ids,     // token_ids int32 [B, L]: the tokens themselves; ids outside [0, vocab)
                 // are padding and ignored, so rows of different lengths pad with -1
};
std::string_view name_of(PenaltyHistory v);

struct TokenPenaltyDesc {
  int vocab = 0;      // in [1, 4194304]
  int max_batch = 0;  // > 0
  PenaltyHistory history = PenaltyHistory::token_counts;
  // Scalar parameters (params == scalar).
  float repetition = 1.f;  // finite, > 0; 1: off
  float frequency = 0.f;   // finite; 0: off
  float presence = 0.f;    // finite; 0: off
  // per_row: all three come from the tensors in TokenPenaltyArgs, one value
  // per row (not validated on the device; use the neutral values for rows that
  // want no penalty).
  ParamSource params = ParamSource::scalar;
};

struct TokenPenaltyArgs {
  TensorView logits;     // f32 [B, vocab]; last dim contiguous. Read and written (in place).
  TensorView counts;     // int32 [B, vocab], history == token_counts. Read.
  TensorView token_ids;  // int32 [B, L] (L >= 0), history == token_ids. Read.
  TensorView repetition;  // f32 [B], params == per_row
  TensorView frequency;   // f32 [B], params == per_row
  TensorView presence;    // f32 [B], params == per_row
};

struct TokenPenalty : OpTypes<TokenPenaltyDesc, TokenPenaltyArgs> {
  static constexpr const char* kName = "TokenPenalty";
};
using TokenPenaltyPlan = Plan<TokenPenalty>;

}  // namespace kvserve
