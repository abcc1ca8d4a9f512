// RmsNorm on CUDA: selection from the kernel table and the launch. No
// workspace, no prepare: run() is graph-capturable as is.
#include <string>

#include "core/check.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

constexpr const char* kOp = RmsNorm::kName;

Status keep_launcher(PlanState<RmsNorm>& p) {
  auto entry = find_norm_kernel(kOp, p.desc.dtype, p.desc.hidden_size);
  if (!entry) return entry.status();
  p.backend_resources = std::make_shared<NormLaunch>(entry->launch);
  return Status::ok();
}

Status run_rms_norm(const PlanState<RmsNorm>& p, const RmsNormArgs& a, Workspace, Stream stream) {
  const auto& d = p.desc;
  for (const auto& [name, t] : {std::pair{"x", &a.x}, {"weight", &a.weight}, {"residual", &a.residual},
                                {"out", &a.out}})
    KVSERVE_TRY(check_16_byte_rows(kOp, name, *t, t->rank - 1));
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
  prm.team = norm_team(d.hidden_size / static_cast<int>(16 / size_of(d.dtype)));
  DeviceScope scope(p.device);
  KVSERVE_TRY(cuda_status(scope.error(), kOp, "selecting " + p.device.to_string()));
  const auto launch = *static_cast<const NormLaunch*>(p.backend_resources.get());
  return cuda_status(static_cast<cudaError_t>(launch(prm, stream.handle)), kOp, "kernel launch");
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<RmsNorm>> cuda_kernel<RmsNorm>(const RmsNormDesc& d, Device device) {
  auto entry = cuda::find_norm_kernel(RmsNorm::kName, d.dtype, d.hidden_size);
  if (!entry) return entry.status();
  auto facts = cuda::device_facts(device);
  if (!facts) return facts.status();
  const int chunks = d.hidden_size / static_cast<int>(16 / size_of(d.dtype));
  Kernel<RmsNorm> k;
  k.info.backend = Backend::cuda;
  k.info.arch = facts->arch;
  k.info.op = RmsNorm::kName;
  k.info.config = "dtype=" + std::string(name_of(d.dtype)) + " hidden=" + std::to_string(d.hidden_size) +
                  " threads_per_row=" + std::to_string(cuda::norm_team(chunks)) +
                  " fused_add=" + std::to_string(d.fused_add ? 1 : 0);
  // A row's sum in an order fixed by hidden_size: deterministic and batch invariant.
  k.info.precision = Precision{DType::f32, DType::f32, true, true};
  k.run = cuda::run_rms_norm;
  k.create_resources = cuda::keep_launcher;
  return k;
}

}  // namespace kvserve::detail
