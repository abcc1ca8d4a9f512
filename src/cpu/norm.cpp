// CPU kernel for RmsNorm (plain, Gemma, fused add, per-head QK norm).
#include <cmath>
#include <vector>

#include "core/backend_kernels.hpp"
#include "cpu/attention_core.hpp"
#include "cpu/cpu_info.hpp"
#include "cpu/dot.hpp"
#include "cpu/parallel.hpp"

namespace kvserve::detail {

namespace {

// Rows of x as (outer, inner) pairs: [rows, H] has inner extent 1.
struct RowGrid {
  std::int64_t outer = 0, inner = 1;
  bool per_head = false;
  const char* row_ptr(const TensorView& t, std::int64_t o, std::int64_t i) const {
    return per_head ? cpu::element_ptr(t, {o, i, 0}) : cpu::element_ptr(t, {o, 0});
  }
};

Status run_rms_norm(const PlanState<RmsNorm>& p, const RmsNormArgs& a, Workspace, Stream) {
  const auto& d = p.desc;
  const int n = d.hidden_size;
  RowGrid grid{a.x.shape[0], a.x.rank == 3 ? a.x.shape[1] : 1, a.x.rank == 3};
  // (weight_offset + w) once per run, in fp32.
  std::vector<float> gain(static_cast<std::size_t>(n));
  cpu::widen_row(d.dtype, a.weight.data, n, 1.f, gain.data());
  for (float& g : gain) g += d.weight_offset;

  cpu::parallel_for(grid.outer, grid.inner * n * 8, [&](std::int64_t o) {
    std::vector<float> row(static_cast<std::size_t>(n)), addend;
    if (d.fused_add) addend.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < grid.inner; ++i) {
      cpu::widen_row(d.dtype, grid.row_ptr(a.x, o, i), n, 1.f, row.data());
      if (d.fused_add) {
        // residual += x, rounded once to dtype; the norm then reads the stored
        // (rounded) residual, so fused equals add-then-norm exactly.
        void* res = const_cast<char*>(grid.row_ptr(a.residual, o, i));
        cpu::widen_row(d.dtype, res, n, 1.f, addend.data());
        for (int c = 0; c < n; ++c) row[c] += addend[c];
        cpu::narrow_row(d.dtype, row.data(), n, res);
        cpu::widen_row(d.dtype, res, n, 1.f, row.data());
      }
      const float inv_rms = 1.f / std::sqrt(cpu::dot(row.data(), row.data(), n) / static_cast<float>(n) + d.eps);
      for (int c = 0; c < n; ++c) row[c] = row[c] * inv_rms * gain[c];
      cpu::narrow_row(d.dtype, row.data(), n, const_cast<char*>(grid.row_ptr(a.out, o, i)));
    }
  });
  return Status::ok();
}

}  // namespace

template <>
Result<Kernel<RmsNorm>> cpu_kernel<RmsNorm>(const RmsNormDesc& d) {
  return cpu::make_kernel<RmsNorm>(cpu::config("dtype", d.dtype, "hidden", d.hidden_size, "weight_offset",
                                               static_cast<int>(d.weight_offset), "fused_add", d.fused_add),
                                   run_rms_norm);
}

}  // namespace kvserve::detail
