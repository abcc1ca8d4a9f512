// Merging partial attention states (split-KV, cascade, shared prefixes).
//
// A state is what attention over some set of keys returns: its output v (the
// softmax-weighted mean of the values, [head_dim] per (token, head)) and its
// lse = log(sum_j exp(s_j)) (natural log, f32). Two states over disjoint key
// sets merge into the state over their union:
//   lse = log(exp(lse_a) + exp(lse_b)),
//   v   = exp(lse_a - lse) v_a + exp(lse_b - lse) v_b,
// computed in fp32 after subtracting max(lse_a, lse_b). A state with lse -inf
// (no keys) is the identity: merging it returns the other state unchanged,
// without reading its v (which may hold anything, NaN included); merging only
// empty states gives v = 0 and lse = -inf. NaN or +inf lse values are not
// valid states and give NaN.
//
// run() is deterministic (same bits run to run) and treats every (token, head)
// row on its own, so results do not depend on the number of tokens.
#pragma once

#include "kvserve/plan.hpp"

namespace kvserve {

// ------------------------------------------------------------- MergeState --

// (v_a, lse_a) merged with (v_b, lse_b), row by row.
struct MergeStateDesc {
  int num_heads = 0;
  int head_dim = 0;
  DType dtype = DType::bf16;  // v_a, v_b and v_out (f16, bf16 or f32)
};

// In place is allowed: v_out may be v_a (or v_b) itself, and lse_out lse_a (or
// lse_b), meaning the same view (pointer, shape and strides); any other overlap
// between an output and an input is refused.
struct MergeStateArgs {
  TensorView v_a;      // [tokens, num_heads, head_dim], read
  TensorView lse_a;    // f32 [tokens, num_heads], read
  TensorView v_b;      // [tokens, num_heads, head_dim], read
  TensorView lse_b;    // f32 [tokens, num_heads], read
  TensorView v_out;    // [tokens, num_heads, head_dim], written
  TensorView lse_out;  // optional f32 [tokens, num_heads], written
};

struct MergeState : OpTypes<MergeStateDesc, MergeStateArgs> {
  static constexpr const char* kName = "MergeState";
};
using MergeStatePlan = Plan<MergeState>;

// ------------------------------------------------------------ MergeStates --

// N states per (token, head) merged into one: v [tokens, N, num_heads,
// head_dim] with lse [tokens, N, num_heads] -> [tokens, num_heads, head_dim].
// N is read from the tensors (any N >= 0; N = 0 gives zeros and -inf).
// Outputs must not overlap the inputs.
struct MergeStatesDesc {
  int num_heads = 0;
  int head_dim = 0;
  DType dtype = DType::bf16;  // v and v_out (f16, bf16 or f32)
};

struct MergeStatesArgs {
  TensorView v;        // [tokens, N, num_heads, head_dim], read
  TensorView lse;      // f32 [tokens, N, num_heads], read
  TensorView v_out;    // [tokens, num_heads, head_dim], written
  TensorView lse_out;  // optional f32 [tokens, num_heads], written
};

struct MergeStates : OpTypes<MergeStatesDesc, MergeStatesArgs> {
  static constexpr const char* kName = "MergeStates";
};
using MergeStatesPlan = Plan<MergeStates>;

}  // namespace kvserve
