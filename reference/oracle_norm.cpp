#include "reference/oracle_norm.hpp"

#include <cmath>

namespace kvserve::oracle {

std::vector<double> rms_norm(const RmsNormSpec& s, const std::vector<double>& x, const std::vector<double>& w) {
  std::vector<double> y(x.size());
  const std::size_t n = static_cast<std::size_t>(s.hidden);
  for (std::size_t row = 0; row * n < x.size(); ++row) {
    double mean_square = 0;
    for (std::size_t c = 0; c < n; ++c) mean_square += x[row * n + c] * x[row * n + c];
    mean_square /= s.hidden;
    const double rms = std::sqrt(mean_square + s.eps);
    for (std::size_t c = 0; c < n; ++c) y[row * n + c] = x[row * n + c] / rms * (s.weight_offset + w[c]);
  }
  return y;
}

std::vector<double> fused_add_rms_norm(const RmsNormSpec& s, DType dtype, const std::vector<double>& x,
                                       std::vector<double>* residual, const std::vector<double>& w) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    unsigned char stored[4];  // one element of dtype
    store_from_float(dtype, stored, 0, static_cast<float>(x[i] + (*residual)[i]));
    (*residual)[i] = load_as_float(dtype, stored, 0);
  }
  return rms_norm(s, *residual, w);
}

}  // namespace kvserve::oracle
