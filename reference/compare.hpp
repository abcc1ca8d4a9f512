// Closeness of a result to its fp64 reference, with a bound derived from the
// output dtype (shared by the tests and the CLI's check):
//   |got - ref| <= 2 u |ref| + (2 u + 2^-16) max|ref|
// u is the output dtype's unit roundoff (rounding the result once); 2^-16
// covers fp32 accumulation over long reductions. NaN never passes; infinities
// must match exactly.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kvserve/dtype.hpp"

namespace kvserve::test {

double unit_roundoff(DType t);

struct Comparison {
  std::size_t count = 0;     // elements compared
  std::size_t failures = 0;  // elements out of bounds
  std::size_t first_bad = 0;
  double worst = 0;          // largest |got - ref| / bound seen (<= 1 passes)
  std::string summary() const;  // "ok: 4096 elements, worst 0.12 of bound" / "FAIL: ..."
};

Comparison compare(const std::vector<double>& got, const std::vector<double>& ref, DType out_dtype);
// max|ref| over the finite entries.
double max_abs_finite(const std::vector<double>& ref);
// |got - ref| over its bound for one element (<= 1 passes; NaN or a wrong
// infinity gives +inf).
double error_ratio(double got, double ref, double max_abs_ref, DType out_dtype);

}  // namespace kvserve::test
