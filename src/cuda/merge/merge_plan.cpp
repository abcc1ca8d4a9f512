// MergeState and MergeStates on CUDA: selection from the kernel table and
// the launch. No workspace, no prepare: run() is graph-capturable as is.
#include <string>

#include "core/check.hpp"
#include "cuda/common/runtime.hpp"
#include "cuda/cuda_kernels.hpp"
#include "cuda/kernel_table.hpp"

namespace kvserve::detail {
namespace cuda {
namespace {

// The kernel reads and writes 16 bytes at a time.
MergeLaunch launch_of(const void* backend_resources) {
  return *static_cast<const MergeLaunch*>(backend_resources);
}

Status launch(const char* op, Device device, MergeLaunch fn, const MergeParams& prm, Stream stream) {
  DeviceScope scope(device);
  KVSERVE_TRY(cuda_status(scope.error(), op, "selecting " + device.to_string()));
  return cuda_status(static_cast<cudaError_t>(fn(prm, stream.handle)), op, "kernel launch");
}

// Where both ops write: the merged rows and, when asked for, their lse.
void set_outputs(MergeParams* prm, const TensorView& v_out, const TensorView& lse_out) {
  prm->out = v_out.data;
  prm->out_stride_t = v_out.strides[0], prm->out_stride_h = v_out.strides[1];
  if (lse_out.defined()) {
    prm->lse_out = lse_out.ptr<float>();
    prm->lse_out_stride_t = lse_out.strides[0], prm->lse_out_stride_h = lse_out.strides[1];
  }
}

Status run_merge_states(const PlanState<MergeStates>& p, const MergeStatesArgs& a, Workspace, Stream stream) {
  constexpr const char* op = MergeStates::kName;
  KVSERVE_TRY(check_16_byte_rows(op, "v", a.v, 3));
  KVSERVE_TRY(check_16_byte_rows(op, "v_out", a.v_out, 2));
  MergeParams prm;
  prm.tokens = a.v.shape[0];
  if (a.v.shape[1] > kMergeMaxStates)
    return Status::unsupported(std::string(op) + ": the CUDA kernel merges at most " +
                               std::to_string(kMergeMaxStates) + " states per row, got " +
                               std::to_string(a.v.shape[1]) + " (argument 'v', dimension 1)");
  prm.num_states = static_cast<int>(a.v.shape[1]);
  prm.num_heads = p.desc.num_heads, prm.head_dim = p.desc.head_dim;
  prm.v = a.v.data;
  prm.v_stride_t = a.v.strides[0], prm.v_stride_n = a.v.strides[1], prm.v_stride_h = a.v.strides[2];
  prm.lse = a.lse.ptr<const float>();
  prm.lse_stride_t = a.lse.strides[0], prm.lse_stride_n = a.lse.strides[1], prm.lse_stride_h = a.lse.strides[2];
  set_outputs(&prm, a.v_out, a.lse_out);
  return launch(op, p.device, launch_of(p.backend_resources.get()), prm, stream);
}

Status run_merge_state(const PlanState<MergeState>& p, const MergeStateArgs& a, Workspace, Stream stream) {
  constexpr const char* op = MergeState::kName;
  KVSERVE_TRY(check_16_byte_rows(op, "v_a", a.v_a, 2));
  KVSERVE_TRY(check_16_byte_rows(op, "v_b", a.v_b, 2));
  KVSERVE_TRY(check_16_byte_rows(op, "v_out", a.v_out, 2));
  MergeParams prm;
  prm.tokens = a.v_a.shape[0];
  prm.num_states = 2;
  prm.num_heads = p.desc.num_heads, prm.head_dim = p.desc.head_dim;
  prm.v = a.v_a.data, prm.v_b = a.v_b.data;
  prm.v_stride_t = a.v_a.strides[0], prm.v_stride_h = a.v_a.strides[1];
  prm.vb_stride_t = a.v_b.strides[0], prm.vb_stride_h = a.v_b.strides[1];
  prm.lse = a.lse_a.ptr<const float>(), prm.lse_b = a.lse_b.ptr<const float>();
  prm.lse_stride_t = a.lse_a.strides[0], prm.lse_stride_h = a.lse_a.strides[1];
  prm.lseb_stride_t = a.lse_b.strides[0], prm.lseb_stride_h = a.lse_b.strides[1];
  set_outputs(&prm, a.v_out, a.lse_out);
  return launch(op, p.device, launch_of(p.backend_resources.get()), prm, stream);
}

// The plan keeps the launcher it selected.
template <class Op>
Status keep_launcher(PlanState<Op>& p) {
  auto entry = find_merge_kernel(Op::kName, p.desc.dtype, p.desc.head_dim);
  if (!entry) return entry.status();
  p.backend_resources = std::make_shared<MergeLaunch>(entry->launch);
  return Status::ok();
}

template <class Op>
Result<Kernel<Op>> merge_kernel(const typename Op::Desc& d, Device device,
                                Status (*run)(const PlanState<Op>&, const typename Op::Args&, Workspace, Stream)) {
  auto entry = find_merge_kernel(Op::kName, d.dtype, d.head_dim);
  if (!entry) return entry.status();
  auto facts = device_facts(device);
  if (!facts) return facts.status();
  Kernel<Op> k;
  k.info.backend = Backend::cuda;
  k.info.arch = facts->arch;
  k.info.op = Op::kName;
  k.info.config = "dtype=" + std::string(name_of(d.dtype)) + " d=" + std::to_string(d.head_dim) +
                  " chunk=16B rows_in_flight=" + std::to_string(kMergeRowsInFlight) +
                  " states_in_flight<=" + std::to_string(kMergeMaxStatesInFlight);
  // Each row merged on its own in a fixed order: deterministic and batch invariant.
  k.info.precision = Precision{DType::f32, DType::f32, true, true};
  k.run = run;
  k.create_resources = keep_launcher<Op>;
  return k;
}

}  // namespace
}  // namespace cuda

template <>
Result<Kernel<MergeStates>> cuda_kernel<MergeStates>(const MergeStatesDesc& d, Device device) {
  return cuda::merge_kernel<MergeStates>(d, device, cuda::run_merge_states);
}

template <>
Result<Kernel<MergeState>> cuda_kernel<MergeState>(const MergeStateDesc& d, Device device) {
  return cuda::merge_kernel<MergeState>(d, device, cuda::run_merge_state);
}

}  // namespace kvserve::detail
