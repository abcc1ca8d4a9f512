// fp64 oracle for GdnPrefill: the gated delta rule as written, one sequence,
// one head and one token at a time; nothing shared with src/cpu.
#pragma once

#include <cstdint>
#include <vector>

namespace kvserve::oracle {

struct GdnSpec {
  int num_qk_heads = 0, num_v_heads = 0, head_dim_k = 0, head_dim_v = 0;
  double scale = 0;
  bool l2norm = false;  // q, k <- x / sqrt(|x|^2 + l2norm_eps)
  double l2norm_eps = 0;
};

// Contiguous logical layouts, H = max(num_qk_heads, num_v_heads):
//   q, k [T, num_qk_heads, dk]; v [T, num_v_heads, dv]; alpha, beta [T, H];
//   cu_seqlens [B + 1]; initial_state [B, H, dv, dk] or empty for zeros.
// Writes out [T, H, dv] and final_state [B, H, dv, dk].
void gdn_prefill(const GdnSpec& s, const std::vector<double>& q, const std::vector<double>& k,
                 const std::vector<double>& v, const std::vector<double>& alpha, const std::vector<double>& beta,
                 const std::vector<std::int32_t>& cu_seqlens, const std::vector<double>& initial_state,
                 std::vector<double>* out, std::vector<double>* final_state);

}  // namespace kvserve::oracle
