#include "reference/oracle_merge.hpp"

#include <cmath>
#include <limits>

namespace kvserve::oracle {

void merge_states(const std::vector<double>& v, const std::vector<double>& lse, std::int64_t rows, std::int64_t n,
                  int dim, std::vector<double>* out, std::vector<double>* out_lse) {
  out->assign(static_cast<std::size_t>(rows * dim), 0.0);
  out_lse->assign(static_cast<std::size_t>(rows), -std::numeric_limits<double>::infinity());
  for (std::int64_t r = 0; r < rows; ++r) {
    double mass = 0;
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isinf(lse[r * n + i])) mass += std::exp(lse[r * n + i]);
    if (mass == 0) continue;
    for (std::int64_t i = 0; i < n; ++i) {
      if (std::isinf(lse[r * n + i])) continue;
      const double share = std::exp(lse[r * n + i]) / mass;
      for (int c = 0; c < dim; ++c) (*out)[r * dim + c] += share * v[(r * n + i) * dim + c];
    }
    (*out_lse)[r] = std::log(mass);
  }
}

}  // namespace kvserve::oracle
