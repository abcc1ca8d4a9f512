// Comparing attention results with the oracle in the attention-family tests
// (input building lives in reference/attention_support.hpp, shared with the CLI).
#pragma once

#include <string>
#include <vector>

#include "reference/attention_support.hpp"

namespace kvserve::test {

// "bf16 d=128 dv=128 hkv=2 group=4 softcap=0 window=-1 on cpu"
std::string attention_label(DType dtype, int head_dim, int head_dim_v, int num_kv_heads, int group,
                            const AttentionParams& attn, Device device);

// Waits for the device, downloads out and lse, then expects them close to the oracle's: out within
// out's dtype bound, lse within the f32 bound (-inf rows must match exactly).
void expect_attention(Buffer& out, Buffer& lse, const std::vector<double>& ref_out,
                      const std::vector<double>& ref_lse);

// The oracle's output and LSE of a batch, gathered request by request.
struct ReferenceAttention {
  std::vector<double> out, lse;
  // Appends one request's rows: oracle::attention of q_len queries over kv_len keys.
  void add(const oracle::AttentionSpec& spec, const std::vector<double>& q, const std::vector<double>& keys,
           const std::vector<double>& values, std::int64_t q_len, std::int64_t kv_len);
};
inline void expect_attention(Buffer& out, Buffer& lse, const ReferenceAttention& ref) {
  expect_attention(out, lse, ref.out, ref.lse);
}

}  // namespace kvserve::test
