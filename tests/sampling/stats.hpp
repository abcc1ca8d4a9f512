// Small statistics for the sampling tests: Pearson's chi-square test and the
// regularised incomplete gamma function its p-value needs.
#pragma once

#include <cstdint>
#include <vector>

namespace kvserve::test {

// Q(a, x) = Gamma(a, x) / Gamma(a), the regularised upper incomplete gamma
// function, for a > 0 and x >= 0.
double gamma_q(double a, double x);
// P(X >= statistic) for X chi-square distributed with `dof` degrees of freedom.
double chi_square_p_value(double statistic, int dof);

struct ChiSquare {
  double statistic = 0;
  int dof = 0;
  double p_value = 1;
  std::int64_t outside_support = 0;  // draws of bins whose expected probability is 0
};

// Pearson's test of observed counts per bin against expected probabilities
// (summing to 1). Bins expecting fewer than 5 draws are pooled into one.
ChiSquare chi_square_test(const std::vector<std::int64_t>& observed, const std::vector<double>& expected);

}  // namespace kvserve::test
