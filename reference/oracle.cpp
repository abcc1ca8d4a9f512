#include "reference/oracle.hpp"

#include <cmath>
#include <limits>

namespace kvserve::oracle {

void attention(const AttentionSpec& s, const std::vector<double>& q, const std::vector<double>& k,
               const std::vector<double>& v, std::int64_t q_len, std::int64_t kv_len, std::vector<double>* out,
               std::vector<double>* lse) {
  const int hq = s.num_qo_heads, hkv = s.num_kv_heads, d = s.head_dim, dv = s.head_dim_v;
  out->assign(static_cast<std::size_t>(q_len * hq * dv), 0.0);
  lse->assign(static_cast<std::size_t>(q_len * hq), -std::numeric_limits<double>::infinity());
  for (std::int64_t i = 0; i < q_len; ++i) {
    const std::int64_t pos = i + kv_len - q_len;
    for (int h = 0; h < hq; ++h) {
      const int hk = h / (hq / hkv);
      std::vector<double> score;
      std::vector<std::int64_t> keys;
      for (std::int64_t j = 0; j < kv_len; ++j) {
        if (s.causal && j > pos) continue;
        if (s.window_left >= 0 && j < pos - s.window_left) continue;
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += q[(i * hq + h) * d + c] * k[(j * hkv + hk) * d + c];
        double x = dot * s.sm_scale;
        if (s.soft_cap > 0) x = s.soft_cap * std::tanh(x / s.soft_cap);
        score.push_back(x);
        keys.push_back(j);
      }
      if (keys.empty()) continue;
      double m = -std::numeric_limits<double>::infinity();
      for (double x : score) m = std::max(m, x);
      double sum = 0;
      for (double x : score) sum += std::exp(x - m);
      for (std::size_t t = 0; t < keys.size(); ++t) {
        const double p = std::exp(score[t] - m) / sum;
        for (int c = 0; c < dv; ++c) (*out)[(i * hq + h) * dv + c] += p * v[(keys[t] * hkv + hk) * dv + c];
      }
      (*lse)[i * hq + h] = m + std::log(sum);
    }
  }
}

}  // namespace kvserve::oracle
