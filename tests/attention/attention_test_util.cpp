#include "attention/attention_test_util.hpp"

#include "harness/harness.hpp"

namespace kvserve::test {

std::string attention_label(DType dtype, int head_dim, int head_dim_v, int num_kv_heads, int group,
                            const AttentionParams& attn, Device device) {
  return std::string(name_of(dtype)) + " d=" + std::to_string(head_dim) + " dv=" + std::to_string(head_dim_v) +
         " hkv=" + std::to_string(num_kv_heads) + " group=" + std::to_string(group) +
         " softcap=" + std::to_string(attn.logits_soft_cap) + " window=" + std::to_string(attn.window_left) + " on " +
         device.to_string();
}

void expect_attention(Buffer& out, Buffer& lse, const std::vector<double>& ref_out,
                      const std::vector<double>& ref_lse) {
  synchronize(out.device());
  out.download();
  lse.download();
  expect_close(out.values(), ref_out, out.dtype(), "out");
  expect_close(lse.values(), ref_lse, DType::f32, "lse");
}

void ReferenceAttention::add(const oracle::AttentionSpec& spec, const std::vector<double>& q,
                             const std::vector<double>& keys, const std::vector<double>& values, std::int64_t q_len,
                             std::int64_t kv_len) {
  std::vector<double> o, l;
  oracle::attention(spec, q, keys, values, q_len, kv_len, &o, &l);
  append(&out, o);
  append(&lse, l);
}

}  // namespace kvserve::test
