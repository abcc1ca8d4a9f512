#include "reference/oracle_gdn.hpp"

#include <algorithm>
#include <cmath>

namespace kvserve::oracle {

namespace {
std::vector<double> row_of(const std::vector<double>& x, std::int64_t offset, int n, bool l2norm, double eps) {
  std::vector<double> r(x.begin() + offset, x.begin() + offset + n);
  if (!l2norm) return r;
  double sq = 0;
  for (double e : r) sq += e * e;
  for (double& e : r) e /= std::sqrt(sq + eps);
  return r;
}
}  // namespace

void gdn_prefill(const GdnSpec& s, const std::vector<double>& q, const std::vector<double>& k,
                 const std::vector<double>& v, const std::vector<double>& alpha, const std::vector<double>& beta,
                 const std::vector<std::int32_t>& cu_seqlens, const std::vector<double>& initial_state,
                 std::vector<double>* out, std::vector<double>* final_state) {
  const int hqk = s.num_qk_heads, hv = s.num_v_heads, dk = s.head_dim_k, dv = s.head_dim_v;
  const int heads = std::max(hqk, hv);
  const std::int64_t batch = static_cast<std::int64_t>(cu_seqlens.size()) - 1;
  out->assign(static_cast<std::size_t>(cu_seqlens.back()) * heads * dv, 0.0);
  final_state->assign(static_cast<std::size_t>(batch) * heads * dv * dk, 0.0);
  for (std::int64_t b = 0; b < batch; ++b) {
    for (int h = 0; h < heads; ++h) {
      // Head h reads q/k head floor(h * hqk / H) and v head floor(h * hv / H).
      const int hk = h * hqk / heads, hvv = h * hv / heads;
      const std::int64_t state_base = (b * heads + h) * dv * dk;
      // S[i][j], i over d_v, j over d_k.
      std::vector<std::vector<double>> S(dv, std::vector<double>(dk, 0.0));
      if (!initial_state.empty())
        for (int i = 0; i < dv; ++i)
          for (int j = 0; j < dk; ++j) S[i][j] = initial_state[state_base + i * dk + j];
      for (std::int64_t t = cu_seqlens[b]; t < cu_seqlens[b + 1]; ++t) {
        const auto qt = row_of(q, (t * hqk + hk) * dk, dk, s.l2norm, s.l2norm_eps);
        const auto kt = row_of(k, (t * hqk + hk) * dk, dk, s.l2norm, s.l2norm_eps);
        const auto vt = row_of(v, (t * hv + hvv) * dv, dv, false, 0);
        const double a = alpha[t * heads + h], bt = beta[t * heads + h];
        // S_t = a S (I - bt k k^T) + bt v k^T, with S (I - bt k k^T) = S - bt (S k) k^T.
        std::vector<double> Sk(dv, 0.0);
        for (int i = 0; i < dv; ++i)
          for (int j = 0; j < dk; ++j) Sk[i] += S[i][j] * kt[j];
        for (int i = 0; i < dv; ++i)
          for (int j = 0; j < dk; ++j) S[i][j] = a * (S[i][j] - bt * Sk[i] * kt[j]) + bt * vt[i] * kt[j];
        for (int i = 0; i < dv; ++i) {
          double o = 0;
          for (int j = 0; j < dk; ++j) o += S[i][j] * qt[j];
          (*out)[(t * heads + h) * dv + i] = s.scale * o;
        }
      }
      for (int i = 0; i < dv; ++i)
        for (int j = 0; j < dk; ++j) (*final_state)[state_base + i * dk + j] = S[i][j];
    }
  }
}

}  // namespace kvserve::oracle
