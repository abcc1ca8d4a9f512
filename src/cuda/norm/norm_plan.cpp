// RmsNorm on CUDA: the row for the dtype, and the launch. No workspace, no
// prepare: run() is graph-capturable as is.
#include <string>

#include "core/check.hpp"
#include "cuda/common/cuda_plan.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/norm/norm_params.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

const LaunchTable<NormLaunch> kNormLaunchers{norm_launchers()};

int chunks_of(const RmsNormDesc& d) { return d.hidden_size / static_cast<int>(16 / size_of(d.dtype)); }

struct RmsNormTraits {
  using Op = RmsNorm;
  struct Selected {
    NormLaunch launch;
    int team;  // threads per row
  };

  static Result<Selected> select(const RmsNormDesc& d, const DeviceFacts&) {
    auto row = find_row(Op::kName, Family::norm, {d.dtype, d.dtype, d.hidden_size});
    if (!row) return row.status();
    return Selected{kNormLaunchers[*row], norm_team(chunks_of(d))};
  }
  static std::string config(const RmsNormDesc& d, const Selected& s) {
    return "dtype=" + std::string(name_of(d.dtype)) + " hidden=" + std::to_string(d.hidden_size) +
           " threads_per_row=" + std::to_string(s.team) + " fused_add=" + std::to_string(d.fused_add ? 1 : 0);
  }
  // A row's sum in an order fixed by hidden_size: deterministic and batch invariant.
  static Precision precision(const RmsNormDesc&) { return {DType::f32, DType::f32, true, true}; }

  static Status run(const Selected& s, const RmsNormDesc& d, Device device, const RmsNormArgs& a, Workspace,
                    Stream stream) {
    for (const auto& [name, t] : {std::pair{"x", &a.x}, {"weight", &a.weight}, {"residual", &a.residual},
                                  {"out", &a.out}})
      KVSERVE_TRY(check_16_byte_rows(Op::kName, name, *t, t->rank - 1));
    const bool per_head = a.x.rank == 3;
    RmsNormParams prm;
    prm.outer = a.x.shape[0];
    prm.inner = per_head ? a.x.shape[1] : 1;
    prm.hidden = d.hidden_size;
    prm.eps = d.eps, prm.weight_offset = d.weight_offset;
    prm.x = a.x.data, prm.x_stride_o = a.x.strides[0], prm.x_stride_i = per_head ? a.x.strides[1] : 0;
    if (d.fused_add) {
      prm.residual = a.residual.data;
      prm.residual_stride_o = a.residual.strides[0], prm.residual_stride_i = per_head ? a.residual.strides[1] : 0;
    }
    prm.out = a.out.data, prm.out_stride_o = a.out.strides[0], prm.out_stride_i = per_head ? a.out.strides[1] : 0;
    prm.weight = a.weight.data;
    prm.team = s.team;
    return launch_on(device, Op::kName, [&] { return s.launch(prm, stream.handle); });
  }
};

}  // namespace
}  // namespace cuda

KVSERVE_CUDA_KERNEL(RmsNorm, RmsNormTraits)

}  // namespace kvserve::detail
