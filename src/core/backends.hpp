// Where kernels come from. Every op has a CPU kernel (src/cpu); a CUDA kernel
// exists for the configurations in the CUDA kernel rows
// (src/cuda/registry/kernel_rows.hpp). Everything else answers Unsupported
// naming what is missing. The backends' specialisations are declared, from
// the op list (core/op_list.hpp), in core/backend_kernels.hpp, which
// plan_impl.hpp includes where plans are instantiated.
#pragma once

#include <string>

#include "core/plan_state.hpp"

namespace kvserve::detail {

// Specialised for every op by the CPU backend.
template <class Op>
Result<Kernel<Op>> cpu_kernel(const typename Op::Desc& desc);

// Specialised by the CUDA backend for the ops it serves; this primary
// definition answers for the rest.
template <class Op>
Result<Kernel<Op>> cuda_kernel(const typename Op::Desc&, Device device) {
#if KVSERVE_WITH_CUDA
  return Status::unsupported(std::string(Op::kName) + ": no CUDA kernel for this op in this build (" +
                             device.to_string() + ")");
#else
  return Status::unsupported(std::string(Op::kName) + ": this build has no CUDA backend (asked for " +
                             device.to_string() + "; configure with -DKVSERVE_ENABLE_CUDA=ON)");
#endif
}

template <class Op>
Result<Kernel<Op>> select_backend(const typename Op::Desc& desc, Device device) {
  if (device.is_cpu()) return cpu_kernel<Op>(desc);
  return cuda_kernel<Op>(desc, device);
}

}  // namespace kvserve::detail
