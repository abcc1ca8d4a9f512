// RMSNorm and its serving variants, as one op over rows of a tensor.
//
//   y = x / sqrt(mean(x^2) + eps) * (weight_offset + w)
//
// - Plain RMSNorm: weight_offset 0. Gemma's RMSNorm: weight_offset 1, i.e. the
//   stored weight is a delta from 1.
// - Fused add + RMSNorm (fused_add): first residual = x + residual, rounded once
//   to `dtype` and written back into `residual` in place; then y is the norm of
//   that updated (rounded) residual. So a fused run equals an add followed by a
//   plain run on the new residual, bit for bit; `x` itself is not changed.
// - QK RMSNorm: pass q or k as [tokens, heads, head_dim] with hidden_size =
//   head_dim; every (token, head) row is normalised on its own with the one
//   shared weight [head_dim]. The token and head strides are free, so q and k
//   can be views into a fused qkv projection.
//
// Numbers: inputs are widened to fp32; the sum of squares, the scale and the
// products are fp32; y is rounded once to `dtype`. Deterministic: the reduction
// order depends on hidden_size only, so a row's result does not depend on the
// other rows (batch invariant).
//
// Aliasing: `out` may be exactly the same view as `x` (in place), or with
// fused_add exactly the same view as `residual`; each row is read in full before
// any of it is written. Any other overlap between arguments is not allowed.
#pragma once

#include "kvserve/plan.hpp"

namespace kvserve {

struct RmsNormDesc {
  int hidden_size = 0;         // length of a normalised row (head_dim for QK norm)
  DType dtype = DType::bf16;   // x, weight, residual and out: f16, bf16 or f32
  float eps = 1e-6f;           // > 0, added to mean(x^2)
  float weight_offset = 0.f;   // 0: y = n * w; 1: Gemma, y = n * (1 + w)
  bool fused_add = false;      // residual += x (in place), then normalise residual
};

struct RmsNormArgs {
  // [rows, hidden_size] or [tokens, heads, hidden_size]; last dim contiguous,
  // other strides free. Read.
  TensorView x;
  TensorView weight;    // [hidden_size], contiguous. Read.
  TensorView residual;  // fused_add only (absent otherwise): shape of x. Read and written.
  TensorView out;       // shape of x. Written.
};

struct RmsNorm : OpTypes<RmsNormDesc, RmsNormArgs> {
  static constexpr const char* kName = "RmsNorm";
};
using RmsNormPlan = Plan<RmsNorm>;

}  // namespace kvserve
