#include "reference/compare.hpp"

#include <cmath>
#include <cstdio>

namespace kvserve::test {

double unit_roundoff(DType t) {
  switch (t) {
    case DType::f16: return std::ldexp(1.0, -11);
    case DType::bf16: return std::ldexp(1.0, -8);
    case DType::f32: return std::ldexp(1.0, -24);
    case DType::fp8_e4m3: return std::ldexp(1.0, -4);
    case DType::fp8_e5m2: return std::ldexp(1.0, -3);
    case DType::int32: return 0;
  }
  return 0;
}

double max_abs_finite(const std::vector<double>& ref) {
  double scale = 0;
  for (double r : ref)
    if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
  return scale;
}

double error_ratio(double got, double ref, double max_abs_ref, DType out_dtype) {
  if (std::isnan(ref)) return std::isnan(got) ? 0 : INFINITY;
  if (std::isinf(ref)) return got == ref ? 0 : INFINITY;
  if (!std::isfinite(got)) return INFINITY;
  const double u = unit_roundoff(out_dtype);
  const double bound = 2 * u * std::fabs(ref) + (2 * u + std::ldexp(1.0, -16)) * max_abs_ref;
  const double err = std::fabs(got - ref);
  return bound > 0 ? err / bound : (err == 0 ? 0 : INFINITY);
}

Comparison compare(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype) {
  Comparison c;
  c.count = ref.size();
  if (got.size() != ref.size()) {
    c.failures = std::max(got.size(), ref.size());
    c.worst = INFINITY;
    return c;
  }
  const double scale = max_abs_finite(ref);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double ratio = error_ratio(got[i], ref[i], scale, out_dtype);
    if (ratio > 1 && c.failures++ == 0) c.first_bad = i;
    c.worst = std::max(c.worst, ratio);
  }
  return c;
}

std::string Comparison::summary() const {
  char buf[160];
  if (failures == 0)
    std::snprintf(buf, sizeof buf, "ok (%zu elements, worst %.2g of bound)", count, worst);
  else
    std::snprintf(buf, sizeof buf, "FAIL (%zu of %zu out of bound, first at %zu)", failures, count, first_bad);
  return buf;
}

}  // namespace kvserve::test
