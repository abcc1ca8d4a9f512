// The fp64 oracle: deliberately naive, written apart from the CPU backend and
// sharing none of its code, so that the two are independent witnesses.
// Inputs are plain std::vector<double> in logical (contiguous) layouts.
#pragma once

#include <cstdint>
#include <vector>

namespace kvserve::oracle {

struct AttentionSpec {
  int num_qo_heads = 0, num_kv_heads = 0, head_dim = 0, head_dim_v = 0;
  double sm_scale = 0;
  double soft_cap = 0;   // 0: off
  int window_left = -1;  // -1: off
  bool causal = true;
};

// One sequence: q [q_len, Hq, D], k [kv_len, Hkv, D], v [kv_len, Hkv, Dv]
// (contiguous). Writes out [q_len, Hq, Dv] and lse [q_len, Hq] (natural log;
// -inf and zeros for a row that sees no key).
void attention(const AttentionSpec& s, const std::vector<double>& q, const std::vector<double>& k,
               const std::vector<double>& v, std::int64_t q_len, std::int64_t kv_len, std::vector<double>* out,
               std::vector<double>* lse);

}  // namespace kvserve::oracle
