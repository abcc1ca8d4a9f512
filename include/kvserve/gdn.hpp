// The gated delta rule (Gated DeltaNet, Qwen3-Next's linear attention):
// GdnPrefill over packed variable-length sequences, and GdnDecode, one token
// per sequence against states kept in a pool (the step a server runs after the
// prefill).
//
// Per sequence and per head, a state S [d_v, d_k] starts from initial_state (or
// zero) and for every token t of the sequence:
//
//   S_t = alpha_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T
//       = alpha_t S_{t-1} - beta_t (alpha_t S_{t-1} k_t - v_t) k_t^T
//   o_t = scale * S_t q_t
//
// Heads. The recurrence runs over H = max(num_qk_heads, num_v_heads) heads; the
// smaller count must divide the larger. Head h (in [0, H)) reads
//   q and k head  h / (H / num_qk_heads)
//   v head        h / (H / num_v_heads)
// and owns alpha[t, h], beta[t, h], out[t, h] and state [b, h]. So with more v
// heads than q/k heads (GVA, as Qwen3-Next: 16 q/k heads, 32 v heads) groups of
// consecutive v heads share one q/k head; with more q/k heads than v heads (GQA)
// groups of consecutive q/k heads share one v head, each with its own state.
//
// Sequences. Sequence b owns tokens cu_seqlens[b] .. cu_seqlens[b+1] of the
// packed token axis (T = cu_seqlens[B] tokens in all). A sequence of length 0
// writes no output and copies its initial state (or zeros) to final_state.
// cu_seqlens lives on the plan's device; on the CPU its entries are checked,
// on a GPU they are the caller's promise. Feeding a run's final_state as the
// next run's initial_state continues the sequences: chained runs equal one run
// over the concatenated tokens.
//
// Gates. alpha (decay, in (0, 1]) and beta (write strength, usually in [0, 1])
// are fp32 per (token, head), already activated (alpha = exp(g) for a log-space
// gate g). The kernels do not check their values; the recurrence is stable when
// beta_t |k_t|^2 <= 2, so k is normally L2-normalised: either by the caller, or
// in the kernel with use_qk_l2norm (q and k rows become x / sqrt(|x|^2 + eps),
// as Qwen3-Next does).
//
// Numbers: inputs widened to fp32, state kept in fp32, out rounded once to
// dtype. The CPU runs the recurrence token by token; a GPU kernel may run the
// equivalent chunked (WY / UT-transform) form, which differs by rounding only.
// Deterministic, and a sequence's result does not depend on the others.
//
// Aliasing: final_state may be exactly the same view as initial_state (the state
// is updated in place). out overlaps no input.
#pragma once

#include <optional>

#include "kvserve/plan.hpp"

namespace kvserve {

struct GdnPrefillDesc {
  int max_batch = 0;            // sequences per run, at most
  std::int64_t max_tokens = 0;  // packed tokens per run, at most (a GPU sizes its workspace from it)
  int num_qk_heads = 0;
  int num_v_heads = 0;
  int head_dim_k = 0;  // d_k: a multiple of 16 in [16, 256]
  int head_dim_v = 0;  // d_v: a multiple of 16 in [16, 256]
  DType dtype = DType::bf16;   // q, k, v and out: f16, bf16 or f32
  std::optional<float> scale;  // default 1 / sqrt(head_dim_k)
  bool use_qk_l2norm = false;  // L2-normalise q and k rows in the kernel
  float l2norm_eps = 1e-6f;    // > 0; used with use_qk_l2norm
};

// Shapes: T packed tokens, B sequences, H = max(num_qk_heads, num_v_heads).
// Every tensor's last dimension is contiguous; other strides are free.
struct GdnPrefillArgs {
  TensorView q;              // [T, num_qk_heads, head_dim_k], read
  TensorView k;              // [T, num_qk_heads, head_dim_k], read
  TensorView v;              // [T, num_v_heads, head_dim_v], read
  TensorView alpha;          // f32 [T, H], read
  TensorView beta;           // f32 [T, H], read
  TensorView cu_seqlens;     // int32 [B + 1], contiguous: 0 = cu[0] <= cu[1] <= ... <= cu[B] = T
  TensorView initial_state;  // optional f32 [B, H, head_dim_v, head_dim_k], read (absent: zeros)
  TensorView out;            // [T, H, head_dim_v], written
  TensorView final_state;    // optional f32 [B, H, head_dim_v, head_dim_k], written
};

struct GdnPrefill : OpTypes<GdnPrefillDesc, GdnPrefillArgs> {
  static constexpr const char* kName = "GdnPrefill";
};
using GdnPrefillPlan = Plan<GdnPrefill>;

// ---------------------------------------------------------------- GdnDecode --
//
// One decode step: sequence b's one new token updates its state in place and
// gives its output, exactly as GdnPrefill over one-token sequences with
// final_state = initial_state (the same heads, gates, l2 norm and numbers;
// on the CPU bit for bit).
//
// States live in a pool of num_state_slots slots, f32 [slots, H, d_v, d_k],
// the way a server keeps one state per running request: state_indices[b] is
// sequence b's slot, or -1 for a padded row (a batch rounded up to a CUDA
// graph's size), whose out row is written with zeros and which touches no
// state. Two sequences of one run may not share a slot. On the CPU the indices
// are checked (range, -1, distinct); on a GPU they are the caller's promise,
// and an index outside [-1, slots) is treated as -1: never an access out of
// the pool.
struct GdnDecodeDesc {
  int max_batch = 0;        // sequences per run, at most
  int num_state_slots = 0;  // the state pool's first extent
  int num_qk_heads = 0;
  int num_v_heads = 0;
  int head_dim_k = 0;  // d_k: a multiple of 16 in [16, 256]
  int head_dim_v = 0;  // d_v: a multiple of 16 in [16, 256]
  DType dtype = DType::bf16;   // q, k, v and out: f16, bf16 or f32
  std::optional<float> scale;  // default 1 / sqrt(head_dim_k)
  bool use_qk_l2norm = false;  // L2-normalise q and k rows in the kernel
  float l2norm_eps = 1e-6f;    // > 0; used with use_qk_l2norm
};

// Shapes: B sequences (one token each), H = max(num_qk_heads, num_v_heads).
// Every tensor's last dimension is contiguous; other strides are free.
struct GdnDecodeArgs {
  TensorView q;              // [B, num_qk_heads, head_dim_k], read
  TensorView k;              // [B, num_qk_heads, head_dim_k], read
  TensorView v;              // [B, num_v_heads, head_dim_v], read
  TensorView alpha;          // f32 [B, H], read
  TensorView beta;           // f32 [B, H], read
  TensorView state_indices;  // int32 [B], contiguous: slot of each sequence, -1 for a padded row
  TensorView state;          // f32 [num_state_slots, H, head_dim_v, head_dim_k], read and written
  TensorView out;            // [B, H, head_dim_v], written
};

struct GdnDecode : OpTypes<GdnDecodeDesc, GdnDecodeArgs> {
  static constexpr const char* kName = "GdnDecode";
};
using GdnDecodePlan = Plan<GdnDecode>;

}  // namespace kvserve
