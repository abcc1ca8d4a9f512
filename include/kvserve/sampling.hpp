// Sampling the next token: from probabilities or from logits with a
// temperature, with top-k, top-p, min-p or top-k + top-p truncation, or
// greedily; and the renormalise / mask ops that apply the same truncations to
// whole rows. docs/sampling.md has the long form, including the exact
// arithmetic and random stream both backends follow.
//
// Semantics (every backend, bit for bit):
// - Each token weighs its probability (probs input) or e^((x - max) / T)
//   (logits input at temperature T, so the top token weighs 1), as a 64-bit
//   fixed-point number with 40 fraction bits: probabilities >= 2^-17 are exact,
//   below 2^-40 they weigh 0 and are never returned. NaN and negative
//   probabilities weigh 0; values above 1 count as 1.
// - Tokens are ranked by their input value (probability or logit), ties broken
//   by the lower index. top_k keeps the k highest-ranked tokens; top_p keeps the
//   shortest ranked prefix whose mass reaches top_p times the row's mass; min_p
//   keeps the tokens weighing at least min_p times the top token's weight.
//   top_k_top_p with k_then_p applies top_p to the top-k set's own mass; with
//   joint it keeps the tokens both filters keep on the whole row.
// - The returned token follows the kept weights renormalised (the truncated
//   distribution), exactly up to the 2^-40 weight grid and 2^-64 draws.
//   Nothing is sorted: the kept set is found by bounded selection passes.
// - greedy returns the highest-ranked token of positive weight (the lowest
//   index among equal tops); top_k = 1 returns the same token. A row with no
//   token of positive weight (all probabilities 0, all logits -inf) returns -1.
// - Randomness: Philox-4x32-10 keyed by (seed, offset); see RandomSource.
//
// Guarantees of run(): deterministic (same inputs, seed and offset -> same
// tokens, on the CPU and CUDA backends alike); a row's token does not depend on
// the other rows; no workspace; `out` must not overlap the inputs.
#pragma once

#include <cstdint>
#include <string_view>

#include "kvserve/plan.hpp"

namespace kvserve {

enum class SamplingInput : std::uint8_t {
  probs,   // rows of probabilities (normalised or not: the kept mass is renormalised)
  logits,  // rows of logits, softmax at `temperature`
};

enum class SamplingFilter : std::uint8_t {
  none,         // the whole distribution
  top_k,        // the top_k highest-ranked tokens
  top_p,        // the nucleus of mass top_p
  min_p,        // tokens weighing >= min_p * the top weight
  top_k_top_p,  // both, combined as `order` says
  greedy,       // the top token, no draw
};

enum class TopKTopPOrder : std::uint8_t {
  k_then_p,  // top-p over the renormalised top-k set (vLLM, SGLang)
  joint,     // tokens kept by top-k and by top-p, each over the whole row
};

// Where per-request parameters come from.
enum class ParamSource : std::uint8_t {
  scalar,   // the descriptor's value, for every row
  per_row,  // a tensor argument with one value per row (on the plan's device)
};

// Where the random stream's key and counter come from.
enum class RandomSource : std::uint8_t {
  // Args::seed and Args::offset (host values); row b draws from stream b, so
  // rows differ even with one seed.
  host,
  // Args::seeds / Args::offsets, int32 [B] tensors read as unsigned 32-bit
  // values; each row's stream is its own (stream 0), so a request draws the
  // same numbers whatever its position in the batch. Device tensors let a
  // captured CUDA graph draw fresh numbers on every replay.
  per_row,
};

std::string_view name_of(SamplingInput v);
std::string_view name_of(SamplingFilter v);
std::string_view name_of(TopKTopPOrder v);
std::string_view name_of(ParamSource v);
std::string_view name_of(RandomSource v);

// ---------------------------------------------------------------- Sampling --

struct SamplingDesc {
  int vocab = 0;       // in [1, 4194304]
  int max_batch = 0;   // > 0
  SamplingInput input = SamplingInput::probs;
  SamplingFilter filter = SamplingFilter::none;
  TopKTopPOrder order = TopKTopPOrder::k_then_p;  // top_k_top_p only
  // Scalar parameters (params == scalar); a filter reads only its own.
  float temperature = 1.f;  // logits: finite, >= 0 (0: greedy); probs: must stay 1
  int top_k = 1;            // >= 1; >= vocab keeps every token
  float top_p = 1.f;        // in (0, 1]; 1 keeps every token
  float min_p = 0.f;        // in [0, 1]; 0 keeps every token
  // per_row: the parameters the filter (and, for logits, the temperature)
  // uses come from the tensors in SamplingArgs instead, and the scalars above
  // are not read. Out-of-range per-row values are not errors: top_k <= 0 or
  // >= vocab and top_p >= 1 (or NaN) turn the filter off, top_p <= 0 keeps the
  // top token, min_p <= 0 (or NaN) keeps all, temperature <= 0 (or NaN) is greedy.
  ParamSource params = ParamSource::scalar;
  RandomSource random = RandomSource::host;
};

struct SamplingArgs {
  TensorView input;  // f32 [B, vocab] probabilities or logits; last dim contiguous. Read.
  TensorView out;    // int32 [B]: the token of each row (-1: no token of positive weight). Written.
  // params == per_row, each only when used (absent otherwise):
  TensorView temperature;  // f32 [B], logits input
  TensorView top_k;        // int32 [B], filters top_k and top_k_top_p
  TensorView top_p;        // f32 [B], filters top_p and top_k_top_p
  TensorView min_p;        // f32 [B], filter min_p
  // random == host:
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;
  // random == per_row (not read by greedy plans; absent there):
  TensorView seeds;    // int32 [B]
  TensorView offsets;  // int32 [B]
};

struct Sampling : OpTypes<SamplingDesc, SamplingArgs> {
  static constexpr const char* kName = "Sampling";
};
using SamplingPlan = Plan<Sampling>;

// --------------------------------------------------------- SamplingRenorm --

// Applies a truncation to whole rows, with the kept sets Sampling uses:
// top-k or top-p renormalised probabilities (kept p / kept mass, 0 elsewhere;
// a row of mass 0 stays 0), or top-k masked logits (kept logits unchanged,
// -inf elsewhere, NaN included; logits of -inf are never counted among the k).
enum class RenormKind : std::uint8_t {
  top_k_renorm_probs,
  top_p_renorm_probs,
  top_k_mask_logits,
};
std::string_view name_of(RenormKind v);

struct SamplingRenormDesc {
  int vocab = 0;      // in [1, 4194304]
  int max_batch = 0;  // > 0
  RenormKind kind = RenormKind::top_k_renorm_probs;
  int top_k = 1;      // top-k kinds: >= 1
  float top_p = 1.f;  // top_p_renorm_probs: in (0, 1]
  ParamSource params = ParamSource::scalar;  // per_row: top_k / top_p tensors as in SamplingDesc
};

struct SamplingRenormArgs {
  TensorView input;  // f32 [B, vocab], probabilities or logits as `kind` says. Read.
  TensorView out;    // f32 [B, vocab]; may be exactly `input` (in place), no other overlap. Written.
  TensorView top_k;  // int32 [B], per_row top-k kinds
  TensorView top_p;  // f32 [B], per_row top_p_renorm_probs
};

struct SamplingRenorm : OpTypes<SamplingRenormDesc, SamplingRenormArgs> {
  static constexpr const char* kName = "SamplingRenorm";
};
using SamplingRenormPlan = Plan<SamplingRenorm>;

}  // namespace kvserve
