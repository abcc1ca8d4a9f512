#include "sampling/stats.hpp"

#include <cmath>

namespace kvserve::test {

namespace {
constexpr double kTiny = 1e-300;
constexpr double kEps = 1e-15;

// log(x^a e^-x / Gamma(a)), the factor both expansions share.
double log_prefactor(double a, double x) { return a * std::log(x) - x - std::lgamma(a); }
}  // namespace

double gamma_q(double a, double x) {
  if (x <= 0) return 1;
  if (x < a + 1) {
    // Lower function by its power series: P = x^a e^-x / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n)).
    double term = 1 / a, sum = term;
    for (int n = 1; n < 100000 && std::fabs(term) > std::fabs(sum) * kEps; ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return 1 - sum * std::exp(log_prefactor(a, x));
  }
  // Upper function by its continued fraction, evaluated with Lentz's method:
  // Q = x^a e^-x / Gamma(a) * 1 / (x + 1 - a - 1(1 - a) / (x + 3 - a - 2(2 - a) / (x + 5 - a - ...))).
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, fraction = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double step = d * c;
    fraction *= step;
    if (std::fabs(step - 1) < kEps) break;
  }
  return fraction * std::exp(log_prefactor(a, x));
}

double chi_square_p_value(double statistic, int dof) { return gamma_q(dof / 2.0, statistic / 2.0); }

ChiSquare chi_square_test(const std::vector<std::int64_t>& observed, const std::vector<double>& expected) {
  ChiSquare r;
  std::int64_t n = 0;
  for (std::int64_t o : observed) n += o;
  double pooled_expected = 0;
  std::int64_t pooled_observed = 0;
  int bins = 0;
  const auto add_bin = [&](double e, std::int64_t o) {
    r.statistic += (o - e) * (o - e) / e;
    ++bins;
  };
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const double e = expected[i] * static_cast<double>(n);
    if (expected[i] == 0) {
      r.outside_support += observed[i];
    } else if (e < 5) {
      pooled_expected += e;
      pooled_observed += observed[i];
    } else {
      add_bin(e, observed[i]);
    }
  }
  if (pooled_expected > 0) add_bin(pooled_expected, pooled_observed);
  r.dof = bins - 1;
  r.p_value = r.dof > 0 ? chi_square_p_value(r.statistic, r.dof) : 1;
  return r;
}

}  // namespace kvserve::test
