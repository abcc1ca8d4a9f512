// fp64 oracle for RmsNorm: the formula, row by row, nothing shared with src/cpu.
#pragma once

#include <cstdint>
#include <vector>

#include "kvserve/dtype.hpp"

namespace kvserve::oracle {

struct RmsNormSpec {
  int hidden = 0;
  double eps = 0;
  double weight_offset = 0;  // 0 plain, 1 Gemma
};

// x: rows of `hidden` values, contiguous; w: [hidden]. Returns
// y = x / sqrt(mean(x^2) + eps) * (weight_offset + w), row by row.
std::vector<double> rms_norm(const RmsNormSpec& s, const std::vector<double>& x, const std::vector<double>& w);

// Fused add: *residual = round_to(dtype, x + *residual) element by element,
// then returns rms_norm of the updated residual.
std::vector<double> fused_add_rms_norm(const RmsNormSpec& s, DType dtype, const std::vector<double>& x,
                                       std::vector<double>* residual, const std::vector<double>& w);

}  // namespace kvserve::oracle
