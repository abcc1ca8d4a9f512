// Multi-head latent attention (DeepSeek-style MLA) decode over the paged MLA
// cache that PagedMlaAppend writes (kv_cache.hpp), in the absorbed form: the
// model folds W_UK into the query and W_UV into the output projection, so every
// head attends over the shared latent rows directly and nothing is
// decompressed. For query head h of request b, over the request's tokens j:
//
//   logit[j] = sm_scale * (q_nope[b, h] . ckv[j] + q_pe[b, h] . kpe[j])
//   out[b, h] = sum_j softmax(logit)[j] * ckv[j]    (ckv_dim wide)
//
// which is attention with one KV head of width ckv_dim + kpe_dim for keys and
// ckv_dim for values, all num_heads query heads sharing it.
#pragma once

#include "kvserve/kv_cache.hpp"

namespace kvserve {

// ---------------------------------------------------- BatchPagedMlaDecode --

struct BatchPagedMlaDecodeDesc {
  int max_batch = 0;
  int num_heads = 0;   // query heads over the one latent KV (16 to 128 in DeepSeek models)
  PagedMlaDesc cache;  // page geometry, ckv_dim, kpe_dim; its dtype is q's and out's too
  // Required: the model's 1 / sqrt(qk_nope_head_dim + qk_rope_head_dim)
  // (DeepSeek-V3: 1 / sqrt(192)), which ckv_dim and kpe_dim do not determine.
  float sm_scale = 0.f;
  int kv_split_tokens = 0;  // 0: the plan balances splits itself; > 0 fixes them (batch invariance)
};

struct BatchPagedMlaDecodeArgs {
  TensorView q_nope;    // [B, num_heads, ckv_dim], read (the absorbed no-rope query)
  TensorView q_pe;      // [B, num_heads, kpe_dim], read (the rope query)
  PagedMlaCache cache;  // B requests; the pools read
  TensorView out;       // [B, num_heads, ckv_dim], written (before W_UV)
  TensorView lse;       // optional f32 [B, num_heads], written (natural log)
};

struct BatchPagedMlaDecode : OpTypes<BatchPagedMlaDecodeDesc, BatchPagedMlaDecodeArgs, PagedKvLengths> {
  static constexpr const char* kName = "BatchPagedMlaDecode";
};
using BatchPagedMlaDecodePlan = Plan<BatchPagedMlaDecode>;

}  // namespace kvserve
