#pragma once

#include <string>

#include "kvserve/core.hpp"

namespace kvserve::detail::cpu {

// Every CPU kernel: fp32 products and sums, single pass order fixed by the
// input, so deterministic and batch invariant.
inline KernelInfo kernel_info(std::string op, std::string config) {
  KernelInfo info;
  info.backend = Backend::cpu;
  info.arch = "host";
  info.op = std::move(op);
  info.config = std::move(config);
  info.precision = Precision{DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/true};
  return info;
}

}  // namespace kvserve::detail::cpu
